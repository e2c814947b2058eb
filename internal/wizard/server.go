// Package wizard is the webhook server behind 'hermesctl serve': the sign-up wizards of
// the control planes POST a signed submission, and the server turns it into a tenant file
// in the desired-state repository — validated with the schema package, its secrets
// encrypted with sops for the repository's recipients in memory, committed with go-git
// and pushed, either to the main branch (direct mode) or to a review branch wizard/<id>
// (review mode). It holds only public keys: it can encrypt secrets, never decrypt them.
//
// The API is documented in docs/wizard-api.md and docs/openapi.yaml.
package wizard

import (
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"gopkg.in/yaml.v3"

	"github.com/firemountain/hermes-gitops/schema"
)

// Mode says where accepted submissions go.
type Mode string

const (
	// ModeDirect commits to the branch the daemon applies.
	ModeDirect Mode = "direct"
	// ModeReview pushes a branch wizard/<id> for a person to merge.
	ModeReview Mode = "review"
)

// Config configures a Server.
type Config struct {
	RepoURL  string // the remote: any URL go-git knows, a local path included
	Branch   string // default main
	CloneDir string // where the server keeps its clone
	Mode     Mode   // default direct

	// Secrets are the shared HMAC secrets; any of them signs a valid request.
	Secrets [][]byte

	AuthorName, AuthorEmail string

	// DefaultWorker is the worker of every submission that names none; a submission may
	// name another only if it is in AllowedWorkers.
	DefaultWorker  string
	AllowedWorkers []string

	// Status, when set, reports what the daemon did with a tenant.
	Status StatusSource
	// GitHub, when set in review mode, opens a pull request for each review branch.
	GitHub *GitHub
	// GitAuth authenticates fetch and push (nil: none, or go-git's defaults for ssh).
	GitAuth transport.AuthMethod

	RateLimit float64 // requests per second per client IP; 0 disables
	RateBurst int

	// FetchInterval is how stale the clone may be before a submission fetches first. A
	// direct push is a compare-and-swap, so staleness never loses a write; it can only
	// delay a 409 or a validation error by one round trip. 0 fetches every time.
	FetchInterval time.Duration
	// PushAttempts bounds the fetch-rebuild-push cycles of one submission (default 5).
	PushAttempts int

	IdempotencyTTL time.Duration // default 24h
	IdempotencyMax int           // default 10000 responses

	Logger *slog.Logger
	// Redact lists values (tokens) that must never appear in a log line.
	Redact []string
}

// Server is the wizard webhook server. Create it with New.
type Server struct {
	cfg     Config
	log     *slog.Logger
	secrets atomic.Pointer[[][]byte]
	limiter *limiter
	replay  *replayCache
	fpKey   []byte
	now     func() time.Time

	mu      sync.Mutex // serializes everything that touches the clone
	repo    *gitRepo
	records map[string]accepted // tenant id → accepted submission (bounded)

	health atomic.Pointer[health]
}

type health struct {
	Status    string    `json:"status"`
	Mode      Mode      `json:"mode"`
	Branch    string    `json:"branch"`
	Head      string    `json:"head"`
	LastFetch time.Time `json:"lastFetch"`
}

const maxRecords = 10000

