package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/firemountain/hermes-gitops/internal/report"
	"github.com/firemountain/hermes-gitops/reconcile"
	"github.com/firemountain/hermes-gitops/reconcile/apply"
	"github.com/firemountain/hermes-gitops/reconcile/drift"
	"github.com/firemountain/hermes-gitops/reconcile/plan"
	"github.com/firemountain/hermes-gitops/reconcile/worker"
	"github.com/firemountain/hermes-gitops/schema"
)

// loopState belongs to the Run goroutine, except backoff and applied, which the apply's
// progress callbacks touch under Daemon.mu.
type loopState struct {
	current           *loaded
	rejected          string // a revision that failed to load, and why
	rejectedMsg       string
	rt                map[string]rtMark
	unreachableStreak int
	retryAt           time.Time

	backoff map[string]*backoffEntry // guarded by Daemon.mu
	applied map[string]Applied       // guarded by Daemon.mu
}

func (l *loopState) init() {
	l.rt = map[string]rtMark{}
	l.backoff = map[string]*backoffEntry{}
	l.applied = map[string]Applied{}
}

// loaded is the revision in force.
type loaded struct {
	snap    *Snapshot
	repo    *schema.Repo
	at      time.Time
	digests map[string]string // tenant id → digest of its file
}

// backoffEntry is a tenant whose apply failed: it is left out of applies until, unless
// its file changes.
type backoffEntry struct {
	failures int
	until    time.Time
	err      string
	digest   string
}

type rtMark struct {
	conn *worker.Conn
	n    int64
}

// jitter spreads d by ±10%.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
}

// backoffDelay is base·2^(failures-1), at most max.
func backoffDelay(base, maxDelay time.Duration, failures int) time.Duration {
	d := base
	for i := 1; i < failures && d < maxDelay; i++ {
		d *= 2
	}
	return min(d, maxDelay)
}

func (d *Daemon) runLoop(ctx context.Context) error {
	// Tenant operations run under work, which outlives ctx by at most ShutdownTimeout:
	// SIGTERM stops new work at once, and cuts what is in flight only at the deadline.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	loopDone, announced := make(chan struct{}), make(chan struct{})
	defer close(loopDone)
	go func() {
		select {
		case <-loopDone:
			return
		case <-ctx.Done():
		}
		d.mu.Lock()
		d.st.shuttingDown = true
		d.mu.Unlock()
		d.log.Info("shutting down: taking no new work, letting tenant operations in flight finish", "timeout", d.cfg.ShutdownTimeout.String())
		close(announced)
		t := time.NewTimer(d.cfg.ShutdownTimeout)
		defer t.Stop()
		select {
		case <-loopDone:
		case <-t.C:
			d.log.Warn("shutdown timeout reached: cancelling tenant operations in flight")
			cancelWork()
		}
	}()

	fetchT := time.NewTimer(0)
	resyncT := time.NewTimer(d.cfg.Resync)
	retryT := time.NewTimer(time.Hour)
	retryT.Stop()
	defer fetchT.Stop()
	defer resyncT.Stop()
	defer retryT.Stop()
	trigger := "start"
	for {
		if ctx.Err() != nil {
			<-announced
			d.log.Info("stopped")
			return nil
		}
		ran := false
		select {
		case <-ctx.Done():
			continue
		case <-fetchT.C:
			ran = d.sync(ctx, work, trigger)
			next := jitter(d.cfg.Interval)
			if d.loop.current == nil {
				// Nothing in force yet (the first fetch or load failed): try again soon.
				next = min(next, jitter(d.cfg.LockRetry))
			} else {
				trigger = "interval"
			}
			fetchT.Reset(next)
		case why := <-d.kick:
			ran = d.sync(ctx, work, why)
		case <-d.src.changes():
			ran = d.sync(ctx, work, "watch")
		case <-resyncT.C:
			ran = d.reconcile(ctx, work, "resync")
			resyncT.Reset(jitter(d.cfg.Resync))
		case <-retryT.C:
			ran = d.reconcile(ctx, work, "retry")
		}
		if ran {
			resyncT.Reset(jitter(d.cfg.Resync))
			retryT.Stop()
			if !d.loop.retryAt.IsZero() {
				retryT.Reset(max(time.Until(d.loop.retryAt), 10*time.Millisecond))
			}
		}
	}
}

