// Package reconcile ties the pipeline together: load the desired state, decrypt, observe
// every worker in one round trip each, render, and plan. plan, apply, drift and the
// daemon all start from a Session. The pieces live in sub-packages with one job each:
// live (observed state), render, plan (pure), apply, worker (agent connection),
// transport, agent (worker side) and runtime (docker argv).
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/firemountain/hermes-gitops/internal/par"
	"github.com/firemountain/hermes-gitops/reconcile/agent"
	"github.com/firemountain/hermes-gitops/reconcile/live"
	"github.com/firemountain/hermes-gitops/reconcile/plan"
	"github.com/firemountain/hermes-gitops/reconcile/render"
	"github.com/firemountain/hermes-gitops/reconcile/worker"
	"github.com/firemountain/hermes-gitops/schema"
)

// Filter narrows a reconcile to some workers or tenants (empty: everything).
type Filter struct {
	Workers []string
	Tenants []string
}

func (f Filter) tenant(id, workerName string) bool {
	return (len(f.Tenants) == 0 || slices.Contains(f.Tenants, id)) &&
		(len(f.Workers) == 0 || slices.Contains(f.Workers, workerName))
}

// Config is what a session needs.
type Config struct {
	Identities *schema.Identities
	Worker     worker.Options
	Filter     Filter
	Prune      bool
	// Conns reuses connections across sessions (the daemon); nil dials fresh ones.
	Conns *Pool
	// Lock, when set, takes each worker's apply lock in the same round trip as its
	// observation, so that the plan is made from a state no other applier can change
	// before it is applied. Session.Close releases it.
	Lock *Lock
}

// Lock names the owner of worker locks and how long they hold if it dies.
type Lock struct {
	Owner string
	TTL   time.Duration
}

// Session is one reconcile pass: the desired state, the observation and the plan.
type Session struct {
	Repo     *schema.Repo
	Desired  plan.Desired
	Observed map[string]*live.Worker
	// ObserveErrors holds the workers that could not be observed.
	ObserveErrors map[string]error
	Plan          *plan.Plan
	Conns         map[string]*worker.Conn
	// Locked are the workers whose lock this session holds (Config.Lock); LockErrors says
	// why a worker's lock could not be taken (another applier holds it).
	Locked     map[string]bool
	LockErrors map[string]string
	lock       *Lock
	pool       *Pool
	ownPool    bool
}

// ErrUnusable wraps a desired state that must not be applied at all.
var ErrUnusable = errors.New("desired state unusable")

