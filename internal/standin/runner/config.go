package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// parseConfig returns model.provider from a Hermes config.yaml. It is not a YAML parser:
// it reads just enough of the block style the reconciler renders (top-level `key: value`
// lines, a `model:` block mapping or a one-line `model: {provider: x}` flow mapping) and
// rejects what it cannot read, so that a broken tenant crash-loops as it would with the
// real runner. Errors name line numbers, never line contents: config.yaml may hold an
// api_key.
func parseConfig(data []byte) (provider string, err error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return "", errors.New("config.yaml is empty")
	}
	var (
		sawModel   bool
		inModel    bool
		childInd   = -1
		haveProv   bool
		lines      = strings.Split(string(data), "\n")
		docStarted bool
	)
	for i, raw := range lines {
		n := i + 1
		line := strings.TrimRight(raw, "\r")
		content := strings.TrimLeft(line, " \t")
		if content == "" || strings.HasPrefix(content, "#") {
			continue
		}
		lead := line[:len(line)-len(content)]
		if strings.Contains(lead, "\t") {
			return "", fmt.Errorf("config.yaml line %d: tab in indentation", n)
		}
		indent := len(lead)
		if indent == 0 {
			if content == "---" && !docStarted {
				docStarted = true
				continue
			}
			docStarted = true
			inModel = false
			key, value, ok := splitKeyValue(content)
			if !ok {
				return "", fmt.Errorf("config.yaml line %d: not a `key: value` mapping entry", n)
			}
			if key != "model" {
				continue
			}
			if sawModel {
				return "", fmt.Errorf("config.yaml line %d: duplicate model key", n)
			}
			sawModel = true
			switch {
			case value == "":
				inModel, childInd = true, -1
			case strings.HasPrefix(value, "{"):
				p, ok, err := flowProvider(value)
				if err != nil {
					return "", fmt.Errorf("config.yaml line %d: %w", n, err)
				}
				if ok {
					provider, haveProv = p, true
				}
			default:
				return "", fmt.Errorf("config.yaml line %d: model is not a mapping", n)
			}
			continue
		}
		docStarted = true
		if !inModel {
			continue // nested content of some other top-level key
		}
		if childInd < 0 {
			childInd = indent
		}
		if indent < childInd {
			return "", fmt.Errorf("config.yaml line %d: inconsistent indentation under model", n)
		}
		if indent > childInd || strings.HasPrefix(content, "- ") || content == "-" {
			continue // deeper structure: not ours to read
		}
		key, value, ok := splitKeyValue(content)
		if !ok {
			return "", fmt.Errorf("config.yaml line %d: not a `key: value` mapping entry", n)
		}
		if key == "provider" {
			if haveProv {
				return "", fmt.Errorf("config.yaml line %d: duplicate model.provider", n)
			}
			provider, haveProv = value, true
		}
	}
	switch {
	case !sawModel:
		return "", errors.New("config.yaml has no model mapping")
	case !haveProv:
		return "", errors.New("config.yaml: model has no provider")
	case provider == "":
		return "", errors.New("config.yaml: model.provider is empty")
	}
	return provider, nil
}

// splitKeyValue splits `key: value # comment` into its unquoted key and value.
func splitKeyValue(s string) (key, value string, ok bool) {
	var rest string
	if q := s[0]; q == '"' || q == '\'' {
		end := strings.IndexByte(s[1:], q)
		if end < 0 {
			return "", "", false
		}
		key, rest = s[1:1+end], s[2+end:]
		if !strings.HasPrefix(rest, ":") {
			return "", "", false
		}
		rest = rest[1:]
	} else {
		i := strings.Index(s, ":")
		for i >= 0 && i+1 < len(s) && s[i+1] != ' ' && s[i+1] != '\t' {
			// a colon inside a plain key (rare) or a URL-like scalar: keep looking
			j := strings.Index(s[i+1:], ":")
			if j < 0 {
				i = -1
				break
			}
			i += 1 + j
		}
		if i <= 0 {
			return "", "", false
		}
		key, rest = strings.TrimSpace(s[:i]), s[i+1:]
	}
	if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return "", "", false
	}
	v, ok := scalar(rest)
	return key, v, ok
}

