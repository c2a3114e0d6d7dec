package config

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Render prints c as YAML with every secret redacted, durations and sizes in
// their readable forms, and every key present, so `wharf check` shows the
// effective configuration.
func (c *Config) Render() string {
	n := renderValue(reflect.ValueOf(*c))
	out, err := yaml.Marshal(n)
	if err != nil {
		return fmt.Sprintf("# cannot render config: %v\n", err)
	}
	return string(out)
}

var secretType = reflect.TypeOf(Secret(""))

func scalar(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Value: s}
}

func renderValue(v reflect.Value) *yaml.Node {
	switch {
	case v.Type() == secretType:
		return &yaml.Node{Kind: yaml.ScalarNode, Value: v.Interface().(Secret).String(), Style: yaml.DoubleQuotedStyle}
	case v.Type() == durationType:
		return scalar(fmt.Sprint(v.Interface()))
	case v.Type() == byteSizeType:
		return scalar(v.Interface().(ByteSize).String())
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
		}
		return renderValue(v.Elem())
	case reflect.Struct:
		m := &yaml.Node{Kind: yaml.MappingNode}
		for i := range v.NumField() {
			name := tagName(v.Type().Field(i))
			if name == "" || name == "-" {
				continue
			}
			m.Content = append(m.Content, scalar(name), renderValue(v.Field(i)))
		}
		return m
	case reflect.Map:
		m := &yaml.Node{Kind: yaml.MappingNode}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			val := renderValue(v.MapIndex(k))
			if isSensitiveHeader(k.String()) {
				val = &yaml.Node{Kind: yaml.ScalarNode, Value: Redacted, Style: yaml.DoubleQuotedStyle}
			}
			m.Content = append(m.Content, scalar(k.String()), val)
		}
		return m
	case reflect.Slice:
		s := &yaml.Node{Kind: yaml.SequenceNode}
		for i := range v.Len() {
			s.Content = append(s.Content, renderValue(v.Index(i)))
		}
		return s
	case reflect.String:
		// A URL may carry a password in its user info.
		return &yaml.Node{Kind: yaml.ScalarNode, Value: redactURL(v.String()), Style: yaml.DoubleQuotedStyle}
	case reflect.Bool:
		return scalar(strconv.FormatBool(v.Bool()))
	case reflect.Int, reflect.Int64:
		return scalar(strconv.FormatInt(v.Int(), 10))
	}
	return scalar(fmt.Sprint(v.Interface()))
}

// isSensitiveHeader reports headers whose values may be credentials: the
// standard ones, and any whose name suggests a key, token or password.
func isSensitiveHeader(name string) bool {
	switch canonical(name) {
	case "Authorization", "Proxy-Authorization", "Cookie", "X-Api-Key", "Api-Key", "X-Auth-Token":
		return true
	}
	lower := strings.ToLower(name)
	for _, w := range []string{"auth", "token", "key", "secret", "pass", "cookie", "session", "credential", "signature"} {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}

func canonical(s string) string {
	b := []byte(s)
	up := true
	for i, c := range b {
		if up && c >= 'a' && c <= 'z' {
			b[i] = c - 32
		} else if !up && c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
		up = c == '-'
	}
	return string(b)
}
