package bundles

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func builtin(t *testing.T) *Catalogue {
	t.Helper()
	c, err := Builtin()
	if err != nil {
		t.Fatalf("Builtin: %v", err)
	}
	return c
}

func TestBuiltinLoadsOnce(t *testing.T) {
	a, b := builtin(t), builtin(t)
	if a != b {
		t.Error("Builtin returned two different catalogues; want the same immutable one")
	}
}

// TestBuiltinVerify keeps published versions immutable: it fails when a file of a
// version recorded in bundles.sum changes, or when a version is not published yet.
func TestBuiltinVerify(t *testing.T) {
	for _, err := range builtin(t).Verify() {
		t.Error(err)
	}
}

func TestBuiltinHasRequiredContent(t *testing.T) {
	c := builtin(t)
	for _, ref := range []string{"astral-core@0.1.0", "astral-core@0.2.0", "astral-hd@0.2.0", "writing@0.1.0", "research@0.1.0"} {
		r, _ := ParseRef(ref)
		if _, ok := c.Bundle(r.Name, r.Version); !ok {
			t.Errorf("built-in catalogue lacks bundle %s", ref)
		}
	}
	if got := c.Versions("astral-core"); !slices.Equal(got, []string{"0.1.0", "0.2.0"}) {
		t.Errorf("Versions(astral-core) = %v", got)
	}
	for _, name := range []string{"daily-brief", "meeting-notes", "pdf-digest", "kb-capture"} {
		s, ok := c.Skill(name, "1.0.0")
		if !ok {
			t.Errorf("built-in catalogue lacks à-la-carte skill %s@1.0.0", name)
			continue
		}
		if s.Bundle != "" {
			t.Errorf("à-la-carte skill %s has Bundle %q", name, s.Bundle)
		}
	}
	if len(c.Skills()) < 3 {
		t.Errorf("%d à-la-carte skills, want at least 3", len(c.Skills()))
	}

	v1, _ := c.Bundle("astral-core", "0.1.0")
	v2, _ := c.Bundle("astral-core", "0.2.0")
	for _, b := range []*Bundle{v1, v2} {
		if b == nil {
			t.FailNow()
		}
		if !slices.Contains(b.RequiresToolsets, "terminal") || !slices.Contains(b.RequiresEnv, "ASTRAL_KB_ROOT") {
			t.Errorf("%s requires %v / %v, want toolset terminal and env ASTRAL_KB_ROOT", b.Ref(), b.RequiresToolsets, b.RequiresEnv)
		}
		kb, ok := b.Skill("astral-tenant-kb")
		if !ok {
			t.Fatalf("%s has no astral-tenant-kb", b.Ref())
		}
		f, ok := kb.File("scripts/kb_write.sh")
		if !ok || f.Mode != 0o755 {
			t.Errorf("%s astral-tenant-kb: scripts/kb_write.sh present=%v mode=%v, want 0755", b.Ref(), ok, f.Mode)
		}
		if !slices.ContainsFunc(kb.RequiredEnv, func(e EnvRequirement) bool { return e.Name == "ASTRAL_KB_ROOT" && !e.Optional }) {
			t.Errorf("%s astral-tenant-kb does not declare ASTRAL_KB_ROOT", b.Ref())
		}
		if kb.InstallDir() != "skills/astral/astral-tenant-kb" {
			t.Errorf("InstallDir = %q", kb.InstallDir())
		}
	}
	// 0.2.0 adds synastry and keeps every 0.1.0 skill.
	if _, ok := v1.Skill("synastry"); ok {
		t.Error("astral-core@0.1.0 has synastry; it was added in 0.2.0")
	}
	if _, ok := v2.Skill("synastry"); !ok {
		t.Error("astral-core@0.2.0 lacks synastry")
	}
	for _, s := range v1.Skills {
		if _, ok := v2.Skill(s.Name); !ok {
			t.Errorf("astral-core@0.2.0 dropped %s", s.Name)
		}
	}

	research, _ := c.Bundle("research", "0.1.0")
	if research == nil || !slices.Contains(research.RequiresToolsets, "web") {
		t.Fatalf("research@0.1.0 must require the web toolset")
	}
	optionalFirecrawl := false
	for _, s := range research.Skills {
		for _, e := range s.RequiredEnv {
			if e.Name == "FIRECRAWL_API_KEY" && e.Optional {
				optionalFirecrawl = true
			}
		}
	}
	if !optionalFirecrawl {
		t.Error("research@0.1.0 declares no optional FIRECRAWL_API_KEY")
	}
}

// allSkills returns every skill of the catalogue, bundled and à la carte, with a label.
func allSkills(c *Catalogue) map[string]*Skill {
	out := map[string]*Skill{}
	for _, b := range c.Bundles() {
		for _, s := range b.Skills {
			out[b.Ref().String()+"/"+s.Name] = s
		}
	}
	for _, s := range c.Skills() {
		out["skills/"+s.Ref().String()] = s
	}
	return out
}

var fileMention = regexp.MustCompile(`(\S+'s )?\b((?:references|templates|scripts)/[a-z0-9_.-]+\.(?:md|sh|py))`)

