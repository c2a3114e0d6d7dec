package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wharf-logs/wharf/internal/source"
)

// Error is a configuration error. Path is the YAML path of the offending key
// (e.g. "loki.batch_wait"); Line is its line in the file when known.
type Error struct {
	File string
	Line int
	Path string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads the YAML file at path over the defaults, expands ${VAR}
// references, and validates the result. An empty path yields the defaults.
func Load(path string) (Config, error) {
	cfg, err := Read(path)
	if err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// Read is Load without validation, for callers that override values before
// validating.
func Read(path string) (Config, error) {
	cfg := Default()
	if path == "" {
		return cfg, nil
	}
	data, err := readConfigFile(path)
	if err != nil {
		return cfg, err
	}
	err = Parse(data, path, os.LookupEnv, &cfg)
	return cfg, err
}

// maxConfigFile bounds the configuration file read: a configuration is a
// few kilobytes, and --config /dev/zero must not eat the memory.
const maxConfigFile = 4 << 20

func readConfigFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w; pass an existing file to --config", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigFile+1))
	if err != nil {
		return nil, fmt.Errorf("config: %w; pass wharf's YAML configuration file to --config", err)
	}
	if len(data) > maxConfigFile {
		return nil, fmt.Errorf("config: %s is larger than %d MiB; pass wharf's YAML configuration file to --config", path, maxConfigFile>>20)
	}
	return data, nil
}

// Parse decodes YAML data into cfg, which holds the values the data
// overrides. Every key must be known; lookup resolves ${VAR} references.
// file names the source in errors.
func Parse(data []byte, file string, lookup func(string) (string, bool), cfg *Config) error {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return &Error{File: file, Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if root.Kind == 0 { // empty document
		return nil
	}
	d := decoder{file: file, lookup: lookup, budget: maxNodes}
	if err := d.decode(root.Content[0], reflect.ValueOf(cfg).Elem(), ""); err != nil {
		return err
	}
	cfg.fileDefaults()
	return nil
}

// fileDefaults fills the unset keys of each files entry, which a list item
// cannot take from Default.
func (c *Config) fileDefaults() {
	for i := range c.Files {
		f := &c.Files[i]
		if f.StartAt == "" {
			f.StartAt = source.StartEnd
		}
		if f.MaxLineBytes == 0 {
			f.MaxLineBytes = 256 * KiB
		}
		if f.Multiline.MaxWait == 0 {
			f.Multiline.MaxWait = 3 * time.Second
		}
		if f.Multiline.MaxLines == 0 {
			f.Multiline.MaxLines = 500
		}
		if f.Multiline.MaxBytes == 0 {
			f.Multiline.MaxBytes = 1 * MiB
		}
	}
}

type decoder struct {
	file   string
	lookup func(string) (string, bool)
	// budget is how many more nodes may be decoded. Aliases are decoded
	// each time they are used, so a small document could otherwise expand
	// into billions of values.
	budget int
}

// maxNodes bounds the values decoded from one document, aliases counted at
// each use; a real configuration has a few hundred.
const maxNodes = 100_000

var (
	durationType = reflect.TypeOf(time.Duration(0))
	byteSizeType = reflect.TypeOf(ByteSize(0))
)

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) error {
	return &Error{File: d.file, Line: n.Line, Path: path, Msg: fmt.Sprintf(format, args...)}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if d.budget--; d.budget < 0 {
		return d.errorf(n, path, "the document expands to more than %d values (aliases count at each use); write the configuration out without repeated *aliases", maxNodes)
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil // "key:" with no value keeps the default
	}
	switch v.Kind() {
	case reflect.Struct:
		return d.decodeStruct(n, v, path)
	case reflect.Map:
		return d.decodeMap(n, v, path)
	case reflect.Slice:
		return d.decodeSlice(n, v, path)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		if err := d.decode(n, p.Elem(), path); err != nil {
			return err
		}
		v.Set(p)
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return d.errorf(n, path, "expected a single value, found %s", kindName(n))
	}
	s, err := d.expand(n, path, v.Type() == secretType || secretPath(path))
	if err != nil {
		return err
	}
	switch {
	case v.Type() == durationType:
		dur, err := time.ParseDuration(s)
		if err != nil {
			return d.errorf(n, path, "%q is not a duration; write it like 10s, 1m30s or 500ms", s)
		}
		v.SetInt(int64(dur))
	case v.Type() == byteSizeType:
		size, err := ParseByteSize(s)
		switch {
		case errors.Is(err, errNegativeSize):
			return d.errorf(n, path, "%q is negative; write a size like 1048576, 512KiB, 1MiB or 1GiB", s)
		case errors.Is(err, errSizeTooLarge):
			return d.errorf(n, path, "%q is too large to be a size; write one like 1048576, 512KiB, 1MiB or 1GiB", s)
		case err != nil:
			return d.errorf(n, path, "%q is not a size; write it like 1048576, 512KiB, 1MiB or 1GiB", s)
		}
		v.SetInt(int64(size))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return d.errorf(n, path, "%q is not a boolean; write true or false", s)
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int:
		i, err := strconv.Atoi(s)
		if errors.Is(err, strconv.ErrRange) {
			return d.errorf(n, path, "%q is too large; write a whole number such as 8", s)
		} else if err != nil {
			return d.errorf(n, path, "%q is not a whole number; write one such as 8", s)
		}
		v.SetInt(int64(i))
	default:
		return d.errorf(n, path, "unsupported field type %s", v.Type())
	}
	return nil
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.MappingNode {
		return d.errorf(n, path, "expected a mapping of keys, found %s", kindName(n))
	}
	t := v.Type()
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := k.Value
		kp := join(path, key)
		if seen[key] {
			return d.errorf(k, kp, "key given twice")
		}
		seen[key] = true
		f, ok := fieldByTag(t, key)
		if !ok {
			return d.errorf(k, kp, "unknown key; valid keys here are: %s", strings.Join(tags(t), ", "))
		}
		if err := d.decode(val, v.FieldByIndex(f.Index), kp); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.MappingNode {
		return d.errorf(n, path, "expected a mapping of names to values, found %s", kindName(n))
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		kp := join(path, k.Value)
		if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
			return d.errorf(k, kp, "key given twice")
		}
		ev := reflect.New(v.Type().Elem()).Elem()
		if val.Kind == yaml.ScalarNode && val.Tag == "!!null" {
			return d.errorf(val, kp, "missing value")
		}
		if err := d.decode(val, ev, kp); err != nil {
			return err
		}
		m.SetMapIndex(reflect.ValueOf(k.Value), ev)
	}
	v.Set(m)
	return nil
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.SequenceNode {
		return d.errorf(n, path, "expected a list, found %s", kindName(n))
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		if err := d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return err
		}
	}
	v.Set(s)
	return nil
}

