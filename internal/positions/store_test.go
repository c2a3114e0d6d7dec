package positions

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEncodeDecodeRoundTrip(t *testing.T) {
	in := map[string]string{"docker/abc": "1 2 3 4", "file/x": "dev=1 ino=2", "weird \"key\"\n": "\xff"}
	out, err := Decode(Encode(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) || out["docker/abc"] != "1 2 3 4" || out["file/x"] != "dev=1 ino=2" {
		t.Fatalf("round trip: %v", out)
	}
}

func TestDecodeRejectsDamage(t *testing.T) {
	good := Encode(map[string]string{"docker/abc": "1 2 3 4"})
	// Every single-byte change is detected or harmless (the case of a hex
	// digit, the trailing newline), and every truncation is detected.
	for i := range good {
		bad := append([]byte(nil), good...)
		bad[i] ^= 0x20
		if got, err := Decode(bad); err == nil && (len(got) != 1 || got["docker/abc"] != "1 2 3 4") {
			t.Errorf("flipping byte %d (%q) gave wrong positions %v", i, good[i], got)
		}
	}
	for n := 0; n < len(good)-1; n++ {
		if _, err := Decode(good[:n]); err == nil {
			t.Errorf("truncation to %d bytes went unnoticed", n)
		}
	}
	newer := strings.Replace(string(good), magic+" 1 ", magic+" 2 ", 1)
	if _, err := Decode([]byte(newer)); err == nil || !strings.Contains(err.Error(), "newer version") {
		t.Errorf("newer version: %v", err)
	}
}

func TestOpenMovesACorruptFileAside(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "positions")
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, problem, err := Open(path, nil)
	if err != nil || problem == nil {
		t.Fatalf("Open: store %v, problem %v, err %v", s, problem, err)
	}
	if s.Len() != 0 {
		t.Fatal("corrupt file must give an empty store")
	}
	aside, _ := filepath.Glob(path + ".corrupt-*")
	if len(aside) != 1 {
		t.Fatalf("corrupt file not kept aside: %v", aside)
	}
	s.Set("k", "v")
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	s2, problem, err := Open(path, nil)
	if err != nil || problem != nil {
		t.Fatal(err, problem)
	}
	if v, _ := s2.Get("k"); v != "v" {
		t.Fatalf("reopened store has %q", v)
	}
}

// TestOpenMovesANewerFileAside: a file from a newer wharf (after a
// downgrade) is whole, so it is kept as .newer-, not .corrupt-, and the
// problem says why.
func TestOpenMovesANewerFileAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), "positions")
	newer := strings.Replace(string(Encode(map[string]string{"k": "v"})), magic+" 1 ", magic+" 2 ", 1)
	if err := os.WriteFile(path, []byte(newer), 0o600); err != nil {
		t.Fatal(err)
	}
	s, problem, err := Open(path, nil)
	if err != nil || !errors.Is(problem, ErrNewerVersion) {
		t.Fatalf("Open: problem %v, err %v", problem, err)
	}
	if s.Len() != 0 {
		t.Fatal("a newer file must give an empty store")
	}
	aside, _ := filepath.Glob(path + ".newer-*")
	if len(aside) != 1 || !strings.Contains(problem.Error(), aside[0]) {
		t.Fatalf("kept aside as %v; problem %v", aside, problem)
	}
	if b, _ := os.ReadFile(aside[0]); string(b) != newer {
		t.Fatalf("the file kept aside is not the newer wharf's: %q", b)
	}
	if corrupt, _ := filepath.Glob(path + ".corrupt-*"); len(corrupt) != 0 {
		t.Fatalf("also kept as corrupt: %v", corrupt)
	}
}

