// Package agent wires wharf's parts into one process and owns their
// lifecycle: sources feed the pipeline, the pipeline feeds the sinks, and the
// admin server reports on all of them.
//
// Shutdown order: stop the sources, let the pipeline deliver what it holds
// within the shutdown timeout, close the sinks, then stop the admin server.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/wharf-logs/wharf/internal/admin"
	"github.com/wharf-logs/wharf/internal/config"
	"github.com/wharf-logs/wharf/internal/datadir"
	"github.com/wharf-logs/wharf/internal/deadletter"
	"github.com/wharf-logs/wharf/internal/docker"
	"github.com/wharf-logs/wharf/internal/files"
	"github.com/wharf-logs/wharf/internal/filesink"
	"github.com/wharf-logs/wharf/internal/pipeline"
	"github.com/wharf-logs/wharf/internal/positions"
	"github.com/wharf-logs/wharf/internal/queue"
	"github.com/wharf-logs/wharf/internal/sink"
)

// positionsInterval is how often confirmed positions are written; a crash
// re-sends at most what was confirmed since the last write (Loki discards
// such replays as identical entries).
const positionsInterval = time.Second

// Deps are the agent's outside collaborators.
type Deps struct {
	Logger  *slog.Logger
	Version string
}

// Agent is one running wharf.
type Agent struct {
	cfg     config.Config
	log     *slog.Logger
	metrics *metrics

	pipe      *pipeline.Pipeline
	positions *positions.Store
	queues    []*queue.Queue
	sinks     []sink.Sink
	fileSink  *filesink.Sink // also in sinks; nil when off
	dead      *deadletter.Writer
	dockerC   *docker.Client
	docker    *docker.Source
	files     *files.Source
	admin     *admin.Server
	memory    *memoryLimit
}

// New builds an agent from a configuration, which it validates. It opens
// the admin listener (so a busy port fails now) but starts no goroutine.
// Each part is made by its own builder from its section of the
// configuration; the sinks, dead letters and queues made are closed again
// when a later part fails.
func New(cfg config.Config, deps Deps) (a *Agent, err error) {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	// Validated and resolved before anything is created, so a secret file
	// gone since `wharf check` stops wharf with nothing on disk.
	res, err := cfg.Resolve()
	if err != nil {
		return nil, err
	}
	if err := checkDataDirs(cfg); err != nil {
		return nil, err
	}
	a = &Agent{cfg: cfg, log: deps.Logger, metrics: newMetrics()}
	built := a // a is nil once a failure returns
	defer func() {
		if err != nil {
			built.closeSinks()
		}
	}()
	if err := a.openPositions(); err != nil {
		return nil, err
	}
	a.dead = deadletter.New(deadletter.Config{
		Dir:          filepath.Join(cfg.DataDir, "dead-letter"),
		MaxFileBytes: int64(cfg.Loki.DeadLetter.MaxFileBytes),
		MaxFiles:     cfg.Loki.DeadLetter.MaxFiles,
	}, deadletter.Deps{Logger: a.log, Metrics: a.metrics.DeadLetter})
	outs, err := a.buildSinks(res, deps)
	if err != nil {
		return nil, err
	}
	if err := a.openQueues(outs); err != nil {
		return nil, err
	}
	a.pipe, err = pipeline.New(outs, pipeline.Deps{
		Logger:      a.log,
		Metrics:     a.metrics.Pipeline,
		Spill:       a.metrics.Spill,
		QueueErrors: a.metrics.queueErrors(),
		DeadLetter:  a.dead,
	})
	if err != nil {
		return nil, err
	}
	a.metrics.Registry.MustRegister(a.pipe.Collectors()...)
	a.memory = newMemoryLimit(cfg, len(a.sinks))
	if err := a.buildDocker(); err != nil {
		return nil, err
	}
	if err := a.buildFiles(); err != nil {
		return nil, err
	}
	if err := a.buildAdmin(res.AdminToken); err != nil {
		return nil, err
	}
	return a, nil
}