// sync fetches the source and, if it has a new revision that loads, makes it the
// revision in force and reconciles. A fetch failure, an unreadable tree or a desired
// state that does not load keeps the revision in force: nothing is applied from it and
// nothing deleted. It reports whether a reconcile ran.
func (d *Daemon) sync(ctx, work context.Context, trigger string) bool {
	snap, err := d.src.fetch(ctx)
	now := time.Now()
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		if d.src.kind() == "git" {
			d.metrics.fetchFailures.Inc()
		}
		d.sourceError(err.Error(), "", now)
		d.log.Warn("source failed; the revision in force stays", "err", err.Error(), "in_force", d.inForce(), "trigger", trigger)
		return false
	}
	d.mu.Lock()
	d.st.source.LastFetch = now
	d.mu.Unlock()
	if cur := d.loop.current; cur != nil && cur.snap.Revision == snap.Revision {
		d.sourceError("", "", now)
		if trigger == "webhook" {
			d.log.Debug("webhook: no new revision", "revision", snap.Short())
		}
		return false
	}
	if snap.Revision == d.loop.rejected {
		d.sourceError(d.loop.rejectedMsg, snap.Revision, now) // still the broken revision
		return false
	}
	repo, err := schema.LoadFS(snap.FS, snap.Dir, schema.LoadOptions{})
	if err == nil {
		err = repo.Usable()
	}
	if err != nil {
		d.metrics.loadFailures.Inc()
		msg := fmt.Sprintf("revision %s is not applied: %v", snap.Short(), err)
		d.loop.rejected, d.loop.rejectedMsg = snap.Revision, msg
		d.sourceError(msg, snap.Revision, now)
		d.log.Warn("desired state rejected; the revision in force stays", "revision", snap.Short(), "in_force", d.inForce(), "err", err.Error())
		return false
	}
	d.loop.rejected = ""
	d.loop.current = &loaded{snap: snap, repo: repo, at: now, digests: fileDigests(repo)}
	d.src.activate(snap)
	d.sourceError("", "", now)
	d.mu.Lock()
	d.st.revision = &RevisionInfo{ID: snap.Revision, Short: snap.Short(), Subject: snap.Subject, Author: snap.Author, Time: snap.Time, LoadedAt: now}
	d.mu.Unlock()
	held := 0
	for _, t := range repo.Tenants {
		if repo.Held(t) {
			held++
		}
	}
	attrs := []any{"revision", snap.Short(), "tenants", len(repo.Tenants), "held", held, "trigger", trigger}
	if snap.Subject != "" {
		attrs = append(attrs, "subject", snap.Subject)
	}
	d.log.Info("new revision", attrs...)
	return d.reconcile(ctx, work, trigger)
}

func (d *Daemon) inForce() string {
	if d.loop.current == nil {
		return "none"
	}
	return d.loop.current.snap.Short()
}

// sourceError records (msg != "") or clears the source's error.
func (d *Daemon) sourceError(msg, rejected string, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.st.source.LastError = msg
	d.st.source.Rejected = rejected
	if msg != "" {
		d.st.source.LastErrorAt = now
	}
}

func fileDigests(repo *schema.Repo) map[string]string {
	out := make(map[string]string, len(repo.Tenants))
	for _, t := range repo.Tenants {
		sum := sha256.Sum256(repo.RawFile(t))
		out[t.Metadata.Name] = hex.EncodeToString(sum[:8])
	}
	return out
}

// pass is one reconcile in progress.
type pass struct {
	d     *Daemon
	cur   *loaded
	evals map[string]*tenantEval
	meta  map[string]tenantMeta
}

type tenantMeta struct {
	provider, state string
	bundles         []string
}

// isRemoval reports whether an action removes a tenant from its worker.
func isRemoval(a plan.Action) bool { return a == plan.Delete || a == plan.Prune }

