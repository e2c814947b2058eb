package wizard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/firemountain/hermes-gitops/internal/daemon"
)

// Phases of a tenant, as the daemon reports them (GET /v1/tenants/{id}); the daemon
// package defines them.
const (
	PhasePending      = daemon.PhasePending
	PhaseProvisioning = daemon.PhaseProvisioning
	PhaseAwaitingAuth = daemon.PhaseAwaitingAuth
	PhaseReady        = daemon.PhaseReady
	PhaseDrifted      = daemon.PhaseDrifted
	PhaseHeld         = daemon.PhaseHeld
	PhaseError        = daemon.PhaseError
	PhaseSuspended    = daemon.PhaseSuspended
)

// Stages of a submission, as GET /v1/submissions/{tenantId}/status reports them.
const (
	// StageCommitted: the tenant file is in git; the daemon has not acted on it yet (or
	// no daemon status is configured).
	StageCommitted = "committed"
	// StageApplied: the daemon has applied the tenant; see phase for where it is
	// (provisioning, awaiting-auth, error, …).
	StageApplied = "applied"
	// StageReady: the tenant runs and is healthy.
	StageReady = "ready"
)

// TenantStatus is what the daemon says of one tenant.
type TenantStatus struct {
	Phase     string `json:"phase"`
	Revision  string `json:"revision,omitempty"`
	LastError string `json:"lastError,omitempty"`
}

// InProcess reads tenant status from a daemon running in the same process.
type InProcess struct{ Daemon *daemon.Daemon }

// TenantStatus implements StatusSource.
func (p InProcess) TenantStatus(_ context.Context, id string) (TenantStatus, bool, error) {
	t, ok := p.Daemon.TenantStatus(id)
	return TenantStatus{Phase: t.Phase, Revision: t.Revision, LastError: t.LastError}, ok, nil
}

// StatusSource tells the state of a tenant in the reconciler. found is false when the
// daemon does not know the tenant (yet). The daemon implements it in-process; an HTTP
// client of a daemon elsewhere is HTTPStatus.
type StatusSource interface {
	TenantStatus(ctx context.Context, id string) (st TenantStatus, found bool, err error)
}

// HTTPStatus reads a daemon's GET {BaseURL}/v1/tenants/{id}.
type HTTPStatus struct {
	BaseURL string
	Client  *http.Client // default: a client with a 5 s timeout
}

var defaultStatusClient = &http.Client{Timeout: 5 * time.Second}

// TenantStatus implements StatusSource.
func (h HTTPStatus) TenantStatus(ctx context.Context, id string) (TenantStatus, bool, error) {
	c := h.Client
	if c == nil {
		c = defaultStatusClient
	}
	u := strings.TrimRight(h.BaseURL, "/") + "/v1/tenants/" + url.PathEscape(id)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return TenantStatus{}, false, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return TenantStatus{}, false, fmt.Errorf("daemon status: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return TenantStatus{}, false, nil
	default:
		return TenantStatus{}, false, fmt.Errorf("daemon status: %s", resp.Status)
	}
	var st TenantStatus
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		return TenantStatus{}, false, fmt.Errorf("daemon status: %w", err)
	}
	if st.Phase == "" {
		return TenantStatus{}, false, errors.New("daemon status: no phase")
	}
	return st, true, nil
}

// stageOf maps a daemon phase to a submission stage.
func stageOf(phase string) string {
	switch phase {
	case PhasePending:
		return StageCommitted
	case PhaseReady:
		return StageReady
	}
	return StageApplied
}

// statusResponse is the body of GET /v1/submissions/{tenantId}/status.
type statusResponse struct {
	TenantID string `json:"tenantId"`
	App      string `json:"app,omitempty"`
	Stage    string `json:"stage"`
	// Branch is where the tenant file is: the main branch, or its review branch while
	// the pull request is not merged.
	Branch string `json:"branch"`
	Commit string `json:"commit,omitempty"`
	// OnRemote: the tenant file is on the remote branch (as last fetched).
	OnRemote bool `json:"onRemote"`
	// Merged: the tenant file is on the main branch, which the daemon applies.
	Merged bool `json:"merged"`
	// From the daemon, when one is configured and knows the tenant.
	Phase       string `json:"phase,omitempty"`
	Revision    string `json:"revision,omitempty"`
	LastError   string `json:"lastError,omitempty"`
	StatusError string `json:"statusError,omitempty"`
	// AuthRequired: the provider needs a sign-in (OAuth) before the tenant is ready.
	AuthRequired bool `json:"authRequired,omitempty"`
}
