package bundles

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
)

// File is one file of a skill, as it is installed.
type File struct {
	// Path is relative to the skill's install directory and slash-separated, e.g.
	// "SKILL.md", "references/aspects.md", "scripts/kb_write.sh".
	Path    string
	Content []byte
	// Mode is 0755 for files under scripts/ and 0644 for every other file.
	Mode fs.FileMode
}

// EnvRequirement is one entry of a SKILL.md's required_environment_variables: an
// environment variable the skill reads. Hermes prompts for it with Prompt and Help and
// passes it through to the terminal sandbox when it is set.
type EnvRequirement struct {
	Name        string
	Prompt      string
	Help        string
	RequiredFor string
	// Optional marks a variable that only enables one path of the skill (Hermes'
	// `optional: true`); the skill documents a working fallback without it.
	Optional bool
}

// Skill is one skill: a directory Hermes loads from skills/<Category>/<Name>/ in a
// tenant's hermes-home. It is either part of a bundle version or an à-la-carte skill.
type Skill struct {
	Name        string
	Version     string
	Description string
	// Category is the skills category directory the skill installs under. For a skill of
	// a bundle it is the bundle's category; for an à-la-carte skill it is the SKILL.md's
	// metadata.hermes.category, or DefaultCategory.
	Category string
	// Bundle is "name@version" of the bundle this skill belongs to, "" for an à-la-carte
	// skill.
	Bundle           string
	Tags             []string
	Platforms        []string // empty: every platform
	RequiresToolsets []string
	RequiredEnv      []EnvRequirement
	// Files holds every file of the skill, sorted by Path; SKILL.md is one of them.
	Files []File
	// Digest is the content digest of Files (see Digest); it is what a worker-side hash
	// of the installed skill directory must equal.
	Digest string
}

// DefaultCategory is the category of an à-la-carte skill whose SKILL.md names none.
const DefaultCategory = "general"

// Ref returns the skill's name@version.
func (s *Skill) Ref() Ref { return Ref{Name: s.Name, Version: s.Version} }

// InstallDir is where the skill lives relative to a tenant's hermes-home:
// "skills/<category>/<name>".
func (s *Skill) InstallDir() string { return path.Join("skills", s.Category, s.Name) }

// File returns the skill's file at path p ("SKILL.md", "scripts/x.sh").
func (s *Skill) File(p string) (File, bool) {
	i, ok := slices.BinarySearchFunc(s.Files, p, func(f File, p string) int { return strings.Compare(f.Path, p) })
	if !ok {
		return File{}, false
	}
	return s.Files[i], true
}

// Bundle is one published version of a skill bundle: a set of skills installed and
// pinned together ("astral-core@0.2.0").
type Bundle struct {
	Name        string
	Version     string
	Description string
	// Category is the skills category directory the bundle's skills install under
	// (bundle.yaml `category`, default the bundle's name).
	Category string
	// Skills are sorted by name.
	Skills []*Skill
	// RequiresToolsets are the Hermes toolsets a tenant must enable for the bundle's
	// skills to work (e.g. terminal); RequiresEnv the environment variables they need.
	RequiresToolsets []string
	RequiresEnv      []string
	// Digest is the content digest of every file of the bundle version (bundle.yaml and
	// skills/<skill>/...), see Digest. bundles.sum records it when the version is
	// published.
	Digest string
}

// Ref returns the bundle's name@version.
func (b *Bundle) Ref() Ref { return Ref{Name: b.Name, Version: b.Version} }

// Skill returns the bundle's skill with the given name.
func (b *Bundle) Skill(name string) (*Skill, bool) {
	for _, s := range b.Skills {
		if s.Name == name {
			return s, true
		}
	}
	return nil, false
}

// Catalogue is a loaded set of bundle versions and à-la-carte skill versions together
// with the digests bundles.sum records for them. A Catalogue, and every Bundle, Skill
// and File it hands out, is immutable once loaded and safe for concurrent use; callers
// must not modify what they are given. A nil *Catalogue is an empty one.
type Catalogue struct {
	entries map[string]*entry   // by bundles.sum key
	orphans map[string]string   // bundles.sum key → recorded digest, for lines without content
	bundles []*Bundle           // sorted by name, then semver
	skills  []*Skill            // à-la-carte, sorted by name, then semver
	vers    map[string][]string // "astral-core" or "skills/daily-brief" → sorted versions
}

// entry is one published (or about to be published) version with its recorded digest.
type entry struct {
	key      string // "astral-core@0.2.0" or "skills/daily-brief@1.0.0"
	bundle   *Bundle
	skill    *Skill // à-la-carte skill
	digest   string
	recorded string // "" when bundles.sum has no line for it
}

// skillsDir is the reserved top-level directory of à-la-carte skills, and the prefix of
// their keys in bundles.sum.
const skillsDir = "skills"

func bundleKey(name, version string) string { return name + "@" + version }
func skillKey(name, version string) string  { return skillsDir + "/" + name + "@" + version }

