package shellquote

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/firemountain/hermes-gitops/internal/testenv"
)

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "''"},
		{"abc", "abc"},
		{"abc-1_./:=@%+,", "abc-1_./:=@%+,"},
		{"--label=hermes.managed-by=hermesctl", "--label=hermes.managed-by=hermesctl"},
		{"-rf", "-rf"},
		{"a b", "'a b'"},
		{"it's", `'it'\''s'`},
		{"'", `''\'''`},
		{"''", `''\'''\'''`},
		{`"`, `'"'`},
		{`back\slash`, `'back\slash'`},
		{"$HOME", "'$HOME'"},
		{"$(id)", "'$(id)'"},
		{"`id`", "'`id`'"},
		{"a;b", "'a;b'"},
		{"a && b", "'a && b'"},
		{"a|b", "'a|b'"},
		{"*", "'*'"},
		{"?", "'?'"},
		{"[a]", "'[a]'"},
		{"~", "'~'"},
		{"~root", "'~root'"},
		{"#comment", "'#comment'"},
		{"!", "'!'"},
		{"{a,b}", "'{a,b}'"},
		{"a\nb", "'a\nb'"},
		{"\t", "'\t'"},
		{"<in", "'<in'"},
		{">out", "'>out'"},
		{"x&", "'x&'"},
		{"(sub)", "'(sub)'"},
		{"héllo", "'héllo'"},
		{"日本", "'日本'"},
		{"\xff\xfe", "'\xff\xfe'"},
		{"'; rm -rf / #", `''\''; rm -rf / #'`},
	} {
		if got := Quote(tc.in); got != tc.want {
			t.Errorf("Quote(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestJoin(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want string
	}{
		{nil, ""},
		{[]string{"docker", "ps"}, "docker ps"},
		{[]string{"docker", "run", "--name", "hermes-cody1", "-e", "A=b c"}, "docker run --name hermes-cody1 -e 'A=b c'"},
		{[]string{"printf", "%s\\n", ""}, `printf '%s\n' ''`},
		{[]string{"echo", "$(touch /tmp/pwned)", "`id`", "a;b", "x && y"}, "echo '$(touch /tmp/pwned)' '`id`' 'a;b' 'x && y'"},
		// The first word: assignments and reserved words must not act as syntax.
		{[]string{"FOO=bar", "x"}, "'FOO=bar' x"},
		{[]string{"if", "true"}, "'if' true"},
		{[]string{"time", "x"}, "'time' x"},
		{[]string{"!"}, "'!'"},
		{[]string{"/usr/bin/env", "if", "A=b"}, "/usr/bin/env if A=b"},
	} {
		got, err := Join(tc.argv)
		if err != nil {
			t.Fatalf("Join(%q): %v", tc.argv, err)
		}
		if got != tc.want {
			t.Errorf("Join(%q) = %q, want %q", tc.argv, got, tc.want)
		}
	}
}

func TestJoinRejectsNUL(t *testing.T) {
	_, err := Join([]string{"echo", "ok", "a\x00b"})
	if !errors.Is(err, ErrNUL) {
		t.Fatalf("Join with NUL: err = %v, want ErrNUL", err)
	}
	if !strings.Contains(err.Error(), "argument 2") {
		t.Errorf("error %q does not name the argument", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("MustJoin with NUL did not panic")
		}
	}()
	MustJoin("a\x00")
}

func TestMustJoin(t *testing.T) {
	if got, want := MustJoin("docker", "inspect", "--format", "{{json .}}"), "docker inspect --format '{{json .}}'"; got != want {
		t.Errorf("MustJoin = %q, want %q", got, want)
	}
}

// nasty is the seed corpus shared by the table test and the fuzz target.
var nasty = []string{
	"", " ", "  ", "'", "''", `"`, `\`, `\'`, `'\''`, "$", "$HOME", "${HOME}", "$(id)", "`id`",
	"a;b", "a && b", "a || b", "a|b", "*", "?", "[", "]", "~", "~/x", "#", "!", "!!", "-n",
	"-e", "--", "-", "\n", "a\nb", "\r\n", "\t", "{a,b}", "<", ">", ">>", "&", "(", ")",
	"%s", "%b", `\n`, `\0`, "héllo", "日本語", "\xff", "\x01\x02\x7f", "a=b", "IFS=x",
	"'; rm -rf / #", "\"$(id)\"", "'$(id)'", strings.Repeat("'", 100), "x'y'z",
}

// shells returns the shells to check quoting against: /bin/sh always, bash when
// installed (a worker's login shell may be either).
func shells(t testing.TB) []string {
	sh, err := exec.LookPath("sh")
	if err != nil {
		testenv.Missing(t, "sh", err.Error())
	}
	out := []string{sh}
	if bash, err := exec.LookPath("bash"); err == nil {
		out = append(out, bash)
	}
	return out
}

// roundTrip runs `printf '%s\0' <Join(argv)>` in shell and returns the words printed.
func roundTrip(t testing.TB, shell string, argv []string) []string {
	t.Helper()
	line, err := Join(argv)
	if err != nil {
		t.Fatalf("Join(%q): %v", argv, err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(shell, "-c", `printf '%s\0' `+line)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s -c %q: %v: %s", shell, line, err, stderr.String())
	}
	out := strings.Split(stdout.String(), "\x00")
	return out[:len(out)-1] // printf ends every word with NUL
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestShellRoundTrip(t *testing.T) {
	for _, shell := range shells(t) {
		for _, s := range nasty {
			argv := []string{s, "x" + s + "y", s + s}
			if got := roundTrip(t, shell, argv); !equal(got, argv) {
				t.Errorf("%s: argv %q came back as %q", shell, argv, got)
			}
		}
		if got := roundTrip(t, shell, nasty); !equal(got, nasty) {
			t.Errorf("%s: all nasty strings at once came back as %q", shell, got)
		}
	}
}

// TestShellCommandWord checks that a first word the shell would read as syntax (a
// reserved word, an assignment) is run as a command name instead: the shell looks for a
// program of that name and does not find it (exit 127), rather than failing to parse
// (exit 2) or assigning a variable (exit 0).
func TestShellCommandWord(t *testing.T) {
	for _, shell := range shells(t) {
		for _, word := range []string{"if", "then", "fi", "while", "do", "done", "case", "esac", "for", "in", "until", "elif", "else", "{", "}", "!", "FOO=bar", "time", "function", "select", "coproc", "[[", "]]"} {
			line := MustJoin(word, "arg")
			cmd := exec.Command(shell, "-c", line)
			cmd.Env = []string{"PATH=/nonexistent"}
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 127 {
				t.Errorf("%s -c %q: err %v, output %q; want exit 127 (command not found)", shell, line, err, out)
			}
		}
	}
}

// FuzzJoin proves that no argv escapes its quoting: whatever the words, the shell hands
// exactly them to printf.
func FuzzJoin(f *testing.F) {
	for i, s := range nasty {
		f.Add(s, nasty[(i+1)%len(nasty)], nasty[(i+7)%len(nasty)])
	}
	f.Add("a\x00b", "", "")
	sh := shells(f)[0]
	f.Fuzz(func(t *testing.T, a, b, c string) {
		argv := []string{a, b, c}
		if strings.ContainsRune(a+b+c, 0) {
			if _, err := Join(argv); !errors.Is(err, ErrNUL) {
				t.Fatalf("Join(%q) with NUL: err = %v, want ErrNUL", argv, err)
			}
			return
		}
		if got := roundTrip(t, sh, argv); !equal(got, argv) {
			t.Fatalf("argv %q came back as %q", argv, got)
		}
	})
}
