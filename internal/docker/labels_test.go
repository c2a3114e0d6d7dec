package docker

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wharf-logs/wharf/internal/entry"
)

func TestLabelerStreams(t *testing.T) {
	long := strings.Repeat("€", 1000) // 3000 bytes, 3 per rune
	for _, tc := range []struct {
		name          string
		static        map[string]string
		fromContainer map[string]string
		c             Container
		want          map[string]string // stdout's labels but stream
	}{
		{
			name: "plain container",
			c:    Container{ID: "abc", Name: "web", Image: "nginx"},
			want: map[string]string{"container": "web", "host": "node-1"},
		},
		{
			name: "compose",
			c: Container{Name: "shop-web-1", Labels: map[string]string{
				composeProjectLabel: "shop", composeServiceLabel: "web",
				swarmStackLabel: "ignored", swarmServiceLabel: "ignored",
			}},
			want: map[string]string{"container": "shop-web-1", "host": "node-1", "compose_project": "shop", "compose_service": "web"},
		},
		{
			name: "swarm fills in for compose",
			c: Container{Name: "stack_api.1.xyz", Labels: map[string]string{
				swarmStackLabel: "stack", swarmServiceLabel: "stack_api",
			}},
			want: map[string]string{"container": "stack_api.1.xyz", "host": "node-1", "compose_project": "stack", "compose_service": "stack_api"},
		},
		{
			name: "compose project with swarm service",
			c: Container{Name: "x", Labels: map[string]string{
				composeProjectLabel: "shop", swarmServiceLabel: "svc",
			}},
			want: map[string]string{"container": "x", "host": "node-1", "compose_project": "shop", "compose_service": "svc"},
		},
		{
			name:          "static and from container",
			static:        map[string]string{"env": "prod", "region": "eu"},
			fromContainer: map[string]string{"team": "org.example.team", "tier": "org.example.tier"},
			c:             Container{Name: "api", Labels: map[string]string{"org.example.team": "payments"}},
			// tier's container label is missing: an empty value is dropped.
			want: map[string]string{"container": "api", "host": "node-1", "env": "prod", "region": "eu", "team": "payments"},
		},
		{
			name:          "built-ins cannot be overridden",
			static:        map[string]string{"container": "evil", "host": "evil", "stream": "evil", "compose_project": "evil"},
			fromContainer: map[string]string{"compose_service": "svc.label", "host": "svc.label"},
			c:             Container{Name: "web", Labels: map[string]string{"svc.label": "evil"}},
			want:          map[string]string{"container": "web", "host": "node-1"},
		},
		{
			name:   "empty values dropped",
			static: map[string]string{"env": ""},
			c:      Container{Name: "web", Labels: map[string]string{composeProjectLabel: ""}},
			want:   map[string]string{"container": "web", "host": "node-1"},
		},
		{
			name:   "long values capped on a rune boundary",
			static: map[string]string{"note": long},
			c:      Container{Name: "web"},
			want:   map[string]string{"container": "web", "host": "node-1", "note": long[:682*3]},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLabeler("node-1", tc.static, tc.fromContainer)
			out, errs := l.Streams(tc.c)
			for _, s := range []struct {
				st   *entry.Stream
				name string
			}{{out, "stdout"}, {errs, "stderr"}} {
				want := map[string]string{"stream": s.name}
				for k, v := range tc.want {
					want[k] = v
				}
				got := map[string]string{}
				for _, p := range s.st.Labels {
					if _, dup := got[p.Name]; dup {
						t.Errorf("%s: label %s twice", s.name, p.Name)
					}
					got[p.Name] = p.Value
					if p.Value == "" {
						t.Errorf("%s: label %s has an empty value", s.name, p.Name)
					}
				}
				if len(got) != len(want) {
					t.Errorf("%s labels %v, want %v", s.name, s.st.Labels, want)
				}
				for k, v := range want {
					if got[k] != v {
						t.Errorf("%s: %s=%.40q, want %.40q", s.name, k, got[k], v)
					}
				}
				if !slices.IsSortedFunc(s.st.Labels, func(a, b entry.Label) int { return strings.Compare(a.Name, b.Name) }) {
					t.Errorf("%s labels not sorted: %v", s.name, s.st.Labels)
				}
				if s.st.Key != s.st.Labels.String() {
					t.Errorf("%s key %q, want %q", s.name, s.st.Key, s.st.Labels.String())
				}
				if s.st.Origin != tc.c.Name {
					t.Errorf("%s origin %q, want %q", s.name, s.st.Origin, tc.c.Name)
				}
				wantMeta := entry.Labels{{Name: "container_id", Value: tc.c.ID}, {Name: "image", Value: tc.c.Image}}
				if !slices.Equal(s.st.Metadata, wantMeta) {
					t.Errorf("%s metadata %v, want %v", s.name, s.st.Metadata, wantMeta)
				}
			}
			if out.Hash == errs.Hash || out.Key == errs.Key {
				t.Error("stdout and stderr share a stream")
			}
		})
	}
}

func TestFilterKeep(t *testing.T) {
	web := Container{Name: "web-1", Image: "nginx:1.27", Labels: map[string]string{"tier": "front", "logs": ""}}
	db := Container{Name: "db", Image: "postgres:16", Labels: map[string]string{"tier": "back"}}
	bare := Container{Name: "tmp", Image: "alpine"}
	rules := func(r ...Rule) []Rule { return r }
	for _, tc := range []struct {
		name             string
		include, exclude []Rule
		keep             map[string]bool // by container name
	}{
		{"no rules keep all", nil, nil, map[string]bool{"web-1": true, "db": true, "tmp": true}},
		{"name regexp, unanchored", rules(Rule{Name: regexp.MustCompile("eb")}), nil, map[string]bool{"web-1": true}},
		{"name regexp, anchored", rules(Rule{Name: regexp.MustCompile("^d")}), nil, map[string]bool{"db": true}},
		{"image regexp", rules(Rule{Image: regexp.MustCompile(`^postgres:`)}), nil, map[string]bool{"db": true}},
		{"label present", rules(Rule{Label: "tier"}), nil, map[string]bool{"web-1": true, "db": true}},
		{"label present with empty value", rules(Rule{Label: "logs"}), nil, map[string]bool{"web-1": true}},
		{"label value", rules(Rule{Label: "tier=back"}), nil, map[string]bool{"db": true}},
		{"label empty value", rules(Rule{Label: "logs="}), nil, map[string]bool{"web-1": true}},
		{"label value with =", rules(Rule{Label: "tier=front=x"}), nil, map[string]bool{}},
		{"fields of one rule all match", rules(Rule{Name: regexp.MustCompile("web"), Image: regexp.MustCompile("postgres")}), nil, map[string]bool{}},
		{"any include rule", rules(Rule{Name: regexp.MustCompile("^web")}, Rule{Image: regexp.MustCompile("alpine")}), nil, map[string]bool{"web-1": true, "tmp": true}},
		{"exclude only", nil, rules(Rule{Label: "tier=front"}), map[string]bool{"db": true, "tmp": true}},
		{"exclude wins over include", rules(Rule{Label: "tier"}), rules(Rule{Name: regexp.MustCompile("^db$")}), map[string]bool{"web-1": true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFilter(tc.include, tc.exclude)
			for _, c := range []Container{web, db, bare} {
				if got := f.Keep(c); got != tc.keep[c.Name] {
					t.Errorf("Keep(%s) = %v, want %v", c.Name, got, tc.keep[c.Name])
				}
			}
		})
	}
}