// checkDataDirs makes data_dir (0700) when it is missing and refuses to go
// on when it, or a directory below it that wharf writes in, or file.dir, is
// not wharf's alone: owned by another user, writable by group or others, or
// a symbolic link below data_dir (see internal/datadir). file.dir outside
// data_dir follows the same rule, since wharf appends there in the same way.
// Directories not made yet are made 0700 when first written. Nothing is
// written before this check.
func checkDataDirs(cfg config.Config) error {
	if err := datadir.Prepare(cfg.DataDir); err != nil {
		return err
	}
	below := []string{"dead-letter", "queue"} // queue/<sink>: see openQueues
	if cfg.FileEnabled() {
		dir := cfg.FileDir()
		switch rel, err := filepath.Rel(cfg.DataDir, dir); {
		case err == nil && rel == ".":
		case err == nil && filepath.IsLocal(rel):
			below = append(below, rel)
		default:
			if err := datadir.CheckDir(dir); err != nil {
				return err
			}
		}
	}
	return datadir.CheckBelow(cfg.DataDir, below...)
}

// openPositions opens the positions file; one that cannot be read is moved
// aside, reported, and reading starts by start_at.
func (a *Agent) openPositions() error {
	store, problem, err := positions.Open(filepath.Join(a.cfg.DataDir, "positions"), a.log)
	if err != nil {
		return err
	}
	a.positions = store
	if problem != nil {
		kind, msg := "corrupt", "positions file unusable; moved aside, starting without saved positions"
		if errors.Is(problem, positions.ErrNewerVersion) {
			kind, msg = "newer_version", "positions file written by a newer wharf; moved aside, starting without saved positions"
		}
		a.log.Error(msg, "error", problem)
		a.metrics.Source.Errors.WithLabelValues("positions", kind).Inc()
	}
	a.metrics.Registry.MustRegister(store.Collectors()...)
	return nil
}

// buildDocker builds the Docker source from docker.*, when it is enabled.
func (a *Agent) buildDocker() error {
	cfg := a.cfg.Docker
	if !cfg.Enabled {
		return nil
	}
	host := cfg.Host
	if host == "" {
		host = os.Getenv("DOCKER_HOST")
	}
	c, err := docker.NewClient(host)
	if err != nil {
		return err
	}
	filter, err := dockerFilter(cfg)
	if err != nil {
		return err
	}
	self := docker.SelfID()
	if self != "" {
		a.log.Info("running in a container; its own logs are skipped", "container_id", self[:12])
	}
	src, err := docker.NewSource(dockerConfig(cfg), docker.SourceDeps{
		Client:        c,
		Out:           a.pipe,
		Labeler:       docker.NewLabeler(a.hostLabel(), a.cfg.Labels.Static, cfg.LabelsFromContainer),
		Filter:        filter,
		Logger:        a.log.With("source", "docker"),
		Metrics:       a.metrics.Docker,
		SourceMetrics: a.metrics.Source,
		Lost:          a.metrics.lost(),
		SelfID:        self,
		Positions:     a.positions,
		Readers:       a.memory.addReaders,
	})
	if err != nil {
		return err
	}
	a.dockerC, a.docker = c, src
	return nil
}

// buildFiles builds the plain-file source from files:, when it has entries.
func (a *Agent) buildFiles() error {
	if len(a.cfg.Files) == 0 {
		return nil
	}
	groups, err := filesGroups(a.cfg.Files)
	if err != nil {
		return err
	}
	a.files, err = files.New(files.Config{
		Groups:   groups,
		Host:     a.hostLabel(),
		Static:   a.cfg.Labels.Static,
		OwnDirs:  a.ownDirs(),
		MaxFiles: a.cfg.MaxFollowedFiles,
	}, files.Deps{
		Out:           a.pipe,
		Positions:     a.positions,
		Logger:        a.log.With("source", "files"),
		Metrics:       a.metrics.Files,
		SourceMetrics: a.metrics.Source,
		Lost:          a.metrics.lost(),
		Following:     a.memory.following,
	})
	return err
}

