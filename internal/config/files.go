package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"time"

	"github.com/wharf-logs/wharf/internal/source"
)

// validate checks one files: entry, whose YAML path is path.
func (f *FileSource) validate(p *problems, path string) {
	if len(f.Paths) == 0 {
		p.add(path+".paths", "no paths; list glob patterns of the files to read, e.g. /var/log/app/*.log")
	}
	for j, g := range f.Paths {
		checkGlob(p, fmt.Sprintf("%s.paths[%d]", path, j), g)
	}
	for j, g := range f.Exclude {
		checkGlob(p, fmt.Sprintf("%s.exclude[%d]", path, j), g)
	}
	for k, v := range f.Labels {
		kp := path + ".labels." + k
		if err := CheckLabelName(k); err != nil {
			p.add(kp, "%v", err)
		} else if k == "filename" || k == "host" {
			p.add(kp, "%q is set by wharf itself; choose another name", k)
		}
		if v == "" {
			p.add(kp, "empty value; Loki ignores empty labels, remove the key")
		}
	}
	oneOf(p, path+".start_at", f.StartAt, source.StartEnd, source.StartBeginning)
	p.sizeIn(path+".max_line_bytes", f.MaxLineBytes, 1*KiB, 64*MiB)
	m := &f.Multiline
	if m.Start != "" {
		if _, err := regexp.Compile(m.Start); err != nil {
			p.regexpProblem(path+".multiline.start", m.Start, err, `^\d{4}-\d{2}-\d{2} `)
		}
	}
	p.positive(path+".multiline.max_wait", m.MaxWait, time.Hour)
	p.between(path+".multiline.max_lines", m.MaxLines, 1, 100000)
	p.sizeIn(path+".multiline.max_bytes", m.MaxBytes, 1*KiB, 64*MiB)
}

// checkGlob checks a glob pattern the way filepath.Match will read it.
func checkGlob(p *problems, path, pattern string) {
	switch _, err := filepath.Match(pattern, ""); {
	case pattern == "":
		p.add(path, `"" is not a valid glob pattern; remove it or write a pattern like /var/log/app/*.log`)
	case err != nil:
		p.add(path, `%s is not a valid glob pattern; close every [ with ] or write \[ for a literal [ (filepath.Match syntax, e.g. /var/log/app/*.log)`, p.quoted(path, pattern))
	}
}
