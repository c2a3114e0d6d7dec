package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/wharf-logs/wharf/internal/docker"
	"github.com/wharf-logs/wharf/internal/source"
)

func (d *Docker) validate(p *problems) {
	oneOf(p, "docker.read_from", d.ReadFrom, docker.ReadAPI, docker.ReadAuto, docker.ReadFile)
	oneOf(p, "docker.start_at", d.StartAt, source.StartEnd, source.StartBeginning)
	p.sizeIn("docker.max_line_bytes", d.MaxLineBytes, 1*KiB, 64*MiB)
	p.between("docker.startup_concurrency", d.StartupConcurrency, 1, 256)
	if d.Host != "" {
		u, err := url.Parse(d.Host)
		switch {
		case err != nil || (u.Scheme != "unix" && u.Scheme != "tcp" && u.Scheme != "http" && u.Scheme != "https"):
			p.add("docker.host", "%s is not a Docker address; write unix:///var/run/docker.sock or tcp://host:2375", p.quoted("docker.host", redactURL(d.Host)))
		case u.Scheme == "unix" && u.Path == "":
			p.add("docker.host", "%s has no socket path; write unix:///var/run/docker.sock", p.quoted("docker.host", d.Host))
		case u.Scheme != "unix" && u.Host == "":
			p.add("docker.host", "%s has no host; write tcp://host:2375", p.quoted("docker.host", redactURL(d.Host)))
		}
	}
	for i, r := range d.Include {
		r.validate(p, fmt.Sprintf("docker.include[%d]", i))
	}
	for i, r := range d.Exclude {
		r.validate(p, fmt.Sprintf("docker.exclude[%d]", i))
	}
	for k, v := range d.LabelsFromContainer {
		path := "docker.labels_from_container." + k
		if err := CheckLabelName(k); err != nil {
			p.add(path, "%v", err)
		} else if isBuiltinLabel(k) {
			p.add(path, "%q is set by wharf itself; choose another name", k)
		}
		if v == "" {
			p.add(path, "empty container label key; name the container label to copy")
		}
	}
}

func (r ContainerRule) validate(p *problems, path string) {
	if r.Name == "" && r.Image == "" && r.Label == "" {
		p.add(path, "empty rule; set name, image or label")
	}
	if _, err := regexp.Compile(r.Name); err != nil {
		p.regexpProblem(path+".name", r.Name, err, "^web-")
	}
	if _, err := regexp.Compile(r.Image); err != nil {
		p.regexpProblem(path+".image", r.Image, err, `^nginx(:|$)`)
	}
	if k, _, _ := strings.Cut(r.Label, "="); r.Label != "" && k == "" {
		p.add(path+".label", "%s has no key; write key or key=value", p.quoted(path+".label", r.Label))
	}
}
