package daemon

import (
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/firemountain/hermes-gitops/reconcile/drift"
	"github.com/firemountain/hermes-gitops/reconcile/plan"
)

// Phases of a tenant (docs/daemon.md defines each precisely). A wizard walks a user from
// provisioning to ready by polling them.
const (
	// PhasePending: git has changes for the tenant that the daemon has not applied yet
	// (just pushed, queued behind other tenants, waiting for a worker lock, --dry-run, or
	// skipped at shutdown).
	PhasePending = "pending"
	// PhaseProvisioning: a create, recreate, patch, start, stop or removal of the tenant
	// is being applied right now.
	PhaseProvisioning = "provisioning"
	// PhaseAwaitingAuth: the worker matches git, but the OAuth tenant has no complete
	// login yet (hermesctl auth login).
	PhaseAwaitingAuth = "awaiting-auth"
	// PhaseReady: the worker matches git (nothing to apply) and no drift finding remains.
	PhaseReady = "ready"
	// PhaseDrifted: nothing the daemon applies is left, but drift findings remain that
	// apply does not fix (env.unmanaged, auth.dual-write-gap, an orphan, a removal
	// withheld without --prune).
	PhaseDrifted = "drifted"
	// PhaseHeld: the tenant's file is broken, its secrets do not decrypt, or its app or
	// worker file is broken: it is left as it is, never deleted.
	PhaseHeld = "held"
	// PhaseError: the last apply failed (retried with backoff), the worker is
	// unreachable, or a removal was refused by the deletion limit.
	PhaseError = "error"
	// PhaseSuspended: state suspended and the worker matches (container stopped).
	PhaseSuspended = "suspended"
)

// Phases lists every phase in display order.
var Phases = []string{PhasePending, PhaseProvisioning, PhaseAwaitingAuth, PhaseReady, PhaseDrifted, PhaseHeld, PhaseError, PhaseSuspended}

// TenantStatus is what the daemon knows of one tenant: the contract of GET
// /v1/tenants/{id} and of Daemon.TenantStatus.
type TenantStatus struct {
	ID     string `json:"id"`
	App    string `json:"app"`
	Worker string `json:"worker"`
	Phase  string `json:"phase"`
	// Revision is the desired-state revision the status was computed from.
	Revision string `json:"revision"`
	// LastError is why the tenant is in error, held or pending ("" otherwise). It never
	// contains a secret value.
	LastError string    `json:"lastError"`
	Findings  []Finding `json:"findings"`
	Provider  string    `json:"provider,omitempty"`
	// Bundles are the pinned skill bundles, name@version.
	Bundles   []string  `json:"bundles"`
	UpdatedAt time.Time `json:"updatedAt"`

	// State is the lifecycle state git asks for (active, suspended, deleted).
	State string `json:"state,omitempty"`
	// Action is what the last plan wanted for the tenant; Reasons say why.
	Action  plan.Action `json:"action,omitempty"`
	Reasons []string    `json:"reasons,omitempty"`
	// RetryAt is when a failed tenant is tried again (backoff).
	RetryAt *time.Time `json:"retryAt,omitempty"`
	// Applied is the last change the daemon applied to the tenant successfully.
	Applied *Applied `json:"applied,omitempty"`
	// Since is when the tenant entered its phase.
	Since time.Time `json:"since"`
}

// Finding is a drift finding of the tenant (codes in docs/drift.md).
type Finding struct {
	Code     string `json:"code"`
	Message  string `json:"message"`
	Severity string `json:"severity,omitempty"`
}

// Applied records a successful apply: which change, from which revision, when.
type Applied struct {
	Action   plan.Action `json:"action"`
	Revision string      `json:"revision"`
	At       time.Time   `json:"at"`
}

// Status is the fleet view: the source, the revision in force, the tenants and the last
// reconciles.
type Status struct {
	Ready        bool           `json:"ready"`
	ShuttingDown bool           `json:"shuttingDown,omitempty"`
	Reconciling  bool           `json:"reconciling"`
	DryRun       bool           `json:"dryRun,omitempty"`
	Prune        bool           `json:"prune"`
	Waiting      string         `json:"waiting,omitempty"`
	Source       SourceInfo     `json:"source"`
	Revision     *RevisionInfo  `json:"revision,omitempty"`
	Phases       map[string]int `json:"phases"`
	Unreachable  []string       `json:"unreachable,omitempty"`
	History      []Reconcile    `json:"history"`
	Tenants      []TenantStatus `json:"tenants"`
}

