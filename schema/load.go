package schema

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/firemountain/hermes-gitops/bundles"
	"github.com/firemountain/hermes-gitops/internal/par"
)

// Directories of a desired-state repository.
const (
	AppsDir    = "apps"
	WorkersDir = "workers"
	TenantsDir = "tenants"
	BundlesDir = "bundles"
)

// Repo is a loaded desired-state repository: every file decoded and validated, with all
// problems collected. Load never stops at the first problem.
type Repo struct {
	Dir       string
	Apps      map[string]*App
	Workers   map[string]*Worker
	Tenants   []*Tenant // sorted by id, including held ones
	Catalogue *bundles.Catalogue
	Problems  Problems
	raw       map[*Tenant][]byte
}

// LoadOptions tune Load.
type LoadOptions struct {
	// Catalogue overrides the bundle catalogue (default: the built-in one, layered with
	// the repository's own bundles/ directory when it has one).
	Catalogue *bundles.Catalogue
}

// Load reads and validates the repository at dir. The returned error is for failures to
// read the repository at all; problems in its files are in Repo.Problems.
func Load(dir string, opts LoadOptions) (*Repo, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("desired-state repository: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("desired-state repository %s: not a directory", dir)
	}
	return LoadFS(os.DirFS(dir), dir, opts)
}

// LoadFS is Load over any file system (a git tree, a test's fstest.MapFS). dir is only
// used to name the repository.
func LoadFS(fsys fs.FS, dir string, opts LoadOptions) (*Repo, error) {
	r := &Repo{Dir: dir, Apps: map[string]*App{}, Workers: map[string]*Worker{}, raw: map[*Tenant][]byte{}}
	cat := opts.Catalogue
	if cat == nil {
		var err error
		if cat, err = catalogueFor(fsys); err != nil {
			r.Problems = append(r.Problems, Problem{File: BundlesDir, Severity: Error, Message: err.Error()})
		}
	}
	r.Catalogue = cat

	for _, file := range yamlFiles(fsys, AppsDir, &r.Problems) {
		a := &App{}
		if r.decodeFile(fsys, file, KindApp, a, &a.Source) {
			if name := fileStem(file); a.Metadata.Name != "" && a.Metadata.Name != name {
				reporter{a.Source, &r.Problems}.errorf("metadata.name", "app name %q must equal the file name %q", a.Metadata.Name, name)
			}
			r.Apps[fileStem(file)] = a
		}
	}
	for _, file := range yamlFiles(fsys, WorkersDir, &r.Problems) {
		w := &Worker{}
		if r.decodeFile(fsys, file, KindWorker, w, &w.Source) {
			if name := fileStem(file); w.Metadata.Name != "" && w.Metadata.Name != name {
				reporter{w.Source, &r.Problems}.errorf("metadata.name", "worker name %q must equal the file name %q", w.Metadata.Name, name)
			}
			r.Workers[fileStem(file)] = w
		}
	}
	r.loadTenants(fsys)

	if _, err := fs.Stat(fsys, TenantsDir); errors.Is(err, fs.ErrNotExist) {
		r.Problems = append(r.Problems, Problem{File: TenantsDir, Severity: Error,
			Message: "no tenants directory: a desired-state repository has tenants/<app>/<id>.yaml files"})
	}
	if len(r.Apps) == 0 {
		r.Problems = append(r.Problems, Problem{File: AppsDir, Severity: Error, Message: "no app profiles (apps/<name>.yaml)"})
	}
	if len(r.Workers) == 0 {
		r.Problems = append(r.Problems, Problem{File: WorkersDir, Severity: Error, Message: "no workers (workers/<name>.yaml)"})
	}

	r.validate()
	r.Problems = r.Problems.Sort()
	r.applyDefaults()
	return r, nil
}

// loadTenants reads tenants/<app>/<id>.yaml. A file that does not decode still yields a
// Tenant named after its file, so that the reconciler can hold it instead of treating its
// live container as an orphan.
func (r *Repo) loadTenants(fsys fs.FS) {
	entries, err := fs.ReadDir(fsys, TenantsDir)
	if err != nil {
		return
	}
	var files []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		if !e.IsDir() {
			if isYAML(name) {
				r.Problems = append(r.Problems, Problem{File: path.Join(TenantsDir, name), Line: 1, Col: 1, Severity: Error,
					Message: "tenant files live in tenants/<app>/<id>.yaml; move this file into its app's directory"})
			}
			continue
		}
		files = append(files, yamlFiles(fsys, path.Join(TenantsDir, name), &r.Problems)...)
	}
	// Tenant files are decoded in parallel (a fleet has thousands); each keeps its own
	// problems, merged afterwards.
	type decoded struct {
		t        *Tenant
		data     []byte
		problems Problems
	}
	out := make([]decoded, len(files))
	par.Do(len(files), func(i int) {
		file := files[i]
		t := &Tenant{}
		data, ok := decodeFile(fsys, file, KindTenant, t, &t.Source, &out[i].problems)
		if !ok || t.Metadata.Name == "" {
			t.Metadata.Name = fileStem(file)
		}
		if !ok || t.Metadata.App == "" {
			t.Metadata.App = path.Base(path.Dir(file))
		}
		out[i].t, out[i].data = t, data
	})
	for _, d := range out {
		r.raw[d.t] = d.data
		r.Tenants = append(r.Tenants, d.t)
		r.Problems = append(r.Problems, d.problems...)
	}
	sort.SliceStable(r.Tenants, func(i, j int) bool {
		a, b := r.Tenants[i], r.Tenants[j]
		if a.Metadata.Name != b.Metadata.Name {
			return a.Metadata.Name < b.Metadata.Name
		}
		return a.Source.File < b.Source.File
	})
}

