package bundles

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoadStrictErrors(t *testing.T) {
	const (
		wy   = "writing/0.1.0/bundle.yaml"
		omd  = "writing/0.1.0/skills/outline/SKILL.md"
		dbmd = "skills/daily-brief/1.0.0/SKILL.md"
	)
	tests := []struct {
		name   string
		change func(t *testing.T, m fstest.MapFS)
		want   []string // each must appear in the error
	}{
		{
			name: "unknown key in bundle.yaml",
			change: func(t *testing.T, m fstest.MapFS) {
				m[wy].Data = append(m[wy].Data, "colour: blue\n"...)
			},
			want: []string{wy + ":14: unknown key \"colour\""},
		},
		{
			name:   "unknown key in requires",
			change: func(t *testing.T, m fstest.MapFS) { edit(t, m, wy, "  env: []\n", "  env: []\n  secrets: [X]\n") },
			want:   []string{wy + ":14: unknown key \"secrets\" in requires"},
		},
		{
			name:   "yaml syntax error",
			change: func(t *testing.T, m fstest.MapFS) { edit(t, m, wy, "name: writing\n", "name: [writing\n") },
			want:   []string{wy + ":"},
		},
		{
			name:   "type error",
			change: func(t *testing.T, m fstest.MapFS) { edit(t, m, wy, "category: writing\n", "category: [a, b]\n") },
			want:   []string{wy + ":6: cannot unmarshal"},
		},
		{
			name:   "bundle name disagrees with directory",
			change: func(t *testing.T, m fstest.MapFS) { edit(t, m, wy, "name: writing\n", "name: writer\n") },
			want:   []string{wy + `:1: name "writer" disagrees with its directory writing/`},
		},
		{
			name:   "bundle version disagrees with directory",
			change: func(t *testing.T, m fstest.MapFS) { edit(t, m, wy, "version: 0.1.0\n", "version: 0.1.1\n") },
			want:   []string{wy + `:2: version "0.1.1" disagrees with its directory writing/0.1.0/`},
		},
		{
			name: "skill directory not listed",
			change: func(t *testing.T, m fstest.MapFS) {
				copyTree(m, "writing/0.1.0/skills/outline", "writing/0.1.0/skills/extra")
			},
			want: []string{"writing/0.1.0/skills/extra: skill directory is not listed in " + wy + " skills"},
		},
		{
			name:   "listed skill missing",
			change: func(t *testing.T, m fstest.MapFS) { removeTree(m, "writing/0.1.0/skills/outline") },
			want:   []string{wy + `:7: skill "outline" is listed but writing/0.1.0/skills/outline/ does not exist`},
		},
		{
			name:   "skill name disagrees with directory",
			change: func(t *testing.T, m fstest.MapFS) { edit(t, m, omd, "name: outline\n", "name: outlines\n") },
			want:   []string{omd + `:2: name "outlines" disagrees with its directory outline/`},
		},
		{
			name:   "bundled skill version disagrees with bundle",
			change: func(t *testing.T, m fstest.MapFS) { edit(t, m, omd, "version: 0.1.0\n", "version: 0.1.1\n") },
			want:   []string{omd + `:4: version "0.1.1" disagrees with its bundle writing@0.1.0`},
		},
		{
			name:   "à-la-carte version disagrees with directory",
			change: func(t *testing.T, m fstest.MapFS) { edit(t, m, dbmd, "version: 1.0.0\n", "version: 1.0.1\n") },
			want:   []string{dbmd + `:4: version "1.0.1" disagrees with its directory 1.0.0/`},
		},
		{
			name:   "unknown front matter key",
			change: func(t *testing.T, m fstest.MapFS) { edit(t, m, omd, "name: outline\n", "name: outline\ntag: [x]\n") },
			want:   []string{omd + `:3: unknown key "tag"`},
		},
		{
			name: "unknown metadata.hermes key",
			change: func(t *testing.T, m fstest.MapFS) {
				edit(t, m, omd, "    category: writing\n", "    category: writing\n    tagz: [x]\n")
			},
			want: []string{omd + `:9: unknown key "tagz" in metadata.hermes`},
		},
		{
			name: "front matter missing",
			change: func(t *testing.T, m fstest.MapFS) {
				m[omd].Data = []byte("# Outline\n\nJust text.\n")
			},
			want: []string{omd + `: front matter is missing`},
		},
		{
			name:   "front matter not closed",
			change: func(t *testing.T, m fstest.MapFS) { edit(t, m, omd, "---\n\n# Outline", "\n# Outline") },
			want:   []string{omd + `: front matter is not closed`},
		},
		{
			name: "missing description",
			change: func(t *testing.T, m fstest.MapFS) {
				var kept []string
				for _, l := range strings.SplitAfter(string(m[dbmd].Data), "\n") {
					if !strings.HasPrefix(l, "description:") {
						kept = append(kept, l)
					}
				}
				m[dbmd].Data = []byte(strings.Join(kept, ""))
			},
			want: []string{dbmd + ": description is missing"},
		},
		{
			name: "hidden file",
			change: func(t *testing.T, m fstest.MapFS) {
				m["writing/0.1.0/skills/outline/.DS_Store"] = &fstest.MapFile{Data: []byte("x")}
			},
			want: []string{`writing/0.1.0/skills/outline/.DS_Store: names beginning with "." or "_" are not allowed`},
		},
		{
			name: "unexpected file in a skill",
			change: func(t *testing.T, m fstest.MapFS) {
				m["writing/0.1.0/skills/outline/notes.txt"] = &fstest.MapFile{Data: []byte("x")}
			},
			want: []string{"writing/0.1.0/skills/outline/notes.txt: unexpected file: a skill holds SKILL.md and references/, templates/, scripts/"},
		},
		{
			name: "unexpected directory in a skill",
			change: func(t *testing.T, m fstest.MapFS) {
				m["writing/0.1.0/skills/outline/assets/x.png"] = &fstest.MapFile{Data: []byte("x")}
			},
			want: []string{"writing/0.1.0/skills/outline/assets: unexpected directory"},
		},
		{
			name: "bad version directory",
			change: func(t *testing.T, m fstest.MapFS) {
				copyTree(m, "writing/0.1.0", "writing/0.1")
			},
			want: []string{`writing/0.1: version directory: bad version "0.1"`},
		},
		{
			name: "skill toolset not declared by bundle",
			change: func(t *testing.T, m fstest.MapFS) {
				edit(t, m, omd, "    category: writing\n", "    category: writing\n    requires_toolsets: [web]\n")
			},
			want: []string{omd + `:9: metadata.hermes.requires_toolsets names "web", which the bundle's requires.toolsets does not declare`},
		},
		{
			name: "required env not declared by bundle",
			change: func(t *testing.T, m fstest.MapFS) {
				edit(t, m, "research/0.1.0/skills/source-triage/SKILL.md", "    optional: true\n", "")
			},
			want: []string{"research/0.1.0/skills/source-triage/SKILL.md:11: required_environment_variables names FIRECRAWL_API_KEY, which the bundle's requires.env does not declare (or mark it optional: true)"},
		},
		{
			name: "skill category disagrees with bundle",
			change: func(t *testing.T, m fstest.MapFS) {
				edit(t, m, omd, "    category: writing\n", "    category: prose\n")
			},
			want: []string{omd + `:8: metadata.hermes.category "prose" disagrees with its bundle's category "writing"`},
		},
		{
			name:   "malformed sum line",
			change: func(t *testing.T, m fstest.MapFS) { m[SumFile] = &fstest.MapFile{Data: []byte("garbage\n")} },
			want:   []string{`bundles.sum:1: malformed line "garbage"`},
		},
		{
			name: "sum line with a bad key",
			change: func(t *testing.T, m fstest.MapFS) {
				m[SumFile] = &fstest.MapFile{Data: []byte("Writing@0.1.0 sha256:" + strings.Repeat("0", 64) + "\n")}
			},
			want: []string{`bundles.sum:1: reference "Writing@0.1.0": bad name "Writing"`},
		},
		{
			name: "bad bundle directory name",
			change: func(t *testing.T, m fstest.MapFS) {
				copyTree(m, "writing", "Writing")
			},
			want: []string{`Writing: not a bundle directory: bad name "Writing"`},
		},
		{
			name: "all errors are reported together",
			change: func(t *testing.T, m fstest.MapFS) {
				edit(t, m, wy, "name: writing\n", "name: writer\n")
				edit(t, m, dbmd, "name: daily-brief\n", "name: brief\n")
			},
			want: []string{wy + `:1: name "writer"`, dbmd + `:2: name "brief" disagrees with its directory daily-brief/`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := builtinMap(t)
			tt.change(t, m)
			c, err := Load(m)
			if err == nil {
				t.Fatalf("Load succeeded, want an error containing %q", tt.want)
			}
			if c != nil {
				t.Error("Load returned a catalogue together with an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain:\n%s", err, w)
				}
			}
		})
	}
}