// NewSession observes and plans for a loaded repository. A repository that is not
// usable (broken app or worker files) is refused: nothing is observed or planned.
func NewSession(ctx context.Context, repo *schema.Repo, cfg Config) (*Session, error) {
	if err := repo.Usable(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnusable, err)
	}
	repo.Decrypt(cfg.Identities)
	s := &Session{Repo: repo, Observed: map[string]*live.Worker{}, ObserveErrors: map[string]error{}, Conns: map[string]*worker.Conn{},
		Locked: map[string]bool{}, LockErrors: map[string]string{}, lock: cfg.Lock, pool: cfg.Conns}
	if s.pool == nil {
		s.pool, s.ownPool = NewPool(cfg.Worker), true
	}

	// Workers in scope: those the selected tenants live on.
	var workers []string
	for _, t := range repo.Tenants {
		w := t.Spec.Worker
		if repo.Workers[w] == nil || !cfg.Filter.tenant(t.Metadata.Name, w) || slices.Contains(workers, w) {
			continue
		}
		workers = append(workers, w)
	}
	sort.Strings(workers)
	s.Desired.Workers = workers
	s.Desired.Empty = len(repo.Tenants) == 0
	s.Desired.Only = cfg.Filter.Tenants
	s.Desired.Known = map[string]bool{}
	for _, t := range repo.Tenants {
		s.Desired.Known[t.Metadata.Name] = true
	}
	s.Desired.Scopes = map[string][]plan.Scope{}
	for _, name := range workers {
		for _, r := range AppRoots(repo, repo.Workers[name]) {
			s.Desired.Scopes[name] = append(s.Desired.Scopes[name], plan.Scope{App: r.App, Root: r.Root, Prefix: r.ContainerPrefix})
		}
	}

	// Observe every worker in parallel, one round trip each; meanwhile render the
	// tenants (rendering needs no worker key; fingerprints are filled in afterwards).
	observed := make(chan *Observation, 1)
	go func() { observed <- ObserveWorkers(ctx, repo, workers, s.pool, cfg.Lock) }()
	var selected []*schema.Tenant
	for _, t := range repo.Tenants {
		if !cfg.Filter.tenant(t.Metadata.Name, t.Spec.Worker) {
			continue
		}
		if repo.Held(t) {
			s.Desired.Held = append(s.Desired.Held, plan.Held{ID: t.Metadata.Name, App: t.Metadata.App, Worker: t.Spec.Worker,
				Source: t.Source.File, Reasons: heldReasons(repo, t)})
			continue
		}
		selected = append(selected, t)
	}
	rendered := make([]*render.Tenant, len(selected))
	errs := make([]error, len(selected))
	par.Do(len(selected), func(i int) {
		t := selected[i]
		rendered[i], errs[i] = render.Render(render.Input{Tenant: t, App: repo.Apps[t.Metadata.App], Worker: repo.Workers[t.Spec.Worker], Catalogue: repo.Catalogue})
	})
	o := <-observed
	s.Observed, s.ObserveErrors, s.Conns, s.Locked, s.LockErrors = o.Workers, o.Errors, o.Conns, o.Locked, o.LockErrors
	for i, t := range selected {
		if errs[i] != nil {
			s.Desired.Held = append(s.Desired.Held, plan.Held{ID: t.Metadata.Name, App: t.Metadata.App, Worker: t.Spec.Worker,
				Source: t.Source.File, Reasons: []string{"render: " + errs[i].Error()}})
			continue
		}
		if obs := s.Observed[t.Spec.Worker]; obs != nil {
			key := obs.FingerprintKey
			rendered[i].Fingerprint(func(v string) string { return agent.Fingerprint(key, v) })
		}
		s.Desired.Tenants = append(s.Desired.Tenants, rendered[i])
	}
	s.Plan = plan.Compute(s.Desired, s.Observed, plan.Options{Prune: cfg.Prune})
	for name, err := range s.ObserveErrors {
		s.Plan.Unreachable[name] = err.Error()
	}
	return s, nil
}

// Observation is what observing some workers found.
type Observation struct {
	Workers map[string]*live.Worker
	Errors  map[string]error // workers that could not be observed
	Conns   map[string]*worker.Conn
	// Locked and LockErrors: see Session.
	Locked     map[string]bool
	LockErrors map[string]string
}

// ObserveWorkers observes the named workers in parallel, one round trip each; with lock
// set, each worker's apply lock is taken in the same round trip.
func ObserveWorkers(ctx context.Context, repo *schema.Repo, names []string, pool *Pool, lock *Lock) *Observation {
	o := &Observation{Workers: map[string]*live.Worker{}, Errors: map[string]error{}, Conns: map[string]*worker.Conn{},
		Locked: map[string]bool{}, LockErrors: map[string]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := pool.Get(repo.Workers[name])
			var obs *live.Worker
			var res []agent.StepResult
			if err == nil {
				var steps []agent.Step
				if lock != nil {
					steps = []agent.Step{conn.LockStep(lock.Owner, lock.TTL)}
				}
				obs, res, err = conn.ObserveAfter(ctx, steps, AppRoots(repo, repo.Workers[name]), render.Scaffold)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				o.Errors[name] = err
				return
			}
			o.Conns[name], o.Workers[name] = conn, obs
			if len(res) == 1 {
				if res[0].Status == agent.StatusOK {
					o.Locked[name] = true
				} else {
					o.LockErrors[name] = "worker " + name + ": " + res[0].Error
				}
			}
		}()
	}
	wg.Wait()
	return o
}

// heldReasons lists why a tenant is held: its own errors, or its app's or worker's.
func heldReasons(repo *schema.Repo, t *schema.Tenant) []string {
	var out []string
	for _, p := range repo.TenantProblems(t).Errors() {
		out = append(out, p.String())
	}
	if len(out) == 0 {
		out = append(out, "its app or worker file has errors")
	}
	return out
}

// AppRoots lists where each app keeps its tenants on a worker.
func AppRoots(repo *schema.Repo, w *schema.Worker) []agent.AppRoot {
	var out []agent.AppRoot
	for _, name := range slices.Sorted(maps.Keys(repo.Apps)) {
		a := repo.Apps[name]
		out = append(out, agent.AppRoot{App: name, Root: schema.AppRoot(a, w), ContainerPrefix: a.Spec.ContainerPrefix})
	}
	return out
}