// reconcile observes, plans and applies the revision in force, and publishes the
// tenants' status. It reports whether a pass ran.
func (d *Daemon) reconcile(ctx, work context.Context, trigger string) bool {
	cur := d.loop.current
	if cur == nil || ctx.Err() != nil {
		return false
	}
	start := time.Now()
	d.setReconciling(true)
	defer d.setReconciling(false)
	rec := Reconcile{Started: start, Revision: cur.snap.Revision, Trigger: trigger}
	d.metrics.reconciles.WithLabelValues(trigger).Inc()

	// The plan is made from an observation taken under the workers' apply locks (same
	// round trip): no other applier, daemon or person, can change a worker between this
	// pass's plan and its apply. A worker another applier holds is observed and reported,
	// and its changes wait for the next pass.
	pl, err := d.planPass(ctx, cur)
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		rec.Error = err.Error()
		d.finish(rec, nil, start)
		return true
	}
	defer pl.s.Close() // releases the locks, also after SIGTERM
	if ctx.Err() != nil {
		return false // shutting down: an interrupted observation decides nothing
	}
	var results []apply.Result
	blocked := maps.Clone(pl.s.LockErrors)
	var locked []plan.Change
	for _, c := range pl.toApply {
		if msg, ok := blocked[c.Worker]; ok {
			pl.p.set(c.Tenant, dispDeferred, "waiting: "+msg)
			continue
		}
		locked = append(locked, c)
	}
	if len(locked) > 0 {
		results = pl.p.apply(ctx, work, pl.s, locked)
	}
	s, p, findings := pl.s, pl.p, pl.findings

	// Record the pass.
	rec.Plan = s.Plan.Summarize()
	rec.Summary = report.SummaryLine(s.Plan)
	rec.Findings = len(findings)
	for _, r := range results {
		switch r.Status {
		case apply.OK:
			rec.Applied++
		case apply.Failed:
			rec.Failed++
		default:
			rec.Skipped++
		}
	}
	for _, e := range p.evals {
		if e.disp == dispDeferred || e.disp == dispPlanned {
			rec.Deferred++
		}
	}
	for w := range s.Plan.Unreachable {
		rec.Unreachable = append(rec.Unreachable, w)
	}
	sort.Strings(rec.Unreachable)
	rec.RoundTrips = d.countRoundTrips(s)

	// Metrics of the fleet.
	d.metrics.findings.Reset()
	for code, n := range drift.Summarize(s.Desired.Tenants, s.Observed, findings).ByCode {
		d.metrics.findings.WithLabelValues(code).Set(float64(n))
	}
	for _, w := range s.Desired.Workers {
		d.metrics.applyErrors.WithLabelValues(w).Add(0)
		d.metrics.roundTrips.WithLabelValues(w).Add(0)
		up := 1.0
		if _, down := s.Plan.Unreachable[w]; down {
			up = 0
		}
		d.metrics.workerUp.WithLabelValues(w).Set(up)
	}

	// When to come back before the resync: a locked worker, an unreachable one, the
	// first backoff to expire.
	d.loop.retryAt = time.Time{}
	soon := func(t time.Time) {
		if d.loop.retryAt.IsZero() || t.Before(d.loop.retryAt) {
			d.loop.retryAt = t
		}
	}
	end := time.Now()
	if len(blocked) > 0 {
		soon(end.Add(d.cfg.LockRetry))
	}
	if len(s.Plan.Unreachable) > 0 {
		d.loop.unreachableStreak++
		soon(end.Add(backoffDelay(d.cfg.LockRetry, d.cfg.Resync, d.loop.unreachableStreak)))
	} else {
		d.loop.unreachableStreak = 0
	}
	d.mu.Lock()
	for id, b := range d.loop.backoff {
		if _, ok := p.evals[id]; ok && !d.cfg.DryRun {
			soon(b.until)
		}
	}
	if len(blocked) > 0 {
		var msgs []string
		for _, w := range slices.Sorted(maps.Keys(blocked)) {
			msgs = append(msgs, blocked[w])
		}
		d.st.waiting = strings.Join(msgs, "; ")
	} else {
		d.st.waiting = ""
	}
	d.st.unreachable = rec.Unreachable
	d.mu.Unlock()
	if len(blocked) > 0 {
		for _, w := range slices.Sorted(maps.Keys(blocked)) {
			d.log.Warn("another applier holds the worker; waiting", "worker", w, "lock", blocked[w], "retry_in", d.cfg.LockRetry.String())
		}
	}
	p.publishAll(time.Now(), false)
	d.finish(rec, p, start)
	return true
}

// planned is an observation, its plan and what this pass applies of it.
type planned struct {
	s        *reconcile.Session
	p        *pass
	findings []drift.Finding
	toApply  []plan.Change
}

