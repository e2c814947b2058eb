// Package plan decides what to do: Plan(desired, observed) compares every tenant's
// rendered desired state with what a worker runs and returns typed actions with
// human-readable reasons. It is a pure function: no I/O, no clock, sorted output. It
// imports no transport, agent or runtime (a test guards this).
package plan

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/firemountain/hermes-gitops/reconcile/live"
	"github.com/firemountain/hermes-gitops/reconcile/render"
)

// Action is what the applier will do to one tenant.
type Action string

const (
	Noop         Action = "noop"
	Create       Action = "create"        // no container: write files, create it
	Recreate     Action = "recreate"      // container spec differs: write files, remove and create (data stays)
	Patch        Action = "patch"         // managed files differ: write them, restart
	Start        Action = "start"         // state active, container stopped
	Stop         Action = "stop"          // state suspended, container running
	Delete       Action = "delete"        // state deleted: remove container, archive data
	Orphan       Action = "orphan"        // managed on the worker, absent from git: reported, untouched
	Prune        Action = "prune"         // an orphan that --prune removes (container gone, data archived)
	Hold         Action = "hold"          // tenant file broken or secrets undecryptable: nothing done
	AwaitingAuth Action = "awaiting-auth" // OAuth tenant without a complete auth.json: nothing to apply
)

// Symbol is the Terraform-style marker of an action in text output.
func (a Action) Symbol() string {
	switch a {
	case Create:
		return "+"
	case Recreate:
		return "-/+"
	case Patch, Start, Stop:
		return "~"
	case Delete, Prune:
		return "-"
	case Hold:
		return "!"
	case Orphan, AwaitingAuth:
		return "?"
	}
	return " "
}

// Mutates reports whether the action changes the worker.
func (a Action) Mutates() bool {
	switch a {
	case Create, Recreate, Patch, Start, Stop, Delete, Prune:
		return true
	}
	return false
}

// Held is a tenant that must not be acted on, with why.
type Held struct {
	ID, App, Worker, Source string
	Reasons                 []string
}

// Desired is the whole desired state of a reconcile.
type Desired struct {
	Tenants []*render.Tenant
	Held    []Held
	// Workers lists every worker in scope.
	Workers []string
	// Scopes are, per worker, where each app keeps its tenants: a managed container is
	// this desired state's (its tenant's, or an orphan) only inside them, so that several
	// fleets (or a demo) can share a Docker host without touching each other.
	Scopes map[string][]Scope
	// Empty is true when the desired state has no tenants at all; then nothing is ever
	// deleted or pruned, whatever the flags.
	Empty bool
	// Known are the ids of every tenant of the desired state, including those filtered
	// out of this plan: they are never orphans.
	Known map[string]bool
	// Only, when set, limits orphans to these tenant ids (a --tenant filter).
	Only []string
}

// Scope is where one app's tenants live on a worker (see live.Scope.Owns).
type Scope = live.Scope

// Options change decisions.
type Options struct {
	// Prune turns orphans into prunes.
	Prune bool
}

// Plan is the result: one Change per tenant (and per orphan), sorted by worker, tenant.
type Plan struct {
	Changes []Change
	// Unreachable maps workers that could not be observed to the error.
	Unreachable map[string]string
}

// Change is the planned action for one tenant with everything the applier needs.
type Change struct {
	Worker  string
	Tenant  string
	App     string
	Action  Action
	Reasons []string
	// AwaitingAuth is set for OAuth tenants whose auth.json is incomplete, whatever the
	// action; Action is AwaitingAuth when nothing else is to be done.
	AwaitingAuth bool

	Desired  *render.Tenant  // nil for orphans and holds
	Observed *live.Container // the tenant's container, if any
	Home     *live.Home      // the tenant's home on disk, if any

	WriteFiles  []render.File // managed files to write (changed or missing)
	SeedFiles   []render.File // create-only files
	RemoveFiles []string      // files installed before and no longer desired
	MakeDirs    []string      // scaffold directories missing
	EnvChanges  []EnvChange   // managed .env keys that differ; empty means .env is equal
	EnvRemove   []string      // managed keys no longer desired
	Restart     bool          // a patch restarts the container after writing
}

