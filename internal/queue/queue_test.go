package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// small are options that make segments roll over every few records.
var small = Options{MaxBytes: 1 << 20, SegmentBytes: 1 << 10, SyncInterval: time.Millisecond, MaxRecordBytes: 64 << 10}

func openQueue(t testing.TB, dir string, opts Options) *Queue {
	t.Helper()
	q, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// run runs q.Run until the test ends.
func run(t testing.TB, q *Queue) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := q.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// rec is the payload of the i-th test record: distinct, of varied lengths.
func rec(i int) []byte {
	return fmt.Appendf(nil, "record %d %s", i, strings.Repeat("x", i%37))
}

func appendRecs(t testing.TB, q *Queue, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := q.Append(t.Context(), rec(i), nil); err != nil {
			t.Fatalf("Append(%d): %v", i, err)
		}
	}
}

// readAll reads records until the queue has nothing more, without waiting.
func readAll(t testing.TB, q *Queue) (payloads [][]byte, ends []int64) {
	t.Helper()
	for {
		p, end, err := q.next(context.Background(), false)
		if errors.Is(err, errEmpty) {
			return payloads, ends
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		payloads = append(payloads, p)
		ends = append(ends, end)
	}
}

func wantRecs(t testing.TB, got [][]byte, idx ...int) {
	t.Helper()
	var want [][]byte
	for _, i := range idx {
		want = append(want, rec(i))
	}
	if !slices.EqualFunc(got, want, bytes.Equal) {
		t.Fatalf("read %d records %q,\nwant %d %q", len(got), short(got), len(want), short(want))
	}
}

func short(ps [][]byte) []string {
	var s []string
	for _, p := range ps {
		s = append(s, string(p[:min(len(p), 12)]))
	}
	return s
}

func seq(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// crashCopy copies the queue's files as they are now, as a crash would
// leave them after the last group commit, and returns the copy's directory.
func crashCopy(t testing.TB, dir string) string {
	t.Helper()
	dst := t.TempDir()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, de.Name()), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func TestRoundTrip(t *testing.T) {
	q := openQueue(t, t.TempDir(), Options{})
	payloads := [][]byte{{}, []byte("a"), bytes.Repeat([]byte("0123456789abcdef"), 1<<16), []byte("last")}
	for _, p := range payloads {
		if err := q.Append(t.Context(), p, nil); err != nil {
			t.Fatal(err)
		}
	}
	if q.Empty() {
		t.Fatal("Empty after appends")
	}
	var prev int64
	for i, want := range payloads {
		got, end, err := q.Next(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("record %d: got %d bytes, want %d", i, len(got), len(want))
		}
		if end <= prev {
			t.Fatalf("record %d ends at %d, not after %d", i, end, prev)
		}
		prev = end
	}
	if !q.Empty() {
		t.Fatal("not Empty after reading everything")
	}
	if got, want := q.Bytes(), prev-segHeaderLen; got != want {
		t.Errorf("Bytes before Commit = %d, want %d", got, want)
	}
	q.Commit(prev)
	if got := q.Bytes(); got != 0 {
		t.Errorf("Bytes after Commit = %d, want 0", got)
	}
}

func TestNextReturnsFreshPayloads(t *testing.T) {
	q := openQueue(t, t.TempDir(), Options{})
	appendRecs(t, q, 0, 2)
	a, _, _ := q.Next(t.Context())
	b, _, _ := q.Next(t.Context())
	a = append(a[:len(a):len(a)], "more"...)
	clear(a)
	wantRecs(t, [][]byte{b}, 1)
}

func TestNextWaitsForAppend(t *testing.T) {
	q := openQueue(t, t.TempDir(), Options{})
	got := make(chan []byte)
	var wg sync.WaitGroup
	wg.Go(func() {
		p, _, err := q.Next(t.Context())
		if err != nil {
			t.Error(err)
		}
		got <- p
	})
	appendRecs(t, q, 0, 1)
	wantRecs(t, [][]byte{<-got}, 0)
	wg.Wait()
}

func TestNextStopsWithContext(t *testing.T) {
	q := openQueue(t, t.TempDir(), Options{})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if _, _, err := q.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next on an empty queue: %v, want the context's error", err)
	}
}

func TestSegmentRollover(t *testing.T) {
	dir := t.TempDir()
	q := openQueue(t, dir, small)
	appendRecs(t, q, 0, 200)
	files := segFiles(t, dir)
	if len(files) < 5 {
		t.Fatalf("%d segment files after 200 records of ~30 bytes with 1 KiB segments", len(files))
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > small.SegmentBytes {
			t.Errorf("%s holds %d bytes, over SegmentBytes", f, fi.Size())
		}
	}
	got, ends := readAll(t, q)
	wantRecs(t, got, seq(0, 200)...)
	// Every record ends inside the segment whose name is its first offset.
	for i, end := range ends {
		first := int64(-1)
		for _, f := range files {
			if o, _ := parseSegName(filepath.Base(f)); o < end {
				first = o
			}
		}
		fi, _ := os.Stat(filepath.Join(dir, segName(first)))
		if end > first+fi.Size() {
			t.Fatalf("record %d ends at %d, beyond segment %d of %d bytes", i, end, first, fi.Size())
		}
	}
	q.Commit(ends[len(ends)-1])
	if files := segFiles(t, dir); len(files) != 1 {
		t.Errorf("after committing everything %d segment files remain, want the write segment only", len(files))
	}
	if st := q.Stats(); st.Segments != 1 || st.Bytes != 0 {
		t.Errorf("Stats after commit: %+v", st)
	}
}

func TestReopenResumesAtCommittedHead(t *testing.T) {
	dir := t.TempDir()
	q := openQueue(t, dir, small)
	appendRecs(t, q, 0, 100)
	got, ends := readAll(t, q)
	wantRecs(t, got, seq(0, 100)...)
	q.Commit(ends[39])
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	q = openQueue(t, dir, small)
	// Read but not committed: replayed. Committed: never.
	got, ends = readAll(t, q)
	wantRecs(t, got, seq(40, 100)...)
	q.Commit(ends[9])
	appendRecs(t, q, 100, 110)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	q = openQueue(t, dir, small)
	got, _ = readAll(t, q)
	wantRecs(t, got, seq(50, 110)...)
}

func TestCrashReplaysFromLastGroupCommit(t *testing.T) {
	dir := t.TempDir()
	q := openQueue(t, dir, small)
	appendRecs(t, q, 0, 50)
	_, ends := readAll(t, q)
	q.Commit(ends[19])
	if err := q.flush(); err != nil {
		t.Fatal(err)
	}
	// Committed after the last group commit: the head persisted says 20,
	// but the segments below 30 may be gone already. Either way is right;
	// what must come back is everything not committed.
	q.Commit(ends[29])
	crashed := crashCopy(t, dir)

	q2 := openQueue(t, crashed, small)
	got, _ := readAll(t, q2)
	if n := len(got); n < 20 || n > 30 {
		t.Fatalf("replayed %d records, want 20 to 30", n)
	}
	wantRecs(t, got, seq(50-len(got), 50)...)
}

func TestCommitIsClampedAndOrdered(t *testing.T) {
	q := openQueue(t, t.TempDir(), Options{})
	appendRecs(t, q, 0, 3)
	_, end, _ := q.Next(t.Context())
	q.Commit(end + 1000) // beyond what was read
	q.Commit(end - 1)    // backwards
	q.Commit(-5)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q = openQueue(t, q.dir, Options{})
	got, _ := readAll(t, q)
	wantRecs(t, got, 1, 2)
}

func TestMaxBytesBlocksAppendUntilCommit(t *testing.T) {
	dir := t.TempDir()
	opts := Options{MaxBytes: 4 << 10, SegmentBytes: 1 << 10, SyncInterval: time.Millisecond}
	q := openQueue(t, dir, opts)
	payload := bytes.Repeat([]byte("p"), 200)
	n := 0
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		err := q.Append(ctx, payload, nil)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n++; n > 100 {
			t.Fatal("Append never blocked")
		}
	}
	if st := q.Stats(); st.DiskBytes > opts.MaxBytes {
		t.Fatalf("DiskBytes %d over MaxBytes %d", st.DiskBytes, opts.MaxBytes)
	}

	done := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() { done <- q.Append(t.Context(), payload, nil) })
	// Reading alone frees nothing.
	_, end, err := q.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("Append returned %v before anything was committed", err)
	case <-time.After(20 * time.Millisecond):
	}
	// Commit the whole first segment.
	for end < q.segsSnapshot()[1].first {
		if _, end, err = q.Next(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	q.Commit(end)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	got, _ := readAll(t, q)
	if len(got) == 0 || !bytes.Equal(got[len(got)-1], payload) {
		t.Fatal("the unblocked record was not read back")
	}
}

func (q *Queue) segsSnapshot() []segment {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.segs)
}

