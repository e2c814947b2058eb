package wizard

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Tenant ids: the rule of schema (metadata.name).
const (
	minIDLen = 3
	maxIDLen = 40
)

var tenantIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$`)

// ValidTenantID reports whether id is a valid tenant id.
func ValidTenantID(id string) bool { return tenantIDRE.MatchString(id) }

// transliterations for Latin letters that Unicode decomposition does not reduce to ASCII.
var transliterations = map[rune]string{
	'ß': "ss", 'æ': "ae", 'œ': "oe", 'ø': "o", 'ł': "l", 'đ': "d", 'ð': "d", 'þ': "th", 'ı': "i",
	'Æ': "ae", 'Œ': "oe", 'Ø': "o", 'Ł': "l", 'Đ': "d", 'Ð': "d", 'Þ': "th",
}

// Slugify turns an agent name into a tenant id: lowercase ASCII letters and digits
// separated by single dashes, 3-40 characters. Accented Latin letters are transliterated
// ("Zoë Ørsted" → "zoe-orsted"), other non-ASCII characters are dropped, a name shorter
// than 3 characters gets "-agent" appended, and a name with nothing usable becomes
// "agent".
func Slugify(name string) string {
	var b strings.Builder
	dash := false
	emit := func(s string) {
		for _, r := range s {
			switch {
			case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
				if dash && b.Len() > 0 {
					b.WriteByte('-')
				}
				dash = false
				b.WriteRune(r)
			default:
				dash = true
			}
		}
	}
	for _, r := range norm.NFKD.String(name) {
		if unicode.Is(unicode.Mn, r) {
			continue // a combining accent of the letter before
		}
		if t, ok := transliterations[r]; ok {
			emit(t)
			continue
		}
		if r < 0x80 {
			emit(strings.ToLower(string(r)))
			continue
		}
		if unicode.IsLetter(r) || unicode.IsNumber(r) {
			continue // a letter of another script: dropped, not a word break
		}
		dash = true
	}
	return fitID(b.String())
}

// fitID makes a dash-separated slug fit the length limits.
func fitID(s string) string {
	if len(s) > maxIDLen {
		s = strings.TrimRight(s[:maxIDLen], "-")
	}
	switch {
	case s == "":
		return "agent"
	case len(s) < minIDLen:
		return s + "-agent"
	}
	return s
}

// suggestID returns a free id derived from id: id-2, id-3, … shortened to fit 40
// characters.
func suggestID(id string, taken func(string) bool) string {
	for n := 2; ; n++ {
		suffix := "-" + strconv.Itoa(n)
		base := id
		if len(base)+len(suffix) > maxIDLen {
			base = strings.TrimRight(base[:maxIDLen-len(suffix)], "-")
		}
		if c := base + suffix; !taken(c) {
			return c
		}
	}
}
