// Package dockertest runs containers on the real Docker daemon for wharf's
// end-to-end tests. It drives the docker CLI, so it needs no client library
// and sees the daemon exactly as a user does.
//
// Everything it creates is labelled wharf.test=1; containers also carry
// wharf.test.run=<RunID()>, and each is removed (by id) when the test that
// created it ends. A TestMain that calls [Cleanup] also removes what a
// crashed test left behind:
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		if err := dockertest.Cleanup(); err != nil {
//			fmt.Fprintln(os.Stderr, err)
//		}
//		os.Exit(code)
//	}
//
// A typical test:
//
//	dockertest.Require(t)
//	f := seq.Format{Size: 200, StderrFraction: 0.3}
//	c := dockertest.Run(t, dockertest.RunOptions{
//		Args: append(f.Args(), "-lines", "100"), // Image defaults to LoggenImage(t)
//		Wait: true,
//	})
//	// ... ship c.ID's logs, feed each received line to a seq.Checker ...
//	if err := checker.Verify(map[string]int64{c.Name: 100}); err != nil {
//		t.Fatal(err)
//	}
//
// # What the engine API returns for long lines
//
// Observed on Docker Engine 20.10.24 (API 1.41) with
// GET /containers/{id}/logs?stdout=1&stderr=1&timestamps=1 (follow=0 and
// follow=1 return the same bytes for an exited container), for loggen lines
// of 40960 bytes; TestAPILongLineFrames checks the json-file facts.
//
// json-file driver, no TTY:
//   - Docker's copier cuts a line into 16 KiB chunks. Each chunk is its own
//     multiplexed frame ([stream,0,0,0,size uint32 BE]) with its own
//     "<RFC3339Nano> " prefix. A 40960-byte line arrives as three frames
//     whose payloads after the timestamp and space are 16384, 16384 and
//     8193 bytes; only the last ends in "\n".
//   - All chunks of one line carry the same timestamp, that of the first
//     chunk, which is also the "time" of all three json-file records. A
//     reader that joins chunks can use any chunk's time as the line's time.
//   - The cut counts the newline: a line of exactly 16384 bytes arrives as a
//     16384-byte frame without newline followed by a frame holding only the
//     timestamp, a space and "\n"; a 16383-byte line arrives whole.
//   - Timestamps are RFC3339Nano, so trailing zeros of the fraction are
//     dropped and the prefix is not fixed-width (30 bytes plus the space for
//     a full nanosecond fraction). Split on the first space.
//   - A final line without newline is a frame whose payload just ends: e.g.
//     a 60-byte stderr line is frame [2 0 0 0 0 0 0 0x5b] with 30+1+60 bytes
//     and no "\n". It stays a partial for ever.
//   - With timestamps=0 the frames are the same minus the prefix: 16384,
//     16384 and 8193 bytes.
//
// json-file driver, TTY (raw stream, no frame headers):
//   - The pty turns "\n" into "\r\n" and stderr is merged into stdout. The
//     same 16 KiB cut applies to the bytes read from the pty, so a timestamp
//     prefix appears in the middle of a long line at each chunk boundary:
//     "<ts> " + 16384 bytes, "<ts> " + 16384 bytes, "<ts> " + 8192 bytes and
//     "\r\n", all three with the same timestamp. There is no framing, so a
//     TTY reader must cut the stream itself: a chunk is "<RFC3339Nano> "
//     followed by bytes up to and including the first "\n", or by exactly
//     16384 bytes if no "\n" comes first, in which case the next chunk
//     continues the same line. (Searching for the next timestamp instead
//     would break on lines that contain one.) Lines end "\r\n"; strip the
//     "\r".
//   - A final line without newline is the last bytes of the stream, with
//     neither "\r" nor "\n".
//
// local driver, no TTY (20.10.24): the chunks are the same (16384, 16384,
// 8192 bytes) but the last chunk of a long line comes back WITHOUT its
// newline, so the API cannot tell where a long line ends; `docker logs`
// runs it together with the next line. Only json-file gives exact line
// boundaries for long lines through the API on this engine.
package dockertest