// String shows the change with fingerprints only, never values.
func (e EnvChange) String() string {
	switch {
	case e.Kind == "mode":
		return fmt.Sprintf(".env is readable by others (mode %s, want %s)", e.Old, e.New)
	case e.Kind == "removed":
		return e.Key + " removed (no longer in the tenant file)"
	case e.Kind == "added" && e.Secret:
		return fmt.Sprintf("%s added (secret %s)", e.Key, e.New)
	case e.Kind == "added":
		return fmt.Sprintf("%s added (%s)", e.Key, e.New)
	case e.Secret:
		return fmt.Sprintf("%s (secret changed) %s → %s", e.Key, e.Old, e.New)
	}
	return fmt.Sprintf("%s changed %s → %s", e.Key, e.Old, e.New)
}

// EnvChange is one differing .env key, shown by fingerprint only.
type EnvChange struct {
	Key    string
	Kind   string // added, changed, removed
	Old    string // fingerprint, "" if absent
	New    string // fingerprint, "" if removed
	Secret bool
}

// Compute is Plan(desired, observed). observed maps worker name to its observation; a
// worker missing from it is unreachable and its tenants are held.
func Compute(d Desired, observed map[string]*live.Worker, opts Options) *Plan {
	p := &Plan{Unreachable: map[string]string{}}
	desiredIDs := map[string]bool{}
	for id := range d.Known {
		desiredIDs[id] = true
	}
	heldIDs := map[string]bool{}
	for _, h := range d.Held {
		heldIDs[h.ID] = true
		p.Changes = append(p.Changes, Change{Worker: h.Worker, Tenant: h.ID, App: h.App, Action: Hold, Reasons: h.Reasons})
	}
	indexes := map[string]*index{}
	for _, t := range d.Tenants {
		desiredIDs[t.ID] = true
		w := observed[t.Worker]
		if w != nil && indexes[t.Worker] == nil {
			indexes[t.Worker] = newIndex(w, d.Scopes[t.Worker])
		}
		if w == nil {
			p.Changes = append(p.Changes, Change{Worker: t.Worker, Tenant: t.ID, App: t.App, Action: Hold, Desired: t,
				Reasons: []string{"worker " + t.Worker + " could not be observed; nothing is done to its tenants"}})
			continue
		}
		p.Changes = append(p.Changes, tenantChange(t, indexes[t.Worker]))
	}
	for _, name := range d.Workers {
		w := observed[name]
		if w == nil {
			continue
		}
		only := func(id string) bool { return len(d.Only) == 0 || slices.Contains(d.Only, id) }
		p.Changes = append(p.Changes, orphans(name, w, d.Scopes[name], desiredIDs, heldIDs, only, opts.Prune && !d.Empty)...)
	}
	sort.SliceStable(p.Changes, func(i, j int) bool {
		a, b := p.Changes[i], p.Changes[j]
		if a.Worker != b.Worker {
			return a.Worker < b.Worker
		}
		return a.Tenant < b.Tenant
	})
	return p
}

// index finds a tenant's container and home on a worker in constant time (the planner
// looks up every tenant; a scan each time would make planning quadratic).
type index struct {
	containers map[string]*live.Container
	homes      map[string]*live.Home
}

// newIndex indexes a worker's containers by tenant, keeping only those in the desired
// state's scopes: a container of another fleet (or a demo) on the same Docker host with
// the same tenant id is never taken for this tenant's.
func newIndex(w *live.Worker, scopes []Scope) *index {
	ix := &index{containers: make(map[string]*live.Container, len(w.Containers)), homes: make(map[string]*live.Home, len(w.Homes))}
	for i := range w.Containers {
		c := &w.Containers[i]
		if id := c.Tenant(); id != "" && ix.containers[id] == nil && live.OwnedBy(scopes, c) {
			ix.containers[id] = c
		}
	}
	for i := range w.Homes {
		ix.homes[w.Homes[i].App+"/"+w.Homes[i].ID] = &w.Homes[i]
	}
	return ix
}

