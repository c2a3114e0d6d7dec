package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/wharf-logs/wharf/internal/agent"
	"github.com/wharf-logs/wharf/internal/config"
)

// newAgent builds the agent; tests replace it to see that a bad
// configuration stops run before anything is built.
var newAgent = agent.New

// runCmd ships logs until the first SIGINT or SIGTERM, then shuts down in
// order; a second signal exits at once.
func runCmd(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags("run", args, stderr)
	if err != nil {
		return exitUsage
	}
	cfg, err := o.load()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	log := newLogger(cfg.Log, stderr)
	if urlHasPassword(o.lokiURL) {
		log.Warn("--loki-url holds a password, which other users of this host can read in the process list; put it in loki.basic_auth.password_file (or password: ${VAR}) instead")
	}
	a, err := newAgent(cfg, agent.Deps{Logger: log, Version: version})
	if err != nil {
		log.Error("cannot start", "error", err)
		return exitUsage
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	// The first signal stops wharf in order; a second one exits at once.
	// The watcher ends when run returns.
	done := make(chan struct{})
	var watcher sync.WaitGroup
	defer watcher.Wait()
	defer close(done)
	watcher.Go(func() {
		select {
		case s := <-sigs:
			log.Info("stopping", "signal", s.String(), "shutdown_timeout", cfg.ShutdownTimeout)
			cancel()
		case <-done:
			return
		}
		select {
		case s := <-sigs:
			log.Warn("second signal: exiting now", "signal", s.String())
			os.Exit(exitFailure)
		case <-done:
		}
	})

	sinks := "file:" + cfg.FileDir()
	if cfg.Loki.URL != "" {
		sinks = "loki"
		if cfg.FileEnabled() {
			sinks += ",file:" + cfg.FileDir()
		}
	}
	log.Info("wharf starting", "version", version, "data_dir", cfg.DataDir, "sinks", sinks, "read_from", cfg.Docker.ReadFrom)
	if err := a.Run(ctx); err != nil {
		log.Error("stopped with an error", "error", err)
		return exitFailure
	}
	log.Info("stopped")
	return exitOK
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.Level.Slog()}
	if c.Format == config.LogJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