// New checks the configuration, clones (or reopens and resets) the repository and
// returns a server ready to serve.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.RepoURL == "" {
		return nil, errors.New("no repository URL")
	}
	if cfg.CloneDir == "" {
		return nil, errors.New("no clone directory")
	}
	if cfg.DefaultWorker == "" {
		return nil, errors.New("no default worker")
	}
	if len(cfg.Secrets) == 0 {
		return nil, errors.New("no shared secret")
	}
	if cfg.Branch == "" {
		cfg.Branch = "main"
	}
	switch cfg.Mode {
	case "":
		cfg.Mode = ModeDirect
	case ModeDirect, ModeReview:
	default:
		return nil, fmt.Errorf("mode must be direct or review, not %q", cfg.Mode)
	}
	if cfg.AuthorName == "" {
		cfg.AuthorName = "hermes-gitops wizard"
	}
	if cfg.AuthorEmail == "" {
		cfg.AuthorEmail = "wizard@hermes-gitops.invalid"
	}
	if cfg.PushAttempts <= 0 {
		cfg.PushAttempts = 5
	}
	if cfg.IdempotencyTTL == 0 {
		cfg.IdempotencyTTL = 24 * time.Hour
	}
	if cfg.IdempotencyMax <= 0 {
		cfg.IdempotencyMax = 10000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.GitHub != nil && (cfg.GitHub.Token == "" || !githubRepoRE.MatchString(cfg.GitHub.Repo)) {
		return nil, errors.New("github: a token and a repository owner/name are both needed")
	}
	dir, err := filepath.Abs(cfg.CloneDir)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		limiter: newLimiter(cfg.RateLimit, cfg.RateBurst),
		replay:  newReplayCache(cfg.IdempotencyTTL, cfg.IdempotencyMax),
		fpKey:   make([]byte, 32),
		now:     time.Now,
		records: map[string]accepted{},
	}
	_, _ = crand.Read(s.fpKey)
	s.SetSecrets(cfg.Secrets)
	start := time.Now()
	s.repo, err = openRepo(ctx, dir, cfg.RepoURL, cfg.Branch, cfg.Mode == ModeReview, cfg.GitAuth)
	if err != nil {
		return nil, errors.New(s.redact(err.Error()))
	}
	s.snapshot()
	s.log.Info("repository ready", "remote", redactURL(cfg.RepoURL), "branch", cfg.Branch, "clone", dir,
		"head", s.repo.head.String(), "mode", string(cfg.Mode), "ms", time.Since(start).Milliseconds())
	return s, nil
}

// SetSecrets replaces the shared secrets (on SIGHUP, to rotate them).
func (s *Server) SetSecrets(secrets [][]byte) {
	cp := make([][]byte, len(secrets))
	copy(cp, secrets)
	s.secrets.Store(&cp)
}

// Handler returns the HTTP handler of the API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/submissions", s.limited(s.handleSubmit))
	mux.Handle("GET /v1/submissions/{tenantId}/status", s.limited(s.handleStatus))
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "not_found", Message: "no such endpoint; see docs/wizard-api.md"})
	})
	return mux
}

// accepted is the 202 answer to a submission.
type accepted struct {
	TenantID       string `json:"tenantId"`
	App            string `json:"app"`
	Commit         string `json:"commit"`
	Branch         string `json:"branch"`
	StatusURL      string `json:"statusUrl"`
	AuthRequired   bool   `json:"authRequired"`
	PullRequestURL string `json:"pullRequestUrl,omitempty"`
}

// errorBody is every error answer.
type errorBody struct {
	Error             string       `json:"error"`
	Message           string       `json:"message"`
	Errors            []FieldError `json:"errors,omitempty"`
	SuggestedTenantID string       `json:"suggestedTenantId,omitempty"`
}

// result is the outcome of a submission.
type result struct {
	status     int
	body       any
	retryAfter int
	replayed   bool
	reason     string // for the log
}

func failure(status int, code, format string, args ...any) result {
	msg := fmt.Sprintf(format, args...)
	return result{status: status, body: errorBody{Error: code, Message: msg}, reason: code}
}

func (s *Server) limited(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok, wait := s.limiter.allow(clientIP(r), s.now())
		if !ok {
			secs := int(wait/time.Second) + 1
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			writeJSON(w, http.StatusTooManyRequests, errorBody{Error: "rate_limited", Message: fmt.Sprintf("too many requests from this client; retry in %d s", secs)})
			s.log.Warn("rate limited", "remote", clientIP(r), "path", r.URL.Path)
			return
		}
		h(w, r)
	})
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// readSigned reads a request body (at most MaxBodyBytes) and checks its signature.
func (s *Server) readSigned(w http.ResponseWriter, r *http.Request) ([]byte, *result) {
	if r.ContentLength > MaxBodyBytes {
		res := failure(http.StatusRequestEntityTooLarge, "body_too_large", "the body is larger than %d bytes", MaxBodyBytes)
		return nil, &res
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			res := failure(http.StatusRequestEntityTooLarge, "body_too_large", "the body is larger than %d bytes", MaxBodyBytes)
			return nil, &res
		}
		res := failure(http.StatusBadRequest, "invalid_request", "cannot read the body")
		return nil, &res
	}
	if err := verify(r.Header, body, *s.secrets.Load(), s.now()); err != nil {
		res := failure(http.StatusUnauthorized, "unauthorized", "%v", err)
		return nil, &res
	}
	return body, nil
}