// tenantChange decides the action for one desired tenant on its observed worker.
func tenantChange(t *render.Tenant, ix *index) Change {
	c := Change{Worker: t.Worker, Tenant: t.ID, App: t.App, Desired: t, Observed: ix.containers[t.ID], Home: ix.homes[t.App+"/"+t.ID]}
	if t.State == "deleted" {
		if c.Observed == nil && c.Home == nil {
			c.Action = Noop
			return c
		}
		c.Action = Delete
		if c.Observed != nil {
			c.Reasons = append(c.Reasons, "state is deleted: remove container "+c.Observed.Name)
		}
		if c.Home != nil {
			c.Reasons = append(c.Reasons, "archive "+t.Root+" under "+t.ArchiveDir)
		}
		return c
	}

	fileReasons := c.diffFiles(t)
	var specReasons []string
	if c.Observed != nil {
		for _, d := range ContainerDiff(t.Container, *c.Observed) {
			specReasons = append(specReasons, d.Reason)
		}
	}
	c.AwaitingAuth, _ = authIncomplete(t, c.Home)

	switch {
	case c.Observed == nil && t.State == "suspended":
		// Nothing runs and nothing should: keep the files current for the day it resumes.
		c.Action = actionIf(len(fileReasons) > 0, Patch)
		c.Reasons = fileReasons
	case c.Observed == nil:
		c.Action = Create
		c.Reasons = append([]string{"no container " + t.Container.Name}, fileReasons...)
	case len(specReasons) > 0:
		c.Action = Recreate
		c.Reasons = append(specReasons, fileReasons...)
	case t.State == "suspended":
		if c.Observed.State.Running || c.Observed.State.Restarting {
			c.Action = Stop
			c.Reasons = append([]string{"state is suspended: stop " + c.Observed.Name}, fileReasons...)
		} else {
			c.Action = actionIf(len(fileReasons) > 0, Patch)
			c.Reasons = fileReasons
		}
	case len(fileReasons) > 0:
		c.Action = Patch
		c.Restart = true
		c.Reasons = fileReasons
	case !c.Observed.State.Running:
		c.Action = Start
		c.Reasons = []string{fmt.Sprintf("container %s is %s", c.Observed.Name, c.Observed.State.Status)}
	default:
		c.Action = Noop
	}
	if c.Action == Patch && t.State == "suspended" {
		c.Restart = false
	}
	if c.AwaitingAuth {
		_, why := authIncomplete(t, c.Home)
		if c.Action == Noop {
			c.Action = AwaitingAuth
		}
		c.Reasons = append(c.Reasons, why)
	}
	return c
}

func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func actionIf(cond bool, a Action) Action {
	if cond {
		return a
	}
	return Noop
}

