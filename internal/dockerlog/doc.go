// Package dockerlog parses the two forms in which Docker hands out a
// container's log: the files of its json-file driver,
// <data-root>/containers/<id>/<id>-json.log, read directly, without the
// daemon, which decodes them with encoding/json to serve the Engine API and
// spends most of a core doing so for one busy container; and the body of the
// Engine API's /containers/{id}/logs, for every other case. Both carry the
// same lines, split the same way by Docker's copier, and this package turns
// both back into the lines the container wrote.
//
// # The json-file format
//
// The driver writes one record per line (daemon/logger/jsonfilelog and its
// jsonlog.JSONLogs.MarshalJSONBuf in moby):
//
//	{"log":"text\n","stream":"stdout","time":"2026-11-26T23:35:52.891162506Z"}
//
// always with the keys in that order, "attrs" (the labels, env and tag
// log options, as a JSON object of strings) between "stream" and "time" when
// configured, no spaces, and a "\n" after the closing brace. "log" is
// omitted when empty, which the copier never sends. The log text is escaped
// by Docker's own encoder, not encoding/json's: '"', '\\', "\n" and "\r" as
// two-character escapes, every other control byte and '<', '>', '&' as
// \u00XX (so a tab is \u0009), invalid UTF-8 as \ufffd and U+2028, U+2029 as
// \u2028, \u2029. The time is time.RFC3339Nano in UTC: trailing zeros of the
// fraction are dropped, and so is the dot when the fraction is zero.
//
// Docker's copier reads a container's output through a 16 KiB buffer per
// stream and cuts a longer line into records of exactly 16384 bytes of log
// text; only the last part ends in "\n", and every part carries the time of
// the first one. A final line without newline (the container stopped in
// the middle of it) is a record without "\n" for ever; when the container
// starts again its next records follow in the same file, with later times.
// stdout and stderr are copied by separate goroutines, so the parts of a
// long stdout line can be interleaved with stderr records. With a TTY,
// everything is "stdout" and lines end in "\r\n"; a 16 KiB cut can fall
// between the "\r" and the "\n".
//
// (All of this was checked on Docker Engine 20.10.24, whose files
// TestLiveDocker reads and compares with docker logs --timestamps.)
//
// # The log stream of GET /containers/{id}/logs
//
// [Stream] parses the body of
// /containers/{id}/logs?stdout=1&stderr=1&timestamps=1 (with or without
// follow). Its design rests on what Docker Engine 20.10.24 (API 1.41, json-file
// driver) was observed to send, byte for byte, and on the daemon code that
// produces it (daemon/logger/copier.go, api/server/httputils/write_log_stream.go):
//
//   - The daemon's copier reads a container's stdout and stderr through a
//     16 KiB buffer per stream and cuts a line that does not fit into parts of
//     exactly 16384 bytes; only the last part keeps the "\n". Every part of a
//     line carries the timestamp of the first part: a 40 KiB line came back as
//     three messages stamped 2026-11-26T23:35:52.891162506Z, all three.
//   - Without a TTY, each message is one frame: an 8-byte header
//     [stream, 0, 0, 0, size uint32 big-endian] and a body of the timestamp in
//     the fixed-width form 2006-01-02T15:04:05.000000000Z (30 bytes), one
//     space, and the message. The 40 KiB line (40960 bytes + "\n") was three
//     frames, headers 01 00 00 00 00 00 40 1f, 01 00 00 00 00 00 40 1f and
//     01 00 00 00 00 00 20 20: bodies of 31+16384, 31+16384 and 31+8192+1
//     bytes. A line of exactly 16384 bytes gave a full part and then a frame
//     of 32 bytes holding only the timestamp, the space and "\n"; a line of
//     16383 bytes fitted in one frame. One write of 1 MiB holding 3943 lines
//     of 265 bytes gave 3943 frames with bodies of 297 bytes (31+265+1), and
//     a 1 MiB line gave 64 bodies of 16415 bytes and one of 32 for its
//     newline. The daemon never put two messages in one frame nor one
//     message over two frames, and no frame body exceeded 16415 bytes.
//   - A final line without newline is one message without "\n"
//     ("...Z last-no-newline", body 46 bytes). When the container starts
//     again, its next line follows in the same log with a later timestamp, so
//     a partial message is only continued by the next message of its stream
//     when that one has the same timestamp or the partial is a full 16384-byte
//     part; otherwise it was the last words of a run.
//   - stdout and stderr are copied by separate goroutines: the parts of a
//     split stdout line were interleaved with whole stderr frames (a 30 KiB
//     stdout line came as a 16384-byte part, two stderr frames, then the last
//     part of 14336+1 bytes, still stamped with the first part's time).
//     Frames of one stream are in order; the order across streams is only
//     roughly the order of the writes.
//   - With a TTY there are no frames and stderr is merged into stdout by the
//     terminal, which also turns "\n" into "\r\n". The body is the messages
//     back to back, each "<timestamp> <message>": the 40 KiB line was
//     "TS <16384 bytes>TS <16384 bytes>TS <8192 bytes>\r\n" with the same TS
//     three times. The 16 KiB cut can fall between "\r" and "\n": a 16383-byte
//     line gave "TS <16383 bytes>\rTS \n". A final line without newline is
//     "TS <bytes>" up to the end of the body, so after a restart the next
//     "TS " follows it directly.
//   - A follow=1 stream ended at the container's exit before its last
//     message in 7 of 12 runs (the final line without newline was missing;
//     the stream ended cleanly after the frame before it), while a request
//     made after the exit returned it: a reader must read again after "die".
//   - The daemon reports an error while reading the log as a frame of stream 3
//     holding "Error grabbing logs: <error>\n", and then goes on streaming
//     (write_log_stream.go; not provoked here: on a corrupt json-file the
//     20.10 daemon skipped the bad record silently). Stream 0 (stdin) never
//     appears in logs.
//
// Only the copier's default buffer gives 16 KiB parts: a driver that sets its
// own cuts elsewhere (awslogs at 262118 bytes, read back through the
// dual-logging cache of newer engines). Frames still join such parts by
// their shared timestamp, but in a TTY stream a cut that is not at 16 KiB is
// not recognised, and the part's timestamp stays in the line. Likewise, in a
// TTY stream a line left without newline when the container stopped runs
// into the first line of its next start, timestamp included: without frames
// nothing marks where it ended.
//
// # Reading
//
// A [FileReader] reads a file from a record boundary,
// rejoins split lines, cuts overlong ones, skips and reports corrupt
// records, follows a file that grows, and gives every line a [FilePosition]: a
// checkpoint from which [NewFileReaderAt] returns exactly the lines after it.
// An offset alone cannot be that checkpoint. A line of stdout can end while
// stderr is in the middle of a split line, so resuming after the stdout line
// must start before the stderr line; and the last words of a container run
// are known to be over only when the next run's first record arrives, at
// the same offset where the line before them ended.
//
// Records in Docker's layout are parsed by hand, eight bytes at a time, into
// the caller's buffer: 2 to 3.5 GB/s of records of plain text on one core
// (a FileReader of a file, or Decode alone), about 1 GB/s when the text is
// dense with escapes (JSON log lines), against 0.15 GB/s for encoding/json
// (see the benchmarks). Anything else, which
// Docker does not write, goes through encoding/json, with the same result.
//
// [Stream] reads the body of a logs request, multiplexed or TTY, rejoins
// split lines by the rule above, cuts overlong ones, and reports the
// daemon's own errors without ending. It has no position of its own: the
// caller resumes by time, with since=.
//
// Both return a [Line]: the time of the line's first part, its stream, its
// text, whether it was cut or left without newline, and, from a FileReader,
// its FilePosition. The rule that joins parts, and the text kept of a long
// line, are the same for both.
package dockerlog
