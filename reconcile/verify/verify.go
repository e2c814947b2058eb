// Package verify is the post-provision smoke loop, run inside the live containers: each
// tenant's container sees its knowledge base both ways, sees no other tenant's data,
// runs with no effective capabilities, and has the variables its skills need in its
// process environment. Each check reports pass or fail with its evidence.
package verify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/firemountain/hermes-gitops/reconcile/agent"
	"github.com/firemountain/hermes-gitops/reconcile/live"
	"github.com/firemountain/hermes-gitops/reconcile/plan"
	"github.com/firemountain/hermes-gitops/reconcile/render"
	"github.com/firemountain/hermes-gitops/reconcile/runtime"
	"github.com/firemountain/hermes-gitops/reconcile/worker"
)

// Check names.
const (
	KBHostToContainer = "kb.host-to-container"
	KBContainerToHost = "kb.container-to-host"
	IsolationProbe    = "isolation.probe"
	IsolationMounts   = "isolation.mounts"
	Capabilities      = "capabilities"
	ProcessEnv        = "process-env"
	Running           = "running"
)

// Check is the result of one check of one tenant.
type Check struct {
	Worker   string `json:"worker"`
	Tenant   string `json:"tenant"`
	Name     string `json:"check"`
	Pass     bool   `json:"pass"`
	Evidence string `json:"evidence"`
}

// Target is a tenant to verify: its desired state and its live container.
type Target struct {
	Tenant    *render.Tenant
	Container *live.Container
}

// Targets picks the running tenants of a plan, optionally only some ids.
func Targets(p *plan.Plan, ids []string) []Target {
	var out []Target
	for _, c := range p.Changes {
		if c.Desired == nil || c.Desired.State != "active" || (len(ids) > 0 && !slices.Contains(ids, c.Tenant)) {
			continue
		}
		out = append(out, Target{Tenant: c.Desired, Container: c.Observed})
	}
	return out
}

const probeDir = "knowledge/raw"