func TestLoadIgnoresTopLevelExtras(t *testing.T) {
	m := builtinMap(t)
	m["README.md"] = &fstest.MapFile{Data: []byte("# notes")}
	m["catalogue.go"] = &fstest.MapFile{Data: []byte("package x")}
	m[".git/config"] = &fstest.MapFile{Data: []byte("x")}
	m["_drafts/x/1.0.0/bundle.yaml"] = &fstest.MapFile{Data: []byte("junk")}
	mustLoad(t, m)
}

func TestLoadWithoutSumFile(t *testing.T) {
	m := builtinMap(t)
	delete(m, SumFile)
	c := mustLoad(t, m)
	errs := c.Verify()
	if len(errs) != len(c.entries) {
		t.Fatalf("Verify without bundles.sum: %d errors, want one per version (%d)", len(errs), len(c.entries))
	}
	b, _ := c.Bundle("writing", "0.1.0")
	want := fmt.Sprintf("writing@0.1.0: not recorded in bundles.sum; run the publish step to record it (%s)", b.Digest)
	if !strings.Contains(strings.Join(errorStrings(errs), "\n"), want) {
		t.Errorf("Verify errors %q\nlack %q", errorStrings(errs), want)
	}
}

func TestSkillLatestVersion(t *testing.T) {
	skill := func(version string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte("---\nname: foo\ndescription: A test skill.\nversion: " + version + "\n---\n\n# Foo\n")}
	}
	m := fstest.MapFS{
		"skills/foo/1.0.0/SKILL.md":      skill("1.0.0"),
		"skills/foo/0.9.0/SKILL.md":      skill("0.9.0"),
		"skills/foo/1.1.0-rc.1/SKILL.md": skill("1.1.0-rc.1"),
		"skills/bar/0.1.0-beta/SKILL.md": &fstest.MapFile{Data: []byte("---\nname: bar\ndescription: B.\nversion: 0.1.0-beta\n---\nBody\n")},
	}
	c := mustLoad(t, m)
	if s, ok := c.Skill("foo", ""); !ok || s.Version != "1.0.0" {
		t.Errorf("Skill(foo, \"\") = %v, want the highest release 1.0.0", s)
	}
	if s, ok := c.Skill("foo", "1.1.0-rc.1"); !ok || s.Version != "1.1.0-rc.1" {
		t.Errorf("Skill(foo, 1.1.0-rc.1) = %v", s)
	}
	if s, ok := c.Skill("bar", ""); !ok || s.Version != "0.1.0-beta" {
		t.Errorf("Skill(bar, \"\") = %v, want the only prerelease", s)
	}
	if _, ok := c.Skill("nope", ""); ok {
		t.Error("Skill(nope) found something")
	}
	if got := c.Versions("skills/foo"); strings.Join(got, " ") != "0.9.0 1.0.0 1.1.0-rc.1" {
		t.Errorf("Versions(skills/foo) = %v", got)
	}
	s, _ := c.Skill("foo", "1.0.0")
	if s.Category != DefaultCategory || s.InstallDir() != "skills/general/foo" {
		t.Errorf("category %q, install dir %q", s.Category, s.InstallDir())
	}
	if _, ok := c.Bundle("foo", "1.0.0"); ok {
		t.Error("an à-la-carte skill is reachable as a bundle")
	}
}

