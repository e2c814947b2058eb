package drift

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// FieldDiff is one difference in config.yaml between git and the worker.
type FieldDiff struct {
	Path string // dotted, e.g. "platform_toolsets.cli"
	Git  string
	Live string
	// Lost and Gained list elements of a list that only one side has.
	Lost, Gained []string
}

func (d FieldDiff) String() string {
	switch {
	case len(d.Lost) > 0 && len(d.Gained) > 0:
		return fmt.Sprintf("%s lost %s and gained %s", d.Path, strings.Join(d.Lost, ", "), strings.Join(d.Gained, ", "))
	case len(d.Lost) > 0:
		return fmt.Sprintf("%s lost %s", d.Path, strings.Join(d.Lost, ", "))
	case len(d.Gained) > 0:
		return fmt.Sprintf("%s gained %s", d.Path, strings.Join(d.Gained, ", "))
	}
	return fmt.Sprintf("%s is %s, git says %s", d.Path, d.Live, d.Git)
}

// secretKeyRE matches config keys whose values must not be shown (a key someone pasted
// into config.yaml by hand).
var secretKeyRE = regexp.MustCompile(`(?i)(key|token|secret|password|credential)`)

// ConfigDiff compares two config.yaml documents field by field. Values under keys that
// look secret are shown as "(set)"/"(unset)" only. Unparsable live content gives one
// difference at the root.
func ConfigDiff(gitYAML, liveYAML []byte) []FieldDiff {
	if liveYAML == nil {
		return nil
	}
	var g, l any
	if err := yaml.Unmarshal(gitYAML, &g); err != nil {
		return nil
	}
	if err := yaml.Unmarshal(liveYAML, &l); err != nil {
		return []FieldDiff{{Path: "(document)", Git: "valid YAML", Live: "invalid YAML: " + err.Error()}}
	}
	var out []FieldDiff
	diffValue("", g, l, &out)
	return out
}

func diffValue(path string, g, l any, out *[]FieldDiff) {
	secret := secretKeyRE.MatchString(lastKey(path))
	show := func(v any) string {
		if v == nil {
			return "(unset)"
		}
		if secret {
			return "(set)"
		}
		return fmt.Sprint(v)
	}
	gm, gIsMap := g.(map[string]any)
	lm, lIsMap := l.(map[string]any)
	if gIsMap && lIsMap {
		keys := map[string]bool{}
		for k := range gm {
			keys[k] = true
		}
		for k := range lm {
			keys[k] = true
		}
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			diffValue(joinPath(path, k), gm[k], lm[k], out)
		}
		return
	}
	gl, gIsList := g.([]any)
	ll, lIsList := l.([]any)
	if gIsList && lIsList && !secret {
		gs, ls := strs(gl), strs(ll)
		var lost, gained []string
		for _, x := range gs {
			if !slices.Contains(ls, x) {
				lost = append(lost, x)
			}
		}
		for _, x := range ls {
			if !slices.Contains(gs, x) {
				gained = append(gained, x)
			}
		}
		if len(lost)+len(gained) > 0 {
			*out = append(*out, FieldDiff{Path: path, Git: fmt.Sprint(gs), Live: fmt.Sprint(ls), Lost: lost, Gained: gained})
		} else if !slices.Equal(gs, ls) {
			*out = append(*out, FieldDiff{Path: path, Git: fmt.Sprint(gs), Live: fmt.Sprint(ls)})
		}
		return
	}
	if fmt.Sprint(g) != fmt.Sprint(l) || (g == nil) != (l == nil) {
		*out = append(*out, FieldDiff{Path: path, Git: show(g), Live: show(l)})
	}
}

func strs(xs []any) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = fmt.Sprint(x)
	}
	return out
}

func joinPath(p, k string) string {
	if p == "" {
		return k
	}
	return p + "." + k
}

func lastKey(p string) string {
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[i+1:]
	}
	return p
}
