// Command loggen writes numbered log lines to stdout and stderr at a given
// rate. It is the program inside the FROM-scratch test image that end-to-end
// tests run (see internal/dockertest.LoggenImage); the line format and the
// checker for what arrived live in internal/dockertest/seq.
//
// Every line starts with "seq=<n> stream=<out|err> sent=<unix nanos> ", where
// seq counts lines across both streams from 1. Apart from the sent time the
// output is a pure function of the flags, so a test can compute it.
//
// loggen stops writing on SIGTERM or SIGINT, flushes what it buffered and
// exits with -exit-code, so docker stop returns at once.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/wharf-logs/wharf/internal/seq"
)

// tick is the pacing period: lines due within a tick are written as one
// batch and flushed together, which keeps the rate accurate at tens of
// thousands of lines per second without a sleep per line.
const tick = 10 * time.Millisecond

type config struct {
	lines           int64
	rate            float64
	format          seq.Format
	exitAfter       time.Duration
	sleepBeforeExit time.Duration
	startDelay      time.Duration
	exitCode        int
	burst           bool
	noFinalNewline  bool
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		// The flag package has already printed parse errors with the usage.
		os.Exit(2)
	}
	if err := cfg.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "loggen:", err)
		os.Exit(2)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	if err := run(cfg, os.Stdout, os.Stderr, stop); err != nil {
		fmt.Fprintln(os.Stderr, "loggen:", err)
		os.Exit(1)
	}
	os.Exit(cfg.exitCode)
}

func parseFlags(args []string) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("loggen", flag.ContinueOnError)
	fs.Int64Var(&cfg.lines, "lines", 0, "total number of lines; 0 writes until stopped")
	fs.Float64Var(&cfg.rate, "rate", 0, "lines per second over both streams; 0 is as fast as possible")
	fs.IntVar(&cfg.format.Size, "size", 100, "line length in bytes including the header, excluding the newline")
	fs.Float64Var(&cfg.format.StderrFraction, "stderr", 0, "fraction of lines written to stderr, 0..1")
	fs.Int64Var(&cfg.format.LongEvery, "long-every", 0, "make every K-th line a long line; 0 disables")
	fs.IntVar(&cfg.format.LongSize, "long-size", 40<<10, "length of long lines in bytes")
	fs.BoolVar(&cfg.format.JSON, "json", false, "write lines as JSON objects")
	fs.BoolVar(&cfg.format.ANSI, "ansi", false, "include ANSI colour escapes in lines")
	fs.DurationVar(&cfg.exitAfter, "exit-after", 0, "stop writing and exit this long after start (start delay included)")
	fs.DurationVar(&cfg.sleepBeforeExit, "sleep-before-exit", 0, "stay alive this long after the last line")
	fs.DurationVar(&cfg.startDelay, "start-delay", 0, "wait this long before the first line")
	fs.IntVar(&cfg.exitCode, "exit-code", 0, "exit status when done")
	fs.BoolVar(&cfg.burst, "burst", false, "write all -lines at once, ignoring -rate, then exit")
	fs.BoolVar(&cfg.noFinalNewline, "no-final-newline", false, "leave the last line without its newline")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "loggen: unexpected argument %q\n", fs.Arg(0))
		return cfg, errors.New("loggen: unexpected argument")
	}
	return cfg, nil
}

func (cfg config) validate() error {
	switch f := cfg.format; {
	case cfg.lines < 0:
		return fmt.Errorf("-lines %d is negative", cfg.lines)
	case cfg.rate < 0:
		return fmt.Errorf("-rate %v is negative", cfg.rate)
	case f.Size < 0 || f.LongSize < 0:
		return errors.New("-size and -long-size must not be negative")
	case f.StderrFraction < 0 || f.StderrFraction > 1:
		return fmt.Errorf("-stderr %v is outside 0..1", f.StderrFraction)
	case f.LongEvery < 0:
		return fmt.Errorf("-long-every %d is negative", f.LongEvery)
	case cfg.exitAfter < 0 || cfg.sleepBeforeExit < 0 || cfg.startDelay < 0:
		return errors.New("durations must not be negative")
	case cfg.burst && cfg.lines == 0:
		return errors.New("-burst needs -lines")
	}
	return nil
}

