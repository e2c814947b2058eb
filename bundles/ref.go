package bundles

import (
	"fmt"
	"strings"
)

// MaxNameLen is the longest bundle, skill, category or toolset name the catalogue accepts.
const MaxNameLen = 64

// Ref names one version of a bundle or of an à-la-carte skill: "name@version", as a
// tenant file pins it.
type Ref struct {
	Name    string
	Version string
}

// String gives back the "name@version" form ParseRef reads.
func (r Ref) String() string { return r.Name + "@" + r.Version }

// ParseRef parses "name@version". The name must match ^[a-z0-9][a-z0-9-]*$ (at most
// MaxNameLen characters) and the version must be a semantic version (see ValidVersion).
func ParseRef(s string) (Ref, error) {
	name, ver, ok := strings.Cut(s, "@")
	if !ok {
		return Ref{}, fmt.Errorf("reference %q: missing \"@version\" (want name@version, e.g. astral-core@0.2.0)", s)
	}
	if err := ValidName(name); err != nil {
		return Ref{}, fmt.Errorf("reference %q: %w", s, err)
	}
	if err := ValidVersion(ver); err != nil {
		return Ref{}, fmt.Errorf("reference %q: %w", s, err)
	}
	return Ref{Name: name, Version: ver}, nil
}

// ValidName returns nil if s is a valid bundle, skill or category name:
// ^[a-z0-9][a-z0-9-]*$, at most MaxNameLen characters.
func ValidName(s string) error {
	if s == "" {
		return fmt.Errorf("empty name")
	}
	if len(s) > MaxNameLen {
		return fmt.Errorf("bad name %q: longer than %d characters", s, MaxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0 {
			continue
		}
		return fmt.Errorf("bad name %q: want lowercase letters, digits and \"-\", starting with a letter or digit", s)
	}
	return nil
}

// validToolset checks a Hermes toolset name such as terminal, web or session_search.
func validToolset(s string) error {
	if s == "" || len(s) > MaxNameLen {
		return fmt.Errorf("bad toolset name %q", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || (c >= '0' && c <= '9' || c == '-' || c == '_') && i > 0 {
			continue
		}
		return fmt.Errorf("bad toolset name %q: want lowercase letters, digits, \"-\" and \"_\", starting with a letter", s)
	}
	return nil
}

// validEnvName checks an environment variable name: ^[A-Z_][A-Z0-9_]*$.
func validEnvName(s string) error {
	if s == "" {
		return fmt.Errorf("empty environment variable name")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c == '_' || c >= '0' && c <= '9' && i > 0 {
			continue
		}
		return fmt.Errorf("bad environment variable name %q: want ^[A-Z_][A-Z0-9_]*$", s)
	}
	return nil
}
