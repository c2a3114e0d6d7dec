package docker

import (
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/source"
)

// Container labels set by Compose and Swarm that wharf maps to stream labels.
const (
	composeProjectLabel = "com.docker.compose.project"
	composeServiceLabel = "com.docker.compose.service"
	swarmServiceLabel   = "com.docker.swarm.service.name"
	swarmStackLabel     = "com.docker.stack.namespace"
)

// Labeler builds the streams of a container from configuration.
type Labeler struct {
	host    string
	static  entry.Labels
	mapping map[string]string // stream label -> container label key
}

// NewLabeler returns a Labeler adding host and the configured labels.
func NewLabeler(host string, static, fromContainer map[string]string) *Labeler {
	l := &Labeler{host: host, mapping: fromContainer}
	for k, v := range static {
		l.static = append(l.static, entry.Label{Name: k, Value: v})
	}
	return l
}

// Streams returns the stdout and stderr streams of c. TTY containers only
// have stdout, but both are returned so callers need not care.
//
// Built-in labels: container, compose_project and compose_service (Swarm's
// stack and service names fill them when Compose's are absent), stream and
// host. Configured labels come next; a built-in name cannot be overridden by
// them. Labels with empty values are left out, as Loki would drop them.
func (l *Labeler) Streams(c Container) (stdout, stderr *entry.Stream) {
	base := map[string]string{
		"container": c.Name,
		"host":      l.host,
	}
	project, service := c.Labels[composeProjectLabel], c.Labels[composeServiceLabel]
	if project == "" {
		project = c.Labels[swarmStackLabel]
	}
	if service == "" {
		service = c.Labels[swarmServiceLabel]
	}
	base["compose_project"] = project
	base["compose_service"] = service
	for _, p := range l.static {
		if !isBuiltin(p.Name) {
			base[p.Name] = p.Value
		}
	}
	for name, key := range l.mapping {
		if !isBuiltin(name) {
			base[name] = c.Labels[key]
		}
	}
	meta := entry.Labels{{Name: "container_id", Value: c.ID}, {Name: "image", Value: c.Image}}
	mk := func(stream string) *entry.Stream {
		labels := make(entry.Labels, 0, len(base)+1)
		for k, v := range base {
			if v != "" {
				labels = append(labels, entry.Label{Name: k, Value: source.CapLabelValue(v)})
			}
		}
		labels = append(labels, entry.Label{Name: "stream", Value: stream})
		sort.Slice(labels, func(i, j int) bool { return labels[i].Name < labels[j].Name })
		return entry.NewStream(labels, meta, c.Name)
	}
	return mk("stdout"), mk("stderr")
}

// Filter decides which containers are collected.
type Filter struct {
	include, exclude []rule
}

// Rule matches a container when every field that is set matches.
type Rule struct {
	// Name and Image match the container name and its image reference;
	// nil matches any.
	Name, Image *regexp.Regexp
	// Label is "key" (the container label is present) or "key=value"; ""
	// matches any.
	Label string
}

type rule struct {
	name, image     *regexp.Regexp
	labelKey, value string
	hasValue        bool
}

// NewFilter returns a filter keeping the containers that match an include
// rule (all when there is none) and no exclude rule.
func NewFilter(include, exclude []Rule) *Filter {
	f := &Filter{}
	for _, r := range include {
		f.include = append(f.include, newRule(r))
	}
	for _, r := range exclude {
		f.exclude = append(f.exclude, newRule(r))
	}
	return f
}

func newRule(r Rule) rule {
	c := rule{name: r.Name, image: r.Image}
	c.labelKey, c.value, c.hasValue = strings.Cut(r.Label, "=")
	return c
}

func (r rule) match(c Container) bool {
	if r.name != nil && !r.name.MatchString(c.Name) {
		return false
	}
	if r.image != nil && !r.image.MatchString(c.Image) {
		return false
	}
	if r.labelKey != "" {
		v, ok := c.Labels[r.labelKey]
		if !ok || (r.hasValue && v != r.value) {
			return false
		}
	}
	return true
}

// Keep reports whether c is collected: it matches an include rule (or there
// are none) and no exclude rule.
func (f *Filter) Keep(c Container) bool {
	for _, r := range f.exclude {
		if r.match(c) {
			return false
		}
	}
	if len(f.include) == 0 {
		return true
	}
	for _, r := range f.include {
		if r.match(c) {
			return true
		}
	}
	return false
}

// BuiltinLabels returns the labels wharf sets on every container stream,
// which the configuration may not set again.
func BuiltinLabels() []string {
	return []string{"container", "compose_project", "compose_service", "stream", "host"}
}

func isBuiltin(name string) bool {
	return slices.Contains(BuiltinLabels(), name)
}