// writer turns sequence numbers into lines on two buffered streams.
type writer struct {
	cfg  config
	out  *bufio.Writer
	err  *bufio.Writer
	buf  []byte
	next int64 // next sequence number to write
	// pendingNL is the stream whose last line still owes its newline; with
	// -no-final-newline and no -lines the last line is only known at exit.
	pendingNL *bufio.Writer
}

func (w *writer) done() bool { return w.cfg.lines > 0 && w.next > w.cfg.lines }

func (w *writer) writeLine(now time.Time) error {
	n := w.next
	w.next++
	dst := w.out
	if w.cfg.format.Stream(n) == seq.StreamErr {
		dst = w.err
	}
	if w.pendingNL != nil {
		if err := w.pendingNL.WriteByte('\n'); err != nil {
			return err
		}
		w.pendingNL = nil
	}
	w.buf = w.cfg.format.Append(w.buf[:0], n, now.UnixNano())
	if w.cfg.noFinalNewline && (w.cfg.lines == 0 || n == w.cfg.lines) {
		w.pendingNL = dst
	} else {
		w.buf = append(w.buf, '\n')
	}
	_, err := dst.Write(w.buf)
	return err
}

func (w *writer) flush() error {
	return errors.Join(w.out.Flush(), w.err.Flush())
}

func run(cfg config, stdout, stderr io.Writer, stop <-chan os.Signal) error {
	var deadline <-chan time.Time
	if cfg.exitAfter > 0 {
		t := time.NewTimer(cfg.exitAfter)
		defer t.Stop()
		deadline = t.C
	}
	if cfg.startDelay > 0 {
		t := time.NewTimer(cfg.startDelay)
		select {
		case <-t.C:
		case <-stop:
			t.Stop()
			return nil
		case <-deadline:
			t.Stop()
			return nil
		}
	}
	const bufSize = 64 << 10
	w := &writer{
		cfg:  cfg,
		out:  bufio.NewWriterSize(stdout, bufSize),
		err:  bufio.NewWriterSize(stderr, bufSize),
		next: 1,
	}
	var stopped bool
	var err error
	switch {
	case cfg.burst || cfg.rate == 0:
		stopped, err = w.fast(stop, deadline)
	default:
		stopped, err = w.paced(stop, deadline)
	}
	if ferr := w.flush(); err == nil {
		err = ferr
	}
	if err != nil || stopped || cfg.sleepBeforeExit == 0 {
		return err
	}
	t := time.NewTimer(cfg.sleepBeforeExit)
	defer t.Stop()
	select {
	case <-t.C:
	case <-stop:
	}
	return nil
}

// fast writes lines as fast as the pipes take them. Without -burst it still
// flushes every tick so a reader sees lines while they are produced.
func (w *writer) fast(stop <-chan os.Signal, deadline <-chan time.Time) (stopped bool, err error) {
	lastFlush := time.Now()
	for !w.done() {
		now := time.Now()
		if err := w.writeLine(now); err != nil {
			return false, err
		}
		if w.next%256 != 0 {
			continue
		}
		select {
		case <-stop:
			return true, nil
		case <-deadline:
			return false, nil
		default:
		}
		if !w.cfg.burst && now.Sub(lastFlush) >= tick {
			if err := w.flush(); err != nil {
				return false, err
			}
			lastFlush = now
		}
	}
	return false, nil
}

// paced writes, at each wake-up, every line due by then: line k is due
// (k-1)/rate after the first. Deriving the due count from the elapsed time,
// not from the number of wake-ups, keeps the long-run rate exact however
// late the timer fires.
func (w *writer) paced(stop <-chan os.Signal, deadline <-chan time.Time) (stopped bool, err error) {
	first := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for !w.done() {
		select {
		case <-stop:
			return true, nil
		case <-deadline:
			return false, nil
		case <-timer.C:
		}
		now := time.Now()
		due := int64(now.Sub(first).Seconds()*w.cfg.rate) + 1
		if w.cfg.lines > 0 {
			due = min(due, w.cfg.lines)
		}
		for w.next <= due {
			if err := w.writeLine(now); err != nil {
				return false, err
			}
		}
		if err := w.flush(); err != nil {
			return false, err
		}
		nextDue := first.Add(time.Duration(float64(w.next-1) / w.cfg.rate * float64(time.Second)))
		timer.Reset(max(time.Until(nextDue), tick))
	}
	return false, nil
}