func TestNilCatalogue(t *testing.T) {
	var c *Catalogue
	if _, ok := c.Bundle("a", "1.0.0"); ok {
		t.Error("nil catalogue has a bundle")
	}
	if c.Bundles() != nil || c.Skills() != nil || c.Versions("a") != nil || c.Verify() != nil {
		t.Error("nil catalogue is not empty")
	}
}

func TestLoadAcceptsHermesFrontMatter(t *testing.T) {
	md := `---
name: foo
description: A skill using every front matter key Hermes documents.
version: 1.0.0
author: Someone
license: MIT
platforms: [linux, macos]
prerequisites:
  commands: [curl]
metadata:
  openclaw:
    emoji: x
  hermes:
    tags: [a, b]
    category: tools
    requires_toolsets: [terminal]
    requires_tools: [web_search]
    fallback_for_toolsets: [browser]
    fallback_for_tools: [browser_navigate]
    related_skills: [bar]
    homepage: https://example.com
    config:
      - key: foo.path
        description: Where foo keeps data
    blueprint:
      schedule: "0 9 * * *"
required_environment_variables:
  - name: FOO_API_KEY
    prompt: Foo API key
    help: https://example.com/keys
    required_for: API access
required_credential_files:
  - path: foo.json
---

# Foo
`
	c := mustLoad(t, fstest.MapFS{"skills/foo/1.0.0/SKILL.md": &fstest.MapFile{Data: []byte(md)}})
	s, _ := c.Skill("foo", "1.0.0")
	want := &Skill{
		Name: "foo", Version: "1.0.0", Description: "A skill using every front matter key Hermes documents.",
		Category: "tools", Tags: []string{"a", "b"}, Platforms: []string{"linux", "macos"},
		RequiresToolsets: []string{"terminal"},
		RequiredEnv:      []EnvRequirement{{Name: "FOO_API_KEY", Prompt: "Foo API key", Help: "https://example.com/keys", RequiredFor: "API access"}},
	}
	got := *s
	got.Files, got.Digest = nil, ""
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", *want) {
		t.Errorf("skill = %+v\nwant    %+v", got, *want)
	}
	if len(s.Files) != 1 || s.Files[0].Path != "SKILL.md" || s.Files[0].Mode != 0o644 || s.Digest != Digest(s.Files) {
		t.Errorf("files = %+v, digest %s", s.Files, s.Digest)
	}
}

