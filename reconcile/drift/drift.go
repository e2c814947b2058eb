// Package drift says, without changing anything, where live state left git: one finding
// per difference, each with a stable code, what git says, what the worker has, and what
// apply would do about it. Like the planner it is pure: findings are computed from the
// rendered desired state, the observation and the plan.
package drift

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/firemountain/hermes-gitops/reconcile/live"
	"github.com/firemountain/hermes-gitops/reconcile/plan"
	"github.com/firemountain/hermes-gitops/reconcile/render"
)

// Codes of findings. They are part of the JSON report's contract: never renamed.
const (
	ContainerMissing    = "container.missing"
	ContainerStopped    = "container.stopped"
	ContainerCrashLoop  = "container.crash-loop"
	ContainerUnhealthy  = "container.unhealthy"
	ContainerEnvMissing = "container.env-missing"
	ContainerEnvDiffers = "container.env-differs"
	ContainerHardening  = "container.hardening"
	ContainerImage      = "container.image"
	ContainerSpec       = "container.spec"
	ContainerUnmanaged  = "container.unmanaged"
	EnvChanged          = "env.changed"
	EnvMissing          = "env.missing"
	EnvUnmanaged        = "env.unmanaged"
	EnvDuplicate        = "env.duplicate"
	EnvMode             = "env.mode"
	ConfigChanged       = "config.changed"
	ConfigMissing       = "config.missing"
	SkillsVersion       = "skills.version"
	SkillsMissing       = "skills.missing"
	SkillsModified      = "skills.modified"
	SkillsExtra         = "skills.extra"
	KBMissing           = "kb.missing"
	AuthDualWriteGap    = "auth.dual-write-gap"
	AuthAwaitingLogin   = "auth.awaiting-login"
	AuthActiveProvider  = "auth.active-provider"
	AuthMode            = "auth.mode"
	TenantOrphan        = "tenant.orphan"
	TenantHeld          = "tenant.held"
	TenantMissing       = "tenant.missing"
	WorkerUnreachable   = "worker.unreachable"
	HomeUnreadable      = "home.unreadable"
)

// Severity of a finding: drift (live state left git), or info (expected, such as a
// tenant still waiting for its first OAuth login).
const (
	Drift = "drift"
	Info  = "info"
)

// Finding is one difference between git and a worker. Values of secrets never appear:
// Git and Live hold fingerprints for them.
type Finding struct {
	Code     string `json:"code"`
	Severity string `json:"severity"`
	Worker   string `json:"worker"`
	App      string `json:"app,omitempty"`
	Tenant   string `json:"tenant,omitempty"`
	Subject  string `json:"subject,omitempty"` // the key, file, flag or skill concerned
	Git      string `json:"git"`               // what git says
	Live     string `json:"live"`              // what the worker has
	Action   string `json:"action"`            // what apply would do
	Message  string `json:"message"`
}

// Input is what drift needs: the plan of a session and live config contents (for
// field-level config diffs) keyed by tenant id, fetched for tenants whose config.yaml
// digest differs.
type Input struct {
	Plan      *plan.Plan
	Observed  map[string]*live.Worker
	LiveConfs map[string][]byte
}

// Compute lists every finding, sorted by worker, tenant, code and subject.
func Compute(in Input) []Finding {
	var out []Finding
	for w, msg := range in.Plan.Unreachable {
		out = append(out, Finding{Code: WorkerUnreachable, Severity: Drift, Worker: w, Git: "reachable", Live: msg,
			Action: "nothing: its tenants are held", Message: "worker " + w + " could not be observed: " + msg})
	}
	for i := range in.Plan.Changes {
		c := &in.Plan.Changes[i]
		out = append(out, tenantFindings(c, in.LiveConfs[c.Tenant])...)
	}
	for _, name := range slices.Sorted(maps.Keys(in.Observed)) {
		for _, u := range in.Observed[name].Unmanaged {
			out = append(out, Finding{Code: ContainerUnmanaged, Severity: Drift, Worker: name, Subject: u.Name,
				Git: "no such container", Live: "container " + u.Name + " (" + u.State.Status + ") without the managed-by label",
				Action:  "nothing: unmanaged containers are never touched",
				Message: "container " + u.Name + " looks like a tenant container but hermes-gitops does not manage it; remove it or recreate the tenant with apply"})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		for _, p := range [][2]string{{a.Worker, b.Worker}, {a.Tenant, b.Tenant}, {a.Code, b.Code}, {a.Subject, b.Subject}} {
			if p[0] != p[1] {
				return p[0] < p[1]
			}
		}
		return false
	})
	return out
}

