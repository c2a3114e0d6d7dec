package agent

import (
	"fmt"
	"strings"

	"github.com/wharf-logs/wharf/internal/admin"
)

// buildAdmin opens the admin server on listen, when it is set, with
// admin.pprof and the resolved admin token.
func (a *Agent) buildAdmin(token string) error {
	if a.cfg.Listen == "" {
		return nil
	}
	var err error
	a.admin, err = admin.New(admin.Config{Addr: a.cfg.Listen, Pprof: a.cfg.Admin.Pprof, Token: token}, admin.Deps{
		Gatherer: a.metrics.Registry,
		Ready:    a.readiness(),
		Logger:   a.log,
	})
	return err
}

// readiness is what /readyz checks: the Docker event stream, the disk
// queues, the positions file, the dead letters and the sinks.
func (a *Agent) readiness() []admin.Check {
	var ready []admin.Check
	if a.docker != nil {
		ready = append(ready, func() string {
			if !a.docker.Connected() {
				return "docker: not connected to " + a.dockerC.Host()
			}
			return ""
		})
	}
	return append(ready,
		func() string {
			for _, q := range a.queues {
				if err := q.Err(); err != nil {
					return "queue: " + err.Error()
				}
			}
			return ""
		},
		func() string {
			if err := a.positions.Err(); err != nil {
				return err.Error()
			}
			return ""
		},
		func() string {
			// Until a dead letter or a probe write succeeds (see Err): entries
			// refused meanwhile are lost, counted as dead_letter_failed.
			if err := a.dead.Err(); err != nil {
				return err.Error()
			}
			return ""
		},
		func() string {
			// A misconfigured sink names the receiver's answer and URL: an
			// operator must fix them. Others fail for the receiver's own
			// reasons, and wharf waits it out.
			var problems, failing []string
			for _, f := range a.pipe.Failing() {
				if f.Misconfigured != nil {
					problems = append(problems, fmt.Sprintf("sink %s misconfigured: %v", f.Sink, f.Misconfigured))
				} else {
					failing = append(failing, f.Sink)
				}
			}
			if len(failing) > 0 {
				problems = append(problems, fmt.Sprintf("sinks failing: %v", failing))
			}
			return strings.Join(problems, "\n")
		},
	)
}
