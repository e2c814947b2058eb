package schema

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// parseYAML parses one YAML document. A syntax error becomes a Problem with the line
// yaml.v3 reports; a file with several documents is an error.
func parseYAML(src *Source, data []byte, problems *Problems) *yaml.Node {
	var doc yaml.Node
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&doc); err != nil {
		line, msg := yamlErrorLine(err)
		if err.Error() == "EOF" {
			line, msg = 1, "the file is empty"
		}
		*problems = append(*problems, Problem{File: src.File, Line: line, Col: 1, Severity: Error, Message: msg})
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		*problems = append(*problems, Problem{File: src.File, Line: extra.Line, Col: extra.Column, Severity: Error,
			Message: "a file holds exactly one YAML document; remove the extra '---' document"})
		return nil
	case !errors.Is(err, io.EOF):
		line, msg := yamlErrorLine(err)
		*problems = append(*problems, Problem{File: src.File, Line: line, Col: 1, Severity: Error, Message: msg})
		return nil
	}
	if len(doc.Content) == 0 {
		*problems = append(*problems, Problem{File: src.File, Line: 1, Col: 1, Severity: Error, Message: "the file is empty"})
		return nil
	}
	return doc.Content[0]
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parserErrors are the messages of yaml.v3's parser (as opposed to its scanner).
var parserErrors = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
}

// yamlErrorLine extracts the line from a yaml.v3 error and phrases the rest plainly.
func yamlErrorLine(err error) (int, string) {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		// yaml.v3 reports parser errors with a 0-based line and scanner errors with a
		// 1-based one; only the parser's messages are shifted.
		if parserErrors[m[2]] || strings.HasPrefix(m[2], "found undefined tag handle") {
			n++
		}
		return n, "invalid YAML: " + m[2]
	}
	return 1, "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")
}

// decoder maps a YAML node tree onto Go types strictly: unknown keys, wrong types and
// duplicate keys are problems, all of them are collected, and the position of every
// value is recorded by its field path for later validation messages.
type decoder struct {
	rep reporter
}

func decodeStrict(src *Source, node *yaml.Node, out any, problems *Problems) {
	src.pos = map[string]Pos{}
	src.root = Pos{node.Line, node.Column}
	d := decoder{rep: reporter{src: src, problems: problems}}
	d.value(node, reflect.ValueOf(out).Elem(), "", nil)
}

func (d decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.rep.at(Error, Pos{n.Line, n.Column}, path, format, args...)
}

var yamlNodeType = reflect.TypeFor[*yaml.Node]()

// value decodes n into v. key is the mapping key n was found under, if any: a block
// mapping or list is located at its key (where a person reads "spec:"), a scalar at
// itself.
func (d decoder) value(n *yaml.Node, v reflect.Value, path string, key *yaml.Node) {
	if n.Kind == yaml.AliasNode {
		// Aliases can expand exponentially or form cycles; a desired-state file is small
		// enough to write out.
		d.fail(n, path, "YAML aliases (*%s) are not supported in desired-state files; write the value out", n.Value)
		return
	}
	if path != "" {
		d.rep.src.pos[path] = nodePos(n, key)
	}
	if v.Type() == yamlNodeType {
		v.Set(reflect.ValueOf(n))
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		if t := v.Type(); (t.Kind() == reflect.Struct || (t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct)) && hasRequired(t) {
			d.fail(n, path, "expected a mapping of fields, got null")
		}
		return // an explicit null leaves the zero value
	}
	switch v.Kind() {
	case reflect.Struct:
		d.structValue(n, v, path)
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(n, v.Elem(), path, key)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "expected a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.value(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i), nil)
		}
		v.Set(s)
	case reflect.Map:
		d.mapValue(n, v, path)
	case reflect.Interface:
		v.Set(reflect.ValueOf(d.anyValue(n, path)))
	case reflect.String:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
			d.fail(n, path, "expected a string, got %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			d.fail(n, path, "expected true or false, got %s", describe(n))
			return
		}
		v.SetBool(n.Value == "true" || n.Value == "True" || n.Value == "TRUE")
	case reflect.Int, reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			d.fail(n, path, "expected a whole number, got %s", describe(n))
			return
		}
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil {
			d.fail(n, path, "number out of range")
			return
		}
		v.SetInt(i)
	default:
		panic(fmt.Sprintf("schema: no strict decoding for %s", v.Type()))
	}
}

