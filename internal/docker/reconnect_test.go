package docker

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// errAfter is a body that returns data and then err, as a log stream whose
// connection to the daemon drops.
func errAfter(data string, err error) io.Reader {
	return io.MultiReader(strings.NewReader(data), &failingReader{err})
}

type failingReader struct{ err error }

func (r *failingReader) Read([]byte) (int, error) { return 0, r.err }

// gatedBody returns data once gate is closed, and then blocks until ctx ends,
// like an event stream on which an event arrives later.
type gatedBody struct {
	ctx  context.Context
	gate <-chan struct{}
	data io.Reader
}

func (b *gatedBody) Read(p []byte) (int, error) {
	select {
	case <-b.gate:
	case <-b.ctx.Done():
		return 0, b.ctx.Err()
	}
	n, err := b.data.Read(p)
	if errors.Is(err, io.EOF) {
		<-b.ctx.Done()
		return n, b.ctx.Err()
	}
	return n, err
}

const readerTestInspect = `{"Id":"abc","Name":"/abc","State":{"Running":%v},"Config":{"Image":"x"},"HostConfig":{"LogConfig":{"Type":"json-file"}}}`

// TestSourceReaderSurvivesRepeatedDrops drops a running container's log
// stream ten times, each time after it delivered a line, as a daemon
// connection that keeps dropping and coming back does. Each drop is a first
// failure: the reader reopens every time and never gives the container up.
func TestSourceReaderSurvivesRepeatedDrops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const drops = 10
		var (
			mu    sync.Mutex
			reads int
		)
		rt := func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			defer mu.Unlock()
			switch fakeStripVersion(r.URL.Path) {
			case "/_ping":
				return memResponse(r, 200, strings.NewReader("OK"), "Api-Version", "1.41"), nil
			case "/events":
				return memResponse(r, 200, &openBody{ctx: r.Context(), r: strings.NewReader("")}), nil
			case "/containers/json":
				return memResponse(r, 200, strings.NewReader(`[{"Id":"abc","Names":["/abc"],"State":"running"}]`)), nil
			case "/containers/abc/json":
				return memResponse(r, 200, strings.NewReader(strings.Replace(readerTestInspect, "%v", boolText(reads < drops), 1))), nil
			case "/containers/abc/logs":
				n := reads
				reads++
				line := muxLine(1, n, "line "+string(rune('a'+n))+"\n")
				if n < drops {
					return memResponse(r, 200, errAfter(line, io.ErrUnexpectedEOF)), nil
				}
				return memResponse(r, 200, strings.NewReader(line)), nil
			}
			t.Errorf("unexpected request %s", r.URL)
			return memResponse(r, 404, strings.NewReader("{}")), nil
		}
		logs := &logCapture{}
		sub := &fakeSubmitter{}
		src, err := NewSource(Config{ReadFrom: "api", StartAt: "beginning", MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}, SourceDeps{
			Client: memClient(t, rt), Out: sub, Labeler: NewLabeler("h", nil, nil), Filter: &Filter{}, Logger: slog.New(logs),
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- src.Run(ctx) }()
		time.Sleep(time.Hour)
		synctest.Wait()
		cancel()
		<-done

		mu.Lock()
		defer mu.Unlock()
		if reads != drops+1 {
			t.Errorf("%d logs requests, want %d: one per drop and the last", reads, drops+1)
		}
		if got := sub.entriesOf("abc"); len(got) != drops+1 {
			t.Errorf("%d lines read, want %d", len(got), drops+1)
		}
		for _, w := range logs.warnings("", "") {
			if strings.Contains(w.msg, "giving up") {
				t.Errorf("gave the container up after drops that each came after a line: %s", w.msg)
			}
		}
	})
}

