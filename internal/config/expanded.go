package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// expansions records the values that came from ${VAR} references, by YAML
// path, so that no error quotes them: a variable may hold a secret, set
// under the wrong key by mistake.
type expansions map[string]expansion

// expansion is a value that ${VAR} expansion produced: the text as written
// and the value it expanded to.
type expansion struct{ written, value string }

// fromEnv stands in an error message for a value ${VAR} expansion
// produced. Whatever the verb (%q, %s, %v), it prints as
//
//	the value from "${LOKI_URL}"
//
// naming the text as written.
type fromEnv string

func (f fromEnv) Format(s fmt.State, _ rune) { fmt.Fprint(s, f.String()) }

func (f fromEnv) String() string { return "the value from " + strconv.Quote(string(f)) }

// val returns what an error about the value v at path may show: v itself,
// or a fromEnv naming the text as written when the value came from ${VAR}.
func (x expansions) val(path string, v any) any {
	if e, ok := x[path]; ok {
		return fromEnv(e.written)
	}
	return v
}

// quoted returns s quoted, or the fromEnv of path when s came from ${VAR}.
func (x expansions) quoted(path, s string) string {
	if e, ok := x[path]; ok {
		return fromEnv(e.written).String()
	}
	return strconv.Quote(s)
}

func (p *problems) val(path string, v any) any { return p.from.val(path, v) }

func (p *problems) quoted(path, s string) string { return p.from.quoted(path, s) }

// current returns the expansions whose keys still hold the value expanded:
// a flag (--loki-url, --data-dir...) or the program may have set another
// since, which errors then quote as usual. Values that are not strings
// cannot be compared and are kept, which errs on the side of not quoting.
func (c *Config) current() expansions {
	out := expansions{}
	for path, e := range c.expanded {
		if v, ok := stringAt(reflect.ValueOf(c).Elem(), path); !ok || v == e.value {
			out[path] = e
		}
	}
	return out
}

// stringAt returns the string at the YAML path in v (a Config or a part of
// it), and false when it is not a string or the path leads nowhere.
func stringAt(v reflect.Value, path string) (string, bool) {
	for path != "" {
		for v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return "", false
			}
			v = v.Elem()
		}
		switch v.Kind() {
		case reflect.Struct:
			name, rest := path, ""
			if i := strings.IndexAny(path, ".["); i >= 0 {
				name, rest = path[:i], strings.TrimPrefix(path[i:], ".")
			}
			f, ok := fieldByTag(v.Type(), name)
			if !ok {
				return "", false
			}
			v, path = v.FieldByIndex(f.Index), rest
		case reflect.Slice:
			end := strings.IndexByte(path, ']')
			if !strings.HasPrefix(path, "[") || end < 0 {
				return "", false
			}
			i, err := strconv.Atoi(path[1:end])
			if err != nil || i < 0 || i >= v.Len() {
				return "", false
			}
			v = v.Index(i)
			path = strings.TrimPrefix(path[end+1:], ".")
		case reflect.Map:
			// A map's keys are names, which may hold dots: the rest is the key.
			v = v.MapIndex(reflect.ValueOf(path).Convert(v.Type().Key()))
			if !v.IsValid() {
				return "", false
			}
			path = ""
		default:
			return "", false
		}
	}
	if v.Kind() != reflect.String {
		return "", false
	}
	return v.String(), true
}
