package bundles

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// SumFile is the name of the immutability record at the root of a catalogue directory.
const SumFile = "bundles.sum"

// skillSubdirs are the directories a skill may carry next to its SKILL.md.
var skillSubdirs = map[string]bool{"references": true, "templates": true, "scripts": true}

// platforms Hermes knows for a skill's `platforms` list.
var knownPlatforms = map[string]bool{"linux": true, "macos": true, "windows": true}

// maxDescription is the longest description Hermes shows in its skills index.
const maxDescription = 1024

// bundleFile is bundle.yaml.
type bundleFile struct {
	Name        string         `yaml:"name"`
	Version     string         `yaml:"version"`
	Description string         `yaml:"description"`
	Category    string         `yaml:"category"`
	Skills      []string       `yaml:"skills"`
	Requires    bundleRequires `yaml:"requires"`
}

type bundleRequires struct {
	Toolsets []string `yaml:"toolsets"`
	Env      []string `yaml:"env"`
}

// frontMatter is the YAML front matter of a SKILL.md, with the keys Hermes documents.
// Keys the catalogue does not use are accepted (and kept in the file) but not typed.
type frontMatter struct {
	Name                    string    `yaml:"name"`
	Description             string    `yaml:"description"`
	Version                 string    `yaml:"version"`
	Author                  string    `yaml:"author"`
	License                 string    `yaml:"license"`
	Platforms               []string  `yaml:"platforms"`
	Prerequisites           yaml.Node `yaml:"prerequisites"`
	Metadata                skillMeta `yaml:"metadata"`
	RequiredEnv             []envVar  `yaml:"required_environment_variables"`
	RequiredCredentialFiles yaml.Node `yaml:"required_credential_files"`
}

// skillMeta is `metadata`: the hermes namespace is checked strictly, other tools'
// namespaces are left alone.
type skillMeta struct {
	Hermes hermesMeta     `yaml:"hermes"`
	Other  map[string]any `yaml:",inline"`
}

type hermesMeta struct {
	Tags                []string  `yaml:"tags"`
	Category            string    `yaml:"category"`
	RequiresToolsets    []string  `yaml:"requires_toolsets"`
	RequiresTools       []string  `yaml:"requires_tools"`
	FallbackForToolsets []string  `yaml:"fallback_for_toolsets"`
	FallbackForTools    []string  `yaml:"fallback_for_tools"`
	RelatedSkills       []string  `yaml:"related_skills"`
	Config              yaml.Node `yaml:"config"`
	Blueprint           yaml.Node `yaml:"blueprint"`
	Homepage            string    `yaml:"homepage"`
}

type envVar struct {
	Name        string `yaml:"name"`
	Prompt      string `yaml:"prompt"`
	Help        string `yaml:"help"`
	RequiredFor string `yaml:"required_for"`
	Optional    bool   `yaml:"optional"`
}

// Load loads a catalogue directory: bundles/<name>/<version>/ bundle versions,
// skills/<skill>/<version>/ à-la-carte skills and the bundles.sum record, with fsys
// rooted at that directory (os.DirFS("tenants/bundles"), an embed.FS, fstest.MapFS).
// Other files at the top (Go sources, a README) are ignored, as are top-level entries
// whose names begin with "." or "_".
//
// Loading is strict: an unknown key in bundle.yaml or in a SKILL.md's front matter, a
// skill listed but missing or present but not listed, a name or version that disagrees
// with its directory, an unexpected or hidden file, a malformed bundles.sum line: each
// is an error naming the file, and the line where one is known. All errors are reported
// together; a catalogue with any error is not returned. Load does not compare digests
// with bundles.sum: that is Verify's job.
func Load(fsys fs.FS) (*Catalogue, error) {
	l := &loader{fsys: fsys, entries: map[string]*entry{}}
	top, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read bundle catalogue: %w", err)
	}
	var sums map[string]string
	for _, d := range top {
		name := d.Name()
		switch {
		case hidden(name):
		case d.Type()&fs.ModeSymlink != 0:
			l.add(fileErr(name, 0, "symbolic links are not supported in a catalogue"))
		case !d.IsDir():
			if name == SumFile {
				sums = l.loadSums()
			}
		case name == skillsDir:
			l.loadALaCarte()
		default:
			if err := ValidName(name); err != nil {
				l.add(fileErr(name, 0, "not a bundle directory: %v", err))
				continue
			}
			l.loadBundleVersions(name)
		}
	}
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	orphans := map[string]string{}
	for k, d := range sums {
		if e, ok := l.entries[k]; ok {
			e.recorded = d
		} else {
			orphans[k] = d
		}
	}
	return newCatalogue(l.entries, orphans), nil
}

