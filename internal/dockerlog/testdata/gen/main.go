// Command gen writes log lines that exercise every part of the json-file
// format: each byte value, invalid UTF-8 (also where Docker cuts a long line
// in the middle of a character), characters Docker escapes, lines around
// the 16 KiB cut, a long stdout line with a stderr line written between its
// halves, and a last line without newline. TestLiveDocker runs it in a
// container and reads the container's json-file log.
package main

import (
	"os"
	"strings"
	"time"
)

func main() {
	out, errOut := os.Stdout, os.Stderr
	write := func(f *os.File, s string) {
		if _, err := f.WriteString(s); err != nil {
			os.Exit(1)
		}
		// Let the daemon's copier take each write on its own.
		time.Sleep(5 * time.Millisecond)
	}
	var ascii, high []byte
	for c := 1; c < 0x80; c++ {
		if c != '\n' {
			ascii = append(ascii, byte(c))
		}
	}
	for c := 0x80; c < 0x100; c++ {
		high = append(high, byte(c))
	}
	write(out, "plain line\n")
	write(out, string(ascii)+"\n")
	write(out, "high bytes: "+string(high)+"\n")
	write(errOut, `<tag attr="v">&amp;</tag> \ back`+"\t tab\n")
	write(out, "emoji 😀 U+2028:\u2028 U+2029:\u2029 NUL:\x00 ESC:\x1b[31mred\x1b[0m U+FFFD:\uFFFD\n")
	write(errOut, "crlf line\r\n")
	write(out, "\n")
	write(out, "cr\rinside\n")
	for _, n := range []int{16383, 16384, 16385} {
		write(out, strings.Repeat("a", n)+"\n")
	}
	// A two-byte character cut in two by the 16 KiB cut.
	write(out, strings.Repeat("b", 16383)+"é tail\n")
	long := strings.Repeat("0123456789abcdef", 40<<10/16)
	write(out, long[:20<<10])
	time.Sleep(100 * time.Millisecond)
	write(errOut, "between the halves\n")
	time.Sleep(100 * time.Millisecond)
	write(out, long[20<<10:]+"\n")
	write(errOut, strings.Repeat("e", 40<<10)+"\n")
	write(out, "tail-no-newline")
}
