// Package civil is the calendar arithmetic of wharf's fast RFC 3339
// timestamp parsers (Docker's log stream prefixes and json-file records).
package civil

// DaysIn returns the number of days of month (1-12) in year.
func DaysIn(year, month int64) int64 {
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

// DaysFromCivil returns the days from 1970-01-01 to the given proleptic
// Gregorian date (H. Hinnant's days_from_civil), for years 0 to 9999.
func DaysFromCivil(y, m, d int64) int64 {
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
