package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// prepare is the pass over the parsed tree before yaml.v3 decodes it. It
// walks the tree beside the Go type each node decodes into, and does what
// yaml.v3 cannot:
//   - expand ${VAR} in values, after parsing, never quoting a secret;
//   - check every key against the schema, listing the valid ones (a
//     yaml.Node decodes without KnownFields, and the walk has to find each
//     key's field anyway to know the type below it);
//   - bound what the document expands to, aliases and ${VAR} included,
//     naming where;
//   - have numbers, booleans and durations read from the text as written,
//     quoted or not, and refuse a fraction where a count goes (yaml.v3
//     would truncate 1.5 to 1);
//   - refuse an entry of a map that has no value.
//
// yaml.v3 decodes the result and reports the rest: duplicate keys and
// values of the wrong type.
type prepare struct {
	file   string
	lookup func(string) (string, bool)
	// nodes and bytes are how many more nodes may be visited and how many
	// more bytes of keys and values they may hold. Aliases are visited at
	// each use, as they are decoded, so a small document could otherwise
	// expand into billions of values, or a few thousand uses of one large
	// value into gigabytes; ${VAR} expansion adds bytes too. over is set
	// once either is spent, and the walk stops.
	nodes, bytes int
	over         bool
	errs         []error
	// done holds the scalars already expanded: an alias visits its
	// anchor's nodes again. written holds, of those whose value came from
	// a ${VAR}, the text as written, which errors quote instead of the
	// value; expanded holds the same by each path the value is used at.
	done     map[*yaml.Node]bool
	written  map[*yaml.Node]string
	expanded expansions
	// want is the type each node decodes into, to explain yaml.v3's errors.
	want map[*yaml.Node]reflect.Type
}

// Bounds of what one document expands to, aliases counted at each use and
// ${VAR} references as expanded. A real configuration has a few hundred
// values in a few kilobytes. maxNodes also bounds yaml.v3's check for
// duplicate keys, which compares the keys of a mapping pairwise; maxBytes
// bounds the memory of the decoded configuration and of what `wharf check`
// prints.
const (
	maxNodes = 20_000
	maxBytes = 1 << 20
)

// spend takes nodes and bytes from the budget for node n at path, and
// reports whether the walk may go on. The first overrun is an error.
func (p *prepare) spend(n *yaml.Node, path string, nodes, bytes int) bool {
	if p.over {
		return false
	}
	p.nodes -= nodes
	p.bytes -= bytes
	switch {
	case p.nodes < 0:
		p.fail(n, path, "the document expands to more than %d values (aliases count at each use); write the configuration out without repeated *aliases", maxNodes)
	case p.bytes < 0:
		p.fail(n, path, "the document's keys and values come to more than %s (aliases count at each use, ${VAR} as expanded), where a configuration takes a few kilobytes; write it out without repeated *aliases and check the variables it uses", ByteSize(maxBytes))
	default:
		return true
	}
	p.over = true
	return false
}

func (p *prepare) fail(n *yaml.Node, path, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: n.Line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// walk visits n, which decodes into a value of type t at path. A node of a
// kind t cannot take is left for yaml.v3 to report.
func (p *prepare) walk(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if !p.spend(n, path, 1, 0) {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	p.want[n] = t
	switch k := t.Kind(); {
	case n.Kind == yaml.MappingNode && k == reflect.Struct:
		p.fields(n, t, path)
	case n.Kind == yaml.MappingNode && k == reflect.Map:
		p.entries(n, t, path)
	case n.Kind == yaml.SequenceNode && k == reflect.Slice:
		for i, item := range n.Content {
			p.walk(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case n.Kind == yaml.ScalarNode && k != reflect.Struct && k != reflect.Map && k != reflect.Slice:
		p.scalar(n, t, path)
	}
}

// fields visits the keys of a mapping that decodes into the struct type t.
func (p *prepare) fields(n *yaml.Node, t reflect.Type, path string) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kp := join(path, k.Value)
		if !p.spend(k, kp, 0, len(k.Value)) {
			return
		}
		f, ok := fieldByTag(t, k.Value)
		if !ok {
			p.fail(k, kp, "unknown key; valid keys here are: %s", strings.Join(tags(t), ", "))
			continue
		}
		p.walk(v, f.Type, kp)
	}
}

// entries visits a mapping that decodes into the map type t. Its keys are
// names, read as written.
func (p *prepare) entries(n *yaml.Node, t reflect.Type, path string) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kp := join(path, k.Value)
		if !p.spend(k, kp, 0, len(k.Value)) {
			return
		}
		if k.Kind == yaml.ScalarNode {
			if k.Tag == "!!merge" {
				p.fail(k, kp, "merge keys (<<) are not supported here; write the entries out")
				continue
			}
			k.Tag = "!!str"
		}
		if r := v; r.Tag == "!!null" || r.Kind == yaml.AliasNode && r.Alias.Tag == "!!null" {
			p.fail(v, kp, "missing value")
			continue
		}
		p.walk(v, t.Elem(), kp)
	}
}