// expand replaces ${VAR} and ${VAR:-default} in a scalar; $$ is a literal $.
// Expansion happens after parsing, so a variable's value can never change
// the structure of the document. The errors of a secret do not quote it.
func (d *decoder) expand(n *yaml.Node, path string, secret bool) (string, error) {
	s := n.Value
	if !strings.Contains(s, "$") {
		return s, nil
	}
	quoted := func(s string) string {
		if secret {
			return "the secret"
		}
		return strconv.Quote(s)
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
			continue
		case '{':
		default:
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", d.errorf(n, path, "unterminated ${ in %s; close it with } or write $$ for a literal $", quoted(s))
		}
		ref := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !validEnvName(name) {
			if secret {
				return "", d.errorf(n, path, "invalid variable name in a ${...} of the secret; use letters, digits and _, or write $$ for a literal $")
			}
			return "", d.errorf(n, path, "invalid variable name %q in ${%s}; use letters, digits and _, or write $$ for a literal $", name, ref)
		}
		val, ok := d.lookup(name)
		if !ok || (hasDef && val == "") {
			switch {
			case !hasDef && secret:
				return "", d.errorf(n, path, "environment variable %s is not set; set it in wharf's environment, or use the _file key", name)
			case !hasDef:
				return "", d.errorf(n, path, "environment variable %s is not set; set it or write ${%s:-default}", name, name)
			}
			val = def
		}
		b.WriteString(val)
		i += end
	}
	return b.String(), nil
}

// secretPath reports keys outside the Secret type whose values may be
// credentials: the headers isSensitiveHeader names.
func secretPath(path string) bool {
	h, ok := strings.CutPrefix(path, "loki.headers.")
	return ok && isSensitiveHeader(h)
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if tagName(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func tagName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

func tags(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		if n := tagName(t.Field(i)); n != "" && n != "-" {
			out = append(out, n)
		}
	}
	return out
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("the value %q", n.Value)
	}
	return "nothing"
}

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