// diffFiles fills the file work of a change and returns reasons.
func (c *Change) diffFiles(t *render.Tenant) []string {
	var reasons []string
	h := c.Home
	observed := map[string]string{}
	if h != nil {
		observed = h.Files
	}
	var changed, added []string
	for _, f := range t.Files {
		got, ok := observed[f.Path]
		switch {
		case !ok:
			added = append(added, f.Path)
		case got != f.Digest:
			changed = append(changed, f.Path)
		default:
			continue
		}
		c.WriteFiles = append(c.WriteFiles, f)
	}
	// Files installed before (listed in the old lock) and no longer desired.
	if h != nil && h.Lock != nil {
		want := map[string]bool{}
		for _, f := range t.Files {
			want[f.Path] = true
		}
		for _, f := range h.Lock.Files {
			if !want[f.Path] {
				c.RemoveFiles = append(c.RemoveFiles, f.Path)
			}
		}
	}
	if h == nil {
		secrets := 0
		for _, e := range t.Env {
			if e.Secret {
				secrets++
			}
		}
		reasons = append(reasons, fmt.Sprintf("hermes-home %s does not exist: write %s and .env (%s, %d secret)", t.Home, count(len(t.Files), "file"), count(len(t.Env), "key"), secrets))
	} else {
		reasons = append(reasons, describeFiles(changed, "changed")...)
		reasons = append(reasons, describeFiles(added, "missing")...)
		reasons = append(reasons, describeFiles(c.RemoveFiles, "no longer pinned")...)
		if len(h.MissingDirs) > 0 {
			reasons = append(reasons, "knowledge-base scaffold missing: "+strings.Join(h.MissingDirs, ", "))
		}
	}
	if h == nil {
		c.MakeDirs = slices.Clone(t.Dirs)
	} else {
		c.MakeDirs = slices.Clone(h.MissingDirs)
	}
	if h == nil || len(h.MissingDirs) > 0 {
		c.SeedFiles = t.Seed
	}
	envReasons := c.diffEnv(t)
	if h != nil {
		reasons = append(reasons, envReasons...)
	}
	return reasons
}

// describeFiles summarises paths, collapsing skills to their skill directory.
func describeFiles(paths []string, what string) []string {
	if len(paths) == 0 {
		return nil
	}
	var groups []string
	seen := map[string]bool{}
	for _, p := range paths {
		g := p
		if parts := strings.Split(p, "/"); len(parts) >= 4 && parts[0] == "skills" {
			g = "skill " + strings.Join(parts[1:3], "/")
		}
		if !seen[g] {
			seen[g] = true
			groups = append(groups, g)
		}
	}
	return []string{what + ": " + strings.Join(groups, ", ")}
}

// diffEnv compares managed .env keys by fingerprint.
func (c *Change) diffEnv(t *render.Tenant) []string {
	var obs map[string]string
	if c.Home != nil && c.Home.Env != nil {
		obs = c.Home.Env.Keys
	}
	for _, e := range t.Env {
		got, ok := obs[e.Name]
		switch {
		case !ok:
			c.EnvChanges = append(c.EnvChanges, EnvChange{Key: e.Name, Kind: "added", New: e.Fingerprint, Secret: e.Secret})
		case got != e.Fingerprint:
			c.EnvChanges = append(c.EnvChanges, EnvChange{Key: e.Name, Kind: "changed", Old: got, New: e.Fingerprint, Secret: e.Secret})
		}
	}
	if c.Home != nil && c.Home.Lock != nil {
		want := map[string]bool{}
		for _, e := range t.Env {
			want[e.Name] = true
		}
		for _, k := range c.Home.Lock.Env {
			if _, present := obs[k]; present && !want[k] {
				c.EnvRemove = append(c.EnvRemove, k)
				c.EnvChanges = append(c.EnvChanges, EnvChange{Key: k, Kind: "removed", Old: obs[k]})
			}
		}
	}
	if c.Home != nil && c.Home.Env != nil && len(c.Home.Env.Duplicates) > 0 && len(c.EnvChanges) == 0 {
		// duplicates of managed keys are folded by the next write
		for _, d := range c.Home.Env.Duplicates {
			for _, e := range t.Env {
				if e.Name == d {
					c.EnvChanges = append(c.EnvChanges, EnvChange{Key: d, Kind: "changed", Old: obs[d], New: e.Fingerprint, Secret: e.Secret})
				}
			}
		}
	}
	if c.Home != nil && c.Home.Env != nil && c.Home.Env.Mode&0o077 != 0 && len(c.EnvChanges) == 0 && len(t.Env) > 0 {
		c.EnvChanges = append(c.EnvChanges, EnvChange{Key: ".env", Kind: "mode", Old: fmt.Sprintf("%04o", c.Home.Env.Mode), New: "0600"})
	}
	if len(c.EnvChanges) == 0 {
		return nil
	}
	var parts []string
	for _, e := range c.EnvChanges {
		parts = append(parts, e.String())
	}
	return []string{".env: " + strings.Join(parts, ", ")}
}

