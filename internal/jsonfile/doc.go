// Package jsonfile reads the log files of Docker's json-file driver,
// <data-root>/containers/<id>/<id>-json.log, directly: without the daemon,
// which decodes them with encoding/json to serve the Engine API and spends
// most of a core doing so for one busy container.
//
// # The format
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
// # Reading
//
// [Decode] parses one record. [Reader] reads a file from a record boundary,
// rejoins split lines, cuts overlong ones, skips and reports corrupt
// records, follows a file that grows, and gives every line a [Position]: a
// checkpoint from which [NewReaderAt] returns exactly the lines after it.
// An offset alone cannot be that checkpoint. A line of stdout can end while
// stderr is in the middle of a split line, so resuming after the stdout line
// must start before the stderr line; and the last words of a container run
// are known to be over only when the next run's first record arrives, at
// the same offset where the line before them ended.
//
// Records in Docker's layout are parsed by hand, eight bytes at a time, into
// the caller's buffer: 2 to 3.5 GB/s of records of plain text on one core
// (a Reader of a file, or Decode alone), about 1 GB/s when the text is
// dense with escapes (JSON log lines), against 0.15 GB/s for encoding/json
// (see the benchmarks). Anything else, which
// Docker does not write, goes through encoding/json, with the same result.
package jsonfile