func TestTrackerAdvancesOnlyOverConfirmedPrefix(t *testing.T) {
	s, _, err := Open(filepath.Join(t.TempDir(), "positions"), nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := s.Tracker("docker/c1")
	a1 := tr.Mark("p1")
	a1.Add(2)
	a2 := tr.Mark("p2")
	a2.Add(1)
	a3 := tr.Mark("p3")
	a3.Add(1)
	for _, a := range []interface{ Done(int) }{a1, a2, a3} {
		a.Done(1) // the source's own hold
	}
	a2.Done(1)
	a3.Done(1)
	if _, ok := s.Get("docker/c1"); ok {
		t.Fatal("position advanced past an unconfirmed group")
	}
	a1.Done(1)
	if _, ok := s.Get("docker/c1"); ok {
		t.Fatal("position advanced with one entry of the first group unconfirmed")
	}
	a1.Done(1)
	if p, _ := s.Get("docker/c1"); p != "p3" {
		t.Fatalf("position %q, want p3 once every group is confirmed", p)
	}
	empty := tr.Mark("p4")
	empty.Done(1)
	if p, _ := s.Get("docker/c1"); p != "p4" {
		t.Fatalf("a group without entries resolves at once: %q", p)
	}
}

func TestForgetWaitsForPending(t *testing.T) {
	s, _, _ := Open(filepath.Join(t.TempDir(), "positions"), nil)
	tr := s.Tracker("docker/c1")
	a := tr.Mark("p1")
	a.Add(1)
	a.Done(1)
	s.Set("docker/c1", "p0")
	tr.Forget()
	if _, ok := s.Get("docker/c1"); !ok {
		t.Fatal("forgotten while an entry was still in flight")
	}
	a.Done(1)
	if _, ok := s.Get("docker/c1"); ok {
		t.Fatal("not forgotten once everything was confirmed")
	}
}

func TestRunFlushesAtInterval(t *testing.T) {
	path := filepath.Join(t.TempDir(), "positions")
	s, _, _ := Open(path, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- s.Run(ctx, 10*time.Millisecond) }()
	s.Set("k", "v1")
	deadline := time.Now().Add(5 * time.Second)
	for {
		if data, err := os.ReadFile(path); err == nil {
			if p, err := Decode(data); err == nil && p["k"] == "v1" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("positions not written")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}

func TestFlushFailureKeepsPositionsAndRecovers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "positions")
	s, _, _ := Open(path, nil)
	// Make the target a directory so the rename fails.
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(path, "x"), nil, 0o600)
	s.Set("k", "v")
	for range 2 {
		if err := s.Flush(); err == nil || s.Err() == nil {
			t.Fatal("flush over a directory succeeded")
		}
	}
	if n := s.WriteErrors(); n != 2 {
		t.Fatalf("WriteErrors = %d after two failed flushes, want 2", n)
	}
	os.RemoveAll(path)
	if err := s.Flush(); err != nil || s.Err() != nil {
		t.Fatalf("flush after the disk recovered: %v", err)
	}
	if n := s.WriteErrors(); n != 2 {
		t.Fatalf("WriteErrors = %d after a successful flush, want it to stay 2", n)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(map[string]string{"docker/abc": "1 2 3 4"}))
	f.Add([]byte("wharf-positions 1 00000000 2\n{}\n"))
	f.Add([]byte("wharf-positions 9 0 0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pos, err := Decode(data)
		if err != nil {
			return
		}
		again, err := Decode(Encode(pos))
		if err != nil || len(again) != len(pos) {
			t.Fatalf("re-encoding a decoded file fails: %v", err)
		}
	})
}

// TestModTime: a store opened from a file knows when that file was last
// written; one that found no usable file does not.
func TestModTime(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "positions")
	s, _, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !s.ModTime().IsZero() {
		t.Fatalf("no file, yet ModTime %v", s.ModTime())
	}
	s.Set("k", "v")
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	written := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	if err := os.Chtimes(path, written, written); err != nil {
		t.Fatal(err)
	}
	s2, _, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !s2.ModTime().Equal(written) {
		t.Fatalf("ModTime %v, want %v", s2.ModTime(), written)
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	s3, problem, err := Open(path, nil)
	if err != nil || problem == nil {
		t.Fatal(err, problem)
	}
	if !s3.ModTime().IsZero() {
		t.Fatalf("a file moved aside gives ModTime %v", s3.ModTime())
	}
}