func (s *Server) handleSubmit(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	res := s.serveSubmit(w, r)
	if res.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(res.retryAfter))
	}
	if res.replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, res.status, res.body)
	attrs := []any{"remote", clientIP(r), "status", res.status, "ms", time.Since(start).Milliseconds()}
	if a, ok := res.body.(accepted); ok {
		attrs = append(attrs, "tenant", a.TenantID, "app", a.App, "commit", a.Commit, "branch", a.Branch, "replayed", res.replayed)
		s.log.Info("submission accepted", attrs...)
		return
	}
	attrs = append(attrs, "reason", res.reason)
	if e, ok := res.body.(errorBody); ok {
		fields := make([]string, 0, len(e.Errors))
		for _, f := range e.Errors {
			fields = append(fields, f.Field)
		}
		if len(fields) > 0 {
			attrs = append(attrs, "fields", strings.Join(fields, ","))
		}
	}
	s.log.Warn("submission refused", attrs...)
}

func (s *Server) serveSubmit(w http.ResponseWriter, r *http.Request) result {
	body, fail := s.readSigned(w, r)
	if fail != nil {
		return *fail
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > 200 || !printable(key) {
		return failure(http.StatusBadRequest, "invalid_request", "Idempotency-Key must be at most 200 printable characters")
	}
	sub, errs := decodeSubmission(body)
	if errs == nil {
		var c *checked
		if c, errs = check(sub, s.cfg.DefaultWorker, s.cfg.AllowedWorkers); errs == nil {
			// Once started, a submission runs to its end even if the client goes away:
			// a retry then gets the replayed answer.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 2*time.Minute)
			defer cancel()
			return s.submit(ctx, c, key)
		}
	}
	res := failure(http.StatusBadRequest, "invalid_request", "the submission is invalid; see errors")
	res.body = errorBody{Error: "invalid_request", Message: "the submission is invalid; see errors", Errors: errs}
	return res
}

// replayKeys are the keys a submission's answer is remembered under: its
// Idempotency-Key, if any, and its payload.
func replayKeys(idemKey, fp string) []string {
	keys := []string{"payload:" + fp}
	if idemKey != "" {
		keys = append([]string{"key:" + idemKey}, keys...)
	}
	return keys
}

func (s *Server) lookupReplay(keys []string, fp string) (result, bool) {
	for _, k := range keys {
		e, ok := s.replay.get(k, s.now())
		if !ok {
			continue
		}
		if e.payload != fp {
			return failure(http.StatusUnprocessableEntity, "idempotency_key_reused",
				"this Idempotency-Key was used for a different submission"), true
		}
		return result{status: http.StatusAccepted, body: e.resp, replayed: true, reason: "replayed"}, true
	}
	return result{}, false
}

// submit commits a checked submission, or replays the answer to its first attempt.
func (s *Server) submit(ctx context.Context, c *checked, idemKey string) result {
	fp := c.fingerprint(s.fpKey)
	keys := replayKeys(idemKey, fp)
	if res, ok := s.lookupReplay(keys, fp); ok {
		return res
	}
	s.mu.Lock()
	res, ok := s.lookupReplay(keys, fp) // the first attempt may have finished meanwhile
	if !ok {
		res = s.commitLocked(ctx, c)
		if a, isAccepted := res.body.(accepted); isAccepted {
			s.replay.put(keys, fp, a, s.now())
			s.remember(a)
		}
	}
	s.snapshot()
	s.mu.Unlock()

	if a, isAccepted := res.body.(accepted); isAccepted && !res.replayed && s.cfg.Mode == ModeReview && s.cfg.GitHub != nil {
		title := fmt.Sprintf("tenant(%s): add %s via wizard", a.App, a.TenantID)
		text := fmt.Sprintf("Tenant `%s` of app `%s`, submitted through the sign-up wizard.\n\n"+
			"Its secrets are encrypted with sops for the recipients of `.sops.yaml`. Merge to provision it.", a.TenantID, a.App)
		u, err := s.cfg.GitHub.openPullRequest(ctx, a.Branch, s.cfg.Branch, title, text)
		if err != nil {
			s.log.Warn("pull request not opened; the branch is pushed", "tenant", a.TenantID, "branch", a.Branch, "err", s.redact(err.Error()))
		} else {
			a.PullRequestURL = u
			res.body = a
			s.replay.update(keys, a)
			s.mu.Lock()
			s.remember(a)
			s.mu.Unlock()
			s.log.Info("pull request opened", "tenant", a.TenantID, "url", u)
		}
	}
	return res
}

func (s *Server) remember(a accepted) {
	if len(s.records) >= maxRecords {
		for k := range s.records { // forget an arbitrary one; the git tree still knows
			delete(s.records, k)
			break
		}
	}
	s.records[a.TenantID] = a
}

func (s *Server) stale() bool {
	return s.cfg.FetchInterval <= 0 || time.Since(s.repo.lastFetch) >= s.cfg.FetchInterval
}

// commitLocked validates, encrypts, commits and pushes, retrying when the remote moved.
// s.mu is held.
func (s *Server) commitLocked(ctx context.Context, c *checked) result {
	fresh := false
	if s.stale() {
		if err := s.repo.refresh(ctx); err != nil {
			s.log.Warn("fetch failed; trying with the clone as it is", "err", s.redact(err.Error()))
		} else {
			fresh = true
		}
	}
	var lastErr error
	var unsure []*built // pushes that failed, but may have reached the remote
attempts:
	for attempt := 1; attempt <= s.cfg.PushAttempts; attempt++ {
		if attempt > 1 {
			// Back off a little, with jitter, so two writers do not collide again.
			d := time.Duration(attempt*attempt)*10*time.Millisecond + rand.N(20*time.Millisecond)
			select {
			case <-time.After(d):
			case <-ctx.Done():
				lastErr = ctx.Err()
				break attempts
			}
			if err := s.repo.refresh(ctx); err != nil {
				lastErr = err
				s.log.Warn("fetch failed", "attempt", attempt, "err", s.redact(err.Error()))
				continue
			}
			fresh = true
			// A push whose answer was lost may have landed after all: then it is done.
			for _, b := range unsure {
				if s.repo.landed(b) {
					s.log.Info("an earlier push of this submission had landed", "tenant", b.id, "commit", b.commit.String())
					return s.accepted(c, b)
				}
			}
		}
		res, b, err := s.attempt(ctx, c)
		if err == nil && !fresh && (res.status == http.StatusConflict || res.status == http.StatusBadRequest) {
			// A refusal must not come from a stale clone: look again.
			if ferr := s.repo.refresh(ctx); ferr == nil {
				fresh = true
				res, b, err = s.attempt(ctx, c)
			}
		}
		if err == nil {
			if a, ok := res.body.(accepted); ok {
				s.log.Debug("pushed", "tenant", a.TenantID, "attempt", attempt)
			}
			return res
		}
		if b != nil {
			unsure = append(unsure, b)
			s.repo.discard(b.objs)
		}
		lastErr = err
		s.log.Warn("push failed; fetching and trying again", "attempt", attempt, "err", s.redact(err.Error()))
	}
	s.log.Error("submission not committed: the repository cannot be written", "attempts", s.cfg.PushAttempts, "err", s.redact(fmt.Sprint(lastErr)))
	if err := s.repo.resetClean(ctx); err != nil {
		s.log.Error("reset clone", "err", s.redact(err.Error()))
	}
	res := failure(http.StatusServiceUnavailable, "repository_unavailable", "the tenants repository cannot be written right now; nothing was committed, try again later")
	res.retryAfter = 30
	return res
}

// built is a commit made for a submission.
type built struct {
	id, branch string
	commit     plumbing.Hash
	objs       []plumbing.Hash // the objects the commit added to the clone
}

// attempt makes one try on the clone as it is. A non-nil error means the push failed
// and the whole attempt may be retried after a fetch (the commit it built, if any, is
// returned with it); otherwise the result is final.
func (s *Server) attempt(ctx context.Context, c *checked) (result, *built, error) {
	g := s.repo
	ids, err := g.tenantIDs()
	if err != nil {
		return result{}, nil, fmt.Errorf("read tenants: %w", err)
	}
	pending, err := g.pendingIDs()
	if err != nil {
		return result{}, nil, fmt.Errorf("read review branches: %w", err)
	}
	taken := func(id string) bool {
		_, a := ids[id]
		_, b := pending[id]
		return a || b
	}
	id := c.TenantID
	if id == "" {
		id = Slugify(c.AgentName)
	}
	if taken(id) {
		return s.conflict(id, taken), nil, nil
	}

	rel := path.Join(schema.TenantsDir, c.App, id+".yaml")
	data, fail := s.encrypt(c, id, rel)
	if fail != nil {
		return *fail, nil, nil
	}
	if fail := s.validate(c, rel, data); fail != nil {
		return *fail, nil, nil
	}

	sig := object.Signature{Name: s.cfg.AuthorName, Email: s.cfg.AuthorEmail, When: s.now()}
	msg := fmt.Sprintf("tenant(%s): add %s via wizard\n", c.App, id)
	commit, objs, err := g.commitFile(g.head, rel, data, msg, sig)
	if err != nil {
		return result{}, nil, fmt.Errorf("commit: %w", err)
	}
	b := &built{id: id, branch: s.cfg.Branch, commit: commit, objs: objs}
	ref, old := g.branchRef(), g.head
	if s.cfg.Mode == ModeReview {
		b.branch = reviewBranch(id)
		ref, old = plumbing.NewBranchReferenceName(b.branch), plumbing.ZeroHash
	}
	err = g.push(ctx, ref, old, commit, objs)
	if errors.Is(err, errBranchExists) {
		g.discard(objs)
		pending[id] = plumbing.ZeroHash // fetched with the next refresh
		return s.conflict(id, taken), nil, nil
	}
	if err != nil {
		return result{}, b, err
	}
	return s.accepted(c, b), nil, nil
}

// accepted records a commit the remote has and answers 202.
func (s *Server) accepted(c *checked, b *built) result {
	g := s.repo
	if s.cfg.Mode == ModeReview {
		if err := g.notePending(b.id, b.commit); err != nil {
			s.log.Warn("record review branch", "err", err)
		}
	} else if err := g.advance(b.commit); err != nil {
		// The remote has the commit; the next push is refused and fetches it.
		s.log.Warn("pushed, but the clone could not record it", "err", s.redact(err.Error()))
	}
	return result{status: http.StatusAccepted, body: accepted{
		TenantID:     b.id,
		App:          c.App,
		Commit:       b.commit.String(),
		Branch:       b.branch,
		StatusURL:    "/v1/submissions/" + b.id + "/status",
		AuthRequired: c.provider.OAuth,
	}}
}

func (s *Server) conflict(id string, taken func(string) bool) result {
	res := failure(http.StatusConflict, "tenant_exists", "tenant id %q is already taken", id)
	res.body = errorBody{Error: "tenant_exists", Message: fmt.Sprintf("tenant id %q is already taken; resubmit with tenantId set to the suggestion or another free id", id),
		SuggestedTenantID: suggestID(id, taken)}
	return res
}

// encrypt renders the tenant file and encrypts its secrets for the recipients of the
// repository's .sops.yaml. The plaintext exists only in memory.
func (s *Server) encrypt(c *checked, id, rel string) ([]byte, *result) {
	plain, err := c.tenantYAML(id)
	if err != nil {
		res := failure(http.StatusInternalServerError, "internal", "cannot render the tenant file")
		s.log.Error("render tenant file", "tenant", id, "err", err)
		return nil, &res
	}
	defer clear(plain)
	conf, file, err := s.repo.sopsConfig(rel)
	if err == nil {
		var out []byte
		out, err = schema.EncryptYAML(plain, conf, file)
		switch {
		case errors.Is(err, schema.ErrNoSecrets):
			return append([]byte(nil), plain...), nil
		case err == nil:
			return out, nil
		}
	}
	// The error comes from sops or the .sops.yaml: about the configuration, never a value.
	s.log.Error("cannot encrypt the tenant's secrets", "tenant", id, "err", s.redact(err.Error()))
	res := failure(http.StatusServiceUnavailable, "repository_invalid", "the tenants repository has no usable .sops.yaml creation rule for %s; nothing was committed", rel)
	res.retryAfter = 60
	return nil, &res
}

// validate loads the repository at head with the new file added in memory and maps the
// file's problems to fields of the submission.
func (s *Server) validate(c *checked, rel string, data []byte) *result {
	base, err := s.repo.headFS()
	var repo *schema.Repo
	if err == nil {
		repo, err = schema.LoadFS(candidateFS{base: base, file: rel, data: data}, s.cfg.RepoURL, schema.LoadOptions{})
	}
	if err != nil {
		res := failure(http.StatusInternalServerError, "internal", "cannot load the tenants repository")
		s.log.Error("load repository", "err", err)
		return &res
	}
	if err := repo.Usable(); err != nil {
		s.log.Error("the desired state has errors outside tenants/; refusing submissions until they are fixed", "err", err)
		res := failure(http.StatusServiceUnavailable, "repository_invalid", "the tenants repository has errors (outside tenants/) that must be fixed first; nothing was committed")
		res.retryAfter = 60
		return &res
	}
	var errs []FieldError
	for _, p := range repo.Problems.Errors() {
		if p.File == rel {
			errs = append(errs, c.fieldFor(p))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	res := failure(http.StatusBadRequest, "validation_failed", "the tenant would be invalid; see errors")
	res.body = errorBody{Error: "validation_failed", Message: "the tenant would be invalid; see errors", Errors: errs}
	return &res
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	if _, fail := s.readSigned(w, r); fail != nil {
		writeJSON(w, fail.status, fail.body)
		s.log.Warn("status refused", "remote", clientIP(r), "status", fail.status, "reason", fail.reason)
		return
	}
	id := r.PathValue("tenantId")
	if !ValidTenantID(id) {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "not_found", Message: "not a tenant id"})
		return
	}
	resp, found := s.gitStatus(r.Context(), id)
	if !found {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "not_found", Message: fmt.Sprintf("no tenant %q in the repository or its review branches", id)})
		return
	}
	if resp.Merged && s.cfg.Status != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		st, known, err := s.cfg.Status.TenantStatus(ctx, id)
		cancel()
		switch {
		case err != nil:
			resp.StatusError = "the daemon's status is unavailable"
			s.log.Warn("daemon status", "tenant", id, "err", s.redact(err.Error()))
		case known:
			resp.Stage = stageOf(st.Phase)
			resp.Phase, resp.Revision = st.Phase, st.Revision
			resp.LastError = truncate(st.LastError, 500)
			if st.Phase == PhaseAwaitingAuth {
				resp.AuthRequired = true
			}
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// gitStatus says where a tenant is in git.
func (s *Server) gitStatus(ctx context.Context, id string) (statusResponse, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stale() {
		if err := s.repo.refresh(ctx); err != nil {
			s.log.Warn("fetch failed", "err", s.redact(err.Error()))
		}
		s.snapshot()
	}
	resp := statusResponse{TenantID: id, Stage: StageCommitted, Branch: s.cfg.Branch}
	ids, err := s.repo.tenantIDs()
	if err != nil {
		s.log.Error("read tenants", "err", err)
	}
	pending, _ := s.repo.pendingIDs()
	rec, submitted := s.records[id]
	app, onMain := ids[id]
	head, isPending := pending[id]
	if !onMain && !isPending && !submitted {
		return resp, false
	}
	commit := s.repo.head
	switch {
	case onMain:
		resp.App, resp.OnRemote, resp.Merged = app, true, true
	case isPending:
		resp.Branch, resp.OnRemote, commit = reviewBranch(id), true, head
		resp.Commit = head.String()
	}
	if submitted {
		resp.App, resp.Commit = rec.App, rec.Commit
		resp.AuthRequired = rec.AuthRequired
		if !onMain && !isPending {
			resp.Branch = rec.Branch
		}
	}
	if resp.App != "" && !submitted && !commit.IsZero() {
		resp.AuthRequired = s.repo.oauthProvider(commit, path.Join(schema.TenantsDir, resp.App, id+".yaml"))
	}
	return resp, true
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.health.Load())
}