// TestBuiltinSkillsComplete holds the shipped content to a standard: complete front
// matter, a focused SKILL.md with the usual sections, executable scripts with a
// shebang, and every file a SKILL.md mentions present in the skill.
func TestBuiltinSkillsComplete(t *testing.T) {
	for label, s := range allSkills(builtin(t)) {
		t.Run(label, func(t *testing.T) {
			if len(s.Description) < 40 {
				t.Errorf("description too short: %q", s.Description)
			}
			if len(s.Tags) == 0 {
				t.Error("metadata.hermes.tags is empty")
			}
			if s.Category == DefaultCategory {
				t.Error("built-in skills name their category")
			}
			for _, e := range s.RequiredEnv {
				if e.Prompt == "" || e.Help == "" || e.RequiredFor == "" {
					t.Errorf("required_environment_variables %s: prompt, help and required_for must all be set", e.Name)
				}
			}
			md, ok := s.File("SKILL.md")
			if !ok {
				t.Fatal("no SKILL.md")
			}
			text := string(md.Content)
			if n := strings.Count(text, "\n"); n < 30 || n > 120 {
				t.Errorf("SKILL.md has %d lines, want 30-120", n)
			}
			for _, section := range []string{"\n# ", "\n## When to use", "\n## Pitfalls", "\n## Verification"} {
				if !strings.Contains(text, section) {
					t.Errorf("SKILL.md lacks %q", strings.TrimSpace(section))
				}
			}
			if !strings.Contains(text, "\nmetadata:\n  hermes:\n") {
				t.Error("SKILL.md front matter lacks metadata.hermes")
			}
			for _, m := range fileMention.FindAllStringSubmatch(text, -1) {
				if m[1] != "" {
					continue // another skill's file ("natal-chart's references/...")
				}
				if _, ok := s.File(m[2]); !ok {
					t.Errorf("SKILL.md mentions %s, which the skill does not carry", m[2])
				}
			}
			for _, f := range s.Files {
				isScript := strings.HasPrefix(f.Path, "scripts/")
				switch {
				case isScript && f.Mode != 0o755, !isScript && f.Mode != 0o644:
					t.Errorf("%s: mode %v", f.Path, f.Mode)
				}
				if isScript && !bytes.HasPrefix(f.Content, []byte("#!")) {
					t.Errorf("%s: no #! line", f.Path)
				}
				if len(bytes.TrimSpace(f.Content)) == 0 {
					t.Errorf("%s: empty", f.Path)
				}
				if bytes.Contains(f.Content, []byte("\r")) || bytes.Contains(f.Content, []byte(" \n")) || bytes.Contains(f.Content, []byte("\t\n")) {
					t.Errorf("%s: CR or trailing whitespace", f.Path)
				}
			}
			if s.Digest != Digest(s.Files) {
				t.Error("Digest does not match Files")
			}
		})
	}
}

// TestBuiltinMatchesDisk guards the go:embed pattern: loading this directory from disk
// must give exactly the embedded catalogue (a file go:embed would skip is refused by
// Load, so it cannot hide here).
func TestBuiltinMatchesDisk(t *testing.T) {
	disk := mustLoad(t, os.DirFS("."))
	emb := builtin(t)
	digests := func(c *Catalogue) map[string]string {
		m := map[string]string{}
		for k, e := range c.entries {
			m[k] = e.digest
		}
		return m
	}
	d, e := digests(disk), digests(emb)
	if fmt.Sprint(d) != fmt.Sprint(e) {
		t.Errorf("disk catalogue %v\ndiffers from embedded %v", d, e)
	}
}

func TestBuiltinSumFileCanonical(t *testing.T) {
	data, err := fs.ReadFile(builtinFS, SumFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	var keys []string
	for _, l := range lines {
		k, _, _ := strings.Cut(l, " ")
		keys = append(keys, k)
	}
	if !slices.IsSortedFunc(keys, compareKeys) {
		t.Errorf("%s is not sorted: %v", SumFile, keys)
	}
	if want := len(builtin(t).entries); len(keys) != want {
		t.Errorf("%s has %d lines, want one per version (%d)", SumFile, len(keys), want)
	}
}

func TestDigestEncoding(t *testing.T) {
	// Frozen: changing the encoding would change every published digest.
	got := Digest([]File{{Path: "b", Content: []byte("2")}, {Path: "a", Content: []byte("1")}})
	want := "sha256:" + sha256hex([]byte("\x00\x00\x00\x00\x00\x00\x00\x01a\x00\x00\x00\x00\x00\x00\x00\x011"+
		"\x00\x00\x00\x00\x00\x00\x00\x01b\x00\x00\x00\x00\x00\x00\x00\x012"))
	if got != want {
		t.Errorf("Digest = %s, want %s", got, want)
	}
	// Unambiguous: moving bytes between path and content, or between files, changes it.
	a := Digest([]File{{Path: "ab", Content: []byte("c")}})
	b := Digest([]File{{Path: "a", Content: []byte("bc")}})
	c := Digest([]File{{Path: "a", Content: []byte("b")}, {Path: "c"}})
	if a == b || b == c || a == c {
		t.Error("different file sets share a digest")
	}
	if Digest(nil) != "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("Digest(nil) = %s", Digest(nil))
	}
	if !validDigest(got) || validDigest("sha256:ABC") || validDigest("md5:"+strings.Repeat("0", 64)) {
		t.Error("validDigest misjudges")
	}
}
