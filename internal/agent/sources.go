package agent

import (
	"fmt"
	"regexp"

	"github.com/wharf-logs/wharf/internal/config"
	"github.com/wharf-logs/wharf/internal/docker"
	"github.com/wharf-logs/wharf/internal/files"
)

// dockerConfig converts docker.* into the Docker source's configuration.
func dockerConfig(c config.Docker) docker.Config {
	return docker.Config{
		ReadFrom:           c.ReadFrom,
		StartAt:            c.StartAt,
		MaxLineBytes:       int(c.MaxLineBytes),
		StartupConcurrency: c.StartupConcurrency,
	}
}

// dockerFilter compiles docker.include and docker.exclude.
func dockerFilter(c config.Docker) (*docker.Filter, error) {
	var rules [2][]docker.Rule
	for i, set := range [2][]config.ContainerRule{c.Include, c.Exclude} {
		for _, r := range set {
			name, err := compile(r.Name)
			if err != nil {
				return nil, err
			}
			image, err := compile(r.Image)
			if err != nil {
				return nil, err
			}
			rules[i] = append(rules[i], docker.Rule{Name: name, Image: image, Label: r.Label})
		}
	}
	return docker.NewFilter(rules[0], rules[1]), nil
}

// filesGroups converts the files: entries into the plain-file source's
// groups.
func filesGroups(entries []config.FileSource) ([]files.Group, error) {
	groups := make([]files.Group, 0, len(entries))
	for _, e := range entries {
		start, err := compile(e.Multiline.Start)
		if err != nil {
			return nil, err
		}
		groups = append(groups, files.Group{
			Paths:          e.Paths,
			Exclude:        e.Exclude,
			Labels:         e.Labels,
			StartAt:        e.StartAt,
			MaxLineBytes:   int(e.MaxLineBytes),
			FollowSymlinks: e.FollowSymlinks,
			Multiline: files.Multiline{
				Start:    start,
				MaxWait:  e.Multiline.MaxWait,
				MaxLines: e.Multiline.MaxLines,
				MaxBytes: int(e.Multiline.MaxBytes),
			},
		})
	}
	return groups, nil
}

// compile compiles a regular expression the configuration has validated;
// "" is nil, which matches anything.
func compile(expr string) (*regexp.Regexp, error) {
	if expr == "" {
		return nil, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("agent: %q: %w", expr, err)
	}
	return re, nil
}
