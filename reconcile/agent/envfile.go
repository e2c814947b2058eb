package agent

import (
	"bytes"
	"slices"
	"strings"
)

// envLine is one line of a .env file: a KEY=VALUE assignment or anything else (comments,
// blank lines), which is kept verbatim.
type envLine struct {
	key   string // "" for a non-assignment line
	value string
	raw   string
}

// parseEnv reads a .env file the way python-dotenv (which Hermes uses) does for the
// forms hermes-gitops writes and people type: KEY=VALUE, optional "export ", double
// quotes with \n \" \\ escapes, single quotes literal, # comments after unquoted values.
func parseEnv(data []byte) []envLine {
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	text = strings.TrimSuffix(text, "\n")
	if text == "" {
		return nil
	}
	var out []envLine
	for _, raw := range strings.Split(text, "\n") {
		out = append(out, parseEnvLine(raw))
	}
	return out
}

func parseEnvLine(raw string) envLine {
	s := strings.TrimSpace(raw)
	if s == "" || strings.HasPrefix(s, "#") {
		return envLine{raw: raw}
	}
	s = strings.TrimPrefix(s, "export ")
	k, v, ok := strings.Cut(s, "=")
	k = strings.TrimSpace(k)
	if !ok || !validEnvName(k) {
		return envLine{raw: raw}
	}
	return envLine{key: k, value: parseEnvValue(strings.TrimSpace(v)), raw: raw}
}

func parseEnvValue(v string) string {
	switch {
	case strings.HasPrefix(v, `"`):
		var b strings.Builder
		for i := 1; i < len(v); i++ {
			c := v[i]
			if c == '"' {
				break
			}
			if c == '\\' && i+1 < len(v) {
				i++
				switch v[i] {
				case 'n':
					b.WriteByte('\n')
				case 't':
					b.WriteByte('\t')
				case 'r':
					b.WriteByte('\r')
				default:
					b.WriteByte(v[i])
				}
				continue
			}
			b.WriteByte(c)
		}
		return b.String()
	case strings.HasPrefix(v, `'`):
		v = v[1:]
		if i := strings.IndexByte(v, '\''); i >= 0 {
			v = v[:i]
		}
		return v
	default:
		if i := strings.Index(v, " #"); i >= 0 {
			v = v[:i]
		}
		return strings.TrimSpace(v)
	}
}

func validEnvName(k string) bool {
	if k == "" {
		return false
	}
	for i, c := range k {
		if c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return false
	}
	return true
}

// formatEnvValue writes a value so that parseEnvValue (and python-dotenv) read it back
// exactly: plain when it is safe, else double-quoted with escapes.
func formatEnvValue(v string) string {
	if v != "" && strings.TrimSpace(v) == v && !strings.ContainsAny(v, " \t\r\n\"'#\\$`=") {
		return v
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	return `"` + r.Replace(v) + `"`
}

// envValues returns each key's effective value (the last definition wins, as in
// python-dotenv), the keys in order of first appearance, and the keys defined twice.
func envValues(lines []envLine) (values map[string]string, order, dups []string) {
	values = map[string]string{}
	for _, l := range lines {
		if l.key == "" {
			continue
		}
		if _, seen := values[l.key]; seen {
			if !slices.Contains(dups, l.key) {
				dups = append(dups, l.key)
			}
		} else {
			order = append(order, l.key)
		}
		values[l.key] = l.value
	}
	return values, order, dups
}

// MergeEnv updates a .env file like the control planes' mergeEnvFile: keys in set get
// their new value where they first appear (or are appended), keys in remove go, duplicate
// definitions collapse to one line holding the effective value, and comments, blank lines,
// order and every other key are kept.
func MergeEnv(existing []byte, set []EnvVar, remove []string) []byte {
	lines := parseEnv(existing)
	values, _, _ := envValues(lines)
	want := map[string]string{}
	for _, kv := range set {
		want[kv.Name] = kv.Value
	}
	var b bytes.Buffer
	written := map[string]bool{}
	for _, l := range lines {
		switch {
		case l.key == "":
			b.WriteString(l.raw)
		case slices.Contains(remove, l.key) || written[l.key]:
			continue
		default:
			v, managed := want[l.key]
			switch {
			case managed:
				b.WriteString(l.key + "=" + formatEnvValue(v))
			case values[l.key] != l.value:
				// a duplicate whose later definition wins: keep the winning value here
				b.WriteString(l.key + "=" + formatEnvValue(values[l.key]))
			default:
				b.WriteString(l.raw)
			}
			written[l.key] = true
		}
		b.WriteByte('\n')
	}
	for _, kv := range set {
		if !written[kv.Name] && !slices.Contains(remove, kv.Name) {
			b.WriteString(kv.Name + "=" + formatEnvValue(kv.Value) + "\n")
			written[kv.Name] = true
		}
	}
	return b.Bytes()
}