// ownDirs are the directories wharf writes: data_dir (positions, queues,
// dead letters) and the file sink's, which may lie elsewhere. No files:
// pattern reads in them.
func (a *Agent) ownDirs() []string {
	dirs := []string{a.cfg.DataDir}
	if a.cfg.FileEnabled() {
		dirs = append(dirs, a.cfg.FileDir())
	}
	return dirs
}

// hostLabel is the host label's value: labels.host, or the hostname.
func (a *Agent) hostLabel() string {
	if h := a.cfg.Labels.Host; h != "" {
		return h
	}
	h, _ := os.Hostname()
	return h
}

// Run runs until ctx ends, then shuts down in order and returns nil when
// everything buffered was delivered, or an error saying what was left.
func (a *Agent) Run(ctx context.Context) error {
	if limit := a.memory.start(); limit > 0 {
		a.log.Debug("soft memory limit set from the buffers; it follows the containers and files read", "bytes", limit)
	}
	var wg sync.WaitGroup
	adminCtx, stopAdmin := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAdmin()
	if a.admin != nil {
		wg.Go(func() {
			if err := a.admin.Run(adminCtx); err != nil {
				a.log.Error("admin server stopped", "error", err)
			}
		})
		a.log.Info("admin server listening", "addr", a.admin.Addr())
	}

	posCtx, stopPositions := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPositions()
	wg.Go(func() { a.positions.Run(posCtx, positionsInterval) })

	pipeCtx, stopPipe := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPipe()
	pipeDone := make(chan error, 1)
	wg.Go(func() { pipeDone <- a.pipe.Run(pipeCtx) })

	// The file sink closes idle files on a timer of its own, beside the
	// pipeline's Sends, until the pipeline is done with it.
	sinkCtx, stopSinks := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSinks()
	var sinkWG sync.WaitGroup
	if a.fileSink != nil {
		sinkWG.Go(func() { a.fileSink.Run(sinkCtx) })
	}

	srcCtx, stopSources := context.WithCancel(ctx)
	var srcWG sync.WaitGroup
	var srcErr error
	if a.docker != nil {
		srcWG.Go(func() {
			if err := a.docker.Run(srcCtx); err != nil && !errors.Is(err, context.Canceled) {
				srcErr = err
				stopSources()
			}
		})
	}
	if a.files != nil {
		srcWG.Go(func() { a.files.Run(srcCtx) }) // ends only with srcCtx
	}
	<-srcCtx.Done()
	stopSources()
	srcWG.Wait()
	a.log.Info("sources stopped; delivering what is buffered", "buffered_bytes", a.pipe.BufferedBytes(), "timeout", a.cfg.ShutdownTimeout)

	a.pipe.Close()
	timer := time.AfterFunc(a.cfg.ShutdownTimeout, stopPipe)
	pipeErr := <-pipeDone
	timer.Stop()
	var err error
	if pipeErr != nil {
		err = fmt.Errorf("agent: shutdown timeout %v reached with %d bytes undelivered; they are read again on the next start", a.cfg.ShutdownTimeout, a.pipe.BufferedBytes())
	}
	stopSinks()
	sinkWG.Wait()
	a.closeSinks()
	if a.dockerC != nil {
		a.dockerC.Close()
	}
	stopPositions()
	if perr := a.positions.Flush(); perr != nil {
		err = errors.Join(err, fmt.Errorf("agent: the last positions could not be saved; lines since the previous save are read again on the next start: %w", perr))
	}
	stopAdmin()
	wg.Wait()
	return errors.Join(srcErr, err)
}

func (a *Agent) closeSinks() {
	for _, s := range a.sinks {
		if err := s.Close(); err != nil {
			a.log.Warn("closing sink", "sink", s.Name(), "error", err)
		}
	}
	if a.dead != nil {
		a.dead.Close()
	}
	for _, q := range a.queues {
		q.Close() // the pipeline closed them already unless it never ran
	}
}