// When everything is committed and the room is still short, the write
// segment itself must give way, or Append would wait forever.
func TestMaxBytesWithEverythingInTheWriteSegment(t *testing.T) {
	opts := Options{MaxBytes: 1 << 10, SegmentBytes: 1 << 20, SyncInterval: time.Millisecond}
	q := openQueue(t, t.TempDir(), opts)
	payload := bytes.Repeat([]byte("p"), 300)
	for i := range 20 {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		err := q.Append(ctx, payload, nil)
		cancel()
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		got, ends := readAll(t, q)
		if len(got) != 1 {
			t.Fatalf("read %d records, want 1", len(got))
		}
		q.Commit(ends[0])
	}
	if st := q.Stats(); st.DiskBytes > opts.MaxBytes || st.Bytes != 0 {
		t.Fatalf("Stats: %+v", st)
	}
}

func TestAppendTooLarge(t *testing.T) {
	q := openQueue(t, t.TempDir(), Options{MaxBytes: 1 << 20, MaxRecordBytes: 100})
	err := q.Append(t.Context(), make([]byte, 101), nil)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Append of 101 bytes with MaxRecordBytes 100: %v", err)
	}
	if err := q.Append(t.Context(), make([]byte, 100), nil); err != nil {
		t.Fatal(err)
	}
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		ok   bool
	}{
		{"defaults", Options{}, true},
		{"negative", Options{SegmentBytes: -1}, false},
		{"record larger than the queue", Options{MaxBytes: 1000, MaxRecordBytes: 1000}, false},
		{"tiny queue gets a fitting record limit", Options{MaxBytes: 1000}, true},
		{"queue too small for any record", Options{MaxBytes: segHeaderLen + frameLen}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.opts.withDefaults()
			if (err == nil) != tc.ok {
				t.Fatalf("withDefaults(%+v) = %v", tc.opts, err)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "queue: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestCloseUnblocksAppendAndNext(t *testing.T) {
	q, err := Open(t.TempDir(), Options{MaxBytes: 1 << 10, SegmentBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for q.Append(t.Context(), make([]byte, 100), nil) == nil && q.Stats().DiskBytes < 900 {
	}
	readAll(t, q)
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Go(func() { errs <- q.Append(t.Context(), make([]byte, 500), nil) })
	wg.Go(func() {
		_, _, err := q.Next(t.Context())
		errs <- err
	})
	time.Sleep(10 * time.Millisecond)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for range 2 {
		if err := <-errs; !errors.Is(err, ErrClosed) {
			t.Errorf("blocked call returned %v, want ErrClosed", err)
		}
	}
	if err := q.Append(t.Context(), nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: %v", err)
	}
	if err := q.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestRunReturnsWhenClosed(t *testing.T) {
	q, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- q.Run(context.Background()) }()
	q.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// syncRecorder replaces a queue's fsync to fail it on demand and to learn
// which data an fsync made durable.
type syncRecorder struct {
	q         *Queue
	mu        sync.Mutex
	durableTo int64 // end of the data covered by a completed fsync of the write segment
	fail      error
}

func (r *syncRecorder) sync(f *os.File) error {
	r.mu.Lock()
	fail := r.fail
	r.fail = nil
	r.mu.Unlock()
	if fail != nil {
		return fail
	}
	// Everything before written is in the file when this fsync starts.
	r.q.mu.Lock()
	data, written := f == r.q.w, r.q.written
	r.q.mu.Unlock()
	err := f.Sync()
	if data && err == nil {
		r.mu.Lock()
		r.durableTo = max(r.durableTo, written)
		r.mu.Unlock()
	}
	return err
}

func (r *syncRecorder) durable() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.durableTo
}

func TestDurableCallbacksFollowFsyncInOrder(t *testing.T) {
	dir := t.TempDir()
	q := openQueue(t, dir, Options{SegmentBytes: 4 << 10, SyncInterval: 2 * time.Millisecond})
	r := &syncRecorder{q: q}
	q.syncFile = r.sync
	const n = 300
	var (
		mu    sync.Mutex // held across each Append, so its callback sees endAt
		order []int
		endAt [n]int64
	)
	all := make(chan struct{})
	for i := range n {
		mu.Lock()
		err := q.Append(t.Context(), rec(i), func(err error) {
			if err != nil {
				t.Errorf("record %d: %v", i, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if d := r.durable(); d < endAt[i] {
				t.Errorf("record %d (ending at %d) reported durable when fsyncs covered up to %d", i, endAt[i], d)
			}
			order = append(order, i)
			if len(order) == n {
				close(all)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		q.mu.Lock()
		endAt[i] = q.written // one appender: this record's end
		q.mu.Unlock()
		if i == 10 && len(order) > 0 {
			t.Fatalf("%d callbacks fired before any group commit", len(order))
		}
		mu.Unlock()
		if i == 10 {
			run(t, q)
		}
	}
	<-all
	if !slices.Equal(order, seq(0, n)) {
		t.Fatalf("callbacks in order %v", order)
	}
}

func TestCloseFiresRemainingCallbacks(t *testing.T) {
	q, err := Open(t.TempDir(), Options{SyncInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var got []error
	for range 3 {
		q.Append(t.Context(), []byte("x"), func(err error) { got = append(got, err) })
	}
	if len(got) != 0 {
		t.Fatal("callbacks before any fsync")
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []error{nil, nil, nil}) {
		t.Fatalf("callbacks after Close: %v", got)
	}
}

func TestSyncFailureReachesCallbacksAndRecovers(t *testing.T) {
	dir := t.TempDir()
	q := openQueue(t, dir, Options{SyncInterval: time.Hour})
	r := &syncRecorder{q: q}
	q.syncFile = r.sync
	var results []error
	cb := func(err error) { results = append(results, err) }
	appendRecs(t, q, 0, 1)
	q.Append(t.Context(), rec(1), cb)
	q.Append(t.Context(), rec(2), cb)
	eio := errors.New("input/output error")
	r.fail = eio
	if err := q.flush(); !errors.Is(err, eio) {
		t.Fatalf("flush: %v, want the fsync error", err)
	}
	if len(results) != 2 || !errors.Is(results[0], eio) || !errors.Is(results[1], eio) {
		t.Fatalf("callbacks after a failed fsync: %v", results)
	}
	if err := q.Err(); !errors.Is(err, eio) {
		t.Fatalf("Err() = %v", err)
	}
	// The failed segment is not trusted with more records: they go to a
	// new one, and their durability is reported as it comes.
	before := len(segFiles(t, dir))
	q.Append(t.Context(), rec(3), cb)
	if after := len(segFiles(t, dir)); after != before+1 {
		t.Fatalf("%d segments after an append following a failed fsync, want %d", after, before+1)
	}
	if err := q.Err(); err != nil {
		t.Fatalf("Err() after a successful append: %v", err)
	}
	if err := q.flush(); err != nil {
		t.Fatal(err)
	}
	if len(results) != 3 || results[2] != nil {
		t.Fatalf("callbacks: %v", results)
	}
	got, _ := readAll(t, q)
	wantRecs(t, got, 0, 1, 2, 3)
	if st := q.Stats(); st.SyncErrors != 1 {
		t.Errorf("SyncErrors = %d", st.SyncErrors)
	}
}

func TestSyncFailureDuringRollover(t *testing.T) {
	dir := t.TempDir()
	q := openQueue(t, dir, Options{SegmentBytes: 200, SyncInterval: time.Hour})
	r := &syncRecorder{q: q}
	q.syncFile = r.sync
	var results []error
	cb := func(err error) { results = append(results, err) }
	for i := 0; len(segFiles(t, dir)) == 1; i++ {
		q.Append(t.Context(), rec(i), cb)
	}
	n := len(results)
	if err := q.flush(); err != nil {
		t.Fatal(err)
	}
	eio := errors.New("input/output error")
	r.fail = eio
	for q.Append(t.Context(), rec(1000), cb) == nil {
	}
	if err := q.Err(); !errors.Is(err, eio) {
		t.Fatalf("Err() = %v", err)
	}
	// Retrying succeeds now the disk is back.
	if err := q.Append(t.Context(), rec(1001), cb); err != nil {
		t.Fatal(err)
	}
	if err := q.flush(); err != nil {
		t.Fatal(err)
	}
	var failed int
	for _, err := range results[n:] {
		if err != nil {
			failed++
		}
	}
	if failed == 0 || results[len(results)-1] != nil {
		t.Fatalf("callbacks: %v", results)
	}
}

func TestCorruptHeadIsMovedAside(t *testing.T) {
	dir := t.TempDir()
	q := openQueue(t, dir, small)
	appendRecs(t, q, 0, 60)
	_, ends := readAll(t, q)
	q.Commit(ends[9])
	q.Close()
	head := filepath.Join(dir, headName)
	b, _ := os.ReadFile(head)
	b[10] ^= 0xff
	os.WriteFile(head, b, 0o640)

	q = openQueue(t, dir, small)
	st := q.Stats()
	if len(st.MovedAside) != 1 || !strings.Contains(st.MovedAside[0], "head.corrupt-") || st.NewerFiles != 0 {
		t.Fatalf("MovedAside = %v, NewerFiles = %d", st.MovedAside, st.NewerFiles)
	}
	if _, err := os.Stat(st.MovedAside[0]); err != nil {
		t.Fatal(err)
	}
	// Replays more, never less: from the oldest segment left.
	got, _ := readAll(t, q)
	if len(got) < 50 {
		t.Fatalf("read %d records after losing the head, want at least the 50 uncommitted", len(got))
	}
	wantRecs(t, got[len(got)-50:], seq(10, 60)...)
}

func TestFilesFromNewerVersionAreMovedAside(t *testing.T) {
	dir := t.TempDir()
	q := openQueue(t, dir, small)
	appendRecs(t, q, 0, 100)
	q.Close()
	// A newer wharf rewrote the head and the last segment.
	b := appendHead(nil, 0)
	b[4] = 2
	os.WriteFile(filepath.Join(dir, headName), append(b, "more fields"...), 0o640)
	files := segFiles(t, dir)
	lastFile := files[len(files)-1]
	seg, _ := os.ReadFile(lastFile)
	seg[4] = 7
	os.WriteFile(lastFile, seg, 0o640)

	q = openQueue(t, dir, small)
	st := q.Stats()
	if len(st.MovedAside) != 2 || st.NewerFiles != 2 {
		t.Fatalf("MovedAside = %v, NewerFiles = %d", st.MovedAside, st.NewerFiles)
	}
	for _, p := range st.MovedAside {
		if !strings.Contains(p, ".newer-") {
			t.Errorf("moved aside as %s", p)
		}
	}
	got, _ := readAll(t, q)
	if len(got) == 0 || len(got) >= 100 {
		t.Fatalf("read %d records, want those of the older segments", len(got))
	}
	wantRecs(t, got, seq(0, len(got))...)
	// New records go after the moved-aside segment's offsets.
	appendRecs(t, q, 500, 501)
	got, ends := readAll(t, q)
	wantRecs(t, got, 500)
	old, _ := parseSegName(filepath.Base(lastFile))
	if ends[0] <= old+int64(len(seg)) {
		t.Errorf("new record ends at %d, inside the moved-aside segment [%d, %d)", ends[0], old, old+int64(len(seg)))
	}
}

func TestTornSegmentHeader(t *testing.T) {
	for _, n := range []int{0, 1, 5, segHeaderLen - 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			dir := t.TempDir()
			q := openQueue(t, dir, small)
			appendRecs(t, q, 0, 100)
			_, ends := readAll(t, q)
			q.Close()
			// The process stopped while creating the next segment.
			next := ends[len(ends)-1]
			os.WriteFile(filepath.Join(dir, segName(next)), appendSegHeader(nil, 1234)[:n], 0o640)

			q = openQueue(t, dir, small)
			if st := q.Stats(); st.TornBytes != int64(n) {
				t.Errorf("TornBytes = %d, want %d", st.TornBytes, n)
			}
			appendRecs(t, q, 100, 110)
			got, _ := readAll(t, q)
			wantRecs(t, got, seq(0, 110)...)
		})
	}
}

// Each byte of the last record is where a crash may have stopped the write.
func TestTornTailAtEveryByte(t *testing.T) {
	src := t.TempDir()
	q := openQueue(t, src, Options{})
	appendRecs(t, q, 0, 9)
	_, ends := readAll(t, q)
	q.Close()
	segPath := segFiles(t, src)[0]
	full, err := os.ReadFile(segPath)
	if err != nil {
		t.Fatal(err)
	}
	start, end := ends[7], ends[8]
	if end != int64(len(full)) {
		t.Fatalf("file of %d bytes, last record ends at %d", len(full), end)
	}
	for cut := start; cut < end; cut++ {
		dir := crashCopy(t, src)
		path := filepath.Join(dir, filepath.Base(segPath))
		if err := os.Truncate(path, cut); err != nil {
			t.Fatal(err)
		}
		q, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		if st := q.Stats(); st.TornBytes != cut-start {
			t.Errorf("cut at %d: TornBytes = %d, want %d", cut, st.TornBytes, cut-start)
		}
		got, _ := readAll(t, q)
		wantRecs(t, got, seq(0, 8)...)
		appendRecs(t, q, 100, 102)
		got, _ = readAll(t, q)
		wantRecs(t, got, 100, 101)
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		q, err = Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		got, _ = readAll(t, q)
		wantRecs(t, got, append(seq(0, 8), 100, 101)...)
		if st := q.Stats(); st.TornBytes != 0 || st.CorruptRecords != 0 {
			t.Errorf("cut at %d, second open: %+v", cut, st)
		}
		q.Close()
	}
}

// Flipping any byte of a record in the middle makes the reader skip exactly
// that record, whether it sits in an older segment or in the one being
// written, whose tail Open must not cut.
func TestCorruptionInTheMiddleIsSkipped(t *testing.T) {
	for _, where := range []string{"older segment", "last segment"} {
		t.Run(where, func(t *testing.T) {
			src := t.TempDir()
			q := openQueue(t, src, Options{SegmentBytes: 600})
			appendRecs(t, q, 0, 60)
			_, ends := readAll(t, q)
			q.Close()
			files := segFiles(t, src)
			if len(files) < 3 {
				t.Fatalf("%d segments", len(files))
			}
			path := files[0]
			if where == "last segment" {
				path = files[len(files)-1]
			}
			first, _ := parseSegName(filepath.Base(path))
			// The second record of the segment.
			k := 0
			for ends[k] <= first+segHeaderLen {
				k++
			}
			k++
			start, end := ends[k-1], ends[k]
			for off := start; off < end; off++ {
				dir := crashCopy(t, src)
				p := filepath.Join(dir, filepath.Base(path))
				b, _ := os.ReadFile(p)
				b[off-first] ^= 0x5a
				os.WriteFile(p, b, 0o640)

				q, err := Open(dir, Options{SegmentBytes: 600})
				if err != nil {
					t.Fatal(err)
				}
				got, _ := readAll(t, q)
				want := slices.Delete(seq(0, 60), k, k+1)
				wantRecs(t, got, want...)
				st := q.Stats()
				if st.CorruptRecords != 1 || st.CorruptBytes != end-start || st.TornBytes != 0 {
					t.Errorf("byte %d of the record flipped: CorruptRecords %d, CorruptBytes %d (want %d), TornBytes %d",
						off-start, st.CorruptRecords, st.CorruptBytes, end-start, st.TornBytes)
				}
				q.Close()
			}
		})
	}
}

func TestCorruptSegmentHeaderIsRepairedFromFirstRecord(t *testing.T) {
	dir := t.TempDir()
	q := openQueue(t, dir, Options{SegmentBytes: 600})
	appendRecs(t, q, 0, 60)
	q.Close()
	files := segFiles(t, dir)
	b, _ := os.ReadFile(files[1])
	b[9] ^= 0xff // inside the record magic: header CRC fails
	os.WriteFile(files[1], b, 0o640)

	q = openQueue(t, dir, Options{SegmentBytes: 600})
	got, _ := readAll(t, q)
	wantRecs(t, got, seq(0, 60)...)
}

func TestUnreadableSegmentIsSkipped(t *testing.T) {
	dir := t.TempDir()
	q := openQueue(t, dir, Options{SegmentBytes: 600})
	appendRecs(t, q, 0, 60)
	_, ends := readAll(t, q)
	q.Close()
	files := segFiles(t, dir)
	b, _ := os.ReadFile(files[1])
	first, _ := parseSegName(filepath.Base(files[1]))
	clear(b[:segHeaderLen+4]) // header and first magic gone
	os.WriteFile(files[1], b, 0o640)

	q = openQueue(t, dir, Options{SegmentBytes: 600})
	got, _ := readAll(t, q)
	var want []int
	for i, end := range ends {
		if end <= first || end > first+int64(len(b)) {
			want = append(want, i)
		}
	}
	wantRecs(t, got, want...)
	if st := q.Stats(); st.CorruptBytes != int64(len(b))-segHeaderLen {
		t.Errorf("CorruptBytes = %d, want %d", st.CorruptBytes, len(b)-segHeaderLen)
	}
}

func TestUnreadableLastSegmentIsMovedAside(t *testing.T) {
	dir := t.TempDir()
	q := openQueue(t, dir, Options{SegmentBytes: 600})
	appendRecs(t, q, 0, 60)
	q.Close()
	files := segFiles(t, dir)
	last := files[len(files)-1]
	b, _ := os.ReadFile(last)
	clear(b[:segHeaderLen+4])
	os.WriteFile(last, b, 0o640)

	q = openQueue(t, dir, Options{SegmentBytes: 600})
	if st := q.Stats(); len(st.MovedAside) != 1 {
		t.Fatalf("MovedAside = %v", st.MovedAside)
	}
	got, _ := readAll(t, q)
	appendRecs(t, q, 100, 101)
	more, _ := readAll(t, q)
	wantRecs(t, append(got, more...), append(seq(0, len(got)), 100)...)
}

func TestReadsConcurrentWithAppends(t *testing.T) {
	q := openQueue(t, t.TempDir(), Options{MaxBytes: 64 << 10, SegmentBytes: 4 << 10, SyncInterval: time.Millisecond})
	run(t, q)
	const n = 5000
	var wg sync.WaitGroup
	var durable sync.WaitGroup
	durable.Add(n)
	wg.Go(func() {
		for i := range n {
			if err := q.Append(t.Context(), rec(i), func(err error) {
				if err != nil {
					t.Error(err)
				}
				durable.Done()
			}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for i := range n {
		p, end, err := q.Next(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(p, rec(i)) {
			t.Fatalf("record %d: %q", i, p)
		}
		if i%7 == 0 {
			q.Commit(end)
		}
		_ = q.Stats()
		_ = q.Empty()
	}
	wg.Wait()
	durable.Wait()
	if st := q.Stats(); st.DiskBytes > 64<<10 {
		t.Errorf("DiskBytes %d over MaxBytes", st.DiskBytes)
	}
}

func TestDescriptorsStayBounded(t *testing.T) {
	fds := func() int {
		des, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd")
		}
		return len(des)
	}
	before := fds()
	q := openQueue(t, t.TempDir(), Options{MaxBytes: 32 << 10, SegmentBytes: 1 << 10, SyncInterval: time.Millisecond})
	run(t, q)
	for i := range 2000 {
		appendRecs(t, q, i, i+1)
		_, ends := readAll(t, q)
		q.Commit(ends[len(ends)-1])
	}
	if n := fds() - before; n > 3 {
		t.Errorf("%d more descriptors open after 2000 records over ~60 segments", n)
	}
}

// A file shorter than the segment metadata says ends the records; it is not
// an error.
func TestRecordReaderShortFile(t *testing.T) {
	var b []byte
	b = appendFrame(b, 77, []byte("hello"))
	b = appendFrame(b, 77, []byte("world"))
	rr := recordReader{r: bytes.NewReader(b[:len(b)-2]), magic: 77, maxRec: 1 << 20}
	// The metadata claims more bytes than the file holds.
	p, _, stop, found, err := rr.next(0, int64(len(b)), nil)
	if err != nil || !found || string(p) != "hello" {
		t.Fatalf("first record: %q %v %v", p, found, err)
	}
	_, start, _, found, err := rr.next(stop, int64(len(b)), nil)
	if err != nil || found || start != int64(len(b)) {
		t.Fatalf("short second record: found %v start %d err %v", found, start, err)
	}
}

func TestNewerSegmentInTheMiddleLeavesAGap(t *testing.T) {
	dir := t.TempDir()
	q := openQueue(t, dir, Options{SegmentBytes: 600})
	appendRecs(t, q, 0, 60)
	_, ends := readAll(t, q)
	q.Close()
	files := segFiles(t, dir)
	seg, _ := os.ReadFile(files[1])
	seg[4] = 2
	os.WriteFile(files[1], seg, 0o640)
	first, _ := parseSegName(filepath.Base(files[1]))

	q = openQueue(t, dir, Options{SegmentBytes: 600})
	got, _ := readAll(t, q)
	var want []int
	for i, end := range ends {
		if end <= first || end > first+int64(len(seg)) {
			want = append(want, i)
		}
	}
	wantRecs(t, got, want...)
	if st := q.Stats(); len(st.MovedAside) != 1 || st.CorruptRecords != 0 {
		t.Errorf("Stats: %+v", st)
	}
}

// A head persisted beyond what survived of the data (an fsync that failed,
// a disk that lied) must not hide new records below it.
func TestHeadBeyondTheDataStartsANewSegment(t *testing.T) {
	dir := t.TempDir()
	q := openQueue(t, dir, Options{})
	appendRecs(t, q, 0, 10)
	_, ends := readAll(t, q)
	q.Commit(ends[9])
	q.Close()
	os.Truncate(segFiles(t, dir)[0], ends[4])

	q = openQueue(t, dir, Options{})
	if got, _ := readAll(t, q); len(got) != 0 {
		t.Fatalf("read %d committed records", len(got))
	}
	appendRecs(t, q, 10, 12)
	got, _ := readAll(t, q)
	wantRecs(t, got, 10, 11)
	if files := segFiles(t, dir); len(files) != 1 || !strings.HasSuffix(files[0], segName(ends[9])) {
		t.Errorf("segment files %v, want one starting at the head %d", files, ends[9])
	}
}

// An unused queue's Run sleeps until there is work: an append made while it
// sleeps still becomes durable, and a commit is still persisted, within a
// group commit interval or so.
func TestIdleRunWakesForAppendAndCommit(t *testing.T) {
	dir := t.TempDir()
	q := openQueue(t, dir, Options{SyncInterval: 5 * time.Millisecond})
	run(t, q)
	time.Sleep(50 * time.Millisecond) // several intervals: Run is idle now
	durable := make(chan error, 1)
	if err := q.Append(t.Context(), rec(1), func(err error) { durable <- err }); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-durable:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("an append to an idle queue never became durable")
	}
	_, end, err := q.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // idle again
	q.Commit(end)
	deadline := time.Now().Add(5 * time.Second)
	for {
		head, ok, err := q.readHead()
		if err != nil {
			t.Fatal(err)
		}
		if ok && head == end {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("head file holds %d (ok %v) 5 s after Commit(%d) on an idle queue", head, ok, end)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
