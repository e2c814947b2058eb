package bundles

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/firemountain/hermes-gitops/internal/testenv"
)

// The shipped scripts are run for real: the knowledge-base writers must fail loudly,
// and save nothing anywhere, when their root is not configured (the seed's pitfall 7).

// installScript writes a skill's script to a temporary directory, as an install would.
func installScript(t *testing.T, s *Skill, path string) string {
	t.Helper()
	f, ok := s.File(path)
	if !ok {
		t.Fatalf("%s has no %s", s.Ref(), path)
	}
	p := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(p, f.Content, f.Mode); err != nil {
		t.Fatal(err)
	}
	return p
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs argv with only PATH, HOME and env set, and stdin as input.
func run(t *testing.T, env []string, stdin string, argv ...string) result {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LC_ALL=C"}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", argv, err)
	}
	return result{out.String(), errb.String(), code}
}

func wantCode(t *testing.T, r result, code int, stderrHas string) {
	t.Helper()
	if r.code != code || !strings.Contains(r.stderr, stderrHas) {
		t.Errorf("exit %d, stderr %q; want exit %d and stderr containing %q (stdout %q)", r.code, r.stderr, code, stderrHas, r.stdout)
	}
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

func TestAstralKBWriteScript(t *testing.T) {
	sh := testenv.LookPath(t, "sh")
	c := builtin(t)
	for _, version := range []string{"0.1.0", "0.2.0"} {
		t.Run(version, func(t *testing.T) {
			b, _ := c.Bundle("astral-core", version)
			kb, _ := b.Skill("astral-tenant-kb")
			script := installScript(t, kb, "scripts/kb_write.sh")

			// Unset: fails loudly with exit 3 and writes nothing, not even under HOME.
			home := t.TempDir()
			r := run(t, []string{"HOME=" + home}, "# Kathleen Brown\n", sh, script, "entities/people/kathleen-brown.md")
			wantCode(t, r, 3, "ASTRAL_KB_ROOT is not set")
			if !strings.Contains(r.stderr, "NOTHING WAS SAVED") || r.stdout != "" {
				t.Errorf("unset root: stdout %q, stderr %q", r.stdout, r.stderr)
			}
			if n := countFiles(t, home); n != 0 {
				t.Errorf("unset root: %d files written under HOME", n)
			}
			// Set but missing (volume not mounted): exit 3 too.
			r = run(t, []string{"ASTRAL_KB_ROOT=" + filepath.Join(t.TempDir(), "missing")}, "x\n", sh, script, "raw/a.md")
			wantCode(t, r, 3, "is not a directory")

			root := t.TempDir()
			env := []string{"ASTRAL_KB_ROOT=" + root + "/"}
			r = run(t, env, "# Kathleen Brown\n", sh, script, "entities/people/kathleen-brown.md")
			dest := filepath.Join(root, "entities", "people", "kathleen-brown.md")
			if r.code != 0 || !strings.HasPrefix(r.stdout, "saved "+dest+" (") {
				t.Fatalf("write: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			}
			if got := readFile(t, dest); got != "# Kathleen Brown\n" {
				t.Errorf("note = %q", got)
			}
			for _, bad := range []string{"../escape.md", "/etc/x.md", "entities/people/sub/x.md", "notes/x.md", "raw/Upper.md", "raw/.hidden.md"} {
				wantCode(t, run(t, env, "x\n", sh, script, bad), 2, "")
			}
			wantCode(t, run(t, env, "", sh, script, "raw/empty.md"), 2, "empty")
		})
	}
}

func TestAstralKBWriteScriptModes(t *testing.T) {
	sh := testenv.LookPath(t, "sh")
	b, _ := builtin(t).Bundle("astral-core", "0.2.0")
	kb, _ := b.Skill("astral-tenant-kb")
	script := installScript(t, kb, "scripts/kb_write.sh")
	root := t.TempDir()
	env := []string{"ASTRAL_KB_ROOT=" + root}
	note := filepath.Join(root, "entities", "people", "ana.md")

	if r := run(t, env, "one\n", sh, script, "entities/people/ana.md"); r.code != 0 {
		t.Fatalf("create: %+v", r)
	}
	wantCode(t, run(t, env, "two\n", sh, script, "entities/people/ana.md"), 5, "already exists")
	if r := run(t, env, "two\n", sh, script, "--append", "entities/people/ana.md"); r.code != 0 || readFile(t, note) != "one\ntwo\n" {
		t.Errorf("append: %+v, note %q", r, readFile(t, note))
	}
	if r := run(t, env, "three\n", sh, script, "--replace", "entities/people/ana.md"); r.code != 0 || readFile(t, note) != "three\n" {
		t.Errorf("replace: %+v, note %q", r, readFile(t, note))
	}
	wantCode(t, run(t, env, "x\n", sh, script, "--replace", "raw/none.md"), 2, "does not exist")
	wantCode(t, run(t, env, "x\n", sh, script, "--force", "raw/x.md"), 2, "unknown flag")
	log := readFile(t, filepath.Join(root, "log.md"))
	if n := strings.Count(log, "\n"); n != 3 || !strings.Contains(log, " append entities/people/ana.md (8 bytes)") {
		t.Errorf("log.md = %q", log)
	}
	proto := filepath.Join(t.TempDir(), ".hermes", "astral-kb-prototype", "knowledge")
	if err := os.MkdirAll(proto, 0o755); err != nil {
		t.Fatal(err)
	}
	wantCode(t, run(t, []string{"ASTRAL_KB_ROOT=" + proto}, "x\n", sh, script, "raw/x.md"), 3, "prototype fallback")

	check := installScript(t, kb, "scripts/kb_check.sh")
	if r := run(t, nil, "", sh, check); r.code != 3 || !strings.Contains(r.stdout, "FAIL ASTRAL_KB_ROOT is not set") {
		t.Errorf("kb_check unset: %+v", r)
	}
	if r := run(t, env, "", sh, check); r.code != 0 || !strings.Contains(r.stdout, "ok   writable") || !strings.Contains(r.stdout, "ok   1 person notes") {
		t.Errorf("kb_check: %+v", r)
	}
}

func TestHermesHomeKBScripts(t *testing.T) {
	sh := testenv.LookPath(t, "sh")
	c := builtin(t)
	capture, _ := c.Skill("kb-capture", "1.0.0")
	research, _ := c.Bundle("research", "0.1.0")
	notes, _ := research.Skill("literature-notes")
	cases := []struct {
		name   string
		script string
		args   []string
		subdir string
	}{
		{"kb_capture", installScript(t, capture, "scripts/kb_capture.sh"), []string{"--title", "Pricing idea for Q3", "--tags", "pricing"}, "raw"},
		{"save_note", installScript(t, notes, "scripts/save_note.sh"), []string{"sources/2024-smith-sleep-study.md"}, "sources"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			argv := append([]string{sh, tc.script}, tc.args...)
			home := t.TempDir()
			r := run(t, []string{"HOME=" + home}, "content\n", argv...)
			wantCode(t, r, 3, "HERMES_HOME is not set")
			wantCode(t, run(t, []string{"HERMES_HOME=" + home}, "content\n", argv...), 3, "no knowledge base at "+home+"/knowledge")
			if n := countFiles(t, home); n != 0 {
				t.Errorf("%d files written without a knowledge base", n)
			}
			if err := os.Mkdir(filepath.Join(home, "knowledge"), 0o755); err != nil {
				t.Fatal(err)
			}
			r = run(t, []string{"HERMES_HOME=" + home}, "content\n", argv...)
			if r.code != 0 || !strings.HasPrefix(r.stdout, "saved "+filepath.Join(home, "knowledge", tc.subdir)+"/") {
				t.Fatalf("save: %+v", r)
			}
			saved := strings.Fields(r.stdout)[1]
			if !strings.HasSuffix(readFile(t, saved), "content\n") {
				t.Errorf("%s = %q", saved, readFile(t, saved))
			}
		})
	}
}

func TestPDFTextScriptRejectsNonPDF(t *testing.T) {
	sh := testenv.LookPath(t, "sh")
	s, _ := builtin(t).Skill("pdf-digest", "")
	script := installScript(t, s, "scripts/pdf_text.sh")
	notPDF := filepath.Join(t.TempDir(), "x.pdf")
	if err := os.WriteFile(notPDF, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantCode(t, run(t, nil, "", sh, script, notPDF), 2, "is not a PDF")
	wantCode(t, run(t, nil, "", sh, script), 2, "usage")
}

func TestBodygraphScript(t *testing.T) {
	py := testenv.LookPath(t, "python3")
	b, _ := builtin(t).Bundle("astral-hd", "0.2.0")
	s, _ := b.Skill("bodygraph-reading")
	script := installScript(t, s, "scripts/bodygraph.py")

	r := run(t, nil, "", py, script, "gate", "302", "358.25", "223.25", "0")
	if r.code != 0 || r.stdout != "302.0000 -> 41.1\n358.2500 -> 25.1\n223.2500 -> 1.1\n0.0000 -> 25.2\n" {
		t.Errorf("gate: %+v", r)
	}
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"34", "20"}, []string{"type: Manifesting Generator", "authority: Sacral"}},
		{[]string{"34", "57", "6", "59"}, []string{"type: Generator", "authority: Emotional (Solar Plexus)", "definition: single"}},
		{[]string{"21", "45"}, []string{"type: Manifestor", "authority: Ego manifested"}},
		{[]string{"25", "51", "64", "47"}, []string{"type: Projector", "authority: Ego projected", "definition: split"}},
		{[]string{"47", "64"}, []string{"type: Projector", "authority: Mental / environmental"}},
		{[]string{"13", "40"}, []string{"type: Reflector", "authority: Lunar", "hanging gates: 13, 40"}},
		{[]string{"--personality-sun", "25.3", "--design-sun", "46.5", "1", "8"}, []string{"type: Projector", "authority: Self-projected", "profile: 3/5 Martyr / Heretic"}},
	}
	for _, tt := range tests {
		r := run(t, nil, "", append([]string{py, script, "chart"}, tt.args...)...)
		for _, w := range tt.want {
			if r.code != 0 || !strings.Contains(r.stdout, w) {
				t.Errorf("chart %v: exit %d, output\n%s\nwant %q", tt.args, r.code, r.stdout+r.stderr, w)
			}
		}
	}
	wantCode(t, run(t, nil, "", py, script, "chart", "65"), 2, "gates are 1-64")
	wantCode(t, run(t, nil, "", py, script), 2, "usage")
}