// planPass observes the workers, plans, computes drift and decides, tenant by tenant,
// what this pass applies; the statuses are published (pending for what is to apply).
func (d *Daemon) planPass(ctx context.Context, cur *loaded) (*planned, error) {
	t0 := time.Now()
	defer func() { d.log.Debug("planned", "duration", time.Since(t0).Round(time.Millisecond).String()) }()
	cfg := reconcile.Config{Identities: d.cfg.Identities, Prune: d.cfg.Prune, Conns: d.pool}
	if !d.cfg.DryRun {
		cfg.Lock = &reconcile.Lock{Owner: d.cfg.Apply.LockOwner, TTL: workerLockTTL}
	}
	s, err := reconcile.NewSession(ctx, cur.repo, cfg)
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	tObs := time.Since(t0)
	findings := drift.Compute(drift.Input{Plan: s.Plan, Observed: s.Observed, LiveConfs: s.LiveConfigs(ctx)})
	d.log.Debug("observed", "session", tObs.Round(time.Millisecond).String(), "drift", (time.Since(t0) - tObs).Round(time.Millisecond).String())
	byTenant := map[string][]drift.Finding{}
	for _, f := range findings {
		if f.Tenant != "" {
			byTenant[f.Tenant] = append(byTenant[f.Tenant], f)
		}
	}
	p := &pass{d: d, cur: cur, evals: map[string]*tenantEval{}, meta: map[string]tenantMeta{}}
	for _, c := range s.Plan.Changes {
		e := &tenantEval{change: c, findings: byTenant[c.Tenant]}
		if c.Action == plan.Hold {
			if c.Desired == nil {
				e.held = true
			} else if msg, ok := s.Plan.Unreachable[c.Worker]; ok {
				e.unreachable = msg
			}
		}
		p.evals[c.Tenant] = e
		p.meta[c.Tenant] = metaOf(cur.repo, c)
	}

	now := time.Now()
	var limitErr error
	if d.cfg.Prune && !d.cfg.Force {
		limitErr = reconcile.DeletionLimit(s.Plan)
	}
	var toApply []plan.Change
	d.mu.Lock()
	for _, c := range s.Plan.Changes {
		e := p.evals[c.Tenant]
		b := d.loop.backoff[c.Tenant]
		if b != nil && (b.digest != cur.digests[c.Tenant] || !c.Action.Mutates()) {
			delete(d.loop.backoff, c.Tenant) // its file changed, or nothing is left to do
			b = nil
		}
		if !c.Action.Mutates() {
			continue
		}
		switch {
		case isRemoval(c.Action) && !d.cfg.Prune:
			e.disp, e.reason = dispWithheld, "removal withheld: the daemon removes tenants only with --prune"
		case isRemoval(c.Action) && limitErr != nil:
			e.disp, e.reason = dispRefused, "removal refused: "+limitErr.Error()+" (--force allows it)"
		case b != nil && now.Before(b.until):
			e.disp, e.reason = dispBackoff, b.err
		case d.cfg.DryRun:
			e.disp, e.reason = dispDeferred, "dry run: not applied"
		default:
			e.disp = dispPlanned
			toApply = append(toApply, c)
		}
	}
	d.mu.Unlock()
	if limitErr != nil {
		d.log.Warn("removals refused by the deletion limit", "err", limitErr.Error())
	}
	p.publishAll(now, true)
	return &planned{s: s, p: p, findings: findings, toApply: toApply}, nil
}

// workerLockTTL is how long a pass's worker locks hold if the daemon dies; every tenant
// batch of the apply renews them.
const workerLockTTL = 15 * time.Minute

