package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
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

// Read reads the YAML file at path over the defaults and expands ${VAR}
// references; an empty path yields the defaults. It does not validate, so
// that the caller can override values (from flags) first.
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
// overrides. Every key must be known; lookup resolves ${VAR} references;
// file names the source in errors.
//
// yaml.v3 parses and decodes. Between the two, one pass over the tree does
// what yaml.v3 cannot (see prepare): ${VAR} expansion after parsing, so a
// value never changes the document's structure, and the checks whose
// errors need the key's path. yaml.v3's own errors (duplicate keys, values
// of the wrong type) name a line; Parse numbers the nodes before decoding,
// so that number names one node, whose path and line the *Error carries.
func Parse(data []byte, file string, lookup func(string) (string, bool), cfg *Config) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return &Error{File: file, Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(doc.Content) == 0 { // empty document
		return nil
	}
	root := doc.Content[0]
	p := &prepare{file: file, lookup: lookup, nodes: maxNodes, bytes: maxBytes, done: map[*yaml.Node]bool{}, written: map[*yaml.Node]string{}, expanded: expansions{}, want: map[*yaml.Node]reflect.Type{}}
	p.walk(root, reflect.TypeOf(cfg).Elem(), "")
	if len(p.errs) > 0 {
		return errors.Join(p.errs...)
	}
	if cfg.expanded == nil {
		cfg.expanded = expansions{}
	}
	for path, e := range p.expanded {
		cfg.expanded[path] = e
	}
	nodes := numberNodes(root)
	if err := root.Decode(cfg); err != nil {
		return p.translate(err, nodes)
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

// node is where a node of the document is: its line in the file and its
// YAML path.
type node struct {
	n    *yaml.Node
	line int
	path string
}

// numberNodes replaces each node's Line with its own number and returns the
// nodes by number (from 1), with their real lines and paths. A node inside
// an anchor is at the anchor's path wherever an alias repeats it.
func numberNodes(root *yaml.Node) []node {
	nodes := []node{{}}
	var visit func(n *yaml.Node, path string)
	visit = func(n *yaml.Node, path string) {
		nodes = append(nodes, node{n: n, line: n.Line, path: path})
		n.Line = len(nodes) - 1
		for i, c := range n.Content {
			switch n.Kind {
			case yaml.MappingNode:
				visit(c, join(path, n.Content[i&^1].Value)) // a key and its value share the path
			case yaml.SequenceNode:
				visit(c, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	visit(root, "")
	return nodes
}

// yamlError is one of yaml.v3's decoding errors: "line N: message".
var yamlError = regexp.MustCompile(`^line (\d+): (.*)$`)

// translate turns what yaml.v3's decoder returned into *Errors naming the
// path and line of each bad value, and what to write instead.
func (p *prepare) translate(err error, nodes []node) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		// Not about one value: "document contains excessive aliasing".
		return &Error{File: p.file, Msg: strings.TrimPrefix(err.Error(), "yaml: ") + "; write the configuration out without repeated *aliases"}
	}
	var errs []error
	for _, msg := range te.Errors {
		m := yamlError.FindStringSubmatch(msg)
		var id int
		if m != nil {
			id, _ = strconv.Atoi(m[1])
		}
		if id <= 0 || id >= len(nodes) {
			errs = append(errs, &Error{File: p.file, Msg: msg})
			continue
		}
		at := nodes[id]
		errs = append(errs, &Error{File: p.file, Line: at.line, Path: at.path, Msg: p.explain(at.n, m[2])})
	}
	return errors.Join(errs...)
}

// explain words yaml.v3's message about node n the way wharf's messages go:
// what is wrong with the value and what to write.
func (p *prepare) explain(n *yaml.Node, msg string) string {
	switch {
	case strings.HasPrefix(msg, "mapping key "):
		return "key given twice"
	case !strings.HasPrefix(msg, "cannot unmarshal "):
		// wharf's own, from ByteSize, which quotes the value.
		return strings.Replace(msg, strconv.Quote(n.Value), p.quote(n), 1)
	}
	t := p.want[n]
	switch {
	case t == nil:
		return msg
	case t.Kind() == reflect.Struct:
		return "expected a mapping of keys, found " + p.kindName(n)
	case t.Kind() == reflect.Map:
		return "expected a mapping of names to values, found " + p.kindName(n)
	case t.Kind() == reflect.Slice:
		return "expected a list, found " + p.kindName(n)
	case n.Kind != yaml.ScalarNode:
		return "expected a single value, found " + p.kindName(n)
	case t == durationType:
		return p.quote(n) + " is not a duration; write it like 10s, 1m30s or 500ms"
	case t.Kind() == reflect.Bool:
		return p.quote(n) + " is not a boolean; write true or false"
	case t.Kind() == reflect.Int && strings.Trim(n.Value, "+-0123456789") == "" && n.Value != "":
		return p.quote(n) + " is too large; write a whole number such as 8"
	case t.Kind() == reflect.Int:
		return p.quote(n) + " is not a whole number; write one such as 8"
	}
	return msg
}

// quote returns n's value quoted for an error, or, when it came from a
// ${VAR}, the text as written.
func (p *prepare) quote(n *yaml.Node) string {
	if w, ok := p.written[n]; ok {
		return fromEnv(w).String()
	}
	return strconv.Quote(n.Value)
}

func (p *prepare) kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if _, ok := p.written[n]; ok {
			return p.quote(n)
		}
		return "the value " + p.quote(n)
	}
	return "nothing"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var (
	durationType = reflect.TypeOf(time.Duration(0))
	byteSizeType = reflect.TypeOf(ByteSize(0))
)

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