func applyAction(c *plan.Change) string {
	switch c.Action {
	case plan.Create:
		return "create: write hermes-home, create the container"
	case plan.Recreate:
		return "recreate the container (data kept)"
	case plan.Patch:
		if c.Restart {
			return "patch: rewrite managed files, restart"
		}
		return "patch: rewrite managed files"
	case plan.Start:
		return "start the container"
	case plan.Stop:
		return "stop the container"
	case plan.Delete:
		return "delete: remove the container, archive data"
	case plan.Prune:
		return "prune: remove the container, archive data"
	case plan.Hold:
		return "nothing: the tenant is held"
	case plan.Orphan:
		return "nothing without --prune (then: remove container, archive data)"
	}
	return "nothing"
}

func tenantFindings(c *plan.Change, liveConf []byte) []Finding {
	act := applyAction(c)
	base := Finding{Severity: Drift, Worker: c.Worker, App: c.App, Tenant: c.Tenant, Action: act}
	fc := &collector{base: base}
	add := fc.add
	switch c.Action {
	case plan.Hold:
		add(TenantHeld, "", "see the tenant file", "unchanged", strings.Join(c.Reasons, "; "))
		return fc.out
	case plan.Orphan, plan.Prune:
		name := "hermes-home"
		if c.Observed != nil {
			name = "container " + c.Observed.Name
		}
		add(TenantOrphan, "", "no tenant file", name, "managed tenant absent from git")
		return fc.out
	}
	t := c.Desired
	if t == nil {
		return fc.out
	}
	if t.State == "deleted" {
		if c.Action == plan.Delete {
			add(TenantMissing, "", "state deleted", "still present", "the tenant is deleted in git but still on the worker")
		}
		return fc.out
	}
	containerFindings(fc, c, t)
	homeFindings(fc, c, t, liveConf)
	return fc.out
}

// collector gathers the findings of one tenant; each starts from base.
type collector struct {
	base Finding
	out  []Finding
}

func (fc *collector) add(code, subject, git, liveV, msg string) {
	f := fc.base
	f.Code, f.Subject, f.Git, f.Live, f.Message = code, subject, git, liveV, msg
	fc.out = append(fc.out, f)
}

func containerFindings(fc *collector, c *plan.Change, t *render.Tenant) {
	add := fc.add
	ct := c.Observed
	want := t.Container
	if ct == nil {
		if t.State != "suspended" {
			add(ContainerMissing, want.Name, "container "+want.Name+" running", "no container", "the tenant has no container")
		}
		return
	}
	st := ct.State
	switch {
	case t.State == "suspended":
		if st.Running {
			add(ContainerStopped, ct.Name, "stopped (suspended)", "running", "a suspended tenant is running")
		}
	case st.Restarting || (st.RestartCount >= 3 && !st.Running):
		add(ContainerCrashLoop, ct.Name, "running", fmt.Sprintf("%s, %d restarts, exit code %d", st.Status, st.RestartCount, st.ExitCode), "the container is restarting in a loop")
	case !st.Running:
		add(ContainerStopped, ct.Name, "running", fmt.Sprintf("%s (exit code %d)", st.Status, st.ExitCode), "the container is not running")
	case st.Health == "unhealthy":
		add(ContainerUnhealthy, ct.Name, "healthy", "unhealthy", "the container's health check fails")
	}
	// The spec: the planner's comparison, its fields mapped to finding codes.
	for _, d := range plan.ContainerDiff(want, *ct) {
		switch d.Field {
		case plan.FieldEnvMissing:
			add(ContainerEnvMissing, d.Subject, d.Want, d.Got,
				"the container was created without "+d.Subject+"; env is fixed at creation, so a restart cannot fix it")
		case plan.FieldEnvDiffers:
			add(ContainerEnvDiffers, d.Subject, d.Want, d.Got, d.Subject+" in the container differs from git")
		case plan.FieldImage:
			add(ContainerImage, "image", d.Want, d.Got, "the container runs an image other than the pinned one")
		case plan.FieldCapDrop, plan.FieldCapAdd, plan.FieldNoNewPrivileges, plan.FieldMemory:
			add(ContainerHardening, d.Field, d.Want, d.Got, "hardening: "+strings.TrimPrefix(d.Reason, "hardening: "))
		default:
			add(ContainerSpec, d.Field, d.Want, d.Got, "the container differs from its spec: "+d.Reason)
		}
	}
}