// finish records a finished pass: history, metrics, the one summary log line.
func (d *Daemon) finish(rec Reconcile, p *pass, start time.Time) {
	rec.Duration = time.Since(start)
	d.metrics.duration.Observe(rec.Duration.Seconds())
	d.metrics.lastReconcile.SetToCurrentTime()
	d.metrics.revision.Reset()
	d.metrics.revision.WithLabelValues(rec.Revision, d.src.kind()).Set(1)

	d.mu.Lock()
	d.st.history = append(d.st.history, rec)
	if len(d.st.history) > historySize {
		d.st.history = slices.Delete(d.st.history, 0, len(d.st.history)-historySize)
	}
	if rec.Error == "" {
		d.st.ready = true
	}
	counts := map[string]int{}
	for _, t := range d.st.tenants {
		counts[t.Phase]++
	}
	var failed []string
	if p != nil {
		for id, e := range p.evals {
			if e.disp == dispFailed {
				failed = append(failed, id)
			}
		}
	}
	d.mu.Unlock()
	for _, ph := range Phases {
		d.metrics.tenants.WithLabelValues(ph).Set(float64(counts[ph]))
	}
	sort.Strings(failed)
	if len(failed) > 10 {
		failed = append(failed[:10], fmt.Sprintf("… %d more", len(failed)-10))
	}

	attrs := []any{
		"revision", shortRev(rec.Revision), "trigger", rec.Trigger, "duration", rec.Duration.Round(time.Millisecond).String(),
	}
	var planAttrs []any
	for _, kv := range []struct {
		k string
		n int
	}{{"create", rec.Plan.Create}, {"recreate", rec.Plan.Recreate}, {"patch", rec.Plan.Patch}, {"start", rec.Plan.Start},
		{"stop", rec.Plan.Stop}, {"delete", rec.Plan.Delete}, {"prune", rec.Plan.Prune}, {"noop", rec.Plan.Noop},
		{"awaiting_auth", rec.Plan.AwaitingAuth}, {"hold", rec.Plan.Hold}, {"orphan", rec.Plan.Orphan}} {
		if kv.n > 0 {
			planAttrs = append(planAttrs, kv.k, kv.n)
		}
	}
	attrs = append(attrs, slog.Group("plan", planAttrs...),
		"applied", rec.Applied, "failed", rec.Failed, "skipped", rec.Skipped, "deferred", rec.Deferred,
		"findings", rec.Findings, "round_trips", rec.RoundTrips)
	if len(failed) > 0 {
		attrs = append(attrs, "failed_tenants", strings.Join(failed, ","))
	}
	if len(rec.Unreachable) > 0 {
		attrs = append(attrs, "unreachable", strings.Join(rec.Unreachable, ","))
	}
	level := slog.LevelInfo
	if rec.Error != "" {
		attrs = append(attrs, "err", rec.Error)
		level = slog.LevelError
	} else if rec.Failed > 0 || len(rec.Unreachable) > 0 {
		level = slog.LevelWarn
	}
	d.log.Log(context.Background(), level, "reconcile", attrs...)
	// A pass over a large fleet allocates plenty; give it back to the OS between passes.
	debug.FreeOSMemory()
}

// countRoundTrips adds the round trips made since the last pass to the metrics and
// returns them. Connections are reused across passes, so the count is a delta.
func (d *Daemon) countRoundTrips(s *reconcile.Session) int64 {
	var total int64
	for w, c := range s.Conns {
		n := c.RoundTrips()
		delta := n
		if m, ok := d.loop.rt[w]; ok && m.conn == c && n >= m.n {
			delta = n - m.n
		}
		d.loop.rt[w] = rtMark{conn: c, n: n}
		if delta > 0 {
			d.metrics.roundTrips.WithLabelValues(w).Add(float64(delta))
		}
		total += delta
	}
	return total
}

func (d *Daemon) setReconciling(on bool) {
	d.mu.Lock()
	d.st.reconciling = on
	d.mu.Unlock()
}

func metaOf(repo *schema.Repo, c plan.Change) tenantMeta {
	m := tenantMeta{bundles: []string{}}
	if c.Desired != nil {
		m.provider, m.state = c.Desired.Provider.ID, c.Desired.State
		for _, b := range c.Desired.Lock.Bundles {
			m.bundles = append(m.bundles, b.Name+"@"+b.Version)
		}
		return m
	}
	if t := repo.Tenant(c.Tenant); t != nil {
		m.provider, m.state = t.Spec.Provider.ID, t.Spec.State
		m.bundles = append(m.bundles, t.Spec.Bundles...)
	}
	return m
}