// Run verifies targets on one worker in one round trip: the probes are written, every
// check of every tenant runs (checks are optional steps, so one failure does not skip the
// rest), each container lists the knowledge directory of every mount it has, and the
// probes are removed. Cross-tenant isolation is checked against every other target on
// the same worker.
func Run(ctx context.Context, conn *worker.Conn, targets []Target) []Check {
	var checks []Check
	tag := randomTag()
	var up []Target
	for _, t := range targets {
		if t.Container == nil || !t.Container.State.Running {
			state := "no container"
			if t.Container != nil {
				state = t.Container.State.Status
			}
			checks = append(checks, Check{Worker: conn.Name, Tenant: t.Tenant.ID, Name: Running, Evidence: "container " + t.Tenant.Container.Name + ": " + state})
			continue
		}
		up = append(up, t)
	}
	if len(up) == 0 {
		return checks
	}

	probe := func(t Target) string { return ".hermes-verify-" + tag + "-" + t.Tenant.ID }
	inside := func(t Target) string { return probe(t) + "-inside" }
	var steps, cleanup []agent.Step
	check := func(st agent.Step) int {
		st.Optional = true
		steps = append(steps, st)
		return len(steps) - 1
	}
	for _, t := range up {
		var owner *agent.Owner
		if t.Tenant.Owner != nil {
			owner = &agent.Owner{UID: t.Tenant.Owner.UID, GID: t.Tenant.Owner.GID}
		}
		host := path.Join(t.Tenant.Home, probeDir, probe(t))
		check(agent.Step{Op: agent.OpWrite, Path: host, Content: []byte("hermes-gitops verify probe\n"), Mode: 0o644, Owner: owner})
		cleanup = append(cleanup,
			agent.Step{Op: agent.OpRemove, Path: host, Optional: true},
			agent.Step{Op: agent.OpRemove, Path: path.Join(t.Tenant.Home, probeDir, inside(t)), Optional: true})
	}
	type idx struct{ ls, touch, read, status, environ int }
	at := make([]idx, len(up))
	listings := make([][]int, len(up)) // per tenant, one listing per mount
	for i, t := range up {
		name, mount := t.Tenant.Container.Name, mountPath(t)
		at[i] = idx{
			ls:      check(agent.Step{Op: agent.OpDocker, Argv: runtime.Exec(name, "ls", "-1a", path.Join(mount, probeDir))}),
			touch:   check(agent.Step{Op: agent.OpDocker, Argv: runtime.Exec(name, "touch", path.Join(mount, probeDir, inside(t)))}),
			read:    check(agent.Step{Op: agent.OpRead, Path: path.Join(t.Tenant.Home, probeDir, inside(t))}),
			status:  check(agent.Step{Op: agent.OpDocker, Argv: runtime.Exec(name, "cat", "/proc/1/status")}),
			environ: check(agent.Step{Op: agent.OpDocker, Argv: runtime.Exec(name, "cat", "/proc/1/environ"), EnvNamesOnly: true}),
		}
		for _, m := range t.Container.Mounts {
			listings[i] = append(listings[i], check(agent.Step{Op: agent.OpDocker, Argv: runtime.Exec(name, "ls", "-1a", path.Join(m.Destination, probeDir))}))
		}
	}
	res, err := conn.Steps(ctx, append(steps, cleanup...))
	if err != nil {
		for _, t := range up {
			checks = append(checks, Check{Worker: conn.Name, Tenant: t.Tenant.ID, Name: KBHostToContainer, Evidence: err.Error()})
		}
		return checks
	}

	for i, t := range up {
		r := func(name string, pass bool, evidence string) {
			checks = append(checks, Check{Worker: conn.Name, Tenant: t.Tenant.ID, Name: name, Pass: pass, Evidence: evidence})
		}
		ok := func(j int) bool { return res[j].Status == agent.StatusOK }
		fail := func(j int) string { return res[j].Status + ": " + res[j].Error }
		mount := mountPath(t)
		x := at[i]
		if ok(x.ls) && slices.Contains(lines(res[x.ls].Output), probe(t)) {
			r(KBHostToContainer, true, "a file written on the host into "+probeDir+" is listed at "+path.Join(mount, probeDir)+" in the container")
		} else {
			r(KBHostToContainer, false, "the host probe is not visible in the container: "+or(res[x.ls].Output, fail(x.ls)))
		}
		if ok(x.touch) && ok(x.read) && res[x.read].State == "" {
			r(KBContainerToHost, true, "a file written in the container appears in "+path.Join(t.Tenant.Home, probeDir)+" on the host")
		} else {
			why := res[x.read].State
			switch {
			case !ok(x.touch):
				why = fail(x.touch)
			case !ok(x.read):
				why = fail(x.read)
			}
			r(KBContainerToHost, false, "a file written in the container did not reach the host: "+why)
		}
		if capEff := field(res[x.status].Output, "CapEff:"); ok(x.status) && capEff != "" && strings.Trim(capEff, "0") == "" {
			r(Capabilities, true, "CapEff "+capEff)
		} else {
			r(Capabilities, false, "CapEff "+or(capEff, fail(x.status)))
		}
		names := lines(res[x.environ].Output)
		var missing []string
		for _, e := range append(slices.Clone(t.Tenant.Container.Env), t.Tenant.Container.SecretEnv...) {
			if !slices.Contains(names, e.Name) {
				missing = append(missing, e.Name)
			}
		}
		if ok(x.environ) && len(missing) == 0 {
			r(ProcessEnv, true, "process environment has "+envList(t.Tenant.Container))
		} else {
			r(ProcessEnv, false, "missing from the process environment: "+or(strings.Join(missing, ", "), fail(x.environ)))
		}
		var foreign []string
		for _, m := range t.Container.Mounts {
			if m.Source != t.Tenant.Home {
				foreign = append(foreign, m.Source+" at "+m.Destination)
			}
		}
		if len(foreign) == 0 {
			r(IsolationMounts, true, "only "+t.Tenant.Home+" is mounted")
		} else {
			r(IsolationMounts, false, "other host paths are mounted: "+strings.Join(foreign, "; "))
		}
		// Isolation: no other tenant's probe in any directory this container can list.
		seen := map[string]bool{}
		var dirs []string
		for k, j := range listings[i] {
			dirs = append(dirs, path.Join(t.Container.Mounts[k].Destination, probeDir))
			if ok(j) {
				for _, l := range lines(res[j].Output) {
					seen[l] = true
				}
			}
		}
		var leaked []string
		for _, o := range up {
			if o.Tenant.ID != t.Tenant.ID && seen[probe(o)] {
				leaked = append(leaked, o.Tenant.ID)
			}
		}
		slices.Sort(leaked)
		if len(leaked) == 0 {
			r(IsolationProbe, true, fmt.Sprintf("none of the other %d tenants' probes is visible in %s", len(up)-1, strings.Join(dirs, ", ")))
		} else {
			r(IsolationProbe, false, "probes of other tenants are visible: "+strings.Join(leaked, ", "))
		}
	}
	return checks
}

func mountPath(t Target) string {
	for _, m := range t.Tenant.Container.Mounts {
		if m.Source == t.Tenant.Home {
			return m.Destination
		}
	}
	return "/data/hermes"
}

func envList(c render.ContainerSpec) string {
	var names []string
	for _, e := range append(slices.Clone(c.Env), c.SecretEnv...) {
		names = append(names, e.Name)
	}
	return strings.Join(names, ", ")
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func field(s, name string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, name) {
			return strings.TrimSpace(strings.TrimPrefix(l, name))
		}
	}
	return ""
}

func or(a, b string) string {
	if strings.TrimSpace(a) != "" {
		return a
	}
	return b
}

func randomTag() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
