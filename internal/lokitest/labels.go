package lokitest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/wharf-logs/wharf/internal/entry"
)

// ParseLabels parses a stream selector of the form {a="b", c="d"}, as
// entry.Labels.String writes it: names are [a-zA-Z_][a-zA-Z0-9_]*, values Go
// quoted strings (double quotes or backquotes). It returns the labels sorted
// by name and rejects duplicate names. "{}" yields no labels and no error.
func ParseLabels(s string) (entry.Labels, error) {
	p := labelParser{s: s}
	l, err := p.parse()
	if err != nil {
		return nil, fmt.Errorf("lokitest: parse labels %q: %w", s, err)
	}
	return l, nil
}

type labelParser struct {
	s   string
	pos int
}

func (p *labelParser) space() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t' || p.s[p.pos] == '\n' || p.s[p.pos] == '\r') {
		p.pos++
	}
}

func (p *labelParser) expect(c byte) error {
	p.space()
	if p.pos >= len(p.s) {
		return fmt.Errorf("want %q at offset %d, got the end", c, p.pos)
	}
	if p.s[p.pos] != c {
		return fmt.Errorf("want %q at offset %d, got %q", c, p.pos, p.s[p.pos])
	}
	p.pos++
	return nil
}

func (p *labelParser) parse() (entry.Labels, error) {
	if err := p.expect('{'); err != nil {
		return nil, err
	}
	var l entry.Labels
	p.space()
	if p.pos < len(p.s) && p.s[p.pos] == '}' {
		p.pos++
		return l, p.end()
	}
	for {
		name, err := p.name()
		if err != nil {
			return nil, err
		}
		if err := p.expect('='); err != nil {
			return nil, err
		}
		value, err := p.value()
		if err != nil {
			return nil, err
		}
		l = append(l, entry.Label{Name: name, Value: value})
		p.space()
		if p.pos < len(p.s) && p.s[p.pos] == ',' {
			p.pos++
			continue
		}
		if err := p.expect('}'); err != nil {
			return nil, err
		}
		break
	}
	if err := p.end(); err != nil {
		return nil, err
	}
	slices.SortStableFunc(l, func(a, b entry.Label) int { return strings.Compare(a.Name, b.Name) })
	for i := 1; i < len(l); i++ {
		if l[i].Name == l[i-1].Name {
			return nil, fmt.Errorf("duplicate label name %q", l[i].Name)
		}
	}
	return l, nil
}

func (p *labelParser) end() error {
	p.space()
	if p.pos != len(p.s) {
		return fmt.Errorf("unexpected %q after the closing brace", p.s[p.pos:])
	}
	return nil
}

func (p *labelParser) name() (string, error) {
	p.space()
	start := p.pos
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		if c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || p.pos > start && '0' <= c && c <= '9' {
			p.pos++
			continue
		}
		break
	}
	if p.pos == start {
		if p.pos >= len(p.s) {
			return "", fmt.Errorf("want a label name at offset %d, got the end", p.pos)
		}
		return "", fmt.Errorf("want a label name at offset %d, got %q", p.pos, p.s[p.pos])
	}
	return p.s[start:p.pos], nil
}

func (p *labelParser) value() (string, error) {
	p.space()
	if p.pos >= len(p.s) || (p.s[p.pos] != '"' && p.s[p.pos] != '`') {
		return "", fmt.Errorf("want a quoted value at offset %d", p.pos)
	}
	quote := p.s[p.pos]
	start := p.pos
	i := p.pos + 1
	for ; i < len(p.s) && p.s[i] != quote; i++ {
		if quote == '"' && p.s[i] == '\\' {
			i++ // the escaped byte cannot end the string
		}
	}
	if i >= len(p.s) {
		return "", fmt.Errorf("unterminated value at offset %d", start)
	}
	p.pos = i + 1
	v, err := strconv.Unquote(p.s[start:p.pos])
	if err != nil {
		return "", fmt.Errorf("bad value %s at offset %d: %w", p.s[start:p.pos], start, err)
	}
	return v, nil
}