// SourceInfo describes where desired state comes from and how the last fetch went.
type SourceInfo struct {
	Kind        string    `json:"kind"`
	Location    string    `json:"location"`
	Ref         string    `json:"ref,omitempty"`
	LastFetch   time.Time `json:"lastFetch,omitzero"`
	LastError   string    `json:"lastError,omitempty"`
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`
	// Rejected is a revision that failed to load; the revision in force stays.
	Rejected string `json:"rejected,omitempty"`
}

// RevisionInfo is the revision in force.
type RevisionInfo struct {
	ID       string    `json:"id"`
	Short    string    `json:"short"`
	Subject  string    `json:"subject,omitempty"`
	Author   string    `json:"author,omitempty"`
	Time     time.Time `json:"time,omitzero"`
	LoadedAt time.Time `json:"loadedAt"`
}

// Reconcile is one pass, as kept in the history.
type Reconcile struct {
	Started     time.Time     `json:"started"`
	Duration    time.Duration `json:"durationNs"`
	Revision    string        `json:"revision"`
	Trigger     string        `json:"trigger"`
	Plan        plan.Summary  `json:"plan"`
	Applied     int           `json:"applied"`
	Failed      int           `json:"failed"`
	Skipped     int           `json:"skipped"`
	Deferred    int           `json:"deferred"`
	Findings    int           `json:"findings"`
	RoundTrips  int64         `json:"roundTrips"`
	Unreachable []string      `json:"unreachable,omitempty"`
	Summary     string        `json:"summary"`
	Error       string        `json:"error,omitempty"`
}

// state is what the status API shows; guarded by Daemon.mu.
type state struct {
	ready, shuttingDown, reconciling bool
	waiting                          string
	source                           SourceInfo
	revision                         *RevisionInfo
	tenants                          map[string]TenantStatus
	unreachable                      []string
	history                          []Reconcile
}

// Tenants returns the status of every tenant, sorted by id.
func (d *Daemon) Tenants() []TenantStatus {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.tenantsLocked()
}

func (d *Daemon) tenantsLocked() []TenantStatus {
	out := make([]TenantStatus, 0, len(d.st.tenants))
	for _, t := range d.st.tenants {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// TenantStatus returns one tenant's status; false when the daemon does not know it (not
// in git at the revision in force, or not reconciled yet).
func (d *Daemon) TenantStatus(id string) (TenantStatus, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	t, ok := d.st.tenants[id]
	return t, ok
}

// Status returns the fleet view.
func (d *Daemon) Status() Status {
	d.mu.RLock()
	defer d.mu.RUnlock()
	s := Status{
		Ready: d.st.ready, ShuttingDown: d.st.shuttingDown, Reconciling: d.st.reconciling,
		DryRun: d.cfg.DryRun, Prune: d.cfg.Prune, Waiting: d.st.waiting, Source: d.st.source,
		Revision: d.st.revision, Phases: map[string]int{}, Unreachable: slices.Clone(d.st.unreachable),
		History: slices.Clone(d.st.history), Tenants: d.tenantsLocked(),
	}
	slices.Reverse(s.History) // newest first
	for _, p := range Phases {
		s.Phases[p] = 0
	}
	for _, t := range d.st.tenants {
		s.Phases[t.Phase]++
	}
	return s
}

// Ready reports whether the first reconcile has finished.
func (d *Daemon) Ready() bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.st.ready && !d.st.shuttingDown
}

func (d *Daemon) setWaiting(msg string) {
	d.mu.Lock()
	d.st.waiting = msg
	d.mu.Unlock()
}

// disposition is what the daemon did, or decided not to do, with a tenant's change in
// the current pass.
type disposition int

const (
	dispNone     disposition = iota // nothing to apply (noop, awaiting-auth, hold, orphan)
	dispPlanned                     // to be applied later in this pass
	dispApplying                    // being applied
	dispOK                          // applied successfully
	dispFailed                      // the apply failed
	dispBackoff                     // not applied: the tenant failed before and backs off
	dispDeferred                    // not applied: worker locked, --dry-run, shutting down
	dispWithheld                    // not applied: a removal without --prune
	dispRefused                     // not applied: the deletion limit refused the removal
)

// tenantEval is everything that decides a tenant's phase.
type tenantEval struct {
	change      plan.Change
	held        bool   // its file, secrets, app or worker are broken
	unreachable string // its worker could not be observed
	findings    []drift.Finding
	disp        disposition
	reason      string // the failure, refusal, backoff or deferral
}

// phaseOf decides a tenant's phase, its error and the findings that still stand. The
// order matters: a broken file beats everything; then errors; then work in progress;
// then what remains once the worker matches git.
func phaseOf(e tenantEval) (phase, lastError string, findings []drift.Finding) {
	findings = e.findings
	switch {
	case e.held:
		return PhaseHeld, strings.Join(e.change.Reasons, "; "), findings
	case e.unreachable != "":
		return PhaseError, "worker " + e.change.Worker + " unreachable: " + e.unreachable, findings
	case e.disp == dispApplying:
		return PhaseProvisioning, "", findings
	case e.disp == dispFailed, e.disp == dispBackoff, e.disp == dispRefused:
		return PhaseError, e.reason, findings
	case e.disp == dispPlanned, e.disp == dispDeferred:
		return PhasePending, e.reason, findings
	}
	if e.disp == dispOK {
		// The apply fixed what it owns; what it never touches stays.
		findings = nil
		for _, f := range e.findings {
			if strings.HasPrefix(f.Action, "nothing") {
				findings = append(findings, f)
			}
		}
	}
	if e.disp == dispWithheld {
		return PhaseDrifted, e.reason, findings
	}
	if drift.HasDrift(findings) {
		return PhaseDrifted, "", findings
	}
	switch {
	case e.change.AwaitingAuth:
		return PhaseAwaitingAuth, "", findings
	case e.change.Desired != nil && e.change.Desired.State == "suspended":
		return PhaseSuspended, "", findings
	}
	return PhaseReady, "", findings
}

func toFindings(fs []drift.Finding) []Finding {
	out := make([]Finding, 0, len(fs))
	for _, f := range fs {
		out = append(out, Finding{Code: f.Code, Message: f.Message, Severity: f.Severity})
	}
	return out
}
