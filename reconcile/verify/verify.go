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

// Run verifies targets on one worker. Cross-tenant isolation is checked against every
// other target on the same worker. Probes are removed afterwards.
func Run(ctx context.Context, conn *worker.Conn, targets []Target) []Check {
	var checks []Check
	tag := randomTag()
	probes := map[string]string{} // tenant → probe file name written from the host
	var cleanup []agent.Step
	var up []Target

	for _, t := range targets {
		r := func(name string, pass bool, evidence string) {
			checks = append(checks, Check{Worker: conn.Name, Tenant: t.Tenant.ID, Name: name, Pass: pass, Evidence: evidence})
		}
		if t.Container == nil || !t.Container.State.Running {
			state := "no container"
			if t.Container != nil {
				state = t.Container.State.Status
			}
			r(Running, false, "container "+t.Tenant.Container.Name+": "+state)
			continue
		}
		up = append(up, t)
		name := t.Tenant.Container.Name
		mount := mountPath(t)
		hostProbe := ".hermes-verify-" + tag + "-" + t.Tenant.ID
		inProbe := ".hermes-verify-" + tag + "-" + t.Tenant.ID + "-inside"
		probes[t.Tenant.ID] = hostProbe
		var owner *agent.Owner
		if t.Tenant.Owner != nil {
			owner = &agent.Owner{UID: t.Tenant.Owner.UID, GID: t.Tenant.Owner.GID}
		}
		hostPath := path.Join(t.Tenant.Home, probeDir, hostProbe)
		steps := []agent.Step{
			{Op: agent.OpWrite, Path: hostPath, Content: []byte("hermes-gitops verify probe\n"), Mode: 0o644, Owner: owner},
			{Op: agent.OpDocker, Argv: runtime.Exec(name, "ls", "-1a", path.Join(mount, probeDir))},
			{Op: agent.OpDocker, Argv: runtime.Exec(name, "touch", path.Join(mount, probeDir, inProbe))},
			{Op: agent.OpRead, Path: path.Join(t.Tenant.Home, probeDir, inProbe)},
			{Op: agent.OpDocker, Argv: runtime.Exec(name, "cat", "/proc/1/status")},
			{Op: agent.OpDocker, Argv: runtime.Exec(name, "cat", "/proc/1/environ"), EnvNamesOnly: true},
		}
		cleanup = append(cleanup,
			agent.Step{Op: agent.OpRemove, Path: hostPath},
			agent.Step{Op: agent.OpRemove, Path: path.Join(t.Tenant.Home, probeDir, inProbe)})
		res, err := conn.Steps(ctx, steps)
		if err != nil {
			r(KBHostToContainer, false, err.Error())
			continue
		}
		fail := func(i int) string { return res[i].Status + ": " + res[i].Error }
		if res[1].Status == agent.StatusOK && slices.Contains(lines(res[1].Output), hostProbe) {
			r(KBHostToContainer, true, "a file written on the host into "+probeDir+" is listed at "+path.Join(mount, probeDir)+" in the container")
		} else {
			r(KBHostToContainer, false, "the host probe is not visible in the container: "+or(res[1].Output, fail(1)))
		}
		if res[3].Status == agent.StatusOK && res[3].State == "" {
			r(KBContainerToHost, true, "a file written in the container appears in "+path.Join(t.Tenant.Home, probeDir)+" on the host")
		} else {
			r(KBContainerToHost, false, "a file written in the container did not reach the host: "+or(res[3].State, fail(2)))
		}
		if capEff := field(res[4].Output, "CapEff:"); res[4].Status == agent.StatusOK && strings.Trim(capEff, "0") == "" && capEff != "" {
			r(Capabilities, true, "CapEff "+capEff)
		} else {
			r(Capabilities, false, "CapEff "+or(capEff, fail(4)))
		}
		names := lines(res[5].Output)
		var missing []string
		for _, e := range append(slices.Clone(t.Tenant.Container.Env), t.Tenant.Container.SecretEnv...) {
			if !slices.Contains(names, e.Name) {
				missing = append(missing, e.Name)
			}
		}
		if res[5].Status == agent.StatusOK && len(missing) == 0 {
			r(ProcessEnv, true, "process environment has "+envList(t.Tenant.Container))
		} else {
			r(ProcessEnv, false, "missing from the process environment: "+or(strings.Join(missing, ", "), fail(5)))
		}
		// Mounts: only the tenant's own hermes-home.
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
	}

	// Isolation: no container sees another tenant's probe, in its own knowledge dir or in
	// any other mount.
	for _, t := range up {
		var steps []agent.Step
		var dirs []string
		for _, m := range t.Container.Mounts {
			d := path.Join(m.Destination, probeDir)
			dirs = append(dirs, d)
			steps = append(steps, agent.Step{Op: agent.OpDocker, Argv: runtime.Exec(t.Tenant.Container.Name, "ls", "-1a", d)})
		}
		if len(steps) == 0 {
			continue
		}
		seen := map[string]bool{}
		// Each listing is its own batch: a missing directory in one mount must not skip the others.
		for _, st := range steps {
			res, err := conn.Steps(ctx, []agent.Step{st})
			if err != nil || res[0].Status != agent.StatusOK {
				continue
			}
			for _, l := range lines(res[0].Output) {
				seen[l] = true
			}
		}
		var leaked []string
		for id, probe := range probes {
			if id != t.Tenant.ID && seen[probe] {
				leaked = append(leaked, id)
			}
		}
		slices.Sort(leaked)
		if len(leaked) == 0 {
			checks = append(checks, Check{Worker: conn.Name, Tenant: t.Tenant.ID, Name: IsolationProbe, Pass: true,
				Evidence: fmt.Sprintf("none of the other %d tenants' probes is visible in %s", len(probes)-1, strings.Join(dirs, ", "))})
		} else {
			checks = append(checks, Check{Worker: conn.Name, Tenant: t.Tenant.ID, Name: IsolationProbe, Pass: false,
				Evidence: "probes of other tenants are visible: " + strings.Join(leaked, ", ")})
		}
	}

	if len(cleanup) > 0 {
		cctx := context.WithoutCancel(ctx)
		_, _ = conn.Steps(cctx, cleanup)
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
