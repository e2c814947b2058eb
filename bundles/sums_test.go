package bundles

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// publishedDir writes the built-in catalogue to a temporary directory with a freshly
// recorded bundles.sum, independent of the checked-in one.
func publishedDir(t *testing.T) string {
	t.Helper()
	m := builtinMap(t)
	delete(m, SumFile)
	dir := writeDir(t, m)
	added, err := RecordSums(dir)
	if err != nil {
		t.Fatalf("RecordSums: %v", err)
	}
	if len(added) != len(builtin(t).entries) {
		t.Fatalf("RecordSums added %v, want every version", added)
	}
	return dir
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRecordSumsThenVerifyIsClean(t *testing.T) {
	dir := publishedDir(t)
	c := mustLoad(t, os.DirFS(dir))
	if errs := c.Verify(); errs != nil {
		t.Errorf("Verify after RecordSums: %q", errorStrings(errs))
	}
	sum := readFile(t, filepath.Join(dir, SumFile))
	if !strings.HasPrefix(sum, "astral-core@0.1.0 sha256:") || !strings.Contains(sum, "\nskills/daily-brief@1.0.0 sha256:") {
		t.Errorf("unexpected %s:\n%s", SumFile, sum)
	}
	// Nothing new: nothing added, file untouched.
	added, err := RecordSums(dir)
	if err != nil || added != nil {
		t.Errorf("second RecordSums = %v, %v; want nothing added", added, err)
	}
	if again := readFile(t, filepath.Join(dir, SumFile)); again != sum {
		t.Error("RecordSums rewrote bundles.sum with nothing to add")
	}
}

func TestVerifyDetectsChangedPublishedFile(t *testing.T) {
	dir := publishedDir(t)
	before := mustLoad(t, os.DirFS(dir))
	old, _ := before.Bundle("astral-core", "0.1.0")

	// Change one byte of a published file.
	p := filepath.Join(dir, "astral-core", "0.1.0", "skills", "natal-chart", "SKILL.md")
	data := []byte(readFile(t, p))
	i := strings.Index(string(data), "Placidus")
	data[i] = 'p'
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}

	after := mustLoad(t, os.DirFS(dir))
	now, _ := after.Bundle("astral-core", "0.1.0")
	errs := after.Verify()
	want := fmt.Sprintf("astral-core@0.1.0: content changed since it was published (recorded %s, now %s); publish a new version instead", old.Digest, now.Digest)
	if len(errs) != 1 || errs[0].Error() != want {
		t.Fatalf("Verify = %q\nwant exactly [%q]", errorStrings(errs), want)
	}
	var se *SumError
	if !errors.As(errs[0], &se) || se.Key != "astral-core@0.1.0" || se.Recorded != old.Digest || se.Actual != now.Digest {
		t.Errorf("Verify error = %#v", errs[0])
	}

	// The publish step refuses to paper over it and leaves the record alone.
	sumBefore := readFile(t, filepath.Join(dir, SumFile))
	added, err := RecordSums(dir)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("RecordSums = %v, %v; want an error containing %q", added, err, want)
	}
	if readFile(t, filepath.Join(dir, SumFile)) != sumBefore {
		t.Error("RecordSums changed bundles.sum although a published version changed")
	}
}

