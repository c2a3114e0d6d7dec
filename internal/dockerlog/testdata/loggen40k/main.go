// Command loggen40k writes a fixed, reproducible set of log lines to stdout and
// stderr, shaped to exercise the Docker log copier: lines longer than its
// 16 KiB buffer, a stdout line split by a stderr line, a line of exactly
// 16 KiB, a bare carriage return, and a final line without newline.
//
// It is built statically and imported as a one-file image by the live-daemon
// test of the log stream parser. Keep [Line] and the scenarios in step with
// lsLoggenExpected and lsLoggenLine in stream_live_test.go.
//
// Usage: loggen40k [scenario]; scenarios are e2e (the default), long, exact,
// nonl, interleave, burst and cr.
package main

import (
	"os"
	"strings"
	"time"
)

// Line returns a line of exactly n bytes (without newline) that starts with
// tag and is filled with a position-dependent pattern, so a misplaced or lost
// chunk shows up in a comparison.
func Line(tag string, n int) []byte {
	b := make([]byte, n)
	copy(b, tag+":")
	for i := len(tag) + 1; i < n; i++ {
		b[i] = "0123456789abcdefghijklmnopqrstuvwxyz"[i%36]
	}
	return b[:n]
}

func nl(b []byte) []byte { return append(b, '\n') }

// pause lets the daemon's per-stream copiers catch up, so that writes to
// stdout and stderr reach the log in the order they were made.
func pause() { time.Sleep(30 * time.Millisecond) }

func main() {
	scenario := "e2e"
	if len(os.Args) > 1 {
		scenario = os.Args[1]
	}
	out, errw := os.Stdout, os.Stderr
	switch scenario {
	case "e2e":
		out.Write([]byte("short-1\n"))
		pause()
		errw.Write([]byte("err-1\n"))
		pause()
		out.Write(nl(Line("long40k", 40*1024)))
		pause()
		// One stdout line written in two halves with a stderr line between.
		split := Line("split", 30*1024)
		out.Write(split[:20*1024])
		pause()
		errw.Write([]byte("err-2\n"))
		pause()
		out.Write(nl(split[20*1024:]))
		pause()
		out.Write([]byte("cr\rinside\n"))
		out.Write(nl(Line("exact16k", 16*1024)))
		pause()
		errw.Write(nl(Line("errlong", 40*1024)))
		pause()
		out.Write([]byte("tail-no-newline"))
	case "long":
		out.Write(nl(Line("long40k", 40*1024)))
		out.Write([]byte("after\n"))
	case "exact":
		for _, n := range []int{16*1024 - 1, 16 * 1024, 16*1024 + 1, 32 * 1024} {
			out.Write(nl(Line("exact", n)))
		}
	case "nonl":
		out.Write([]byte("first\n"))
		pause()
		errw.Write([]byte("err-no-newline"))
		out.Write([]byte("last-no-newline"))
	case "interleave":
		for i := 0; i < 3; i++ {
			out.Write([]byte("out-" + strings.Repeat("o", i) + "\n"))
			errw.Write([]byte("err-" + strings.Repeat("e", i) + "\n"))
		}
		split := Line("split", 30*1024)
		out.Write(split[:20*1024])
		pause()
		errw.Write(nl(Line("errlong", 20*1024)))
		pause()
		out.Write(nl(split[20*1024:]))
	case "burst":
		// One write of about 1 MiB holding many lines, then one of 1 MiB
		// without any newline: shows whether the daemon ever puts several
		// messages in one frame or one message over several frames.
		var b []byte
		for i := 0; len(b) < 1<<20; i++ {
			b = append(b, nl(Line("burst", 265))...)
		}
		out.Write(b)
		out.Write(nl(Line("huge", 1<<20)))
	case "cr":
		out.Write([]byte("a\rb\n"))
		out.Write([]byte("crlf\r\n"))
		// 16383 bytes then "\r\n" (or "\n", which a TTY turns into "\r\n"):
		// the copier's 16 KiB cut falls between the carriage return and the
		// newline.
		out.Write(append(Line("crsplit", 16*1024-1), '\r', '\n'))
		out.Write(nl(Line("ttysplit", 16*1024-1)))
	default:
		os.Stderr.Write([]byte("loggen40k: unknown scenario " + scenario + "\n"))
		os.Exit(2)
	}
}
