package bundles

import (
	"fmt"
	"strings"
)

// A version as this catalogue understands it: semantic versioning 2.0.0
// (https://semver.org) MAJOR.MINOR.PATCH with an optional -prerelease. A leading "v"
// and +build metadata are refused: both would let two directory names denote the same
// version ("1.0.0" and "1.0.0+x" have equal precedence), which would make a pin
// ambiguous.
type version struct {
	major, minor, patch string   // decimal, no leading zeros
	pre                 []string // prerelease identifiers, nil for a release
}

// ValidVersion returns nil if s is a version the catalogue accepts (see [CompareVersions])
// and otherwise an error saying what is wrong with it.
func ValidVersion(s string) error {
	_, err := parseVersion(s)
	return err
}

func parseVersion(s string) (version, error) {
	bad := func(why string) (version, error) {
		return version{}, fmt.Errorf("bad version %q: %s", s, why)
	}
	switch {
	case s == "":
		return bad("empty; want MAJOR.MINOR.PATCH (semantic versioning), e.g. 1.0.0")
	case s[0] == 'v' || s[0] == 'V':
		return bad(fmt.Sprintf("drop the leading %q: versions are written 1.2.3, not v1.2.3", s[:1]))
	case strings.Contains(s, "+"):
		return bad("build metadata (+...) is not allowed; use a prerelease (-rc.1) or a new version")
	}
	core, pre, hasPre := strings.Cut(s, "-")
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return bad("want MAJOR.MINOR.PATCH (semantic versioning), e.g. 1.0.0")
	}
	for i, p := range parts {
		field := [...]string{"major", "minor", "patch"}[i]
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return bad(fmt.Sprintf("%s %q is not a number; want MAJOR.MINOR.PATCH, e.g. 1.0.0", field, p))
		}
		if len(p) > 1 && p[0] == '0' {
			return bad(fmt.Sprintf("%s %q has a leading zero", field, p))
		}
	}
	v := version{major: parts[0], minor: parts[1], patch: parts[2]}
	if hasPre {
		if pre == "" {
			return bad("empty prerelease after \"-\"")
		}
		for _, id := range strings.Split(pre, ".") {
			switch {
			case id == "":
				return bad("empty prerelease identifier")
			case strings.Trim(id, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-") != "":
				return bad(fmt.Sprintf("prerelease identifier %q may only hold [0-9A-Za-z-]", id))
			case isNumeric(id) && len(id) > 1 && id[0] == '0':
				return bad(fmt.Sprintf("numeric prerelease identifier %q has a leading zero", id))
			}
			v.pre = append(v.pre, id)
		}
	}
	return v, nil
}

func isNumeric(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }

// compareNumeric compares two decimal strings without leading zeros, of any length.
func compareNumeric(a, b string) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

func (v version) compare(w version) int {
	if c := compareNumeric(v.major, w.major); c != 0 {
		return c
	}
	if c := compareNumeric(v.minor, w.minor); c != 0 {
		return c
	}
	if c := compareNumeric(v.patch, w.patch); c != 0 {
		return c
	}
	// A release has higher precedence than any of its prereleases.
	switch {
	case v.pre == nil && w.pre == nil:
		return 0
	case v.pre == nil:
		return 1
	case w.pre == nil:
		return -1
	}
	for i := 0; i < len(v.pre) && i < len(w.pre); i++ {
		a, b := v.pre[i], w.pre[i]
		an, bn := isNumeric(a), isNumeric(b)
		var c int
		switch {
		case an && bn:
			c = compareNumeric(a, b)
		case an: // numeric identifiers sort before alphanumeric ones
			c = -1
		case bn:
			c = 1
		default:
			c = strings.Compare(a, b)
		}
		if c != 0 {
			return c
		}
	}
	switch {
	case len(v.pre) < len(w.pre):
		return -1
	case len(v.pre) > len(w.pre):
		return 1
	}
	return 0
}

// CompareVersions compares two versions by semantic-versioning precedence and returns
// -1, 0 or +1. Numbers compare numerically (0.10.0 > 0.9.0), a release is higher than
// its prereleases (1.0.0 > 1.0.0-rc.1), prerelease identifiers compare as semver says.
// An invalid version sorts before every valid one; two invalid ones compare as strings,
// so sorting with CompareVersions is always deterministic.
func CompareVersions(a, b string) int {
	va, errA := parseVersion(a)
	vb, errB := parseVersion(b)
	switch {
	case errA != nil && errB != nil:
		return strings.Compare(a, b)
	case errA != nil:
		return -1
	case errB != nil:
		return 1
	}
	return va.compare(vb)
}

// isPrerelease reports whether a valid version carries a -prerelease.
func isPrerelease(s string) bool {
	v, err := parseVersion(s)
	return err == nil && v.pre != nil
}
