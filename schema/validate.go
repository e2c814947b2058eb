package schema

import (
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/firemountain/hermes-gitops/bundles"
)

var (
	tenantIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$`)
	nameRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	envNameRE  = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)
	memoryRE   = regexp.MustCompile(`^[0-9]+[bkmg]?$`)
	quotaRE    = regexp.MustCompile(`^([0-9]+)(Ki|Mi|Gi|Ti|K|M|G|T)?$`)
	userRE     = regexp.MustCompile(`^[0-9]+:[0-9]+$`)
	prefixRE   = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
)

// Toolsets every tenant has unless disabled, besides terminal.
var DefaultToolsets = []string{"file", "web", "skills", "memory"}

// managedConfigKeys are the config.yaml keys rendered from the tenant spec; hermesConfig
// may not set them.
var managedConfigKeys = map[string]string{
	"model":             "spec.provider",
	"platform_toolsets": "spec.toolsets",
	"web":               "spec.web",
}

func (r *Repo) validate() {
	for _, name := range slices.Sorted(maps.Keys(r.Apps)) {
		r.validateApp(r.Apps[name])
	}
	for _, name := range slices.Sorted(maps.Keys(r.Workers)) {
		r.validateWorker(r.Workers[name])
	}
	byID := map[string][]*Tenant{}
	for _, t := range r.Tenants {
		byID[t.Metadata.Name] = append(byID[t.Metadata.Name], t)
		if t.Source.pos != nil { // decoded
			r.validateTenant(t)
		}
	}
	for id, ts := range byID {
		if len(ts) < 2 {
			continue
		}
		for _, t := range ts {
			var others []string
			for _, o := range ts {
				if o != t {
					others = append(others, o.Source.File)
				}
			}
			reporter{t.Source, &r.Problems}.errorf("metadata.name", "tenant id %q is also used by %s; tenant ids are unique across apps", id, strings.Join(others, ", "))
		}
	}
}

func (r *Repo) validateApp(a *App) {
	rep := reporter{a.Source, &r.Problems}
	if n := a.Metadata.Name; n != "" && !nameRE.MatchString(n) {
		rep.errorf("metadata.name", "app name %q must be lowercase letters, digits and dashes", n)
	}
	s := a.Spec
	if s.ContainerPrefix != "" && !prefixRE.MatchString(s.ContainerPrefix) {
		rep.errorf("spec.containerPrefix", "%q is not a valid container name prefix (letters, digits, _ . -)", s.ContainerPrefix)
	}
	if s.MountPath != "" && !path.IsAbs(s.MountPath) {
		rep.errorf("spec.mountPath", "must be an absolute path in the container")
	}
	for field, p := range map[string]string{"spec.mountPath": s.MountPath, "spec.tenantRoot": s.TenantRoot} {
		if !mountable(p) {
			rep.errorf(field, "a path given to docker --mount cannot contain a comma, a quote or a newline")
		}
	}
	if s.User != "" && !userRE.MatchString(s.User) {
		rep.errorf("spec.user", "must be numeric uid:gid, e.g. 10000:10000")
	}
	if s.Memory != "" && !memoryRE.MatchString(s.Memory) {
		rep.errorf("spec.memory", "%q is not a Docker memory size (e.g. 512m, 1g)", s.Memory)
	}
	if s.RestartPolicy != "" && !slices.Contains([]string{"no", "always", "unless-stopped", "on-failure"}, s.RestartPolicy) {
		rep.errorf("spec.restartPolicy", "must be one of no, always, unless-stopped, on-failure")
	}
	if s.PidsLimit < 0 {
		rep.errorf("spec.pidsLimit", "must be positive")
	}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		if !envNameRE.MatchString(k) {
			rep.errorf("spec.env."+k, "%q is not an environment variable name (A-Z, 0-9, _)", k)
		}
	}
	for i, k := range s.ProcessSecrets {
		if !envNameRE.MatchString(k) {
			rep.errorf(fmt.Sprintf("spec.processSecrets[%d]", i), "%q is not an environment variable name", k)
		}
	}
	for i, p := range s.Providers {
		if _, ok := LookupProvider(p); !ok {
			rep.errorf(fmt.Sprintf("spec.providers[%d]", i), "unknown provider %q; known: %s", p, strings.Join(ProviderIDs(), ", "))
		}
	}
	r.checkBundleRefs(rep, "spec.defaultBundles", s.DefaultBundles)
}

func (r *Repo) validateWorker(w *Worker) {
	rep := reporter{w.Source, &r.Problems}
	if n := w.Metadata.Name; n != "" && !nameRE.MatchString(n) {
		rep.errorf("metadata.name", "worker name %q must be lowercase letters, digits and dashes", n)
	}
	s := w.Spec
	switch s.Transport {
	case "", TransportSSH:
		if s.Host == "" {
			rep.errorf("spec", "an ssh worker needs host")
		}
		if s.User == "" {
			rep.errorf("spec", "an ssh worker needs user")
		}
		if s.HostKey == "" && s.KnownHostsFile == "" {
			rep.errorf("spec", "an ssh worker needs hostKey or knownHostsFile: host keys are always verified")
		}
	case TransportLocal:
	default:
		rep.errorf("spec.transport", "must be ssh or local, not %q", s.Transport)
	}
	if s.Port < 0 || s.Port > 65535 {
		rep.errorf("spec.port", "must be between 1 and 65535")
	}
	if s.TenantRoot != "" && !path.IsAbs(s.TenantRoot) {
		rep.errorf("spec.tenantRoot", "must be an absolute path on the worker")
	}
	if !mountable(s.TenantRoot) {
		rep.errorf("spec.tenantRoot", "a path given to docker --mount cannot contain a comma, a quote or a newline")
	}
	if s.AgentDir != "" && !path.IsAbs(s.AgentDir) {
		rep.errorf("spec.agentDir", "must be an absolute path on the worker")
	}
}

func (r *Repo) validateTenant(t *Tenant) {
	rep := reporter{t.Source, &r.Problems}
	id := t.Metadata.Name
	if id != "" {
		if !tenantIDRE.MatchString(id) {
			rep.errorf("metadata.name", "tenant id %q must be 3-40 lowercase letters, digits or dashes, starting and ending with a letter or digit", id)
		}
		if stem := fileStem(t.Source.File); id != stem {
			rep.errorf("metadata.name", "tenant id %q must equal the file name %q", id, stem)
		}
	}
	dirApp := path.Base(path.Dir(t.Source.File))
	app := r.Apps[t.Metadata.App]
	switch {
	case !t.Source.Has("metadata.app"):
	case app == nil:
		rep.errorf("metadata.app", "unknown app %q; apps: %s", t.Metadata.App, strings.Join(slices.Sorted(maps.Keys(r.Apps)), ", "))
	case t.Metadata.App != dirApp:
		rep.errorf("metadata.app", "app %q does not match the directory tenants/%s/", t.Metadata.App, dirApp)
	}
	s := t.Spec
	if s.Worker != "" && r.Workers[s.Worker] == nil {
		rep.errorf("spec.worker", "unknown worker %q; workers: %s", s.Worker, strings.Join(slices.Sorted(maps.Keys(r.Workers)), ", "))
	}
	if s.State != "" && !slices.Contains([]string{StateActive, StateSuspended, StateDeleted}, s.State) {
		rep.errorf("spec.state", "must be active, suspended or deleted, not %q", s.State)
	}
	if s.Owner.Email != "" && !strings.Contains(s.Owner.Email, "@") {
		rep.errorf("spec.owner.email", "%q is not an email address", s.Owner.Email)
	}

	// Provider and the secret it needs.
	prov, known := LookupProvider(s.Provider.ID)
	switch {
	case s.Provider.ID == "":
	case !known:
		rep.errorf("spec.provider.id", "unknown provider %q; known: %s", s.Provider.ID, strings.Join(ProviderIDs(), ", "))
	case app != nil && !slices.Contains(app.Spec.Providers, s.Provider.ID):
		rep.errorf("spec.provider.id", "provider %q is not allowed for app %s (allowed: %s)", s.Provider.ID, t.Metadata.App, strings.Join(app.Spec.Providers, ", "))
	}
	if known && prov.EnvKey != "" {
		if _, ok := t.Secrets[prov.EnvKey]; !ok {
			rep.errorf("secrets", "provider %s needs secrets.%s", s.Provider.ID, prov.EnvKey)
		}
	}
	if known && prov.OAuth {
		rep.notef("spec.provider.id", "provider %s signs in after the tenant is created: run 'hermesctl auth login %s'", s.Provider.ID, id)
	}

	// Telegram.
	if len(s.Telegram.AllowedUsers) > 0 {
		if _, ok := t.Secrets[TelegramTokenKey]; !ok {
			rep.errorf("secrets", "telegram.allowedUsers is set, so secrets.%s is required", TelegramTokenKey)
		}
	}
	for i, u := range s.Telegram.AllowedUsers {
		if u <= 0 {
			rep.errorf(fmt.Sprintf("spec.telegram.allowedUsers[%d]", i), "Telegram user ids are positive numbers")
		}
	}

	// Web backend key.
	if s.Web.Backend != "" {
		key, ok := WebBackendKeys[s.Web.Backend]
		switch {
		case !ok:
			rep.errorf("spec.web.backend", "unknown web backend %q; known: exa, firecrawl, parallel, tavily", s.Web.Backend)
		case t.Secrets[key] == "" && (app == nil || app.Spec.Env[key] == ""):
			rep.warnf("spec.web.backend", "web backend %s has no secrets.%s: web tools will fail", s.Web.Backend, key)
		}
	}

	// Resources and storage.
	if s.Resources.Memory != "" && !memoryRE.MatchString(s.Resources.Memory) {
		rep.errorf("spec.resources.memory", "%q is not a Docker memory size (e.g. 512m, 1g)", s.Resources.Memory)
	}
	if s.Storage.S3 != nil {
		if m := quotaRE.FindStringSubmatch(s.Storage.S3.Quota); m == nil || strings.TrimLeft(m[1], "0") == "" {
			rep.errorf("spec.storage.s3.quota", "%q is not a positive size such as 5Gi or 500Mi", s.Storage.S3.Quota)
		}
	}

	// Toolsets.
	for _, f := range []string{"enable", "disable"} {
		list := s.Toolsets.Enable
		if f == "disable" {
			list = s.Toolsets.Disable
		}
		for i, ts := range list {
			if !nameRE.MatchString(ts) {
				rep.errorf(fmt.Sprintf("spec.toolsets.%s[%d]", f, i), "%q is not a toolset name", ts)
			}
			if ts == "terminal" {
				rep.errorf(fmt.Sprintf("spec.toolsets.%s[%d]", f, i), "switch the terminal toolset with toolsets.terminal: true|false")
			}
		}
	}

	// Bundles and skills, and what they require of the tenant. App defaults are validated
	// with the app; here only what they require of this tenant is checked.
	found, from := r.checkBundleRefs(rep, "spec.bundles", s.Bundles), ""
	if s.Bundles == nil && app != nil {
		found, from = r.resolveBundles(app.Spec.DefaultBundles), " (a default bundle of app "+app.Metadata.Name+")"
	}
	for _, b := range found {
		r.checkRequirements(rep, t, app, "bundle "+b.Name+"@"+b.Version+from, b.RequiresToolsets, b.RequiresEnv, "spec.bundles")
	}
	for i, ref := range s.Skills {
		field := fmt.Sprintf("spec.skills[%d]", i)
		name, version, _ := strings.Cut(ref, "@")
		if r.Catalogue == nil {
			continue
		}
		sk, ok := r.Catalogue.Skill(name, version)
		if !ok {
			rep.errorf(field, "unknown skill %q in the bundle catalogue%s", ref, knownSkills(r.Catalogue))
			continue
		}
		r.checkRequirements(rep, t, app, "skill "+sk.Name+"@"+sk.Version, sk.RequiresToolsets, nil, field)
	}

	// Secrets: names, and never plaintext.
	for _, k := range slices.Sorted(maps.Keys(t.Secrets)) {
		if !envNameRE.MatchString(k) {
			rep.errorf("secrets."+k, "%q is not an environment variable name (A-Z, 0-9, _)", k)
		}
	}
	if len(t.Secrets) > 0 {
		if t.Sops == nil {
			rep.errorf("secrets", "secrets are not encrypted: run 'hermesctl secrets encrypt %s' (or 'sops -e -i') before committing; a plaintext secret must never be committed", t.Source.File)
		} else {
			for _, k := range slices.Sorted(maps.Keys(t.Secrets)) {
				if !IsEncryptedValue(t.Secrets[k]) {
					rep.errorf("secrets."+k, "value is not encrypted by sops: edit secrets with 'sops edit %s', never by hand", t.Source.File)
				}
			}
		}
	}
	if t.Sops != nil && len(t.Secrets) == 0 {
		rep.warnf("sops", "sops metadata without secrets: nothing is encrypted")
	}

	// hermesConfig passthrough.
	for _, k := range slices.Sorted(maps.Keys(s.HermesConfig)) {
		if owner, ok := managedConfigKeys[k]; ok {
			rep.errorf("spec.hermesConfig."+k, "config key %q is managed from %s; set it there", k, owner)
		}
	}
}

// checkBundleRefs validates name@version references and returns the bundles found.
func (r *Repo) checkBundleRefs(rep reporter, field string, refs []string) []*bundles.Bundle {
	var out []*bundles.Bundle
	seen := map[string]int{}
	for i, ref := range refs {
		f := fmt.Sprintf("%s[%d]", field, i)
		br, err := bundles.ParseRef(ref)
		if err != nil {
			rep.errorf(f, "%v", err)
			continue
		}
		if j, dup := seen[br.Name]; dup {
			rep.errorf(f, "bundle %s is pinned twice (also at %s[%d]); pin one version", br.Name, field, j)
			continue
		}
		seen[br.Name] = i
		if r.Catalogue == nil {
			continue
		}
		b, ok := r.Catalogue.Bundle(br.Name, br.Version)
		if !ok {
			if vs := r.Catalogue.Versions(br.Name); len(vs) > 0 {
				rep.errorf(f, "bundle %s has no published version %s (published: %s)", br.Name, br.Version, strings.Join(vs, ", "))
			} else {
				rep.errorf(f, "unknown bundle %q in the bundle catalogue", br.Name)
			}
			continue
		}
		out = append(out, b)
	}
	return out
}

// checkRequirements enforces what a bundle or skill needs of its tenant: a skill whose
// toolset is off loads but cannot run (the control planes' skills "missing after
// backfill"), and a variable read from the process environment must be baked into the
// container, not only written to .env (the KB root pitfall).
func (r *Repo) checkRequirements(rep reporter, t *Tenant, app *App, what string, toolsets, env []string, field string) {
	for _, ts := range toolsets {
		if ts == "terminal" && !t.Spec.Toolsets.TerminalEnabled() {
			rep.errorf(field, "%s needs the terminal toolset, but spec.toolsets.terminal is false", what)
		}
		if slices.Contains(t.Spec.Toolsets.Disable, ts) {
			rep.errorf(field, "%s needs the %s toolset, which spec.toolsets.disable turns off", what, ts)
		}
	}
	for _, k := range env {
		if app == nil {
			continue
		}
		if _, baked := app.Spec.Env[k]; baked {
			continue
		}
		if slices.Contains(app.Spec.ProcessSecrets, k) {
			if _, ok := t.Secrets[k]; ok {
				continue
			}
			rep.errorf(field, "%s needs %s, a process secret of app %s: add secrets.%s", what, k, app.Metadata.Name, k)
			continue
		}
		rep.errorf(field, "%s needs %s in the container's process environment; bake it into app %s (spec.env) — .env alone is not enough, skills do not read it", what, k, app.Metadata.Name)
	}
}

// resolveBundles looks up references already validated elsewhere, skipping bad ones.
func (r *Repo) resolveBundles(refs []string) []*bundles.Bundle {
	var out []*bundles.Bundle
	for _, ref := range refs {
		br, err := bundles.ParseRef(ref)
		if err != nil || r.Catalogue == nil {
			continue
		}
		if b, ok := r.Catalogue.Bundle(br.Name, br.Version); ok {
			out = append(out, b)
		}
	}
	return out
}

func knownSkills(c *bundles.Catalogue) string {
	var names []string
	for _, s := range c.Skills() {
		if !slices.Contains(names, s.Name) {
			names = append(names, s.Name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return " (known: " + strings.Join(names, ", ") + ")"
}

// applyDefaults fills the documented defaults in place after validation, so consumers
// read effective values.
func (r *Repo) applyDefaults() {
	for _, a := range r.Apps {
		s := &a.Spec
		s.MountPath = cmpOr(s.MountPath, "/data/hermes")
		s.Memory = cmpOr(s.Memory, "1g")
		s.RestartPolicy = cmpOr(s.RestartPolicy, "unless-stopped")
		if s.PidsLimit == 0 {
			s.PidsLimit = 512
		}
	}
	for _, w := range r.Workers {
		s := &w.Spec
		s.Transport = cmpOr(s.Transport, TransportSSH)
		if s.Port == 0 {
			s.Port = 22
		}
		s.AgentDir = cmpOr(s.AgentDir, path.Join(s.TenantRoot, ".hermes-gitops", "bin"))
	}
	for _, t := range r.Tenants {
		s := &t.Spec
		s.State = cmpOr(s.State, StateActive)
		app := r.Apps[t.Metadata.App]
		if app == nil {
			continue
		}
		if s.Bundles == nil {
			s.Bundles = slices.Clone(app.Spec.DefaultBundles)
		}
		s.Resources.Memory = cmpOr(s.Resources.Memory, app.Spec.Memory)
		if s.Provider.Model == "" {
			if p, ok := LookupProvider(s.Provider.ID); ok {
				s.Provider.Model = p.DefaultModel
			}
		}
	}
}

// mountable reports whether a path can be part of a docker --mount value, which is a
// comma-separated list.
func mountable(p string) bool { return !strings.ContainsAny(p, ",\"'\n\r") }

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// TenantHome is where a tenant's hermes-home lives on its worker.
func TenantHome(app *App, worker *Worker, id string) string {
	return path.Join(AppRoot(app, worker), id, "hermes-home")
}

// AppRoot is the directory holding an app's tenants on a worker.
func AppRoot(app *App, worker *Worker) string {
	if path.IsAbs(app.Spec.TenantRoot) {
		return path.Clean(app.Spec.TenantRoot)
	}
	return path.Join(worker.Spec.TenantRoot, app.Spec.TenantRoot)
}