type loader struct {
	fsys    fs.FS
	entries map[string]*entry
	errs    []error
}

func (l *loader) add(errs ...error) { l.errs = append(l.errs, errs...) }

func hidden(name string) bool { return strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") }

const hiddenMsg = "names beginning with \".\" or \"_\" are not allowed in the catalogue (go:embed would leave the file out of the binary)"

// readDir lists a directory, reporting a failure as a catalogue error.
func (l *loader) readDir(dir string) ([]fs.DirEntry, bool) {
	ents, err := fs.ReadDir(l.fsys, dir)
	if err != nil {
		l.add(fileErr(dir, 0, "%v", err))
		return nil, false
	}
	return ents, true
}

func (l *loader) loadSums() map[string]string {
	data, err := fs.ReadFile(l.fsys, SumFile)
	if err != nil {
		l.add(fileErr(SumFile, 0, "%v", err))
		return nil
	}
	sums, errs := parseSums(data)
	l.add(errs...)
	return sums
}

func (l *loader) loadBundleVersions(name string) {
	vers, ok := l.readDir(name)
	if !ok {
		return
	}
	for _, v := range vers {
		p := name + "/" + v.Name()
		switch {
		case hidden(v.Name()):
			l.add(fileErr(p, 0, hiddenMsg))
		case !v.IsDir():
			l.add(fileErr(p, 0, "unexpected file: a bundle directory holds one directory per version (%s/<version>/)", name))
		default:
			if err := ValidVersion(v.Name()); err != nil {
				l.add(fileErr(p, 0, "version directory: %v", err))
				continue
			}
			if b := l.loadBundle(name, v.Name()); b != nil {
				k := bundleKey(b.Name, b.Version)
				l.entries[k] = &entry{key: k, bundle: b, digest: b.Digest}
			}
		}
	}
}

// bundleCtx is what a bundle imposes on its skills.
type bundleCtx struct {
	ref      string
	category string
	toolsets []string
	env      []string
}

func (l *loader) loadBundle(name, ver string) *Bundle {
	nerr := len(l.errs)
	dir := name + "/" + ver
	ents, ok := l.readDir(dir)
	if !ok {
		return nil
	}
	haveYAML, haveSkills := false, false
	for _, e := range ents {
		p := dir + "/" + e.Name()
		switch {
		case hidden(e.Name()):
			l.add(fileErr(p, 0, hiddenMsg))
		case e.Name() == "bundle.yaml" && e.Type().IsRegular():
			haveYAML = true
		case e.Name() == skillsDir && e.IsDir():
			haveSkills = true
		default:
			l.add(fileErr(p, 0, "unexpected entry: a bundle version holds bundle.yaml and skills/ only"))
		}
	}
	yamlPath := dir + "/bundle.yaml"
	if !haveYAML {
		l.add(fileErr(yamlPath, 0, "missing"))
		return nil
	}
	data, err := fs.ReadFile(l.fsys, yamlPath)
	if err != nil {
		l.add(fileErr(yamlPath, 0, "%v", err))
		return nil
	}
	var bf bundleFile
	if errs := decodeStrict(yamlPath, 0, data, &bf); errs != nil {
		l.add(errs...)
		return nil
	}
	root := yamlRoot(data)
	bad := func(key, format string, args ...any) {
		l.add(fileErr(yamlPath, keyLine(root, strings.Split(key, ".")...), format, args...))
	}
	switch {
	case bf.Name == "":
		bad("name", "name is missing (want %q)", name)
	case bf.Name != name:
		bad("name", "name %q disagrees with its directory %s/", bf.Name, name)
	}
	switch {
	case bf.Version == "":
		bad("version", "version is missing (want %q)", ver)
	case bf.Version != ver:
		bad("version", "version %q disagrees with its directory %s/", bf.Version, dir)
	}
	if strings.TrimSpace(bf.Description) == "" {
		bad("description", "description is missing")
	}
	category := bf.Category
	if category == "" {
		category = name
	} else if err := ValidName(category); err != nil {
		bad("category", "category: %v", err)
	}
	for _, t := range bf.Requires.Toolsets {
		if err := validToolset(t); err != nil {
			bad("requires.toolsets", "requires.toolsets: %v", err)
		}
	}
	if d := firstDuplicate(bf.Requires.Toolsets); d != "" {
		bad("requires.toolsets", "requires.toolsets lists %q twice", d)
	}
	for _, e := range bf.Requires.Env {
		if err := validEnvName(e); err != nil {
			bad("requires.env", "requires.env: %v", err)
		}
	}
	if d := firstDuplicate(bf.Requires.Env); d != "" {
		bad("requires.env", "requires.env lists %q twice", d)
	}
	if len(bf.Skills) == 0 {
		bad("skills", "skills lists no skill")
	}
	listed := map[string]bool{}
	for _, s := range bf.Skills {
		if err := ValidName(s); err != nil {
			bad("skills", "skills: %v", err)
			continue
		}
		if listed[s] {
			bad("skills", "skills lists %q twice", s)
		}
		listed[s] = true
	}
	present := map[string]bool{}
	if haveSkills {
		skillEnts, _ := l.readDir(dir + "/" + skillsDir)
		for _, e := range skillEnts {
			p := dir + "/" + skillsDir + "/" + e.Name()
			switch {
			case hidden(e.Name()):
				l.add(fileErr(p, 0, hiddenMsg))
			case !e.IsDir():
				l.add(fileErr(p, 0, "unexpected file: skills/ holds one directory per skill"))
			case !listed[e.Name()]:
				l.add(fileErr(p, 0, "skill directory is not listed in %s skills", yamlPath))
			default:
				present[e.Name()] = true
			}
		}
	}
	ctx := &bundleCtx{ref: bundleKey(name, ver), category: category, toolsets: bf.Requires.Toolsets, env: bf.Requires.Env}
	b := &Bundle{
		Name:             name,
		Version:          ver,
		Description:      strings.TrimSpace(bf.Description),
		Category:         category,
		RequiresToolsets: bf.Requires.Toolsets,
		RequiresEnv:      bf.Requires.Env,
	}
	files := []File{{Path: "bundle.yaml", Content: data, Mode: 0o644}}
	names := slices.Sorted(maps.Keys(listed))
	for _, s := range names {
		if !present[s] {
			bad("skills", "skill %q is listed but %s/%s/%s/ does not exist", s, dir, skillsDir, s)
			continue
		}
		sk := l.loadSkill(dir+"/"+skillsDir+"/"+s, s, ver, ctx)
		if sk == nil {
			continue
		}
		b.Skills = append(b.Skills, sk)
		for _, f := range sk.Files {
			files = append(files, File{Path: skillsDir + "/" + s + "/" + f.Path, Content: f.Content, Mode: f.Mode})
		}
	}
	if len(l.errs) > nerr {
		return nil
	}
	b.Digest = Digest(files)
	return b
}

func (l *loader) loadALaCarte() {
	ents, ok := l.readDir(skillsDir)
	if !ok {
		return
	}
	for _, e := range ents {
		p := skillsDir + "/" + e.Name()
		switch {
		case hidden(e.Name()):
			l.add(fileErr(p, 0, hiddenMsg))
			continue
		case !e.IsDir():
			l.add(fileErr(p, 0, "unexpected file: skills/ holds one directory per à-la-carte skill (skills/<skill>/<version>/)"))
			continue
		}
		if err := ValidName(e.Name()); err != nil {
			l.add(fileErr(p, 0, "skill directory: %v", err))
			continue
		}
		vers, ok := l.readDir(p)
		if !ok {
			continue
		}
		for _, v := range vers {
			vp := p + "/" + v.Name()
			switch {
			case hidden(v.Name()):
				l.add(fileErr(vp, 0, hiddenMsg))
			case !v.IsDir():
				l.add(fileErr(vp, 0, "unexpected file: an à-la-carte skill holds one directory per version (%s/<version>/)", p))
			default:
				if err := ValidVersion(v.Name()); err != nil {
					l.add(fileErr(vp, 0, "version directory: %v", err))
					continue
				}
				if sk := l.loadSkill(vp, e.Name(), v.Name(), nil); sk != nil {
					k := skillKey(sk.Name, sk.Version)
					l.entries[k] = &entry{key: k, skill: sk, digest: sk.Digest}
				}
			}
		}
	}
}

// loadSkill loads the skill directory dir, which must hold skill name at version ver.
// ctx is the containing bundle, nil for an à-la-carte skill.
func (l *loader) loadSkill(dir, name, ver string, ctx *bundleCtx) *Skill {
	nerr := len(l.errs)
	var files []File
	walkErr := fs.WalkDir(l.fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			l.add(fileErr(p, 0, "%v", err))
			return nil
		}
		if p == dir {
			return nil
		}
		rel := strings.TrimPrefix(p, dir+"/")
		top, _, nested := strings.Cut(rel, "/")
		switch {
		case hidden(d.Name()):
			l.add(fileErr(p, 0, hiddenMsg))
		case d.IsDir():
			if !nested && !skillSubdirs[top] {
				l.add(fileErr(p, 0, "unexpected directory: a skill holds SKILL.md and references/, templates/, scripts/"))
				return fs.SkipDir
			}
			return nil
		case !d.Type().IsRegular():
			l.add(fileErr(p, 0, "not a regular file"))
		case !nested && rel != "SKILL.md":
			l.add(fileErr(p, 0, "unexpected file: a skill holds SKILL.md and references/, templates/, scripts/"))
		default:
			data, err := fs.ReadFile(l.fsys, p)
			if err != nil {
				l.add(fileErr(p, 0, "%v", err))
				return nil
			}
			mode := fs.FileMode(0o644)
			if top == "scripts" {
				mode = 0o755
			}
			files = append(files, File{Path: rel, Content: data, Mode: mode})
		}
		if d.IsDir() {
			return fs.SkipDir
		}
		return nil
	})
	if walkErr != nil {
		l.add(fileErr(dir, 0, "%v", walkErr))
	}
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	mdPath := dir + "/SKILL.md"
	i := slices.IndexFunc(files, func(f File) bool { return f.Path == "SKILL.md" })
	if i < 0 {
		l.add(fileErr(mdPath, 0, "missing"))
		return nil
	}
	sk := l.parseSkillMD(mdPath, files[i].Content, name, ver, ctx)
	if sk == nil || len(l.errs) > nerr {
		return nil
	}
	sk.Files = files
	sk.Digest = Digest(files)
	return sk
}