func TestLoadFrontMatterValueChecks(t *testing.T) {
	tests := []struct {
		frontMatter string
		want        string
	}{
		{"name: foo\ndescription: d\nversion: 1.0.0\nplatforms: [beos]\n", `SKILL.md:5: platforms: unknown platform "beos"`},
		{"name: foo\ndescription: d\nversion: 1.0\n", `SKILL.md:4: version "1.0" disagrees with its directory 1.0.0/`},
		{"name: foo\ndescription: d\nversion: 1.0.0\nrequired_environment_variables:\n  - name: lower\n", `required_environment_variables: bad environment variable name "lower"`},
		{"name: foo\ndescription: d\nversion: 1.0.0\nmetadata:\n  hermes:\n    category: Bad_Cat\n", `metadata.hermes.category: bad name "Bad_Cat"`},
		{"name: foo\ndescription: d\nversion: 1.0.0\nmetadata:\n  hermes:\n    requires_toolsets: [Web]\n", `bad toolset name "Web"`},
		{"", "SKILL.md: empty YAML document"},
	}
	for _, tt := range tests {
		m := fstest.MapFS{"skills/foo/1.0.0/SKILL.md": &fstest.MapFile{Data: []byte("---\n" + tt.frontMatter + "---\n\n# Foo\n")}}
		_, err := Load(m)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("front matter %q: error %v, want it to contain %q", tt.frontMatter, err, tt.want)
		}
	}
	m := fstest.MapFS{"skills/foo/1.0.0/SKILL.md": &fstest.MapFile{Data: []byte("---\nname: foo\ndescription: d\nversion: 1.0.0\n---\n  \n")}}
	if _, err := Load(m); err == nil || !strings.Contains(err.Error(), "no instructions after the front matter") {
		t.Errorf("empty body: %v", err)
	}
}