// authIncomplete reports whether an OAuth tenant still needs its login or its runtime
// auth shape (the dual-write gap), and why (live.CheckAuth is the one rule).
func authIncomplete(t *render.Tenant, h *live.Home) (bool, string) {
	if !t.Provider.OAuth {
		return false, ""
	}
	var shape *live.AuthShape
	var files []string
	if h != nil {
		shape, files = h.Auth, h.AuthFiles
	}
	status, why := live.CheckAuth(shape, t.Provider.AuthKey(), files, t.Provider.AuthFile)
	switch status {
	case live.AuthComplete:
		return false, ""
	case live.AuthAwaitingLogin:
		return true, fmt.Sprintf("awaiting auth: no %s credential yet (%s); run 'hermesctl auth login %s'", t.Provider.ID, why, t.ID)
	case live.AuthDualWriteGap:
		return true, fmt.Sprintf("awaiting auth: %s (the dual-write gap); run 'hermesctl auth repair %s'", why, t.ID)
	}
	return true, fmt.Sprintf("awaiting auth: %s; run 'hermesctl auth repair %s'", why, t.ID)
}

// orphans reports managed containers and homes on a worker that the desired state does
// not have (held tenants excepted: they are never orphans).
func orphans(worker string, w *live.Worker, scopes []Scope, desired, held map[string]bool, only func(string) bool, prune bool) []Change {
	var out []Change
	seen := map[string]bool{}
	for i := range w.Containers {
		ct := &w.Containers[i]
		id := ct.Tenant()
		if id == "" || desired[id] || held[id] || seen[id] || !live.OwnedBy(scopes, ct) || !only(id) {
			continue
		}
		seen[id] = true
		ch := Change{Worker: worker, Tenant: id, App: ct.App(), Observed: ct, Home: w.Home(ct.App(), id)}
		ch.Action, ch.Reasons = orphanAction(prune, "container "+ct.Name+" is managed but no tenant file describes it")
		out = append(out, ch)
	}
	for i := range w.Homes {
		h := &w.Homes[i]
		if desired[h.ID] || held[h.ID] || seen[h.ID] || h.Lock == nil || !only(h.ID) {
			continue // only homes hermes-gitops wrote (they have a lock) are its orphans
		}
		seen[h.ID] = true
		ch := Change{Worker: worker, Tenant: h.ID, App: h.App, Home: h}
		ch.Action, ch.Reasons = orphanAction(prune, "hermes-home "+h.Path+" is managed but no tenant file describes it")
		out = append(out, ch)
	}
	return out
}

func orphanAction(prune bool, why string) (Action, []string) {
	if prune {
		return Prune, []string{why, "--prune: remove the container and archive the data"}
	}
	return Orphan, []string{why, "left untouched (run with --prune to remove it and archive its data)"}
}

// Summary counts the actions of a plan.
type Summary struct {
	Create, Recreate, Patch, Delete, Start, Stop, Prune, Hold, Orphan, AwaitingAuth, Noop int
}

// Summarize counts a plan's actions.
func (p *Plan) Summarize() Summary {
	var s Summary
	for _, c := range p.Changes {
		switch c.Action {
		case Create:
			s.Create++
		case Recreate:
			s.Recreate++
		case Patch:
			s.Patch++
		case Delete:
			s.Delete++
		case Start:
			s.Start++
		case Stop:
			s.Stop++
		case Prune:
			s.Prune++
		case Hold:
			s.Hold++
		case Orphan:
			s.Orphan++
		case AwaitingAuth:
			s.AwaitingAuth++
		case Noop:
			s.Noop++
		}
	}
	return s
}

// HasChanges reports whether applying the plan would change any worker.
func (p *Plan) HasChanges() bool {
	for _, c := range p.Changes {
		if c.Action.Mutates() {
			return true
		}
	}
	return false
}