func (s *Server) snapshot() {
	s.health.Store(&health{Status: "ok", Mode: s.cfg.Mode, Branch: s.cfg.Branch, Head: s.repo.head.String(), LastFetch: s.repo.lastFetch.UTC()})
}

// redact removes configured tokens from a message meant for a log.
func (s *Server) redact(msg string) string {
	for _, v := range s.cfg.Redact {
		if v != "" {
			msg = strings.ReplaceAll(msg, v, "[secret]")
		}
	}
	return msg
}

// oauthProvider reports whether the tenant file at rel in commit names an OAuth
// provider.
func (g *gitRepo) oauthProvider(commit plumbing.Hash, rel string) bool {
	h, ok := g.fileAt(commit, rel)
	if !ok {
		return false
	}
	blob, err := g.r.BlobObject(h)
	if err != nil {
		return false
	}
	rd, err := blob.Reader()
	if err != nil {
		return false
	}
	defer rd.Close()
	var f struct {
		Spec struct {
			Provider struct {
				ID string `yaml:"id"`
			} `yaml:"provider"`
		} `yaml:"spec"`
	}
	if err := yaml.NewDecoder(io.LimitReader(rd, 1<<20)).Decode(&f); err != nil {
		return false
	}
	p, ok := schema.LookupProvider(f.Spec.Provider.ID)
	return ok && p.OAuth
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(body)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// redactURL hides a password or token in a remote URL.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		return u.Redacted()
	}
	return raw
}
