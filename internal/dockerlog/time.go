package dockerlog

import "encoding/binary"

// stampCache parses the RFC 3339 times Docker writes: the "time" of a
// json-file record and the timestamp prefix of every message of the Engine
// API's log stream. The times a reader meets nearly always share the date and
// hour, so the Unix time of the last hour seen is kept and only minutes,
// seconds, fraction and zone are parsed. Each reader has its own; it is not
// safe for concurrent use.
type stampCache struct {
	hour    [13]byte // "2006-01-02T15" of the cached hour
	hourSec int64    // Unix seconds at the start of that hour, in UTC
	valid   bool
}

// parse parses the RFC 3339 time that starts p,
// 2006-01-02T15:04:05[.fraction](Z|±hh:mm) with 1 to 9 fraction digits, to
// Unix nanoseconds, and returns its length. It returns (0, 0) when p does not
// start with such a time, or with one that int64 nanoseconds cannot hold
// (before 1677 or after 2262). What follows the time is not looked at,
// except that a fraction of more than nine digits is refused.
//
// It runs for every line read and is kept in one piece: with the parse of
// a new hour moved out to a function of its own, Decode of a 265-byte record
// took 2% more instructions.
func (c *stampCache) parse(p []byte) (ns int64, n int) {
	if len(p) < len("2006-01-02T15:04:05Z") ||
		p[4] != '-' || p[7] != '-' || p[10] != 'T' || p[13] != ':' || p[16] != ':' {
		return 0, 0
	}
	var base int64
	if c.valid && string(p[:13]) == string(c.hour[:]) {
		base = c.hourSec
	} else {
		y1, ok1 := digits2(p[0:2])
		y2, ok2 := digits2(p[2:4])
		month, ok3 := digits2(p[5:7])
		day, ok4 := digits2(p[8:10])
		hour, ok5 := digits2(p[11:13])
		year := y1*100 + y2
		if !(ok1 && ok2 && ok3 && ok4 && ok5) ||
			month < 1 || month > 12 || day < 1 || day > daysIn(year, month) || hour > 23 {
			return 0, 0
		}
		base = daysFromCivil(year, month, day)*86400 + hour*3600
		copy(c.hour[:], p[:13])
		c.hourSec, c.valid = base, true
	}
	minute, ok1 := digits2(p[14:16])
	sec, ok2 := digits2(p[17:19])
	if !ok1 || !ok2 || minute > 59 || sec > 59 {
		return 0, 0
	}

	i := 19
	var frac int64
	if p[i] == '.' {
		i++
		n := 0 // fraction digits
		if len(p)-i >= 8 {
			// Docker writes eight digits or more nearly always: take eight
			// at once.
			if v, ok := digits8(p[i:]); ok {
				frac, n = int64(v)*10, 8
				if len(p)-i > 8 && p[i+8]-'0' <= 9 {
					frac, n = frac+int64(p[i+8]-'0'), 9
				}
			}
		}
		if n == 0 {
			for i+n < len(p) && n < 9 && p[i+n]-'0' <= 9 {
				frac = frac*10 + int64(p[i+n]-'0')
				n++
			}
			if n == 0 {
				return 0, 0
			}
			frac *= pow10[9-n]
		}
		// A tenth digit fails below, as it is not a zone.
		i += n
	}
	if i >= len(p) {
		return 0, 0
	}
	var offset int64
	switch p[i] {
	case 'Z':
		i++
	case '+', '-':
		if len(p) < i+6 || p[i+3] != ':' {
			return 0, 0
		}
		oh, ok1 := digits2(p[i+1 : i+3])
		om, ok2 := digits2(p[i+4 : i+6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return 0, 0
		}
		offset = oh*3600 + om*60
		if p[i] == '-' {
			offset = -offset
		}
		i += 6
	default:
		return 0, 0
	}

	secs := base + minute*60 + sec - offset
	// math.MaxInt64 is 9223372036*1e9 + 854775807 and math.MinInt64 is
	// -9223372037*1e9 + 145224192.
	if secs > 9223372036 || secs == 9223372036 && frac > 854775807 ||
		secs < -9223372037 || secs == -9223372037 && frac < 145224192 {
		return 0, 0
	}
	return secs*1e9 + frac, i
}

// parseExact parses p, which must be a time and nothing else: the "time" of
// a json-file record. It accepts a subset of what time.Time.UnmarshalJSON
// accepts and gives the same instant; ok=false sends the record to
// encoding/json, which decides, so the subset only has to be exact, not
// complete.
func (c *stampCache) parseExact(p []byte) (ns int64, ok bool) {
	ns, n := c.parse(p)
	return ns, n > 0 && n == len(p)
}

// parsePrefix parses the timestamp prefix of a log stream message: a time
// and one space. It returns the length of both, or (0, 0) when p does not
// start with them.
func (c *stampCache) parsePrefix(p []byte) (ns int64, n int) {
	ns, n = c.parse(p)
	if n == 0 || n >= len(p) || p[n] != ' ' {
		return 0, 0
	}
	return ns, n + 1
}

// stampByte reports whether b can appear in a timestamp prefix before its
// space.
func stampByte(b byte) bool {
	return b-'0' <= 9 || b == '-' || b == ':' || b == '.' || b == 'T' || b == 'Z' || b == '+'
}

// daysIn returns the number of days of month (1-12) in year.
func daysIn(year, month int64) int64 {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the days from 1970-01-01 to the given proleptic
// Gregorian date (H. Hinnant's days_from_civil), for years 0 to 9999.
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// digits8 parses eight ASCII digits at once (D. Lemire's SWAR method).
func digits8(p []byte) (uint64, bool) {
	v := binary.LittleEndian.Uint64(p)
	// Every byte's high nibble is 3, and stays 3 when 6 is added: '0'-'9'.
	if v&0xF0F0F0F0F0F0F0F0 != 0x3030303030303030 || (v+0x0606060606060606)&0xF0F0F0F0F0F0F0F0 != 0x3030303030303030 {
		return 0, false
	}
	v -= 0x3030303030303030
	v = v*10 + v>>8 // pairs of digits in every other byte
	v = ((v&0x000000FF000000FF)*(100+1000000<<32) + (v>>16&0x000000FF000000FF)*(1+10000<<32)) >> 32
	return v, true
}

var pow10 = [...]int64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}

// digits2 parses two ASCII digits.
func digits2(p []byte) (int64, bool) {
	d1, d2 := p[0]-'0', p[1]-'0'
	return int64(d1)*10 + int64(d2), d1 <= 9 && d2 <= 9
}