func homeFindings(fc *collector, c *plan.Change, t *render.Tenant, liveConf []byte) {
	add := fc.add
	h := c.Home
	if h == nil {
		if c.Action != plan.Create {
			add(KBMissing, t.Home, "hermes-home", "missing", "the tenant has no hermes-home")
		}
		return
	}
	for _, e := range h.Errors {
		add(HomeUnreadable, "", "readable", e, "part of hermes-home could not be read: "+e)
	}

	// config.yaml
	var wantConf *render.File
	for i := range t.Files {
		if t.Files[i].Path == live.ConfigFile {
			wantConf = &t.Files[i]
		}
	}
	if got, ok := h.Files[live.ConfigFile]; !ok {
		add(ConfigMissing, live.ConfigFile, "present", "missing", "config.yaml is missing")
	} else if wantConf != nil && got != wantConf.Digest {
		diffs := ConfigDiff(wantConf.Content, liveConf)
		if len(diffs) == 0 {
			add(ConfigChanged, live.ConfigFile, wantConf.Digest, got, "config.yaml was edited by hand")
		}
		for _, d := range diffs {
			add(ConfigChanged, d.Path, d.Git, d.Live, "config.yaml edited by hand: "+d.String())
		}
	}

	// .env
	if h.Env == nil {
		add(EnvMissing, live.EnvFile, "present", "missing", ".env is missing")
	} else {
		for _, ch := range c.EnvChanges {
			switch ch.Kind {
			case "added":
				add(EnvMissing, ch.Key, ch.New, "missing", ".env lacks the managed key "+ch.Key)
			case "changed":
				msg := ".env's managed key " + ch.Key + " was changed by hand"
				if ch.Secret {
					msg += " (secret changed)"
				}
				add(EnvChanged, ch.Key, ch.New, ch.Old, msg)
			case "mode":
				add(EnvMode, live.EnvFile, ch.New, ch.Old, ".env is readable by other users")
			}
		}
		managed := map[string]bool{}
		for _, e := range t.Env {
			managed[e.Name] = true
		}
		prevManaged := map[string]bool{}
		if h.Lock != nil {
			for _, k := range h.Lock.Env {
				prevManaged[k] = true
			}
		}
		for _, k := range h.Env.Order {
			if !managed[k] && !prevManaged[k] {
				f := fc.base
				f.Code, f.Subject, f.Git, f.Live = EnvUnmanaged, k, "not in git", h.Env.Keys[k]
				f.Action = "nothing: kept as it is (add it to the tenant's secrets to manage it, or remove it by hand)"
				f.Message = ".env has a key added by hand: " + k
				fc.out = append(fc.out, f)
			}
		}
		for _, k := range h.Env.Duplicates {
			add(EnvDuplicate, k, "defined once", "defined more than once", ".env defines "+k+" more than once")
		}
	}

	// Skills.
	skillFindings(fc, h, t)

	// Knowledge base.
	if len(h.MissingDirs) > 0 {
		add(KBMissing, strings.Join(h.MissingDirs, ","), "scaffold present", "missing: "+strings.Join(h.MissingDirs, ", "),
			"the knowledge-base scaffold is incomplete; skills that write to it fail or write into the container layer")
	}

	// auth.json
	if t.Provider.OAuth {
		key := t.Provider.AuthKey()
		status, why := live.CheckAuth(h.Auth, key, h.AuthFiles, t.Provider.AuthFile)
		f := fc.base
		f.Subject, f.Git, f.Live = key, "credential_pool and providers["+key+"]", why
		f.Action = "nothing in apply (auth.json is never written by apply): run 'hermesctl auth repair " + t.ID + "'"
		switch status {
		case live.AuthAwaitingLogin:
			f.Code, f.Severity = AuthAwaitingLogin, Info
			f.Action = "nothing: run 'hermesctl auth login " + t.ID + "'"
			f.Message = "no " + t.Provider.ID + " credential yet: the tenant awaits its login"
			fc.out = append(fc.out, f)
		case live.AuthDualWriteGap:
			f.Code = AuthDualWriteGap
			f.Message = "the credential is in credential_pool but providers[" + key + "] is missing: gateway, cron and model calls fail with \"No Codex credentials stored\""
			fc.out = append(fc.out, f)
		case live.AuthActiveWrong:
			f.Code, f.Subject, f.Git = AuthActiveProvider, "active_provider", key
			f.Message = "active_provider is not " + key
			fc.out = append(fc.out, f)
		}
		if a := h.Auth; a != nil && a.Mode&0o077 != 0 {
			add(AuthMode, live.AuthFile, "0600", fmt.Sprintf("%04o", a.Mode), "auth.json is readable by other users")
		}
	}
}

