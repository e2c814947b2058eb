package schema

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Severity says whether a problem stops a file from being used.
type Severity string

const (
	// Error: the file is invalid; a tenant with an error is held, not applied.
	Error Severity = "error"
	// Warning: the file is used, but something is probably wrong.
	Warning Severity = "warning"
	// Note: information a person should act on, such as an OAuth login still to do.
	Note Severity = "note"
)

// Problem is one finding about one place in one file. Its message never contains a
// secret value.
type Problem struct {
	File     string   `json:"file"`
	Line     int      `json:"line"`
	Col      int      `json:"col"`
	Severity Severity `json:"severity"`
	Field    string   `json:"field,omitempty"`
	Message  string   `json:"message"`
}

// String renders the problem the way compilers do: file:line:col: field: message.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", p.Line, p.Col)
	}
	b.WriteString(": ")
	if p.Severity != Error {
		b.WriteString(string(p.Severity))
		b.WriteString(": ")
	}
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems is every problem of a load, sorted by file, position and message.
type Problems []Problem

// Errors returns only the problems of severity Error.
func (ps Problems) Errors() Problems {
	var out Problems
	for _, p := range ps {
		if p.Severity == Error {
			out = append(out, p)
		}
	}
	return out
}

// HasErrors reports whether any problem is an Error.
func (ps Problems) HasErrors() bool { return len(ps.Errors()) > 0 }

// Error lets Problems be returned as an error: one problem per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Sort orders problems by file, line, column and message, and drops exact duplicates.
func (ps Problems) Sort() Problems {
	slices.SortFunc(ps, func(a, b Problem) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Col, b.Col),
			cmp.Compare(a.Field, b.Field),
			cmp.Compare(a.Message, b.Message),
		)
	})
	return slices.Compact(ps)
}

// reporter collects problems about one file.
type reporter struct {
	src      *Source
	problems *Problems
}

func (r reporter) at(sev Severity, pos Pos, field, format string, args ...any) {
	*r.problems = append(*r.problems, Problem{
		File: r.src.File, Line: pos.Line, Col: pos.Col, Severity: sev,
		Field: field, Message: fmt.Sprintf(format, args...),
	})
}

// errorf reports an error at the position of a field path.
func (r reporter) errorf(field, format string, args ...any) {
	r.at(Error, r.src.Pos(field), field, format, args...)
}

func (r reporter) warnf(field, format string, args ...any) {
	r.at(Warning, r.src.Pos(field), field, format, args...)
}

func (r reporter) notef(field, format string, args ...any) {
	r.at(Note, r.src.Pos(field), field, format, args...)
}
