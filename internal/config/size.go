package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ByteSize is a size in bytes, written in YAML as a number or with a unit
// (KiB, MiB, GiB, KB, MB, GB).
type ByteSize int64

// Size units.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
)

var (
	errNegativeSize = errors.New("negative size")
	errSizeTooLarge = errors.New("too large")
)

// ParseByteSize parses "1048576", "512KiB", "1MiB", "1 GiB", "10MB".
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, unit := s[:i], strings.TrimSpace(s[i:])
	if num == "" {
		if strings.HasPrefix(s, "-") {
			return 0, errNegativeSize
		}
		return 0, errors.New("no number")
	}
	mult := map[string]float64{
		"": 1, "B": 1,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
		"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
		"K": 1 << 10, "M": 1 << 20, "G": 1 << 30,
	}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("unknown unit %q", unit)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, err
	}
	v := f * mult
	if v > 1<<62 {
		return 0, errSizeTooLarge
	}
	return ByteSize(v), nil
}

// UnmarshalYAML reads a size written as a number of bytes or with a unit.
// Its errors are *yaml.TypeErrors, on the node's line, so yaml.v3 goes on
// decoding and Parse reports them with the others.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: cannot unmarshal %s into config.ByteSize", n.Line, n.ShortTag())}}
	}
	size, err := ParseByteSize(n.Value)
	var msg string
	switch {
	case err == nil:
		*b = size
		return nil
	case errors.Is(err, errNegativeSize):
		msg = "%q is negative; write a size like 1048576, 512KiB, 1MiB or 1GiB"
	case errors.Is(err, errSizeTooLarge):
		msg = "%q is too large to be a size; write one like 1048576, 512KiB, 1MiB or 1GiB"
	default:
		msg = "%q is not a size; write it like 1048576, 512KiB, 1MiB or 1GiB"
	}
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: "+msg, n.Line, n.Value)}}
}

// String renders the size with the largest exact binary unit.
func (b ByteSize) String() string {
	switch {
	case b != 0 && b%GiB == 0:
		return strconv.FormatInt(int64(b/GiB), 10) + "GiB"
	case b != 0 && b%MiB == 0:
		return strconv.FormatInt(int64(b/MiB), 10) + "MiB"
	case b != 0 && b%KiB == 0:
		return strconv.FormatInt(int64(b/KiB), 10) + "KiB"
	}
	return strconv.FormatInt(int64(b), 10)
}

// MarshalYAML renders sizes with units in printed configs.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }
