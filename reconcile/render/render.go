// Package render turns a tenant file, its app profile, its worker and the bundle catalogue
// into the complete desired objects on the worker: config.yaml, the managed .env keys,
// the skills tree and its lock, the knowledge-base scaffold and the container spec. It is
// pure: no I/O, no clock.
package render

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/firemountain/hermes-gitops/bundles"
	"github.com/firemountain/hermes-gitops/reconcile/live"
	"github.com/firemountain/hermes-gitops/schema"
)

// Fingerprinter computes keyed fingerprints with a worker's key (agent.Fingerprint).
type Fingerprinter func(value string) string

// Tenant is everything a tenant should be on its worker.
type Tenant struct {
	ID     string
	App    string
	Worker string
	State  string
	// Source is the tenant file, for messages.
	Source string
	// Root is the tenant's directory, Home its hermes-home (absolute, on the worker).
	Root, Home string
	// Owner owns every managed file and directory (the container user); nil keeps the
	// agent's default.
	Owner *Owner
	// Files are the managed files, paths relative to Home, sorted; the lock file last.
	Files []File
	// Seed files are created when missing and never overwritten.
	Seed []File
	// Dirs are the scaffold directories, relative to Home.
	Dirs []string
	// Env is the managed part of .env, sorted by name.
	Env []EnvVar
	// Container is the desired container.
	Container ContainerSpec
	// Lock is the lock file content (also in Files).
	Lock live.InstallLock
	// Provider is the provider's table entry; AuthKey is where its OAuth credential
	// lives in auth.json.
	Provider schema.ProviderInfo
	// ArchiveDir is where a deleted tenant's directory is moved to.
	ArchiveDir string
}

// Owner is a uid:gid.
type Owner struct{ UID, GID int }

// File is a managed file.
type File struct {
	Path    string
	Content []byte
	Mode    uint32
	Digest  string
}

// EnvVar is a managed .env key or container env variable. Value is a schema.Secret so it
// cannot be printed by accident; Fingerprint is what is compared and shown.
type EnvVar struct {
	Name        string
	Value       schema.Secret
	Fingerprint string
	// Secret is true for values from the tenant's secrets (shown only as fingerprints).
	Secret bool
}

// ContainerSpec is the desired container. Everything in it is observable with docker
// inspect, which is how the planner compares it.
type ContainerSpec struct {
	Name          string
	Image         string
	User          string
	Env           []EnvVar // baked, non-secret, sorted
	SecretEnv     []EnvVar // app processSecrets, passed by --env-file, sorted
	Mounts        []live.Mount
	CapDrop       []string
	SecurityOpt   []string
	Memory        string
	MemoryBytes   int64
	PidsLimit     int64
	RestartPolicy string
	Labels        map[string]string
	Hash          string
}

// Hardening every tenant container gets.
var (
	CapDrop     = []string{"ALL"}
	SecurityOpt = []string{"no-new-privileges:true"}
)

// Scaffold is the knowledge-base layout every tenant gets; directories are created when
// missing and never overwritten.
var Scaffold = []string{
	"knowledge",
	"knowledge/raw",
	"knowledge/entities/people",
	"knowledge/entities/organizations",
	"knowledge/entities/places",
	"knowledge/topics",
	"knowledge/sources",
	"knowledge/journal",
	"memories",
	"skills",
}

// Input is what rendering one tenant needs.
type Input struct {
	Tenant      *schema.Tenant
	App         *schema.App
	Worker      *schema.Worker
	Catalogue   *bundles.Catalogue
	Fingerprint Fingerprinter
}

// Render computes a tenant's desired objects. It fails only on a catalogue that lacks
// what validation found (a programming error) or skills that collide.
func Render(in Input) (*Tenant, error) {
	t, app := in.Tenant, in.App
	prov, _ := schema.LookupProvider(t.Spec.Provider.ID)
	root := path.Join(schema.AppRoot(app, in.Worker), t.Metadata.Name)
	out := &Tenant{
		ID: t.Metadata.Name, App: t.Metadata.App, Worker: t.Spec.Worker, State: t.Spec.State,
		Root: root, Home: path.Join(root, "hermes-home"), Provider: prov,
		ArchiveDir: path.Join(schema.AppRoot(app, in.Worker), ".archive"),
		Dirs:       slices.Clone(Scaffold),
	}
	if t.Source != nil {
		out.Source = t.Source.File
	}
	if app.Spec.User != "" {
		uid, gid, _ := strings.Cut(app.Spec.User, ":")
		u, _ := strconv.Atoi(uid)
		g, _ := strconv.Atoi(gid)
		out.Owner = &Owner{UID: u, GID: g}
	}

	config, err := ConfigYAML(t, out.Source)
	if err != nil {
		return nil, err
	}
	out.Files = append(out.Files, newFile(live.ConfigFile, config, 0o644))

	skillFiles, lock, err := skills(in)
	if err != nil {
		return nil, err
	}
	out.Files = append(out.Files, skillFiles...)
	out.Env = envVars(t, app)
	for _, e := range out.Env {
		lock.Env = append(lock.Env, e.Name)
	}
	lock.Dirs = out.Dirs
	sort.Slice(out.Files, func(i, j int) bool { return out.Files[i].Path < out.Files[j].Path })
	for _, f := range out.Files {
		lock.Files = append(lock.Files, live.LockedFile{Path: f.Path, Digest: f.Digest})
	}
	out.Lock = lock
	lockJSON, _ := json.MarshalIndent(lock, "", "  ")
	out.Files = append(out.Files, newFile(live.LockFile, append(lockJSON, '\n'), 0o644))
	out.Seed = []File{newFile("knowledge/README.md", []byte(knowledgeReadme(t.Metadata.Name)), 0o644)}

	out.Container = containerSpec(in, out)
	if in.Fingerprint != nil {
		out.Fingerprint(in.Fingerprint)
	}
	return out, nil
}

// Fingerprint fills in the keyed fingerprints of every value for a worker's key and
// recomputes the container's spec hash. Rendering itself does not need the key, so the
// reconciler renders while it observes the worker and fingerprints afterwards.
func (t *Tenant) Fingerprint(fp Fingerprinter) {
	for i := range t.Env {
		t.Env[i].Fingerprint = fp(t.Env[i].Value.Reveal())
	}
	c := &t.Container
	for i := range c.Env {
		c.Env[i].Fingerprint = fp(c.Env[i].Value.Reveal())
	}
	for i := range c.SecretEnv {
		c.SecretEnv[i].Fingerprint = fp(c.SecretEnv[i].Value.Reveal())
	}
	delete(c.Labels, live.LabelSpecHash)
	c.Hash = c.hash()
	c.Labels[live.LabelSpecHash] = c.Hash
}

func newFile(p string, content []byte, mode uint32) File {
	sum := sha256.Sum256(content)
	return File{Path: p, Content: content, Mode: mode, Digest: "sha256:" + hex.EncodeToString(sum[:])}
}

// skills lays out every skill of every pinned bundle and every à-la-carte skill under
// skills/<category>/<skill>/ and records them in the lock.
func skills(in Input) ([]File, live.InstallLock, error) {
	lock := live.InstallLock{Version: 1, Bundles: []live.LockedBundle{}, Skills: []live.LockedBundle{}}
	var files []File
	owner := map[string]string{} // install dir → what put it there
	add := func(s *bundles.Skill, from string) error {
		dir := s.InstallDir()
		if prev, dup := owner[dir]; dup {
			if prev == from {
				return nil
			}
			return fmt.Errorf("%s and %s both install %s", prev, from, dir)
		}
		owner[dir] = from
		for _, f := range s.Files {
			files = append(files, newFile(path.Join(dir, f.Path), f.Content, uint32(f.Mode.Perm())))
		}
		return nil
	}
	for _, ref := range in.Tenant.Spec.Bundles {
		r, err := bundles.ParseRef(ref)
		if err != nil {
			return nil, lock, err
		}
		b, ok := in.Catalogue.Bundle(r.Name, r.Version)
		if !ok {
			return nil, lock, fmt.Errorf("bundle %s is not in the catalogue", ref)
		}
		for _, s := range b.Skills {
			if err := add(s, "bundle "+ref); err != nil {
				return nil, lock, err
			}
		}
		lock.Bundles = append(lock.Bundles, live.LockedBundle{Name: b.Name, Version: b.Version, Digest: b.Digest})
	}
	for _, ref := range in.Tenant.Spec.Skills {
		name, version, _ := strings.Cut(ref, "@")
		s, ok := in.Catalogue.Skill(name, version)
		if !ok {
			return nil, lock, fmt.Errorf("skill %s is not in the catalogue", ref)
		}
		if err := add(s, "skill "+s.Name); err != nil {
			return nil, lock, err
		}
		lock.Skills = append(lock.Skills, live.LockedBundle{Name: s.Name, Version: s.Version, Digest: s.Digest})
	}
	sort.Slice(lock.Bundles, func(i, j int) bool { return lock.Bundles[i].Name < lock.Bundles[j].Name })
	sort.Slice(lock.Skills, func(i, j int) bool { return lock.Skills[i].Name < lock.Skills[j].Name })
	return files, lock, nil
}

// envVars is the managed part of .env: every tenant secret, the Telegram allow-list and
// the app's baked variables (so Hermes sees them too), sorted by name.
func envVars(t *schema.Tenant, app *schema.App) []EnvVar {
	vars := map[string]EnvVar{}
	for k, v := range app.Spec.Env {
		vars[k] = EnvVar{Name: k, Value: schema.Secret(v)}
	}
	if len(t.Spec.Telegram.AllowedUsers) > 0 {
		ids := make([]string, len(t.Spec.Telegram.AllowedUsers))
		for i, id := range t.Spec.Telegram.AllowedUsers {
			ids[i] = strconv.FormatInt(id, 10)
		}
		vars[schema.TelegramAllowedUsersKey] = EnvVar{Name: schema.TelegramAllowedUsersKey, Value: schema.Secret(strings.Join(ids, ","))}
	}
	for k, v := range t.SecretValues {
		vars[k] = EnvVar{Name: k, Value: v, Secret: true}
	}
	out := make([]EnvVar, 0, len(vars))
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		out = append(out, vars[k])
	}
	return out
}

// containerSpec is the container of a tenant: the app's image and baked env, the
// hermes-home bind mount, hardening flags, limits and identity labels.
func containerSpec(in Input, t *Tenant) ContainerSpec {
	app := in.App.Spec
	c := ContainerSpec{
		Name:          app.ContainerPrefix + t.ID,
		Image:         app.Image,
		User:          app.User,
		Mounts:        []live.Mount{{Source: t.Home, Destination: app.MountPath, RW: true}},
		CapDrop:       slices.Clone(CapDrop),
		SecurityOpt:   slices.Clone(SecurityOpt),
		Memory:        in.Tenant.Spec.Resources.Memory,
		MemoryBytes:   MemoryBytes(in.Tenant.Spec.Resources.Memory),
		PidsLimit:     int64(app.PidsLimit),
		RestartPolicy: app.RestartPolicy,
	}
	for _, k := range slices.Sorted(maps.Keys(app.Env)) {
		c.Env = append(c.Env, EnvVar{Name: k, Value: schema.Secret(app.Env[k])})
	}
	for _, k := range slices.Sorted(slices.Values(app.ProcessSecrets)) {
		if val, ok := in.Tenant.SecretValues[k]; ok {
			c.SecretEnv = append(c.SecretEnv, EnvVar{Name: k, Value: val, Secret: true})
		}
	}
	c.Labels = map[string]string{
		live.LabelManagedBy: live.ManagedByValue,
		live.LabelTenant:    t.ID,
		live.LabelApp:       t.App,
	}
	c.Hash = c.hash()
	c.Labels[live.LabelSpecHash] = c.Hash
	return c
}

// hash is a digest of the spec in which secret values appear only as fingerprints, so
// the label that carries it reveals nothing.
func (c ContainerSpec) hash() string {
	type env struct{ Name, FP string }
	view := struct {
		Name, Image, User, Memory, Restart string
		Env, SecretEnv                     []env
		Mounts                             []live.Mount
		CapDrop, SecurityOpt               []string
		Pids                               int64
		Labels                             map[string]string
	}{c.Name, c.Image, c.User, c.Memory, c.RestartPolicy, nil, nil, c.Mounts, c.CapDrop, c.SecurityOpt, c.PidsLimit, c.Labels}
	for _, e := range c.Env {
		view.Env = append(view.Env, env{e.Name, e.Value.Reveal()}) // baked env is not secret
	}
	for _, e := range c.SecretEnv {
		view.SecretEnv = append(view.SecretEnv, env{e.Name, e.Fingerprint})
	}
	data, _ := json.Marshal(view)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}

// MemoryBytes converts a Docker memory size ("512m", "1g") to bytes; 0 if invalid.
func MemoryBytes(s string) int64 {
	if s == "" {
		return 0
	}
	mult := int64(1)
	switch s[len(s)-1] {
	case 'b':
		s = s[:len(s)-1]
	case 'k':
		mult, s = 1<<10, s[:len(s)-1]
	case 'm':
		mult, s = 1<<20, s[:len(s)-1]
	case 'g':
		mult, s = 1<<30, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0
	}
	return n * mult
}

func knowledgeReadme(id string) string {
	return `# Knowledge base of ` + id + `

This directory is the tenant's knowledge base, mounted into the agent's container. Skills
find it through the KB root variable of the app (for example ASTRAL_KB_ROOT).

- raw/                 material as it arrived (notes, transcripts, uploads)
- entities/people/     one file per person
- entities/organizations/, entities/places/
- topics/              syntheses across sources
- sources/             one note per source, with citation
- journal/             dated entries

hermes-gitops created this layout; it never overwrites or deletes anything in here.
`
}
