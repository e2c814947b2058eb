package bundles

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
)

var (
	yamlLineErr    = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	yamlUnknownKey = regexp.MustCompile(`^field (\S+) not found in type bundles\.(\w+)$`)
)

// yamlTypeContext says where, in words, the keys of each strictly decoded type live.
var yamlTypeContext = map[string]string{
	"bundleFile":     "",
	"bundleRequires": " in requires",
	"frontMatter":    "",
	"hermesMeta":     " in metadata.hermes",
	"envVar":         " in required_environment_variables",
}

// fileErr is an error about one file of the catalogue, at a line when one is known.
func fileErr(file string, line int, format string, args ...any) error {
	if line > 0 {
		return fmt.Errorf("%s:%d: %s", file, line, fmt.Sprintf(format, args...))
	}
	return fmt.Errorf("%s: %s", file, fmt.Sprintf(format, args...))
}

// decodeStrict decodes exactly one YAML document into v, refusing keys v does not
// declare. Errors name the file and, where yaml gives one, the line; lineOffset is the
// number of file lines before the YAML text (1 for SKILL.md front matter).
func decodeStrict(file string, lineOffset int, data []byte, v any) []error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) {
		return []error{fileErr(file, 0, "empty YAML document")}
	}
	if err != nil {
		return yamlErrors(file, lineOffset, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return []error{fileErr(file, extra.Line+lineOffset, "more than one YAML document")}
	}
	return nil
}

// yamlErrors rewrites yaml.v3's messages ("line 3: field colour not found in type
// bundles.bundleFile") into "file:3: unknown key \"colour\"".
func yamlErrors(file string, lineOffset int, err error) []error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var out []error
	for _, m := range msgs {
		line := 0
		if sub := yamlLineErr.FindStringSubmatch(m); sub != nil {
			line, _ = strconv.Atoi(sub[1])
			line += lineOffset
			m = sub[2]
		}
		if sub := yamlUnknownKey.FindStringSubmatch(m); sub != nil {
			m = fmt.Sprintf("unknown key %q%s", sub[1], yamlTypeContext[sub[2]])
		}
		out = append(out, fileErr(file, line, "%s", m))
	}
	return out
}

// yamlRoot parses data into a node tree for line look-ups; it returns nil when data does
// not parse (decodeStrict reports why).
func yamlRoot(data []byte) *yaml.Node {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return nil
	}
	return doc.Content[0]
}

// keyLine returns the line of the mapping key at path (e.g. "metadata", "hermes",
// "category") below root, or 0 when it is absent.
func keyLine(root *yaml.Node, path ...string) int {
	n := root
	line := 0
	for _, k := range path {
		if n == nil || n.Kind != yaml.MappingNode {
			return 0
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				line = n.Content[i].Line
				next = n.Content[i+1]
				break
			}
		}
		if next == nil {
			return 0
		}
		n = next
	}
	return line
}