// apply applies the changes under the locks the pass holds. SIGTERM (ctx) starts no
// further tenant; those in flight finish under work, which shutdown bounds.
func (p *pass) apply(ctx, work context.Context, s *reconcile.Session, changes []plan.Change) []apply.Result {
	for _, c := range changes {
		p.set(c.Tenant, dispApplying, "")
	}
	opts := p.d.cfg.Apply
	opts.LockHeld, opts.LockTTL, opts.Stop = true, workerLockTTL, ctx.Done()
	opts.Progress = func(r apply.Result) { p.record(r) }
	t0 := time.Now()
	rs := apply.Apply(work, &plan.Plan{Changes: changes, Unreachable: map[string]string{}}, s.Conns, opts)
	p.d.log.Debug("applied", "tenants", len(changes), "duration", time.Since(t0).Round(time.Millisecond).String())
	for _, r := range rs {
		p.record(r)
	}
	return rs
}

// set changes a tenant's disposition and publishes its status.
func (p *pass) set(id string, disp disposition, reason string) {
	d := p.d
	d.mu.Lock()
	defer d.mu.Unlock()
	e := p.evals[id]
	if e == nil {
		return
	}
	e.disp, e.reason = disp, reason
	p.publishLocked(id, time.Now())
}

// record applies a result to the tenant's disposition, backoff and status. Called from
// the applier's progress callback and again with the final results (idempotent).
func (p *pass) record(r apply.Result) {
	d := p.d
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	e := p.evals[r.Tenant]
	if e == nil || e.disp == dispOK || e.disp == dispFailed {
		return
	}
	switch r.Status {
	case apply.OK:
		e.disp, e.reason = dispOK, ""
		delete(d.loop.backoff, r.Tenant)
		d.loop.applied[r.Tenant] = Applied{Action: r.Action, Revision: p.cur.snap.Revision, At: now}
		d.metrics.applied.WithLabelValues(string(r.Action)).Inc()
	case apply.Failed:
		b := d.loop.backoff[r.Tenant]
		if b == nil {
			b = &backoffEntry{}
			d.loop.backoff[r.Tenant] = b
		}
		b.failures++
		b.until = now.Add(backoffDelay(d.cfg.BackoffBase, d.cfg.BackoffMax, b.failures))
		b.err = r.Error
		b.digest = p.cur.digests[r.Tenant]
		e.disp, e.reason = dispFailed, r.Error
		d.metrics.applyErrors.WithLabelValues(r.Worker).Inc()
		d.log.Debug("apply failed", "tenant", r.Tenant, "worker", r.Worker, "action", string(r.Action), "err", r.Error, "retry_at", b.until.Format(time.RFC3339))
	default:
		e.disp, e.reason = dispDeferred, "not applied: "+r.Error
	}
	p.publishLocked(r.Tenant, now)
}

// publishAll replaces the published tenant statuses with this pass's (tenants gone from
// git and from the workers disappear).
func (p *pass) publishAll(now time.Time, first bool) {
	d := p.d
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.st.tenants
	d.st.tenants = make(map[string]TenantStatus, len(p.evals))
	for id := range p.evals {
		if prev, ok := old[id]; ok {
			d.st.tenants[id] = prev // keeps Since
		}
		p.publishLocked(id, now)
	}
	for id := range d.loop.applied {
		if _, ok := p.evals[id]; !ok {
			delete(d.loop.applied, id)
		}
	}
	for id := range d.loop.backoff {
		if _, ok := p.evals[id]; !ok && !first {
			delete(d.loop.backoff, id)
		}
	}
}

func (p *pass) publishLocked(id string, now time.Time) {
	d := p.d
	e := p.evals[id]
	c := e.change
	phase, lastErr, fs := phaseOf(*e)
	m := p.meta[id]
	st := TenantStatus{
		ID: id, App: c.App, Worker: c.Worker, Phase: phase, Revision: p.cur.snap.Revision, LastError: lastErr,
		Findings: toFindings(fs), Provider: m.provider, Bundles: m.bundles, UpdatedAt: now.UTC(),
		State: m.state, Action: c.Action, Reasons: c.Reasons, Since: now.UTC(),
	}
	if prev, ok := d.st.tenants[id]; ok && prev.Phase == phase {
		st.Since = prev.Since
	}
	if b := d.loop.backoff[id]; b != nil && (e.disp == dispFailed || e.disp == dispBackoff) {
		until := b.until.UTC()
		st.RetryAt = &until
	}
	if a, ok := d.loop.applied[id]; ok {
		st.Applied = &a
	}
	d.st.tenants[id] = st
}
