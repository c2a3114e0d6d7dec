package dockerlog

import "github.com/wharf-logs/wharf/internal/civil"

// lsStampCache parses the timestamp prefixes of log messages. Consecutive
// messages nearly always share the date and hour, so the Unix time of the
// last hour seen is kept and only minutes, seconds and fraction are parsed.
type lsStampCache struct {
	hour    [13]byte // "2006-01-02T15" of the cached hour
	hourSec int64    // Unix seconds at the start of that hour, UTC
	valid   bool
}

// parse parses the RFC 3339 timestamp and the one space that start p:
// 2006-01-02T15:04:05[.fraction](Z|±hh:mm), the fraction 1 to 9 digits. It
// returns Unix nanoseconds and the length of the prefix with its space, or
// (0, 0) when p does not start with one, or with a time that int64
// nanoseconds cannot hold (before 1677 or after 2262).
func (c *lsStampCache) parse(p []byte) (int64, int) {
	// The shortest prefix is "2006-01-02T15:04:05Z ".
	if len(p) < 21 || p[4] != '-' || p[7] != '-' || p[10] != 'T' || p[13] != ':' || p[16] != ':' {
		return 0, 0
	}
	var base int64
	if c.valid && string(p[:13]) == string(c.hour[:]) {
		base = c.hourSec
	} else {
		year, ok1 := lsDigits(p[0:4])
		month, ok2 := lsDigits(p[5:7])
		day, ok3 := lsDigits(p[8:10])
		hour, ok4 := lsDigits(p[11:13])
		if !(ok1 && ok2 && ok3 && ok4) || month < 1 || month > 12 || day < 1 || day > civil.DaysIn(year, month) || hour > 23 {
			return 0, 0
		}
		base = civil.DaysFromCivil(year, month, day)*86400 + hour*3600
		copy(c.hour[:], p[:13])
		c.hourSec, c.valid = base, true
	}
	minute, ok1 := lsDigits(p[14:16])
	sec, ok2 := lsDigits(p[17:19])
	if !ok1 || !ok2 || minute > 59 || sec > 59 {
		return 0, 0
	}
	i := 19
	var frac int64
	if p[i] == '.' {
		i++
		start := i
		for i < len(p) && i-start <= 9 && p[i]-'0' <= 9 {
			frac = frac*10 + int64(p[i]-'0')
			i++
		}
		digits := i - start
		if digits == 0 || digits > 9 {
			return 0, 0
		}
		for ; digits < 9; digits++ {
			frac *= 10
		}
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
		oh, ok1 := lsDigits(p[i+1 : i+3])
		om, ok2 := lsDigits(p[i+4 : i+6])
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
	if i >= len(p) || p[i] != ' ' {
		return 0, 0
	}
	secs := base + minute*60 + sec - offset
	// math.MaxInt64 is 9223372036*1e9 + 854775807 and math.MinInt64 is
	// -9223372037*1e9 + 145224192.
	if secs > 9223372036 || secs == 9223372036 && frac > 854775807 ||
		secs < -9223372037 || secs == -9223372037 && frac < 145224192 {
		return 0, 0
	}
	return secs*1e9 + frac, i + 1
}

// lsDigits parses a run of ASCII digits.
func lsDigits(p []byte) (int64, bool) {
	var v int64
	for _, b := range p {
		d := b - '0'
		if d > 9 {
			return 0, false
		}
		v = v*10 + int64(d)
	}
	return v, true
}

// lsStampByte reports whether b can appear in a timestamp prefix before its
// space.
func lsStampByte(b byte) bool {
	return b-'0' <= 9 || b == '-' || b == ':' || b == '.' || b == 'T' || b == 'Z' || b == '+'
}