// decodeFile parses and strictly decodes one file into out, checking apiVersion and kind.
// It reports whether decoding got far enough for the value to be used.
func (r *Repo) decodeFile(fsys fs.FS, file, kind string, out any, src **Source) bool {
	_, ok := decodeFile(fsys, file, kind, out, src, &r.Problems)
	return ok
}

// decodeFile reads, parses and strictly decodes one file, reporting into problems. It is
// safe to run for several files at once (each with its own problems).
func decodeFile(fsys fs.FS, file, kind string, out any, src **Source, problems *Problems) ([]byte, bool) {
	*src = &Source{File: file}
	data, err := fs.ReadFile(fsys, file)
	if err != nil {
		*problems = append(*problems, Problem{File: file, Severity: Error, Message: err.Error()})
		return nil, false
	}
	node := parseYAML(*src, data, problems)
	if node == nil {
		return data, false
	}
	decodeStrict(*src, node, out, problems)
	var h *Header
	switch v := out.(type) {
	case *Tenant:
		h = &v.Header
	case *App:
		h = &v.Header
	case *Worker:
		h = &v.Header
	}
	rep := reporter{*src, problems}
	if h.APIVersion != "" && h.APIVersion != APIVersion {
		rep.errorf("apiVersion", "unsupported apiVersion %q; this hermesctl reads %q", h.APIVersion, APIVersion)
	}
	if h.Kind != "" && h.Kind != kind {
		rep.errorf("kind", "a file under %s/ must be of kind %s, not %q", strings.SplitN(file, "/", 2)[0], kind, h.Kind)
	}
	return data, true
}

// yamlFiles lists the .yaml/.yml files of a directory, sorted. Other files are ignored.
func yamlFiles(fsys fs.FS, dir string, problems *Problems) []string {
	entries, err := fs.ReadDir(fsys, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		*problems = append(*problems, Problem{File: dir, Severity: Error, Message: err.Error()})
		return nil
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") || !isYAML(e.Name()) {
			continue
		}
		out = append(out, path.Join(dir, e.Name()))
	}
	return out
}

func isYAML(name string) bool {
	ext := path.Ext(name)
	return ext == ".yaml" || ext == ".yml"
}

func fileStem(file string) string {
	base := path.Base(file)
	return strings.TrimSuffix(base, path.Ext(base))
}

// catalogueFor is the built-in catalogue layered with the repository's bundles/ dir.
func catalogueFor(fsys fs.FS) (*bundles.Catalogue, error) {
	builtin, err := bundles.Builtin()
	if err != nil {
		return nil, fmt.Errorf("built-in bundle catalogue: %w", err)
	}
	if _, err := fs.Stat(fsys, BundlesDir); err != nil {
		return builtin, nil
	}
	sub, err := fs.Sub(fsys, BundlesDir)
	if err != nil {
		return builtin, err
	}
	own, err := bundles.Load(sub)
	if err != nil {
		return builtin, fmt.Errorf("repository bundle catalogue: %w", err)
	}
	return bundles.Layered(builtin, own), nil
}

// TenantProblems returns the problems found in a tenant's own file.
func (r *Repo) TenantProblems(t *Tenant) Problems {
	var out Problems
	for _, p := range r.Problems {
		if p.File == t.Source.File {
			out = append(out, p)
		}
	}
	return out
}

// Held reports whether a tenant must not be acted on: its file has errors, or its app or
// worker is broken. A held tenant is reported, never deleted.
func (r *Repo) Held(t *Tenant) bool {
	if r.TenantProblems(t).HasErrors() {
		return true
	}
	a, w := r.Apps[t.Metadata.App], r.Workers[t.Spec.Worker]
	return a == nil || w == nil || r.fileHasErrors(a.Source.File) || r.fileHasErrors(w.Source.File)
}

func (r *Repo) fileHasErrors(file string) bool {
	for _, p := range r.Problems {
		if p.File == file && p.Severity == Error {
			return true
		}
	}
	return false
}

// Usable returns an error when the repository as a whole must not be applied: it failed
// to load, has broken app or worker files, or no tenants directory. Tenants with broken
// files do not make it unusable; they are held.
func (r *Repo) Usable() error {
	var bad Problems
	for _, p := range r.Problems.Errors() {
		if !strings.HasPrefix(p.File, TenantsDir+"/") {
			bad = append(bad, p)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("the desired state cannot be applied until these are fixed:\n%w", bad)
	}
	return nil
}

// Tenant returns the tenant with an id, if any.
func (r *Repo) Tenant(id string) *Tenant {
	for _, t := range r.Tenants {
		if t.Metadata.Name == id {
			return t
		}
	}
	return nil
}

// Decrypt decrypts the secrets of every tenant that has them. A tenant whose secrets do
// not decrypt gets an error problem (and so is held); the others are unaffected. Secrets
// decrypted once are kept: a daemon reconciling the same revision again does not pay
// for sops again.
func (r *Repo) Decrypt(ids *Identities) {
	for _, t := range r.Tenants {
		if len(t.Secrets) == 0 || t.SecretValues != nil || r.TenantProblems(t).HasErrors() {
			continue
		}
		vals, err := DecryptSecrets(r.raw[t], ids)
		if err != nil {
			reporter{t.Source, &r.Problems}.errorf("secrets", "cannot decrypt: %v", err)
			continue
		}
		t.SecretValues = vals
	}
	r.Problems = r.Problems.Sort()
}

// RawFile returns the bytes a tenant was loaded from.
func (r *Repo) RawFile(t *Tenant) []byte { return r.raw[t] }

// AbsPath returns a repository-relative path as a path on disk.
func (r *Repo) AbsPath(rel string) string { return filepath.Join(r.Dir, filepath.FromSlash(rel)) }
