package daemon

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firemountain/hermes-gitops/internal/testenv"
	"github.com/firemountain/hermes-gitops/reconcile/drift"
	"github.com/firemountain/hermes-gitops/reconcile/plan"
	"github.com/firemountain/hermes-gitops/reconcile/render"
)

// Unit tests of the daemon's parts that need no worker: webhooks, phases, backoff, the
// sources (real git CLI and a real directory watch), the cache-dir lock, the page. The
// end-to-end scenarios against sshd and Docker are in internal/e2e/daemon_test.go.

const secret = "unit-test-webhook-secret"

func sign(body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func newTestDaemon(t *testing.T, cfg Config) (*Daemon, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	if cfg.GitURL == "" && cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = t.TempDir()
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d, &logs
}

func TestDaemonConfig(t *testing.T) {
	for _, cfg := range []Config{{}, {Dir: "x", GitURL: "y"}, {GitURL: "y", Branch: "a", Tag: "b"}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	d, _ := newTestDaemon(t, Config{GitURL: "https://user:hunter2@example.com/x.git"})
	if d.cfg.Branch != "main" || d.cfg.Interval != DefaultInterval || d.cfg.Resync != DefaultResync || d.cfg.Apply.Concurrency != 4 {
		t.Errorf("defaults: %+v", d.cfg)
	}
	if !strings.HasPrefix(d.cfg.Apply.LockOwner, "hermesctl daemon ") {
		t.Errorf("lock owner %q", d.cfg.Apply.LockOwner)
	}
	if loc := d.Status().Source.Location; strings.Contains(loc, "hunter2") {
		t.Errorf("the source location shows the password: %s", loc)
	}
	d2, _ := newTestDaemon(t, Config{GitURL: "https://example.com/x.git"})
	if d.cfg.Apply.LockOwner == d2.cfg.Apply.LockOwner {
		t.Error("two daemons in one process share a lock owner")
	}
}

func TestDaemonWebhookVerify(t *testing.T) {
	body := []byte(`{"ref":"refs/heads/main"}`)
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		h        http.Header
		provider string
		ok       bool
	}{
		{"github", h("X-Hub-Signature-256", "sha256="+sign(body)), "github", true},
		{"github upper-case hex", h("X-Hub-Signature-256", "sha256="+strings.ToUpper(sign(body))), "github", true},
		{"github no prefix", h("X-Hub-Signature-256", sign(body)), "github", false},
		{"github wrong", h("X-Hub-Signature-256", "sha256="+sign([]byte("x"))), "github", false},
		{"github not hex", h("X-Hub-Signature-256", "sha256=zz"), "github", false},
		{"gitea", h("X-Gitea-Signature", sign(body)), "gitea", true},
		{"forgejo", h("X-Forgejo-Signature", sign(body)), "gitea", true},
		{"gitea wrong", h("X-Gitea-Signature", sign([]byte("y"))), "gitea", false},
		{"gitlab", h("X-Gitlab-Token", secret), "gitlab", true},
		{"gitlab wrong", h("X-Gitlab-Token", secret+"x"), "gitlab", false},
		{"none", h(), "", false},
	} {
		p, ok := verifyWebhook(tc.h, body, []byte(secret))
		if p != tc.provider || ok != tc.ok {
			t.Errorf("%s: got %q %v, want %q %v", tc.name, p, ok, tc.provider, tc.ok)
		}
	}
}

func TestDaemonWebhookHandler(t *testing.T) {
	d, logs := newTestDaemon(t, Config{GitURL: "file:///nowhere.git", WebhookSecret: []byte(secret)})
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	post := func(body []byte, kv ...string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/hooks/git", bytes.NewReader(body))
		for i := 0; i < len(kv); i += 2 {
			req.Header.Set(kv[i], kv[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	kicked := func() bool {
		select {
		case <-d.kick:
			return true
		default:
			return false
		}
	}
	main := []byte(`{"ref":"refs/heads/main","after":"abc"}`)
	if code, _ := post(main, "X-GitHub-Event", "push"); code != 401 || kicked() {
		t.Errorf("unsigned: %d", code)
	}
	ping := []byte(`{"zen":"x"}`)
	if code, b := post(ping, "X-GitHub-Event", "ping", "X-Hub-Signature-256", "sha256="+sign(ping)); code != 200 || !strings.Contains(b, "ping") || kicked() {
		t.Errorf("ping: %d %s", code, b)
	}
	if code, _ := post(main, "X-GitHub-Event", "push", "X-Hub-Signature-256", "sha256="+sign(main)); code != 202 || !kicked() {
		t.Errorf("signed push: %d", code)
	}
	dev := []byte(`{"ref":"refs/heads/dev"}`)
	if code, b := post(dev, "X-Gitea-Event", "push", "X-Gitea-Signature", sign(dev)); code != 200 || !strings.Contains(b, "ignored") || kicked() {
		t.Errorf("other branch: %d %s", code, b)
	}
	if code, b := post(main, "X-Gitlab-Event", "Merge Request Hook", "X-Gitlab-Token", secret); code != 200 || !strings.Contains(b, "ignored") || kicked() {
		t.Errorf("other event: %d %s", code, b)
	}
	if code, _ := post(main, "X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", secret); code != 202 || !kicked() {
		t.Errorf("gitlab push: %d", code)
	}
	big := bytes.Repeat([]byte(" "), MaxWebhookBody+1)
	if code, _ := post(big, "X-Hub-Signature-256", "sha256="+sign(big)); code != 413 || kicked() {
		t.Errorf("oversized: %d", code)
	}
	// Coalescing: two pushes while one is pending are one request.
	post(main, "X-GitHub-Event", "push", "X-Hub-Signature-256", "sha256="+sign(main))
	post(main, "X-GitHub-Event", "push", "X-Hub-Signature-256", "sha256="+sign(main))
	if !kicked() || kicked() {
		t.Error("pending webhooks are not coalesced")
	}
	if strings.Contains(logs.String(), secret) {
		t.Error("the secret is in the log")
	}

	off, _ := newTestDaemon(t, Config{})
	rec := httptest.NewRecorder()
	off.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/hooks/git", bytes.NewReader(main)))
	if rec.Code != http.StatusForbidden {
		t.Errorf("webhook without a configured secret: %d", rec.Code)
	}
}

func TestDaemonHealthAndReady(t *testing.T) {
	d, _ := newTestDaemon(t, Config{})
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		d.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("healthz %d", code)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "first reconcile") {
		t.Errorf("readyz before the first reconcile: %d %s", code, body)
	}
	if code, _ := get("/v1/tenants/nobody"); code != 404 {
		t.Errorf("unknown tenant: %d", code)
	}
	d.mu.Lock()
	d.st.ready = true
	d.st.tenants["cody1"] = TenantStatus{ID: "cody1", Phase: PhaseReady, Findings: []Finding{}, Bundles: []string{}}
	d.mu.Unlock()
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("readyz after: %d", code)
	}
	if code, body := get("/v1/tenants/cody1"); code != 200 || !strings.Contains(body, `"phase": "ready"`) {
		t.Errorf("tenant: %d %s", code, body)
	}
	if code, body := get("/v1/tenants?phase=error"); code != 200 || strings.Contains(body, "cody1") {
		t.Errorf("filtered list: %d %s", code, body)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "hermes_tenants{phase=\"ready\"}") {
		t.Errorf("metrics: %d", code)
	}
}

func TestDaemonPhases(t *testing.T) {
	active := &render.Tenant{State: "active"}
	suspended := &render.Tenant{State: "suspended"}
	driftF := drift.Finding{Code: drift.EnvChanged, Severity: drift.Drift, Action: "patch: rewrite managed files, restart"}
	unmanaged := drift.Finding{Code: drift.EnvUnmanaged, Severity: drift.Drift, Action: "nothing: kept as it is"}
	info := drift.Finding{Code: drift.AuthAwaitingLogin, Severity: drift.Info, Action: "nothing: run 'hermesctl auth login x'"}
	for _, tc := range []struct {
		name string
		e    tenantEval
		want string
	}{
		{"noop", tenantEval{change: plan.Change{Action: plan.Noop, Desired: active}}, PhaseReady},
		{"held", tenantEval{held: true, change: plan.Change{Action: plan.Hold}}, PhaseHeld},
		{"unreachable", tenantEval{unreachable: "dial: refused", change: plan.Change{Action: plan.Hold, Desired: active}}, PhaseError},
		{"applying", tenantEval{disp: dispApplying, change: plan.Change{Action: plan.Create, Desired: active}}, PhaseProvisioning},
		{"planned", tenantEval{disp: dispPlanned, change: plan.Change{Action: plan.Create, Desired: active}}, PhasePending},
		{"deferred", tenantEval{disp: dispDeferred, change: plan.Change{Action: plan.Patch, Desired: active}}, PhasePending},
		{"failed", tenantEval{disp: dispFailed, reason: "boom", change: plan.Change{Action: plan.Create, Desired: active}}, PhaseError},
		{"backoff", tenantEval{disp: dispBackoff, change: plan.Change{Action: plan.Create, Desired: active}}, PhaseError},
		{"refused", tenantEval{disp: dispRefused, change: plan.Change{Action: plan.Delete, Desired: active}}, PhaseError},
		{"withheld", tenantEval{disp: dispWithheld, change: plan.Change{Action: plan.Delete, Desired: active}}, PhaseDrifted},
		{"ok fixes drift", tenantEval{disp: dispOK, findings: []drift.Finding{driftF}, change: plan.Change{Action: plan.Patch, Desired: active}}, PhaseReady},
		{"ok leaves unmanaged", tenantEval{disp: dispOK, findings: []drift.Finding{driftF, unmanaged}, change: plan.Change{Action: plan.Patch, Desired: active}}, PhaseDrifted},
		{"noop with unmanaged", tenantEval{findings: []drift.Finding{unmanaged}, change: plan.Change{Action: plan.Noop, Desired: active}}, PhaseDrifted},
		{"info only", tenantEval{findings: []drift.Finding{info}, change: plan.Change{Action: plan.Noop, Desired: active}}, PhaseReady},
		{"awaiting auth", tenantEval{findings: []drift.Finding{info}, change: plan.Change{Action: plan.AwaitingAuth, AwaitingAuth: true, Desired: active}}, PhaseAwaitingAuth},
		{"suspended", tenantEval{change: plan.Change{Action: plan.Noop, Desired: suspended}}, PhaseSuspended},
		{"orphan", tenantEval{findings: []drift.Finding{{Code: drift.TenantOrphan, Severity: drift.Drift, Action: "nothing without --prune"}}, change: plan.Change{Action: plan.Orphan}}, PhaseDrifted},
	} {
		if got, _, _ := phaseOf(tc.e); got != tc.want {
			t.Errorf("%s: phase %s, want %s", tc.name, got, tc.want)
		}
	}
	_, lastErr, fs := phaseOf(tenantEval{disp: dispOK, findings: []drift.Finding{driftF, unmanaged}, change: plan.Change{Action: plan.Patch, Desired: active}})
	if lastErr != "" || len(fs) != 1 || fs[0].Code != drift.EnvUnmanaged {
		t.Errorf("after a successful apply: %q %v", lastErr, fs)
	}
}

func TestDaemonBackoff(t *testing.T) {
	base, maxD := 10*time.Second, 5*time.Minute
	for failures, want := range map[int]time.Duration{1: 10 * time.Second, 2: 20 * time.Second, 3: 40 * time.Second, 6: 5 * time.Minute, 50: 5 * time.Minute} {
		if got := backoffDelay(base, maxD, failures); got != want {
			t.Errorf("backoff after %d failures: %v, want %v", failures, got, want)
		}
	}
	for range 1000 {
		if j := jitter(time.Minute); j < 54*time.Second || j > 66*time.Second {
			t.Fatalf("jitter(1m) = %v, outside ±10%%", j)
		}
	}
}

func TestDaemonEditorTempFiles(t *testing.T) {
	for _, name := range []string{".nova.yaml.swp", "nova.yaml.swp", "nova.yaml~", ".#nova.yaml", "#nova.yaml#", "4913", "tenants/spawn/.nova.yaml.hermes-tmp123", "x.tmp"} {
		if !editorTemp(name) {
			t.Errorf("%s is not ignored", name)
		}
	}
	for _, name := range []string{"nova.yaml", "tenants/spawn/nova.yaml", "apps/astral.yml", ".sops.yaml", "SKILL.md"} {
		if editorTemp(name) {
			t.Errorf("%s is ignored", name)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDaemonDirSnapshot(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "apps", "a.yaml"), "a")
	os.MkdirAll(filepath.Join(dir, "tenants"), 0o755)
	writeFile(t, filepath.Join(dir, "README.md"), "not desired state")
	ctx := context.Background()
	s1, err := readDirSnapshot(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Stat(s1.FS, "tenants"); err != nil {
		t.Errorf("an empty tenants dir is missing from the snapshot: %v", err)
	}
	if _, err := fs.Stat(s1.FS, "README.md"); err == nil {
		t.Error("a file outside the desired-state dirs is in the snapshot")
	}
	writeFile(t, filepath.Join(dir, "README.md"), "changed")
	writeFile(t, filepath.Join(dir, "tenants", "spawn", ".nova.yaml.swp"), "swap")
	writeFile(t, filepath.Join(dir, "tenants", "spawn", "nova.yaml~"), "backup")
	s2, _ := readDirSnapshot(ctx, dir)
	if s2.Revision != s1.Revision {
		t.Errorf("README and editor temp files changed the revision: %s → %s", s1.Revision, s2.Revision)
	}
	writeFile(t, filepath.Join(dir, "tenants", "spawn", "nova.yaml"), "n")
	s3, _ := readDirSnapshot(ctx, dir)
	if s3.Revision == s2.Revision || !strings.HasPrefix(s3.Revision, "dir:") {
		t.Errorf("a new tenant file did not change the revision: %s", s3.Revision)
	}
	if b, err := fs.ReadFile(s3.FS, "tenants/spawn/nova.yaml"); err != nil || string(b) != "n" {
		t.Errorf("snapshot content: %q %v", b, err)
	}
}

// TestDaemonDirWatch: a burst of writes is one change signal; editor temp files and
// files outside the desired state are none; a directory created later is watched.
func TestDaemonDirWatch(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "tenants", "spawn"), 0o755)
	os.MkdirAll(filepath.Join(dir, "apps"), 0o755)
	var logs bytes.Buffer
	src := newDirSource(Config{Dir: dir, Debounce: 200 * time.Millisecond}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err := src.open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer src.close()
	signals := func(within time.Duration) int {
		n := 0
		deadline := time.After(within)
		for {
			select {
			case <-src.changes():
				n++
			case <-deadline:
				return n
			}
		}
	}
	for i := range 30 {
		writeFile(t, filepath.Join(dir, "tenants", "spawn", "t"+string(rune('a'+i%26))+".yaml"), "x")
	}
	if n := signals(1500 * time.Millisecond); n != 1 {
		t.Errorf("a burst of 30 writes gave %d signals, want 1", n)
	}
	writeFile(t, filepath.Join(dir, "tenants", "spawn", ".ta.yaml.swp"), "swap")
	writeFile(t, filepath.Join(dir, "tenants", "spawn", "4913"), "")
	writeFile(t, filepath.Join(dir, "notes.txt"), "x")
	if n := signals(800 * time.Millisecond); n != 0 {
		t.Errorf("editor temp files and unrelated files gave %d signals", n)
	}
	os.MkdirAll(filepath.Join(dir, "tenants", "astral"), 0o755)
	if n := signals(800 * time.Millisecond); n != 1 {
		t.Errorf("a new app directory gave %d signals", n)
	}
	writeFile(t, filepath.Join(dir, "tenants", "astral", "maya.yaml"), "m")
	if n := signals(800 * time.Millisecond); n != 1 {
		t.Errorf("a file in the new directory gave %d signals (not watched?)", n)
	}
}

// gitCLI runs the git CLI for a test.
func gitCLI(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=T", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestDaemonGitSource(t *testing.T) {
	testenv.LookPath(t, "git")
	bare := filepath.Join(t.TempDir(), "r.git")
	work := t.TempDir()
	gitCLI(t, "", "init", "-q", "--bare", "--initial-branch=main", bare)
	gitCLI(t, work, "init", "-q", "--initial-branch=main")
	gitCLI(t, work, "remote", "add", "origin", bare)
	writeFile(t, filepath.Join(work, "tenants", "spawn", "nova.yaml"), "nova v1")
	writeFile(t, filepath.Join(work, "apps", "spawn.yaml"), "app")
	os.Symlink("/etc/passwd", filepath.Join(work, "apps", "evil.yaml"))
	gitCLI(t, work, "add", "-A")
	gitCLI(t, work, "commit", "-q", "-m", "first commit\n\nbody")
	gitCLI(t, work, "push", "-q", "origin", "main")
	first := gitCLI(t, work, "rev-parse", "HEAD")

	cache := t.TempDir()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	src := newGitSource(Config{GitURL: "file://" + bare, Branch: "main", CacheDir: cache}, log)
	ctx := context.Background()
	if err := src.open(ctx); err != nil {
		t.Fatal(err)
	}
	snap, err := src.fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Revision != first || snap.Subject != "first commit" || snap.Author != "T" {
		t.Errorf("snapshot %+v, want %s", snap, first)
	}
	if b, err := fs.ReadFile(snap.FS, "tenants/spawn/nova.yaml"); err != nil || string(b) != "nova v1" {
		t.Errorf("tree content %q %v", b, err)
	}
	if _, err := fs.Stat(snap.FS, "apps/evil.yaml"); err == nil {
		t.Error("a symlink of the tree was exported")
	}
	src.activate(snap)
	if target, err := os.Readlink(filepath.Join(cache, currentLink)); err != nil || !strings.HasSuffix(target, first) {
		t.Errorf("current → %q %v", target, err)
	}

	// A second commit, fetched by a source reopened on the same cache (a restart).
	writeFile(t, filepath.Join(work, "tenants", "spawn", "nova.yaml"), "nova v2")
	gitCLI(t, work, "commit", "-q", "-am", "second")
	gitCLI(t, work, "tag", "-a", "-m", "release", "v2")
	gitCLI(t, work, "push", "-q", "origin", "main", "v2")
	second := gitCLI(t, work, "rev-parse", "HEAD")
	src = newGitSource(Config{GitURL: "file://" + bare, Branch: "main", CacheDir: cache}, log)
	if err := src.open(ctx); err != nil {
		t.Fatal(err)
	}
	snap2, err := src.fetch(ctx)
	if err != nil || snap2.Revision != second {
		t.Fatalf("second fetch: %+v %v", snap2, err)
	}
	src.activate(snap2)
	if _, err := os.Stat(filepath.Join(cache, treesDir, first)); !os.IsNotExist(err) {
		t.Errorf("the old tree was not removed: %v", err)
	}

	// An annotated tag resolves to its commit.
	tagged := newGitSource(Config{GitURL: "file://" + bare, Tag: "v2", CacheDir: t.TempDir()}, log)
	if err := tagged.open(ctx); err != nil {
		t.Fatal(err)
	}
	if s, err := tagged.fetch(ctx); err != nil || s.Revision != second {
		t.Errorf("tag v2: %+v %v", s, err)
	}

	// A missing branch and an unreachable remote are errors, never snapshots.
	missing := newGitSource(Config{GitURL: "file://" + bare, Branch: "nope", CacheDir: t.TempDir()}, log)
	missing.open(ctx)
	if s, err := missing.fetch(ctx); err == nil {
		t.Errorf("a missing branch gave %+v", s)
	}
	gone := newGitSource(Config{GitURL: "file://" + filepath.Join(t.TempDir(), "gone.git"), Branch: "main", CacheDir: t.TempDir()}, log)
	gone.open(ctx)
	if s, err := gone.fetch(ctx); err == nil {
		t.Errorf("a missing remote gave %+v", s)
	}
}

func TestDaemonRejectsBrokenRevision(t *testing.T) {
	d, logs := newTestDaemon(t, Config{Dir: t.TempDir()})
	writeFile(t, filepath.Join(d.cfg.Dir, "apps", "spawn.yaml"), "apiVersion: hermes-gitops/v1\nkind: App\nmetadata: {name: spawn}\nspec: {bogus: 1}\n")
	os.MkdirAll(filepath.Join(d.cfg.Dir, "tenants"), 0o755)
	ctx := context.Background()
	if err := d.src.open(ctx); err != nil {
		t.Fatal(err)
	}
	defer d.src.close()
	if ran := d.sync(ctx, ctx, "start"); ran {
		t.Fatal("a broken desired state was reconciled")
	}
	st := d.Status()
	if st.Revision != nil || st.Source.Rejected == "" || !strings.Contains(st.Source.LastError, "apps/spawn.yaml") || st.Ready {
		t.Errorf("after a broken revision: %+v %+v", st.Revision, st.Source)
	}
	if !strings.Contains(logs.String(), "desired state rejected") {
		t.Errorf("log: %s", logs.String())
	}
	// The same broken revision is not loaded again at every interval.
	logs.Reset()
	d.sync(ctx, ctx, "interval")
	if strings.Contains(logs.String(), "desired state rejected") {
		t.Error("the same broken revision was loaded twice")
	}
}

// TestDaemonCacheDirLock: a second daemon on the same cache dir waits, says so, and
// takes over when the first one goes.
func TestDaemonCacheDirLock(t *testing.T) {
	cache := t.TempDir()
	d1, _ := newTestDaemon(t, Config{CacheDir: cache})
	d2, logs2 := newTestDaemon(t, Config{CacheDir: cache})
	ctx := context.Background()
	unlock1, err := d1.lockCacheDir(ctx)
	if err != nil || unlock1 == nil {
		t.Fatal(err)
	}
	got := make(chan func(), 1)
	ctx2, cancel2 := context.WithCancel(ctx)
	defer cancel2()
	go func() {
		u, _ := d2.lockCacheDir(ctx2)
		got <- u
	}()
	testenv.WaitFor(t, 10*time.Second, "d2 waiting", func() (bool, error) {
		return strings.Contains(d2.Status().Waiting, d1.cfg.Apply.LockOwner), nil
	})
	select {
	case <-got:
		t.Fatal("d2 took a lock d1 holds")
	default:
	}
	unlock1()
	var unlock2 func()
	select {
	case unlock2 = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("d2 did not take the released lock")
	}
	if unlock2 == nil || d2.Status().Waiting != "" {
		t.Fatalf("d2 after taking the lock: waiting %q", d2.Status().Waiting)
	}
	unlock2()
	if !strings.Contains(logs2.String(), "another daemon holds the cache dir") {
		t.Errorf("d2's log does not say it waits: %s", logs2.String())
	}
}

func TestDaemonStatusPage(t *testing.T) {
	d, _ := newTestDaemon(t, Config{})
	now := time.Now()
	d.mu.Lock()
	d.st.ready = true
	d.st.revision = &RevisionInfo{ID: "0123456789abcdef0123", Short: "0123456789ab", Subject: "add <nova>", LoadedAt: now}
	d.st.tenants["nova"] = TenantStatus{ID: "nova", App: "spawn", Worker: "w1", Phase: PhaseError, Provider: "openai-api",
		Bundles: []string{"writing@0.1.0"}, LastError: `<script>alert(1)</script>`, UpdatedAt: now,
		Findings: []Finding{{Code: "env.unmanaged", Message: ".env has a key added by hand: X"}}}
	d.st.tenants["maya"] = TenantStatus{ID: "maya", App: "astral", Worker: "w1", Phase: PhaseReady, Bundles: []string{}, Findings: []Finding{}, UpdatedAt: now}
	d.st.history = []Reconcile{{Started: now, Duration: 1500 * time.Millisecond, Revision: "0123456789abcdef0123", Trigger: "webhook", Summary: "Plan: 1 to create, 0 to recreate, 0 to patch, 0 to delete.", Applied: 1}}
	d.st.waiting = "worker w1: another daemon is applying"
	d.mu.Unlock()
	rec := httptest.NewRecorder()
	d.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	page := rec.Body.String()
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d %s", rec.Code, rec.Header())
	}
	for _, want := range []string{`data-tenant="nova" data-phase="error"`, `data-tenant="maya" data-phase="ready"`, "writing@0.1.0",
		"env.unmanaged", "0123456789ab", "webhook", "another daemon is applying", "&lt;script&gt;", "add &lt;nova&gt;"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>") {
		t.Error("the page does not escape tenant data")
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
}

func TestDaemonRedact(t *testing.T) {
	if got := redactURL("https://bot:tok3n@git.example.com/a.git"); strings.Contains(got, "tok3n") {
		t.Errorf("redactURL: %s", got)
	}
	if got := redactURL("git@github.com:acme/t.git"); got != "git@github.com:acme/t.git" {
		t.Errorf("redactURL changed an scp-like URL: %s", got)
	}
	if got := redactText(`Get "https://bot:tok3n@git.example.com/info/refs": 401`); strings.Contains(got, "tok3n") {
		t.Errorf("redactText: %s", got)
	}
}
