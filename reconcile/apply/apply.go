// Package apply executes a plan against workers. It never re-decides: each change becomes
// one batch of agent steps (files first, then the container), run in one round trip per
// tenant, concurrently up to a per-worker limit, under a lock on the worker. One tenant's
// failure never stops the others.
package apply

import (
	"context"
	"fmt"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/firemountain/hermes-gitops/reconcile/agent"
	"github.com/firemountain/hermes-gitops/reconcile/live"
	"github.com/firemountain/hermes-gitops/reconcile/plan"
	"github.com/firemountain/hermes-gitops/reconcile/render"
	"github.com/firemountain/hermes-gitops/reconcile/runtime"
	"github.com/firemountain/hermes-gitops/reconcile/worker"
)

// Options tune an apply.
type Options struct {
	// Concurrency is the number of tenants changed at once per worker (default 4).
	Concurrency int
	// LockOwner names this applier in the worker lock (default DefaultLockOwner).
	LockOwner string
	// LockTTL is how long the lock holds if this process dies (default 10m). Every
	// tenant's batch renews it, in its own round trip.
	LockTTL time.Duration
	// LockHeld says the workers' locks were taken with the observation the plan was made
	// from (reconcile.Config.Lock, same owner): apply neither takes nor releases them.
	// Otherwise it takes each worker's lock first and releases it at the end.
	LockHeld bool
	// Stop, when closed, starts no further tenant; those running finish (they stop only
	// when ctx is cancelled). The daemon closes it on SIGTERM.
	Stop <-chan struct{}
	// WaitTimeout bounds the wait for a container to be up (default 60s).
	WaitTimeout time.Duration
	// StableFor is how long a container without health check must keep running (default 1.5s).
	StableFor time.Duration
	// Progress, if set, is called after each tenant finishes.
	Progress func(Result)
	// Now is the clock for archive names (default time.Now).
	Now func() time.Time
}

// Status of a tenant's apply.
const (
	OK      = "ok"
	Failed  = "failed"
	Skipped = "skipped"
)

// Result is the outcome for one tenant.
type Result struct {
	Worker   string        `json:"worker"`
	Tenant   string        `json:"tenant"`
	Action   plan.Action   `json:"action"`
	Status   string        `json:"status"`
	Error    string        `json:"error,omitempty"`
	Logs     []string      `json:"logs,omitempty"`
	Duration time.Duration `json:"durationNs"`
}

// DefaultLockOwner names this process in worker locks.
func DefaultLockOwner() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("hermesctl %s@%s pid %d", os.Getenv("USER"), host, os.Getpid())
}