// RoundTrips is the total of round trips made to the session's workers so far.
func (s *Session) RoundTrips() int64 {
	var n int64
	for _, c := range s.Conns {
		n += c.RoundTrips()
	}
	return n
}

// Close releases the locks the session holds (one round trip per worker, even after
// its context was cancelled) and closes the connections it opened itself.
func (s *Session) Close() {
	if s.lock != nil && len(s.Locked) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var wg sync.WaitGroup
		for name := range s.Locked {
			conn := s.Conns[name]
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = conn.Steps(ctx, []agent.Step{conn.UnlockStep(s.lock.Owner)})
			}()
		}
		wg.Wait()
		cancel()
		s.Locked = map[string]bool{}
	}
	if s.ownPool {
		s.pool.Close()
	}
}

// Pool keeps one connection per worker, reused across sessions.
type Pool struct {
	opts  worker.Options
	mu    sync.Mutex
	conns map[string]*worker.Conn
	specs map[string]schema.WorkerSpec
}

// NewPool returns an empty pool.
func NewPool(opts worker.Options) *Pool {
	return &Pool{opts: opts, conns: map[string]*worker.Conn{}, specs: map[string]schema.WorkerSpec{}}
}

// Get returns the connection to a worker, dialling it if new or if its spec changed.
func (p *Pool) Get(w *schema.Worker) (*worker.Conn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	name := w.Metadata.Name
	if c, ok := p.conns[name]; ok && p.specs[name] == w.Spec {
		return c, nil
	} else if ok {
		c.Close()
	}
	c, err := worker.Dial(w, p.opts)
	if err != nil {
		return nil, err
	}
	p.conns[name], p.specs[name] = c, w.Spec
	return c, nil
}

// Close closes every connection.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = map[string]*worker.Conn{}
}

// DeletionLimit returns an error when a plan would delete or prune more than
// max(1, 10%) of a worker's tenants (those this desired state knows there: desired, held
// and orphaned), the most one pass may remove without --force.
func DeletionLimit(p *plan.Plan) error {
	deletes, tenants := map[string]int{}, map[string]map[string]bool{}
	for _, c := range p.Changes {
		if tenants[c.Worker] == nil {
			tenants[c.Worker] = map[string]bool{}
		}
		tenants[c.Worker][c.Tenant] = true
		if c.Action == plan.Delete || c.Action == plan.Prune {
			deletes[c.Worker]++
		}
	}
	var errs []error
	for _, w := range slices.Sorted(maps.Keys(deletes)) {
		n, total := deletes[w], len(tenants[w])
		if limit := max(1, total/10); n > limit {
			errs = append(errs, fmt.Errorf("worker %s: the plan removes %d of its %d tenants; one pass may remove at most %d without --force", w, n, total, limit))
		}
	}
	return errors.Join(errs...)
}

// LiveConfigs fetches the config.yaml of every tenant whose config differs from git, in
// one round trip per worker, for field-level drift reports. config.yaml holds no secret
// (those live in .env); values under secret-looking keys are masked by the report.
func (s *Session) LiveConfigs(ctx context.Context) map[string][]byte {
	type req struct {
		tenant string
		step   agent.Step
	}
	byWorker := map[string][]req{}
	for _, c := range s.Plan.Changes {
		if c.Desired == nil || c.Home == nil {
			continue
		}
		got, ok := c.Home.Files[live.ConfigFile]
		for _, f := range c.Desired.Files {
			if f.Path == live.ConfigFile && ok && got != f.Digest {
				byWorker[c.Worker] = append(byWorker[c.Worker], req{c.Tenant, agent.Step{Op: agent.OpRead, Path: c.Home.Path + "/" + live.ConfigFile, Optional: true}})
			}
		}
	}
	out := map[string][]byte{}
	for w, reqs := range byWorker {
		conn := s.Conns[w]
		if conn == nil {
			continue
		}
		steps := make([]agent.Step, len(reqs))
		for i, r := range reqs {
			steps[i] = r.step
		}
		res, err := conn.Steps(ctx, steps) // optional reads: one round trip for all
		if err != nil {
			continue
		}
		for i, r := range res {
			if r.Status == agent.StatusOK && r.State == "" {
				out[reqs[i].tenant] = []byte(r.Output)
			}
		}
	}
	return out
}
