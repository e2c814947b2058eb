// Package shellquote turns an argv into a POSIX shell command line. It is the one place
// in the project where that happens: remote commands are built as argv and quoted here,
// never pasted together from strings.
//
// Every word is either left as is, when it consists only of characters that no POSIX
// shell (sh, dash, bash, zsh in sh mode) treats specially, or wrapped in single quotes,
// inside which a shell interprets nothing. An embedded single quote closes the quote,
// adds an escaped quote and reopens:
//
//	it's  →  'it'\''s'
//	(empty) → ''
//
// The result, read by the shell, yields exactly the original words: no expansion, no
// globbing, no word splitting, no command substitution.
//
// NUL cannot be part of an argument of a real program (execve takes C strings), so Join
// rejects it instead of silently truncating.
package shellquote

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNUL is returned (wrapped) by Join when an argument contains a NUL byte.
var ErrNUL = errors.New("argument contains a NUL byte")

// safeByte reports whether b may appear unquoted in a word in any position.
func safeByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	switch b {
	case '_', '-', '.', '/', ':', '=', '@', '%', '+', ',':
		return true
	}
	return false
}

func plain(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !safeByte(s[i]) {
			return false
		}
	}
	return true
}

// Quote returns s as a single shell word. Words made only of the characters
// [A-Za-z0-9_./:=@%+,-] stay as they are; anything else is single-quoted. The empty
// string becomes a pair of single quotes.
//
// Quote is for argument positions. The first word of a command line has extra rules
// (reserved words such as "if", assignments such as "A=b"); Join handles them. Quote
// does not check for NUL bytes: use Join, which does.
func Quote(s string) string {
	if plain(s) {
		return s
	}
	return quote(s)
}

func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			b.WriteString(`'\''`)
			continue
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('\'')
	return b.String()
}

// reserved are the words a shell recognises as syntax in command position when they are
// unquoted (POSIX reserved words plus those of bash, ksh and zsh).
var reserved = map[string]bool{
	"case": true, "do": true, "done": true, "elif": true, "else": true, "esac": true,
	"fi": true, "for": true, "if": true, "in": true, "then": true, "until": true,
	"while": true, "function": true, "select": true, "time": true, "coproc": true,
	"repeat": true, "foreach": true, "end": true, "nocorrect": true, "noglob": true,
}

// quoteCommand quotes the first word of a command line: like Quote, but a reserved word
// or a word containing '=' (which the shell would take for a variable assignment) is
// quoted too.
func quoteCommand(s string) string {
	if plain(s) && !reserved[s] && !strings.Contains(s, "=") {
		return s
	}
	return quote(s)
}

// Join quotes every word of argv and joins them with single spaces into a line that a
// POSIX shell runs as exactly that argv. The first word is quoted as a command name
// (see Quote). An argument containing a NUL byte is an error wrapping ErrNUL; an empty
// argv gives the empty string.
func Join(argv []string) (string, error) {
	var b strings.Builder
	for i, a := range argv {
		if strings.IndexByte(a, 0) >= 0 {
			return "", fmt.Errorf("shellquote: argument %d: %w", i, ErrNUL)
		}
		if i == 0 {
			b.WriteString(quoteCommand(a))
			continue
		}
		b.WriteByte(' ')
		b.WriteString(Quote(a))
	}
	return b.String(), nil
}

// MustJoin is Join for argv known to be free of NUL bytes (constants); it panics
// otherwise.
func MustJoin(argv ...string) string {
	s, err := Join(argv)
	if err != nil {
		panic(err)
	}
	return s
}