// scalar expands n's ${VAR} references and sets its tag so that yaml.v3
// reads it into t from its text.
func (p *prepare) scalar(n *yaml.Node, t reflect.Type, path string) {
	if !p.done[n] && strings.Contains(n.Value, "$") {
		p.done[n] = true
		written := n.Value
		v, refs, ok := p.expand(n, path, t == secretType || secretPath(path))
		if !ok {
			return
		}
		n.Value, n.Tag = v, "!!str" // a variable's value is text, even "" or "null"
		if refs {
			p.written[n] = written
		}
	}
	if w, ok := p.written[n]; ok {
		p.expanded[path] = expansion{written: w, value: n.Value}
	}
	if !p.spend(n, path, 0, len(n.Value)) {
		return
	}
	switch {
	case n.Tag == "!!null":
		// key: with no value (or null, ~) keeps the default.
	case t.Kind() == reflect.String, t == durationType:
		n.Tag = "!!str" // time.ParseDuration reads a duration's text
	case t == byteSizeType:
		// ByteSize.UnmarshalYAML reads the text.
	case t.Kind() == reflect.Int && !isInt(n.Value), isNullText(n.Value):
		n.Tag = "!!str" // refused as text: not a count, or not "no value"
	default:
		n.Tag, n.Style = "", 0 // read as written, quoted or not: "8", "true"
	}
}

// isInt reports whether s is an integer as YAML reads one: 8, -3, 0x10,
// 1_000.
func isInt(s string) bool {
	_, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 0, 64)
	return err == nil
}

// isNullText reports text YAML would read as no value.
func isNullText(s string) bool {
	switch s {
	case "", "~", "null", "Null", "NULL":
		return true
	}
	return false
}

// expand replaces ${VAR} and ${VAR:-default} in n's value; $$ is a literal
// $. Expansion happens after parsing, so a variable's value can never
// change the structure of the document. The errors of a secret do not
// quote it. It reports whether the value held a ${VAR} reference, and
// whether it expanded.
func (p *prepare) expand(n *yaml.Node, path string, secret bool) (v string, refs, ok bool) {
	s := n.Value
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
			p.fail(n, path, "unterminated ${ in %s; close it with } or write $$ for a literal $", quoted(s))
			return "", false, false
		}
		ref := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !validEnvName(name) {
			if secret {
				p.fail(n, path, "invalid variable name in a ${...} of the secret; use letters, digits and _, or write $$ for a literal $")
			} else {
				p.fail(n, path, "invalid variable name %q in ${%s}; use letters, digits and _, or write $$ for a literal $", name, ref)
			}
			return "", false, false
		}
		val, ok := p.lookup(name)
		if !ok || (hasDef && val == "") {
			switch {
			case !hasDef && secret:
				p.fail(n, path, "environment variable %s is not set; set it in wharf's environment, or use the _file key", name)
				return "", false, false
			case !hasDef:
				p.fail(n, path, "environment variable %s is not set; set it or write ${%s:-default}", name, name)
				return "", false, false
			}
			val = def
		}
		if b.Len()+len(val) > p.bytes {
			p.spend(n, path, 0, b.Len()+len(val)) // over: fails
			return "", false, false
		}
		b.WriteString(val)
		refs = true
		i += end
	}
	return b.String(), refs, true
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