func (d decoder) structValue(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping of fields, got %s", describe(n))
		return
	}
	fields := yamlFields(v.Type())
	seen := map[string]int{}
	suggested := map[string]bool{} // a misspelt key already points at the field
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := k.Value
		fpath := joinPath(path, key)
		if line, dup := seen[key]; dup {
			d.fail(k, fpath, "duplicate key %q (first defined at line %d)", key, line)
			continue
		}
		seen[key] = k.Line
		f, ok := fields[key]
		if !ok {
			hint, near := suggest(key, fields, path)
			suggested[near] = near != ""
			d.fail(k, fpath, "unknown field %q%s", key, hint)
			continue
		}
		d.value(val, v.FieldByIndex(f.index), fpath, k)
	}
	// Required fields are checked after decoding so that one missing parent does not
	// produce a cascade: only fields of written structs are reported.
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		f := fields[name]
		if !f.required || suggested[name] {
			continue
		}
		if !seenKey(seen, name) {
			d.fail(n, path, "missing required field %q", name)
		} else if val := valueOf(n, name); val != nil && val.Kind == yaml.ScalarNode && (val.Tag == "!!null" || (val.Tag == "!!str" && val.Value == "")) {
			d.fail(val, joinPath(path, name), "required field %q is empty", name)
		}
	}
}

func seenKey(seen map[string]int, k string) bool { _, ok := seen[k]; return ok }

// valueOf returns the value of key in a mapping node.
func valueOf(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// hasRequired reports whether a struct type has a required field.
func hasRequired(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for _, f := range yamlFields(t) {
		if f.required {
			return true
		}
	}
	return false
}

func (d decoder) mapValue(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		fpath := joinPath(path, k.Value)
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "keys must be plain strings")
			continue
		}
		if line, dup := seen[k.Value]; dup {
			d.fail(k, fpath, "duplicate key %q (first defined at line %d)", k.Value, line)
			continue
		}
		seen[k.Value] = k.Line
		elem := reflect.New(v.Type().Elem()).Elem()
		d.value(val, elem, fpath, k)
		m.SetMapIndex(reflect.ValueOf(k.Value), elem)
	}
	v.Set(m)
}

// anyValue converts free-form YAML (hermesConfig) to plain Go values, still rejecting
// duplicate keys.
func (d decoder) anyValue(n *yaml.Node, path string) any {
	if n.Kind == yaml.AliasNode {
		d.fail(n, path, "YAML aliases (*%s) are not supported in desired-state files; write the value out", n.Value)
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			fpath := joinPath(path, k.Value)
			if _, dup := m[k.Value]; dup {
				d.fail(k, fpath, "duplicate key %q", k.Value)
				continue
			}
			d.rep.src.pos[fpath] = nodePos(val, k)
			m[k.Value] = d.anyValue(val, fpath)
		}
		return m
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		for i, item := range n.Content {
			s[i] = d.anyValue(item, fmt.Sprintf("%s[%d]", path, i))
		}
		return s
	default:
		var x any
		if err := n.Decode(&x); err != nil {
			d.fail(n, path, "invalid value: %v", err)
		}
		return x
	}
}

// describe names the kind of a YAML node for type errors; it never quotes the value,
// which might be a secret.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.Tag {
	case "!!str":
		return "a string"
	case "!!int":
		return "a number"
	case "!!float":
		return "a decimal number"
	case "!!bool":
		return "a boolean"
	case "!!null":
		return "null"
	}
	return "a " + strings.TrimPrefix(n.Tag, "!!")
}

type fieldInfo struct {
	index    []int
	required bool
	field    reflect.StructField
}

// yamlFields lists a struct's YAML keys, following inline embedded structs.
func yamlFields(t reflect.Type) map[string]fieldInfo {
	out := map[string]fieldInfo{}
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("yaml")
			name, opts, _ := strings.Cut(tag, ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			idx := append(slices.Clone(prefix), i)
			if strings.Contains(opts, "inline") {
				walk(f.Type, idx)
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			out[name] = fieldInfo{index: idx, required: f.Tag.Get("required") == "true", field: f}
		}
	}
	walk(t, nil)
	return out
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func nodePos(n, key *yaml.Node) Pos {
	if key != nil && (n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode) && n.Style&yaml.FlowStyle == 0 {
		return Pos{key.Line, key.Column}
	}
	return Pos{n.Line, n.Column}
}

// suggest offers the closest known field for a misspelt key, or lists the known ones. It
// returns the hint and the suggested field.
func suggest(key string, fields map[string]fieldInfo, path string) (string, string) {
	names := slices.Sorted(maps.Keys(fields))
	best, bestDist := "", 3
	for _, n := range names {
		if dist := levenshtein(strings.ToLower(key), strings.ToLower(n)); dist < bestDist {
			best, bestDist = n, dist
		}
	}
	if best != "" {
		return fmt.Sprintf("; did you mean %q?", best), best
	}
	where := "here"
	if path != "" {
		where = "in " + path
	}
	return fmt.Sprintf(" (fields allowed %s: %s)", where, strings.Join(names, ", ")), ""
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
