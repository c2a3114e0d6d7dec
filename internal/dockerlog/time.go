package dockerlog

import (
	"encoding/binary"

	"github.com/wharf-logs/wharf/internal/civil"
)

// stampCache parses the times of records. The records of one file nearly
// always share the date and hour, so the Unix time of the last hour seen is
// kept and only minutes, seconds, fraction and zone are parsed.
type stampCache struct {
	hour    [13]byte // "2006-01-02T15" of the cached hour
	hourSec int64    // Unix seconds at the start of that hour, in UTC
	valid   bool
}

// parse parses the RFC 3339 times Docker writes,
// 2006-01-02T15:04:05[.fraction](Z|±hh:mm) with 1 to 9 fraction digits, to
// Unix nanoseconds. It accepts a subset of what time.Time.UnmarshalJSON
// accepts and gives the same instant; ok=false sends the record to
// encoding/json, which decides, so the subset only has to be exact, not
// complete. Times int64 nanoseconds cannot hold (before 1677 or after 2262)
// are refused here too.
func (c *stampCache) parse(p []byte) (ns int64, ok bool) {
	if len(p) < len("2006-01-02T15:04:05Z") ||
		p[4] != '-' || p[7] != '-' || p[10] != 'T' || p[13] != ':' || p[16] != ':' {
		return 0, false
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
			month < 1 || month > 12 || day < 1 || day > civil.DaysIn(year, month) || hour > 23 {
			return 0, false
		}
		base = civil.DaysFromCivil(year, month, day)*86400 + hour*3600
		copy(c.hour[:], p[:13])
		c.hourSec, c.valid = base, true
	}
	minute, ok1 := digits2(p[14:16])
	sec, ok2 := digits2(p[17:19])
	if !ok1 || !ok2 || minute > 59 || sec > 59 {
		return 0, false
	}

	// The zone ends the time: its length says where the fraction ends.
	zone := p[len(p)-1:]
	var offset int64
	if zone[0] != 'Z' {
		if len(p) < len("2006-01-02T15:04:05-07:00") {
			return 0, false
		}
		zone = p[len(p)-6:]
		if (zone[0] != '+' && zone[0] != '-') || zone[3] != ':' {
			return 0, false
		}
		oh, ok1 := digits2(zone[1:3])
		om, ok2 := digits2(zone[4:6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return 0, false
		}
		offset = oh*3600 + om*60
		if zone[0] == '-' {
			offset = -offset
		}
	}
	var frac int64
	switch f := p[19 : len(p)-len(zone)]; {
	case len(f) == 0:
	case f[0] != '.' || len(f) == 1 || len(f) > 10:
		return 0, false
	case len(f) >= 9:
		// Eight digits or more, as in most times Docker writes.
		v, ok := digits8(f[1:9])
		if !ok {
			return 0, false
		}
		frac = int64(v) * 10
		if len(f) == 10 {
			d := f[9] - '0'
			if d > 9 {
				return 0, false
			}
			frac += int64(d)
		}
	default:
		for _, d := range f[1:] {
			if d -= '0'; d > 9 {
				return 0, false
			}
			frac = frac*10 + int64(d)
		}
		frac *= pow10[10-len(f)]
	}

	secs := base + minute*60 + sec - offset
	// math.MaxInt64 is 9223372036*1e9 + 854775807 and math.MinInt64 is
	// -9223372037*1e9 + 145224192.
	if secs > 9223372036 || secs == 9223372036 && frac > 854775807 ||
		secs < -9223372037 || secs == -9223372037 && frac < 145224192 {
		return 0, false
	}
	return secs*1e9 + frac, true
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