func (o *Options) defaults() {
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.LockOwner == "" {
		o.LockOwner = DefaultLockOwner()
	}
	if o.LockTTL <= 0 {
		o.LockTTL = 10 * time.Minute
	}
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = 60 * time.Second
	}
	if o.StableFor <= 0 {
		o.StableFor = 1500 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Apply runs every mutating change of p. Workers are processed in parallel; within a
// worker the lock is taken first (one round trip), then tenants run concurrently.
func Apply(ctx context.Context, p *plan.Plan, conns map[string]*worker.Conn, opts Options) []Result {
	opts.defaults()
	byWorker := map[string][]plan.Change{}
	var order []string
	for _, c := range p.Changes {
		if !c.Action.Mutates() {
			continue
		}
		if _, ok := byWorker[c.Worker]; !ok {
			order = append(order, c.Worker)
		}
		byWorker[c.Worker] = append(byWorker[c.Worker], c)
	}
	var mu sync.Mutex
	var results []Result
	var wg sync.WaitGroup
	for _, w := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs := applyWorker(ctx, conns[w], byWorker[w], opts)
			mu.Lock()
			results = append(results, rs...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sortResults(results)
	return results
}

// progressMu serialises Progress callbacks, which come from every worker's goroutines.
var progressMu sync.Mutex

func applyWorker(ctx context.Context, conn *worker.Conn, changes []plan.Change, opts Options) []Result {
	fail := func(err error) []Result {
		out := make([]Result, len(changes))
		for i, c := range changes {
			out[i] = Result{Worker: c.Worker, Tenant: c.Tenant, Action: c.Action, Status: Failed, Error: err.Error()}
		}
		return out
	}
	if conn == nil {
		return fail(fmt.Errorf("no connection to worker"))
	}
	if !opts.LockHeld {
		res, err := conn.Steps(ctx, []agent.Step{conn.LockStep(opts.LockOwner, opts.LockTTL)})
		if err != nil {
			return fail(err)
		}
		if res[0].Status != agent.StatusOK {
			return fail(fmt.Errorf("worker %s: %s", conn.Name, res[0].Error))
		}
		defer func() {
			// Release even when ctx is cancelled, so the next run need not wait for expiry.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_, _ = conn.Steps(rctx, []agent.Step{conn.UnlockStep(opts.LockOwner)})
		}()
	}

	results := make([]Result, len(changes))
	sem := make(chan struct{}, opts.Concurrency)
	var wg sync.WaitGroup
	for i, c := range changes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				results[i] = Result{Worker: c.Worker, Tenant: c.Tenant, Action: c.Action, Status: Skipped, Error: "cancelled before it started"}
				return
			case <-opts.Stop:
				results[i] = Result{Worker: c.Worker, Tenant: c.Tenant, Action: c.Action, Status: Skipped, Error: "stopping: not started"}
				return
			}
			defer func() { <-sem }()
			select {
			case <-opts.Stop:
				results[i] = Result{Worker: c.Worker, Tenant: c.Tenant, Action: c.Action, Status: Skipped, Error: "stopping: not started"}
				return
			default:
			}
			start := time.Now()
			r := applyChange(ctx, conn, c, opts)
			r.Duration = time.Since(start)
			results[i] = r
			if opts.Progress != nil {
				progressMu.Lock()
				opts.Progress(r)
				progressMu.Unlock()
			}
		}()
	}
	wg.Wait()
	return results
}

// applyChange runs one tenant's batch in one round trip.
func applyChange(ctx context.Context, conn *worker.Conn, c plan.Change, opts Options) Result {
	r := Result{Worker: c.Worker, Tenant: c.Tenant, Action: c.Action}
	steps := Steps(c, opts)
	if len(steps) == 0 {
		r.Status = OK
		return r
	}
	// The batch starts by renewing the worker lock: a long apply keeps it, at no extra
	// round trip, and a batch never runs if someone else took the worker meanwhile.
	steps = append([]agent.Step{conn.LockStep(opts.LockOwner, opts.LockTTL)}, steps...)
	res, err := conn.Steps(ctx, steps)
	if err != nil {
		r.Status, r.Error = Failed, redact(err.Error(), c.Desired)
		return r
	}
	r.Status = OK
	for _, s := range res {
		if s.Status == agent.StatusFailed {
			r.Status = Failed
			r.Error = fmt.Sprintf("tenant %s: %s", c.Tenant, redact(s.Error, c.Desired))
			for _, l := range s.Logs {
				r.Logs = append(r.Logs, redact(l, c.Desired))
			}
			break
		}
	}
	return r
}

// Steps turns a change into the agent steps that carry it out: directories, files, .env,
// the lock file last among files, then the container. Exported for tests and benchmarks.
func Steps(c plan.Change, opts Options) []agent.Step {
	opts.defaults()
	t := c.Desired
	var steps []agent.Step
	switch c.Action {
	case plan.Delete, plan.Prune:
		if c.Observed != nil {
			steps = append(steps, agent.Step{Op: agent.OpDocker, Argv: runtime.Remove(c.Observed.Name), IgnoreMissing: true})
		}
		if c.Home != nil {
			root := path.Dir(c.Home.Path)
			to := path.Join(path.Dir(root), ".archive", fmt.Sprintf("%s-%s", c.Tenant, opts.Now().UTC().Format("20060102T150405Z")))
			steps = append(steps, agent.Step{Op: agent.OpArchive, Path: root, To: to})
		}
		return steps
	}
	if t == nil {
		return nil
	}
	steps = append(steps, fileSteps(c, t)...)
	wait := agent.Step{Op: agent.OpWait, Wait: &agent.WaitSpec{
		Container: t.Container.Name, TimeoutMS: int(opts.WaitTimeout.Milliseconds()),
		StableForMS: int(opts.StableFor.Milliseconds()), LogLines: 20,
	}}
	switch c.Action {
	case plan.Create, plan.Recreate:
		if c.Observed != nil {
			steps = append(steps, agent.Step{Op: agent.OpDocker, Argv: runtime.Remove(c.Observed.Name), IgnoreMissing: true})
		}
		steps = append(steps, agent.Step{Op: agent.OpDocker, Argv: runtime.Run(t.Container), EnvFile: envVars(t.Container.SecretEnv)})
		if t.State == "suspended" {
			steps = append(steps, agent.Step{Op: agent.OpDocker, Argv: runtime.Stop(t.Container.Name)})
		} else {
			steps = append(steps, wait)
		}
	case plan.Patch:
		if c.Restart && c.Observed != nil {
			steps = append(steps, agent.Step{Op: agent.OpDocker, Argv: runtime.Restart(c.Observed.Name)}, wait)
		}
	case plan.Start:
		steps = append(steps, agent.Step{Op: agent.OpDocker, Argv: runtime.Start(c.Observed.Name)}, wait)
	case plan.Stop:
		steps = append(steps, agent.Step{Op: agent.OpDocker, Argv: runtime.Stop(c.Observed.Name)})
	}
	return steps
}