func TestRecordSumsAddsNewVersionOnly(t *testing.T) {
	dir := publishedDir(t)
	sumBefore := readFile(t, filepath.Join(dir, SumFile))

	// Publish writing@0.2.0: a copy of 0.1.0 with the version bumped and one change.
	m := builtinMap(t)
	copyTree(m, "writing/0.1.0", "writing/0.2.0")
	for p := range m {
		if strings.HasPrefix(p, "writing/0.2.0/") && (strings.HasSuffix(p, "bundle.yaml") || strings.HasSuffix(p, "SKILL.md")) {
			edit(t, m, p, "version: 0.1.0\n", "version: 0.2.0\n")
		}
	}
	edit(t, m, "writing/0.2.0/skills/outline/SKILL.md", "# Outline\n", "# Outline (v2)\n")
	for p, f := range m {
		if strings.HasPrefix(p, "writing/0.2.0/") {
			full := filepath.Join(dir, filepath.FromSlash(p))
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(full, f.Data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Before publishing, Verify names the new version and the publish step.
	unpublished := mustLoad(t, os.DirFS(dir))
	v2, _ := unpublished.Bundle("writing", "0.2.0")
	wantUnrecorded := fmt.Sprintf("writing@0.2.0: not recorded in bundles.sum; run the publish step to record it (%s)", v2.Digest)
	if errs := unpublished.Verify(); len(errs) != 1 || errs[0].Error() != wantUnrecorded {
		t.Errorf("Verify = %q, want [%q]", errorStrings(errs), wantUnrecorded)
	}

	added, err := RecordSums(dir)
	if err != nil {
		t.Fatalf("RecordSums: %v", err)
	}
	if !slices.Equal(added, []string{"writing@0.2.0"}) {
		t.Errorf("added = %v, want [writing@0.2.0]", added)
	}
	sumAfter := readFile(t, filepath.Join(dir, SumFile))
	for _, line := range strings.Split(strings.TrimSpace(sumBefore), "\n") {
		if !strings.Contains(sumAfter, line+"\n") {
			t.Errorf("existing line %q was altered or dropped", line)
		}
	}
	newLine := "writing@0.2.0 " + v2.Digest + "\n"
	if !strings.HasSuffix(sumAfter, "writing@0.1.0 "+strings.SplitN(strings.SplitN(sumBefore, "writing@0.1.0 ", 2)[1], "\n", 2)[0]+"\n"+newLine) {
		t.Errorf("new line not placed after writing@0.1.0:\n%s", sumAfter)
	}
	if errs := mustLoad(t, os.DirFS(dir)).Verify(); errs != nil {
		t.Errorf("Verify after publishing: %q", errorStrings(errs))
	}
}

func TestVerifyReportsRemovedVersion(t *testing.T) {
	dir := publishedDir(t)
	before := mustLoad(t, os.DirFS(dir))
	kb, _ := before.Skill("kb-capture", "1.0.0")
	if err := os.RemoveAll(filepath.Join(dir, "skills", "kb-capture")); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("skills/kb-capture@1.0.0: recorded in bundles.sum (%s) but its content is missing; restore it (a published version is never removed) or, deliberately, delete the line", kb.Digest)
	errs := mustLoad(t, os.DirFS(dir)).Verify()
	if len(errs) != 1 || errs[0].Error() != want {
		t.Errorf("Verify = %q, want [%q]", errorStrings(errs), want)
	}
	if _, err := RecordSums(dir); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("RecordSums error = %v, want it to contain %q", err, want)
	}
}

func TestRecordSumsRefusesBrokenCatalogue(t *testing.T) {
	dir := publishedDir(t)
	p := filepath.Join(dir, "writing", "0.1.0", "bundle.yaml")
	if err := os.WriteFile(p, []byte(readFile(t, p)+"colour: blue\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := RecordSums(dir)
	if err == nil || !strings.Contains(err.Error(), `writing/0.1.0/bundle.yaml:14: unknown key "colour"`) {
		t.Errorf("RecordSums error = %v", err)
	}
}

func TestSumFileStrictness(t *testing.T) {
	d := "sha256:" + strings.Repeat("a", 64)
	tests := []struct {
		data string
		want string
	}{
		{"writing@0.1.0 " + d + "\nwriting@0.1.0 " + d + "\n", "bundles.sum:2: writing@0.1.0 is recorded twice"},
		{"writing@0.1.0  " + d + "\n", "bundles.sum:1: malformed line"},
		{"writing@0.1.0 sha256:" + strings.Repeat("A", 64) + "\n", "bundles.sum:1: malformed line"},
		{"\n", "bundles.sum:1: malformed line"},
		{"skills@1.0.0 " + d + "\n", `the name "skills" is reserved`},
		{"skills/x@1 " + d + "\n", `bad version "1"`},
	}
	for _, tt := range tests {
		_, errs := parseSums([]byte(tt.data))
		if !strings.Contains(strings.Join(errorStrings(errs), "\n"), tt.want) {
			t.Errorf("parseSums(%q) = %q, want an error containing %q", tt.data, errorStrings(errs), tt.want)
		}
	}
	sums, errs := parseSums([]byte("skills/x@1.0.0 " + d + "\nwriting@0.1.0 " + d))
	if errs != nil || len(sums) != 2 {
		t.Errorf("parseSums of good lines = %v, %v", sums, errs)
	}
}