// TestSourceReaderKickedWhileGivingUp makes a reader fail until it gives
// up, while discovery kicks it (a start event) in the middle of the series.
// The kick must not be lost with the reader: it goes on, and reads the log
// once the daemon answers again.
func TestSourceReaderKickedWhileGivingUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			mu    sync.Mutex
			reads int
		)
		kick := make(chan struct{})
		rt := func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			defer mu.Unlock()
			switch fakeStripVersion(r.URL.Path) {
			case "/_ping":
				return memResponse(r, 200, strings.NewReader("OK"), "Api-Version", "1.41"), nil
			case "/events":
				ev := `{"Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":{"name":"abc"}},"time":1700000000,"timeNano":1700000000000000000}` + "\n"
				return memResponse(r, 200, &gatedBody{ctx: r.Context(), gate: kick, data: strings.NewReader(ev)}), nil
			case "/containers/json":
				return memResponse(r, 200, strings.NewReader(`[{"Id":"abc","Names":["/abc"],"State":"running"}]`)), nil
			case "/containers/abc/json":
				return memResponse(r, 200, strings.NewReader(strings.Replace(readerTestInspect, "%v", boolText(reads < 6), 1))), nil
			case "/containers/abc/logs":
				reads++
				if reads == 1 {
					close(kick)
				}
				if reads <= 6 {
					return memResponse(r, 500, strings.NewReader(`{"message":"error opening log file"}`)), nil
				}
				return memResponse(r, 200, strings.NewReader(muxLine(1, 1, "the line\n"))), nil
			}
			t.Errorf("unexpected request %s", r.URL)
			return memResponse(r, 404, strings.NewReader("{}")), nil
		}
		sub := &fakeSubmitter{}
		src, err := NewSource(Config{ReadFrom: "api", StartAt: "beginning", MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}, SourceDeps{
			Client: memClient(t, rt), Out: sub, Labeler: NewLabeler("h", nil, nil), Filter: &Filter{},
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- src.Run(ctx) }()
		time.Sleep(time.Hour)
		synctest.Wait()

		src.mu.Lock()
		w := src.containers["abc"]
		reading := w != nil && w.reading
		src.mu.Unlock()
		cancel()
		<-done

		mu.Lock()
		defer mu.Unlock()
		if reads != 7 {
			t.Errorf("%d logs requests, want 7: six failures, then the kick taken", reads)
		}
		if got := sub.entriesOf("abc"); len(got) != 1 {
			t.Errorf("%d lines read, want 1", len(got))
		}
		if reading {
			t.Error("the container is marked as being read, with no reader left")
		}
	})
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// brokenAfter is an event stream that stays open for d and then breaks, as
// one whose connection to the daemon drops.
type brokenAfter struct {
	ctx context.Context
	d   time.Duration
}

func (b *brokenAfter) Read([]byte) (int, error) {
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-t.C:
		return 0, io.ErrUnexpectedEOF
	case <-b.ctx.Done():
		return 0, b.ctx.Err()
	}
}

// TestSourceReconnectAfterDrops drops the event stream again and again, each
// time after it was up for 5 s, as a daemon connection that keeps dropping
// does. Every drop is a first failure: discovery reconnects after the
// shortest wait each time instead of waiting longer with every drop. A
// stream that breaks at once still backs off.
func TestSourceReconnectAfterDrops(t *testing.T) {
	for _, tc := range []struct {
		name string
		up   time.Duration
		want func(i int) [2]time.Duration // bounds of the i-th wait
	}{
		{"up a while", 5 * time.Second, func(int) [2]time.Duration { return [2]time.Duration{50 * time.Millisecond, 100 * time.Millisecond} }},
		{"breaks at once", 0, func(i int) [2]time.Duration {
			d := min(100*time.Millisecond<<i, time.Second)
			return [2]time.Duration{d / 2, d}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var (
					mu     sync.Mutex
					opened []time.Time // when each events stream opened
					broke  []time.Time // when each one broke
				)
				rt := func(r *http.Request) (*http.Response, error) {
					mu.Lock()
					defer mu.Unlock()
					switch fakeStripVersion(r.URL.Path) {
					case "/_ping":
						return memResponse(r, 200, strings.NewReader("OK"), "Api-Version", "1.41"), nil
					case "/events":
						opened = append(opened, time.Now())
						broke = append(broke, time.Now().Add(tc.up))
						return memResponse(r, 200, &brokenAfter{ctx: r.Context(), d: tc.up}), nil
					case "/containers/json":
						return memResponse(r, 200, strings.NewReader("[]")), nil
					}
					t.Errorf("unexpected request %s", r.URL)
					return memResponse(r, 404, strings.NewReader("{}")), nil
				}
				src, err := NewSource(Config{ReadFrom: "api", StartAt: "end", MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}, SourceDeps{
					Client: memClient(t, rt), Out: &fakeSubmitter{}, Labeler: NewLabeler("h", nil, nil), Filter: &Filter{},
				})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error, 1)
				go func() { done <- src.Run(ctx) }()
				time.Sleep(40 * time.Second)
				synctest.Wait()
				cancel()
				<-done

				mu.Lock()
				defer mu.Unlock()
				if len(opened) < 6 {
					t.Fatalf("%d event streams opened, want at least 6", len(opened))
				}
				for i := 1; i < 6; i++ {
					wait := opened[i].Sub(broke[i-1])
					if w := tc.want(i - 1); wait < w[0] || wait > w[1] {
						t.Errorf("wait before events request %d: %v, want within [%v, %v]", i+1, wait, w[0], w[1])
					}
				}
			})
		})
	}
}

// muxLine returns a line of stream kind (shorter than Docker's 16 KiB parts)
// as one multiplexed frame, stamped i microseconds after a fixed time.
func muxLine(kind byte, i int, line string) string {
	t := time.Date(2026, 11, 26, 23, 35, 52, 891162506, time.UTC).Add(time.Duration(i) * time.Microsecond)
	body := t.Format("2006-01-02T15:04:05.000000000Z07:00") + " " + line
	h := []byte{kind, 0, 0, 0}
	return string(binary.BigEndian.AppendUint32(h, uint32(len(body)))) + body
}