// scalar reads a one-line YAML scalar: quoted, or plain up to a ` #` comment.
func scalar(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", true
	}
	switch s[0] {
	case '"', '\'':
		end := strings.IndexByte(s[1:], s[0])
		if end < 0 {
			return "", false
		}
		after := strings.TrimSpace(s[2+end:])
		if after != "" && !strings.HasPrefix(after, "#") {
			return "", false
		}
		return s[1 : 1+end], true
	}
	if i := strings.Index(s, " #"); i >= 0 {
		s = s[:i]
	}
	if i := strings.Index(s, "\t#"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s), true
}

// flowProvider reads provider from a one-line flow mapping `{provider: x, default: y}`.
func flowProvider(v string) (string, bool, error) {
	end := strings.LastIndex(v, "}")
	if end < 0 {
		return "", false, errors.New("model: unterminated flow mapping")
	}
	if tail := strings.TrimSpace(v[end+1:]); tail != "" && !strings.HasPrefix(tail, "#") {
		return "", false, errors.New("model: text after flow mapping")
	}
	v = v[1:end]
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, val, ok := splitKeyValue(part)
		if !ok {
			return "", false, errors.New("model: malformed flow mapping")
		}
		if k == "provider" {
			return val, true, nil
		}
	}
	return "", false, nil
}

// parseDotenv reads a Hermes .env: KEY=VALUE lines, blank lines and `#` comments, an
// optional `export ` prefix, values optionally in single quotes (literal) or double
// quotes (with \\ \" \n \r \t escapes); an unquoted value ends at ` #`. The last
// assignment of a key wins. Errors name line numbers only, never contents.
func parseDotenv(data []byte) (map[string]string, error) {
	env := map[string]string{}
	for i, raw := range strings.Split(string(data), "\n") {
		n := i + 1
		line := strings.TrimSpace(strings.TrimRight(raw, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "export "); ok {
			line = strings.TrimLeft(rest, " \t")
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf(".env line %d: missing '='", n)
		}
		key = strings.TrimSpace(key)
		if !validEnvKey(key) {
			return nil, fmt.Errorf(".env line %d: invalid variable name", n)
		}
		v, err := dotenvValue(strings.TrimLeft(value, " \t"))
		if err != nil {
			return nil, fmt.Errorf(".env line %d (%s): %w", n, key, err)
		}
		env[key] = v
	}
	return env, nil
}

func validEnvKey(k string) bool {
	if k == "" {
		return false
	}
	for i, c := range k {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func dotenvValue(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	var out, rest string
	switch v[0] {
	case '\'':
		end := strings.IndexByte(v[1:], '\'')
		if end < 0 {
			return "", errors.New("unterminated single quote")
		}
		out, rest = v[1:1+end], v[2+end:]
	case '"':
		var b strings.Builder
		i, closed := 1, false
		for ; i < len(v); i++ {
			c := v[i]
			if c == '"' {
				closed = true
				i++
				break
			}
			if c == '\\' && i+1 < len(v) {
				i++
				switch v[i] {
				case 'n':
					b.WriteByte('\n')
				case 'r':
					b.WriteByte('\r')
				case 't':
					b.WriteByte('\t')
				case '\\', '"', '\'', '$':
					b.WriteByte(v[i])
				default:
					b.WriteByte('\\')
					b.WriteByte(v[i])
				}
				continue
			}
			b.WriteByte(c)
		}
		if !closed {
			return "", errors.New("unterminated double quote")
		}
		out, rest = b.String(), v[i:]
	default:
		for i := 0; i < len(v); i++ {
			if v[i] == '#' && i > 0 && (v[i-1] == ' ' || v[i-1] == '\t') {
				v = v[:i]
				break
			}
		}
		return strings.TrimRight(v, " \t"), nil
	}
	rest = strings.TrimSpace(rest)
	if rest != "" && !strings.HasPrefix(rest, "#") {
		return "", errors.New("text after closing quote")
	}
	return out, nil
}