func newCatalogue(entries map[string]*entry, orphans map[string]string) *Catalogue {
	c := &Catalogue{entries: entries, orphans: orphans, vers: map[string][]string{}}
	for _, e := range entries {
		if e.bundle != nil {
			c.bundles = append(c.bundles, e.bundle)
			c.vers[e.bundle.Name] = append(c.vers[e.bundle.Name], e.bundle.Version)
		} else {
			c.skills = append(c.skills, e.skill)
			c.vers[skillsDir+"/"+e.skill.Name] = append(c.vers[skillsDir+"/"+e.skill.Name], e.skill.Version)
		}
	}
	slices.SortFunc(c.bundles, func(a, b *Bundle) int { return compareNameVersion(a.Name, a.Version, b.Name, b.Version) })
	slices.SortFunc(c.skills, func(a, b *Skill) int { return compareNameVersion(a.Name, a.Version, b.Name, b.Version) })
	for _, v := range c.vers {
		slices.SortFunc(v, CompareVersions)
	}
	return c
}

func compareNameVersion(an, av, bn, bv string) int {
	if c := strings.Compare(an, bn); c != 0 {
		return c
	}
	return CompareVersions(av, bv)
}

// compareKeys orders bundles.sum keys: by name (à-la-carte names carry their "skills/"
// prefix), then by semver.
func compareKeys(a, b string) int {
	an, av, _ := strings.Cut(a, "@")
	bn, bv, _ := strings.Cut(b, "@")
	return compareNameVersion(an, av, bn, bv)
}

// Bundle returns the bundle version name@version. The version must be exact: bundles
// are always pinned.
func (c *Catalogue) Bundle(name, version string) (*Bundle, bool) {
	if c == nil {
		return nil, false
	}
	e, ok := c.entries[bundleKey(name, version)]
	if !ok || e.bundle == nil {
		return nil, false
	}
	return e.bundle, true
}

// Skill returns the à-la-carte skill name@version. An empty version selects the highest
// release of that skill by semver, or its highest prerelease when it has no release.
func (c *Catalogue) Skill(name, version string) (*Skill, bool) {
	if c == nil {
		return nil, false
	}
	if version == "" {
		vs := c.vers[skillsDir+"/"+name]
		if len(vs) == 0 {
			return nil, false
		}
		version = vs[len(vs)-1]
		for i := len(vs) - 1; i >= 0; i-- {
			if !isPrerelease(vs[i]) {
				version = vs[i]
				break
			}
		}
	}
	e, ok := c.entries[skillKey(name, version)]
	if !ok || e.skill == nil {
		return nil, false
	}
	return e.skill, true
}

// Bundles returns every bundle version, sorted by name, then semver.
func (c *Catalogue) Bundles() []*Bundle {
	if c == nil {
		return nil
	}
	return slices.Clone(c.bundles)
}

// Skills returns every à-la-carte skill version, sorted by name, then semver. Skills
// that belong to bundles are reached through Bundle.Skills.
func (c *Catalogue) Skills() []*Skill {
	if c == nil {
		return nil
	}
	return slices.Clone(c.skills)
}

// Versions returns the versions of bundle name, sorted by semver, for "did you mean"
// errors. For an à-la-carte skill ask for "skills/<name>" (its bundles.sum prefix).
func (c *Catalogue) Versions(name string) []string {
	if c == nil {
		return nil
	}
	return slices.Clone(c.vers[name])
}

// Layered returns a catalogue that sees both base and overlay: an entry of overlay
// replaces the entry of base with the same name@version (bundle or à-la-carte skill),
// every other entry of either stays visible. This is how a desired-state repository's
// own bundles/ directory adds to (or, deliberately, shadows) the built-in catalogue.
// Verify on the result checks each entry against the bundles.sum it was loaded with.
func Layered(base, overlay *Catalogue) *Catalogue {
	entries := map[string]*entry{}
	orphans := map[string]string{}
	for _, c := range []*Catalogue{base, overlay} {
		if c == nil {
			continue
		}
		for k, e := range c.entries {
			entries[k] = e
		}
		for k, d := range c.orphans {
			orphans[k] = d
		}
	}
	for k := range orphans {
		if _, ok := entries[k]; ok {
			delete(orphans, k)
		}
	}
	return newCatalogue(entries, orphans)
}

// The built-in catalogue: every bundle and à-la-carte skill directory of this package
// and its bundles.sum. `*/*` picks up every <name>/<version> (and skills/<skill>) tree,
// so a new bundle needs no change here; files whose names begin with "." or "_" would
// be dropped by go:embed, which is why Load refuses them.
//
//go:embed bundles.sum */*
var builtinFS embed.FS

var loadBuiltin = sync.OnceValues(func() (*Catalogue, error) {
	c, err := Load(builtinFS)
	if err != nil {
		return nil, fmt.Errorf("built-in bundle catalogue: %w", err)
	}
	return c, nil
})

// Builtin returns the catalogue shipped inside the binary. It is loaded once; every call
// returns the same immutable catalogue.
func Builtin() (*Catalogue, error) { return loadBuiltin() }