// fileSteps writes what differs: directories, changed files, stale files removed, seed
// files, .env, and the lock file last so that an interrupted batch is redone next time.
func fileSteps(c plan.Change, t *render.Tenant) []agent.Step {
	var owner *agent.Owner
	if t.Owner != nil {
		owner = &agent.Owner{UID: t.Owner.UID, GID: t.Owner.GID}
	}
	var steps []agent.Step
	if c.Home == nil {
		steps = append(steps,
			agent.Step{Op: agent.OpMkdir, Path: t.Root, Mode: 0o750, Owner: owner},
			agent.Step{Op: agent.OpMkdir, Path: t.Home, Mode: 0o750, Owner: owner})
	}
	for _, d := range c.MakeDirs {
		steps = append(steps, agent.Step{Op: agent.OpMkdir, Path: path.Join(t.Home, d), Mode: 0o755, Owner: owner})
	}
	var lock *render.File
	for i, f := range c.WriteFiles {
		if f.Path == live.LockFile {
			lock = &c.WriteFiles[i]
			continue
		}
		steps = append(steps, agent.Step{Op: agent.OpWrite, Path: path.Join(t.Home, f.Path), Content: f.Content, Mode: f.Mode, Owner: owner})
	}
	for _, p := range c.RemoveFiles {
		steps = append(steps, agent.Step{Op: agent.OpRemove, Path: path.Join(t.Home, p), StopAt: path.Join(t.Home, "skills")})
	}
	for _, f := range c.SeedFiles {
		steps = append(steps, agent.Step{Op: agent.OpWrite, Path: path.Join(t.Home, f.Path), Content: f.Content, Mode: f.Mode, Owner: owner, CreateOnly: true})
	}
	if len(c.EnvChanges) > 0 {
		steps = append(steps, agent.Step{Op: agent.OpEnvMerge, Path: path.Join(t.Home, live.EnvFile), Set: envVars(t.Env), Remove: c.EnvRemove, Owner: owner})
	}
	if lock != nil {
		steps = append(steps, agent.Step{Op: agent.OpWrite, Path: path.Join(t.Home, lock.Path), Content: lock.Content, Mode: lock.Mode, Owner: owner})
	}
	return steps
}

func envVars(vs []render.EnvVar) []agent.EnvVar {
	var out []agent.EnvVar
	for _, v := range vs {
		out = append(out, agent.EnvVar{Name: v.Name, Value: v.Value.Reveal()})
	}
	return out
}

// redact replaces every secret value of the tenant in s (container logs, error output).
func redact(s string, t *render.Tenant) string {
	if t == nil {
		return s
	}
	for _, e := range append(append([]render.EnvVar{}, t.Env...), t.Container.SecretEnv...) {
		if e.Secret && len(e.Value.Reveal()) >= 4 {
			s = strings.ReplaceAll(s, e.Value.Reveal(), "[secret "+e.Name+"]")
		}
	}
	return s
}

func sortResults(rs []Result) {
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && (rs[j].Worker < rs[j-1].Worker || (rs[j].Worker == rs[j-1].Worker && rs[j].Tenant < rs[j-1].Tenant)); j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}