// splitFrontMatter splits a SKILL.md into its YAML front matter (between a first line
// "---" and the next line "---") and its body.
func splitFrontMatter(data []byte) (fm, body []byte, err error) {
	if bytes.Contains(data, []byte("\r\n")) {
		return nil, nil, errors.New("uses CRLF line endings; use LF")
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) == 0 || string(bytes.TrimSuffix(lines[0], []byte("\n"))) != "---" {
		return nil, nil, errors.New("front matter is missing: the file must start with a line \"---\", then YAML (name, description, version, ...), then a line \"---\"")
	}
	for i := 1; i < len(lines); i++ {
		if string(bytes.TrimSuffix(lines[i], []byte("\n"))) == "---" {
			return bytes.Join(lines[1:i], nil), bytes.Join(lines[i+1:], nil), nil
		}
	}
	return nil, nil, errors.New("front matter is not closed: no line \"---\" after the opening one")
}

func (l *loader) parseSkillMD(mdPath string, data []byte, name, ver string, ctx *bundleCtx) *Skill {
	if !utf8.Valid(data) {
		l.add(fileErr(mdPath, 0, "not valid UTF-8"))
		return nil
	}
	fmText, body, err := splitFrontMatter(data)
	if err != nil {
		l.add(fileErr(mdPath, 0, "%v", err))
		return nil
	}
	var fm frontMatter
	if errs := decodeStrict(mdPath, 1, fmText, &fm); errs != nil {
		l.add(errs...)
		return nil
	}
	root := yamlRoot(fmText)
	bad := func(key, format string, args ...any) {
		line := keyLine(root, strings.Split(key, ".")...)
		if line > 0 {
			line++ // the opening "---"
		}
		l.add(fileErr(mdPath, line, format, args...))
	}
	switch {
	case fm.Name == "":
		bad("name", "name is missing (want %q)", name)
	case fm.Name != name:
		bad("name", "name %q disagrees with its directory %s/", fm.Name, name)
	}
	desc := strings.TrimSpace(fm.Description)
	switch {
	case desc == "":
		bad("description", "description is missing")
	case len(desc) > maxDescription:
		bad("description", "description is longer than %d characters", maxDescription)
	}
	switch {
	case fm.Version == "":
		bad("version", "version is missing (want %q)", ver)
	case ctx != nil && fm.Version != ver:
		bad("version", "version %q disagrees with its bundle %s (a bundle's skills carry the bundle's version)", fm.Version, ctx.ref)
	case fm.Version != ver:
		bad("version", "version %q disagrees with its directory %s/", fm.Version, ver)
	}
	for _, p := range fm.Platforms {
		if !knownPlatforms[p] {
			bad("platforms", "platforms: unknown platform %q (want linux, macos or windows)", p)
		}
	}
	hm := fm.Metadata.Hermes
	for _, t := range hm.Tags {
		if strings.TrimSpace(t) == "" {
			bad("metadata.hermes.tags", "metadata.hermes.tags holds an empty tag")
		}
	}
	category := hm.Category
	switch {
	case ctx != nil && category != "" && category != ctx.category:
		bad("metadata.hermes.category", "metadata.hermes.category %q disagrees with its bundle's category %q", category, ctx.category)
	case ctx != nil:
		category = ctx.category
	case category == "":
		category = DefaultCategory
	default:
		if err := ValidName(category); err != nil {
			bad("metadata.hermes.category", "metadata.hermes.category: %v", err)
		}
	}
	for _, t := range hm.RequiresToolsets {
		if err := validToolset(t); err != nil {
			bad("metadata.hermes.requires_toolsets", "metadata.hermes.requires_toolsets: %v", err)
		} else if ctx != nil && !slices.Contains(ctx.toolsets, t) {
			bad("metadata.hermes.requires_toolsets", "metadata.hermes.requires_toolsets names %q, which the bundle's requires.toolsets does not declare", t)
		}
	}
	var env []EnvRequirement
	seen := map[string]bool{}
	for _, e := range fm.RequiredEnv {
		if err := validEnvName(e.Name); err != nil {
			bad("required_environment_variables", "required_environment_variables: %v", err)
			continue
		}
		if seen[e.Name] {
			bad("required_environment_variables", "required_environment_variables lists %s twice", e.Name)
		}
		seen[e.Name] = true
		if ctx != nil && !e.Optional && !slices.Contains(ctx.env, e.Name) {
			bad("required_environment_variables", "required_environment_variables names %s, which the bundle's requires.env does not declare (or mark it optional: true)", e.Name)
		}
		env = append(env, EnvRequirement(e))
	}
	if len(bytes.TrimSpace(body)) == 0 {
		l.add(fileErr(mdPath, 0, "no instructions after the front matter"))
	}
	sk := &Skill{
		Name:             name,
		Version:          ver,
		Description:      desc,
		Category:         category,
		Tags:             hm.Tags,
		Platforms:        fm.Platforms,
		RequiresToolsets: hm.RequiresToolsets,
		RequiredEnv:      env,
	}
	if ctx != nil {
		sk.Bundle = ctx.ref
	}
	return sk
}

func firstDuplicate(xs []string) string {
	seen := map[string]bool{}
	for _, x := range xs {
		if seen[x] {
			return x
		}
		seen[x] = true
	}
	return ""
}
