package main

import (
	"bytes"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/seq"
)

func mustParse(t *testing.T, args ...string) config {
	t.Helper()
	cfg, err := parseFlags(args)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// splitLines splits s after each newline; a final line without one is kept.
func splitLines(s string) []string {
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// short keeps failure messages readable when lines are 40 KiB long.
func short(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}

func TestRunWritesExpectedLines(t *testing.T) {
	for name, args := range map[string][]string{
		"fast":  {"-lines", "500", "-stderr", "0.3", "-size", "120"},
		"burst": {"-lines", "500", "-stderr", "0.3", "-size", "120", "-burst"},
		"paced": {"-lines", "500", "-stderr", "0.3", "-size", "120", "-rate", "20000"},
		"json":  {"-lines", "500", "-stderr", "0.3", "-json", "-ansi", "-long-every", "50", "-long-size", "40000"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := mustParse(t, args...)
			var out, errb bytes.Buffer
			if err := run(cfg, &out, &errb, nil); err != nil {
				t.Fatal(err)
			}
			c := seq.NewChecker()
			for stream, text := range map[string]string{seq.StreamOut: out.String(), seq.StreamErr: errb.String()} {
				for _, l := range splitLines(text) {
					if !strings.HasSuffix(l, "\n") {
						t.Fatalf("line without newline: %q", short(l))
					}
					n, s, sent, ok := seq.ParseLine(l)
					if !ok || s != stream {
						t.Fatalf("line %q on %s", short(l), stream)
					}
					if want := cfg.format.Line(n, sent) + "\n"; l != want {
						t.Fatalf("line %d = %q, want %q", n, short(l), short(want))
					}
					c.Add("c", l)
				}
			}
			if r := c.Report("c", 500); !r.OK() {
				t.Fatal(r)
			}
		})
	}
}

func TestRunNoFinalNewline(t *testing.T) {
	for _, args := range [][]string{
		{"-lines", "3", "-no-final-newline"},
		{"-exit-after", "50ms", "-rate", "100", "-no-final-newline"},
	} {
		var out bytes.Buffer
		if err := run(mustParse(t, args...), &out, &out, nil); err != nil {
			t.Fatal(err)
		}
		s := out.String()
		if s == "" || strings.HasSuffix(s, "\n") || strings.Contains(s, "\n\n") {
			t.Fatalf("%v: output %q", args, s)
		}
		lines := strings.Split(s, "\n")
		if r := seq.CheckLines("c", lines, 0); !r.OK() {
			t.Fatalf("%v: %v", args, r)
		}
	}
}

func TestRunRate(t *testing.T) {
	if testing.Short() {
		t.Skip("takes a second")
	}
	cfg := mustParse(t, "-rate", "20000", "-exit-after", "1s")
	var out bytes.Buffer
	start := time.Now()
	if err := run(cfg, &out, &out, nil); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	// Generous bounds: this checks the pacing arithmetic, not the machine.
	// The run ends when its timer fires, later than 1s on a busy machine,
	// so the most it may write is the rate over the time it actually ran.
	if n, most := len(splitLines(out.String())), int(20000*elapsed.Seconds())+2; n < 15000 || n > most {
		t.Fatalf("%d lines in %v at 20000/s (at most %d)", n, elapsed, most)
	}
}

func TestRunStopsOnSignal(t *testing.T) {
	stop := make(chan os.Signal, 1)
	cfg := mustParse(t, "-rate", "1000", "-sleep-before-exit", "1h")
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() { done <- run(cfg, &out, &out, stop) }()
	time.Sleep(50 * time.Millisecond)
	stop <- syscall.SIGTERM
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after SIGTERM")
	}
	if r := seq.CheckLines("c", splitLines(out.String()), 0); !r.OK() || r.Lines == 0 {
		t.Fatal(r)
	}
}

func TestRunStartDelayAndExitAfter(t *testing.T) {
	cfg := mustParse(t, "-start-delay", "20ms", "-exit-after", "100ms", "-rate", "1000", "-lines", "1000000")
	var out bytes.Buffer
	begin := time.Now()
	if err := run(cfg, &out, &out, nil); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Fatalf("exit-after 100ms took %v", d)
	}
	if n := len(splitLines(out.String())); n == 0 || n > 1000 {
		t.Fatalf("%d lines", n)
	}
}

func TestFormatArgsRoundTrip(t *testing.T) {
	for _, f := range []seq.Format{
		{},
		{Size: 200, StderrFraction: 0.1},
		{Size: 80, LongEvery: 5, LongSize: 40 << 10, JSON: true, ANSI: true, StderrFraction: 1},
	} {
		cfg := mustParse(t, f.Args()...)
		got := cfg.format
		if f.LongEvery == 0 {
			got.LongSize = 0 // the flag default does not matter without long lines
		}
		if got != f {
			t.Errorf("%v parsed to %+v, want %+v", f.Args(), got, f)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, args := range [][]string{
		{"-lines", "-1"},
		{"-rate", "-1"},
		{"-stderr", "1.5"},
		{"-burst"},
		{"-size", "-3"},
		{"-exit-after", "-1s"},
	} {
		cfg, err := parseFlags(args)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if err := cfg.validate(); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