// skillFindings compares the installed lock and skill files with the pins.
func skillFindings(fc *collector, h *live.Home, t *render.Tenant) {
	add := fc.add
	installed := map[string]string{}
	if h.Lock != nil {
		for _, b := range h.Lock.Bundles {
			installed[b.Name] = b.Version
		}
	}
	for _, b := range t.Lock.Bundles {
		got, ok := installed[b.Name]
		switch {
		case !ok:
			add(SkillsMissing, b.Name, b.Name+"@"+b.Version, "not installed", "bundle "+b.Name+"@"+b.Version+" is not installed")
		case got != b.Version:
			add(SkillsVersion, b.Name, b.Version, got, fmt.Sprintf("bundle %s is at %s, git pins %s", b.Name, got, b.Version))
		}
	}
	// Files: a skill with missing files is missing, one with changed files is modified.
	missing, modified := map[string]bool{}, map[string]bool{}
	for _, f := range t.Files {
		dir := skillDir(f.Path)
		if dir == "" {
			continue
		}
		got, ok := h.Files[f.Path]
		if !ok {
			missing[dir] = true
		} else if got != f.Digest {
			modified[dir] = true
		}
	}
	for _, d := range slices.Sorted(maps.Keys(missing)) {
		if !reported(fc.out, SkillsMissing, d) {
			add(SkillsMissing, d, "installed", "missing files", "skill "+d+" is missing files")
		}
	}
	for _, d := range slices.Sorted(maps.Keys(modified)) {
		if !missing[d] && !reported(fc.out, SkillsVersion, d) {
			add(SkillsModified, d, "as published", "files changed", "files of skill "+d+" were changed on the worker")
		}
	}
	if h.Lock != nil {
		want := map[string]bool{}
		for _, f := range t.Files {
			want[f.Path] = true
		}
		extra := map[string]bool{}
		for _, f := range h.Lock.Files {
			if !want[f.Path] {
				if d := skillDir(f.Path); d != "" {
					extra[d] = true
				}
			}
		}
		for _, d := range slices.Sorted(maps.Keys(extra)) {
			add(SkillsExtra, d, "not pinned", "installed", "skill "+d+" is installed but no longer pinned")
		}
	}
}

// skillDir is "skills/<category>/<skill>" of a skill file, or "".
func skillDir(p string) string {
	parts := strings.Split(p, "/")
	if len(parts) < 4 || parts[0] != "skills" {
		return ""
	}
	return strings.Join(parts[:3], "/")
}

// reported reports whether a finding of code is already there for the bundle of a
// skill directory ("skills/<bundle>/<skill>"): a skill of a missing bundle is not
// reported missing again, nor are the changed files of a bundle at another version.
func reported(fs []Finding, code, dir string) bool {
	bundle := strings.Split(dir, "/")[1]
	return slices.ContainsFunc(fs, func(f Finding) bool { return f.Code == code && f.Subject == bundle })
}

// Summary is the fleet view: findings by code, bundle version skew, providers.
type Summary struct {
	Tenants   int                       `json:"tenants"`
	Drifted   int                       `json:"drifted"`
	ByCode    map[string]int            `json:"byCode"`
	Bundles   map[string]BundleVersions `json:"bundles"`
	Providers map[string]int            `json:"providers"`
}

// BundleVersions counts tenants per installed version of a bundle against git's pins.
type BundleVersions struct {
	Pinned    map[string]int `json:"pinned"`    // version → tenants git pins to it
	Installed map[string]int `json:"installed"` // version → tenants running it
}

// Summarize builds the fleet summary from the desired tenants, observations and findings.
func Summarize(tenants []*render.Tenant, observed map[string]*live.Worker, findings []Finding) Summary {
	s := Summary{ByCode: map[string]int{}, Bundles: map[string]BundleVersions{}, Providers: map[string]int{}}
	drifted := map[string]bool{}
	for _, f := range findings {
		s.ByCode[f.Code]++
		if f.Severity == Drift && f.Tenant != "" {
			drifted[f.Tenant] = true
		}
	}
	s.Drifted = len(drifted)
	bv := func(name string) BundleVersions {
		b, ok := s.Bundles[name]
		if !ok {
			b = BundleVersions{Pinned: map[string]int{}, Installed: map[string]int{}}
			s.Bundles[name] = b
		}
		return b
	}
	for _, t := range tenants {
		if t.State == "deleted" {
			continue
		}
		s.Tenants++
		s.Providers[t.Provider.ID]++
		for _, b := range t.Lock.Bundles {
			bv(b.Name).Pinned[b.Version]++
		}
		if w := observed[t.Worker]; w != nil {
			if h := w.Home(t.App, t.ID); h != nil && h.Lock != nil {
				for _, b := range h.Lock.Bundles {
					bv(b.Name).Installed[b.Version]++
				}
			}
		}
	}
	return s
}

// HasDrift reports whether any finding is drift (not just information).
func HasDrift(fs []Finding) bool {
	for _, f := range fs {
		if f.Severity == Drift {
			return true
		}
	}
	return false
}
