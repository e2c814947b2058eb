package daemon

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
)

// Handler is the daemon's HTTP API: the status page, health, metrics, tenant status and
// the push webhook. Run serves it on Config.Listen; a process that embeds the daemon
// (the wizard server) may mount it elsewhere.
func (d *Daemon) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", d.handlePage)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeText(w, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("GET /readyz", d.handleReady)
	mux.Handle("GET /metrics", d.metrics.handler())
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, d.Status())
	})
	mux.HandleFunc("GET /v1/tenants", d.handleTenants)
	mux.HandleFunc("GET /v1/tenants/{id}", d.handleTenant)
	mux.HandleFunc("POST /hooks/git", d.handleHook)
	return secureHeaders(mux)
}

func secureHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeText(w http.ResponseWriter, code int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, s)
}

type apiError struct {
	Error string `json:"error"`
}

func (d *Daemon) handleReady(w http.ResponseWriter, r *http.Request) {
	st := d.Status()
	switch {
	case st.ShuttingDown:
		writeText(w, http.StatusServiceUnavailable, "shutting down\n")
	case !st.Ready && st.Waiting != "":
		writeText(w, http.StatusServiceUnavailable, "not ready: "+st.Waiting+"\n")
	case !st.Ready && st.Source.LastError != "":
		writeText(w, http.StatusServiceUnavailable, "not ready: "+st.Source.LastError+"\n")
	case !st.Ready:
		writeText(w, http.StatusServiceUnavailable, "not ready: the first reconcile has not finished\n")
	default:
		writeText(w, http.StatusOK, "ready\n")
	}
}

// tenantList is the body of GET /v1/tenants.
type tenantList struct {
	Revision string         `json:"revision"`
	Ready    bool           `json:"ready"`
	Tenants  []TenantStatus `json:"tenants"`
}

func (d *Daemon) handleTenants(w http.ResponseWriter, r *http.Request) {
	st := d.Status()
	out := tenantList{Ready: st.Ready, Tenants: []TenantStatus{}}
	if st.Revision != nil {
		out.Revision = st.Revision.ID
	}
	phase, app, wk := r.URL.Query().Get("phase"), r.URL.Query().Get("app"), r.URL.Query().Get("worker")
	for _, t := range st.Tenants {
		if (phase == "" || t.Phase == phase) && (app == "" || t.App == app) && (wk == "" || t.Worker == wk) {
			out.Tenants = append(out.Tenants, t)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (d *Daemon) handleTenant(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	t, ok := d.TenantStatus(id)
	if !ok {
		writeJSON(w, http.StatusNotFound, apiError{Error: "tenant " + id + " is not known at the revision in force (not in git yet, or not reconciled yet)"})
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// handleHook takes push webhooks: GitHub, Gitea (and Forgejo) and GitLab. The body is
// verified against the shared secret in constant time before anything else is looked
// at; a push of the tracked branch or tag triggers an immediate fetch and reconcile.
func (d *Daemon) handleHook(w http.ResponseWriter, r *http.Request) {
	if len(d.cfg.WebhookSecret) == 0 {
		writeJSON(w, http.StatusForbidden, apiError{Error: "webhooks are disabled: start the daemon with --webhook-secret or HERMES_WEBHOOK_SECRET"})
		return
	}
	if r.ContentLength > MaxWebhookBody {
		writeJSON(w, http.StatusRequestEntityTooLarge, apiError{Error: "body too large"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWebhookBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, apiError{Error: "body too large"})
			return
		}
		writeJSON(w, http.StatusBadRequest, apiError{Error: "cannot read the body"})
		return
	}
	provider, ok := verifyWebhook(r.Header, body, d.cfg.WebhookSecret)
	if !ok {
		d.log.Warn("webhook rejected: bad or missing signature", "remote", r.RemoteAddr)
		writeJSON(w, http.StatusUnauthorized, apiError{Error: "bad or missing signature"})
		return
	}
	event := hookEvent(r.Header)
	switch event {
	case "ping":
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "event": "ping"})
		return
	case "push", "tag_push", "":
	default:
		writeJSON(w, http.StatusOK, map[string]any{"ignored": "event " + event})
		return
	}
	if ref := pushedRef(body); ref != "" && d.cfg.GitURL != "" && !d.tracks(ref) {
		writeJSON(w, http.StatusOK, map[string]any{"ignored": "ref " + ref + " is not " + d.src.ref()})
		return
	}
	d.log.Info("webhook: fetch and reconcile", "provider", provider, "event", event)
	d.Trigger("webhook")
	writeJSON(w, http.StatusAccepted, map[string]any{"accepted": true})
}

// tracks reports whether a pushed ref is the branch or tag the daemon applies.
func (d *Daemon) tracks(ref string) bool {
	if d.cfg.Tag != "" {
		return ref == "refs/tags/"+d.cfg.Tag
	}
	return ref == "refs/heads/"+d.cfg.Branch
}

// verifyWebhook checks a webhook's signature against secret, in constant time:
//
//	GitHub         X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>
//	Gitea/Forgejo  X-Gitea-Signature (X-Forgejo-Signature): <hex HMAC-SHA256(secret, body)>
//	GitLab         X-Gitlab-Token: <secret>
//
// It returns which provider signed it.
func verifyWebhook(h http.Header, body, secret []byte) (string, bool) {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	want := mac.Sum(nil)
	if sig := h.Get("X-Hub-Signature-256"); sig != "" {
		got, err := hex.DecodeString(strings.TrimPrefix(sig, "sha256="))
		return "github", err == nil && strings.HasPrefix(sig, "sha256=") && hmac.Equal(got, want)
	}
	for _, hdr := range []string{"X-Gitea-Signature", "X-Forgejo-Signature"} {
		if sig := h.Get(hdr); sig != "" {
			got, err := hex.DecodeString(sig)
			return "gitea", err == nil && hmac.Equal(got, want)
		}
	}
	if tok := h.Get("X-Gitlab-Token"); tok != "" {
		// Compare digests so that the comparison takes the same time whatever the length.
		a, b := sha256.Sum256([]byte(tok)), sha256.Sum256(secret)
		return "gitlab", subtle.ConstantTimeCompare(a[:], b[:]) == 1
	}
	return "", false
}

// hookEvent normalises the event header: "ping", "push", "tag_push", another name, or
// "" when the sender names none.
func hookEvent(h http.Header) string {
	for _, hdr := range []string{"X-GitHub-Event", "X-Gitea-Event", "X-Forgejo-Event", "X-Gitlab-Event"} {
		if v := h.Get(hdr); v != "" {
			switch strings.ToLower(v) {
			case "ping":
				return "ping"
			case "push", "push hook":
				return "push"
			case "tag push hook", "create":
				return "tag_push"
			}
			return strings.ToLower(v)
		}
	}
	return ""
}

// pushedRef is the "ref" of a push payload (GitHub, Gitea and GitLab all send it), or "".
func pushedRef(body []byte) string {
	var p struct {
		Ref     string `json:"ref"`
		RefType string `json:"ref_type"`
	}
	if json.Unmarshal(body, &p) != nil {
		return ""
	}
	if p.RefType == "tag" && !strings.HasPrefix(p.Ref, "refs/") {
		return "refs/tags/" + p.Ref // GitHub's and Gitea's "create" event
	}
	if p.RefType == "branch" && !strings.HasPrefix(p.Ref, "refs/") {
		return "refs/heads/" + p.Ref
	}
	return p.Ref
}
