package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/firemountain/hermes-gitops/internal/cli"
	"github.com/firemountain/hermes-gitops/internal/daemon"
	"github.com/firemountain/hermes-gitops/internal/testenv"
	applypkg "github.com/firemountain/hermes-gitops/reconcile/apply"
	"github.com/firemountain/hermes-gitops/reconcile/worker"
	"github.com/firemountain/hermes-gitops/schema"
)

// The daemon end to end: a bare git repository on disk that the test pushes to with the
// git CLI, as a person would; the worker over a real sshd (or local) with the machine's
// Docker; the daemon in-process on a random port; every log line and HTTP response kept
// and grepped for the canary secrets at the end.

const webhookSecret = "daemon-test-webhook-secret-5f1c"

// syncBuffer is a goroutine-safe buffer (the daemon logs from several goroutines).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// gitRemote is a bare repository and the fleet's desired-state dir as its work clone.
type gitRemote struct {
	t    testing.TB
	bare string
	work string
}

// newGitRemote turns the fleet's repository into the first commit of a new bare repo.
func newGitRemote(t testing.TB, f *Fleet) *gitRemote {
	t.Helper()
	testenv.LookPath(t, "git")
	g := &gitRemote{t: t, bare: filepath.Join(t.TempDir(), "tenants.git"), work: f.Repo}
	g.git("", "init", "--quiet", "--bare", "--initial-branch=main", g.bare)
	g.git(g.work, "init", "--quiet", "--initial-branch=main")
	g.git(g.work, "remote", "add", "origin", g.bare)
	g.push("initial desired state")
	return g
}

func (g *gitRemote) git(dir string, args ...string) string {
	g.t.Helper()
	args = append([]string{"-c", "user.name=Test Person", "-c", "user.email=person@example.com", "-c", "commit.gpgsign=false"}, args...)
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		g.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// push commits everything in the work clone and pushes it; it returns the commit id.
func (g *gitRemote) push(msg string) string {
	g.t.Helper()
	g.git(g.work, "add", "-A")
	g.git(g.work, "commit", "--quiet", "-m", msg)
	g.git(g.work, "push", "--quiet", "origin", "main")
	return g.git(g.work, "rev-parse", "HEAD")
}

// testDaemon is a daemon running in-process on a random port.
type testDaemon struct {
	t         testing.TB
	d         *daemon.Daemon
	url       string
	logs      *syncBuffer
	responses *syncBuffer
	cancel    context.CancelFunc
	done      chan error
}

// daemonConfig is a test daemon's configuration for a fleet: random port, own cache dir,
// the fleet's age key and agent, debug logs in JSON.
func daemonConfig(t testing.TB, f *Fleet, logs io.Writer) daemon.Config {
	t.Helper()
	key, err := os.ReadFile(f.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := schema.ParseIdentities(string(key), "test key")
	if err != nil {
		t.Fatal(err)
	}
	wopts := worker.Options{Agent: f.Agent}
	if f.SSHD != nil {
		wopts.KeyFile = f.SSHD.UserKeyFile
	}
	return daemon.Config{
		CacheDir:      t.TempDir(),
		Listen:        "127.0.0.1:0",
		Identities:    ids,
		Worker:        wopts,
		WebhookSecret: []byte(webhookSecret),
		Apply:         applypkg.Options{WaitTimeout: 60 * time.Second},
		Logger:        slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// waitReady polls until the daemon's first reconcile has finished.
func (td *testDaemon) waitReady() {
	td.t.Helper()
	testenv.WaitFor(td.t, 60*time.Second, "the first reconcile", func() (bool, error) { return td.d.Ready(), nil })
}

// waitIdle polls until the daemon has finished a reconcile and is not in one.
func (td *testDaemon) waitIdle() {
	td.t.Helper()
	testenv.WaitFor(td.t, 60*time.Second, "the daemon idle", func() (bool, error) {
		s := td.d.Status()
		return s.Ready && !s.Reconciling, nil
	})
}

func startDaemon(t testing.TB, cfg daemon.Config, logs *syncBuffer) *testDaemon {
	t.Helper()
	d, err := daemon.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	td := &testDaemon{t: t, d: d, url: "http://" + d.Addr(), logs: logs, responses: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() { td.done <- d.Run(ctx) }()
	t.Cleanup(func() { td.stop() })
	return td
}

// stop cancels the daemon (the code path of SIGTERM) and waits for Run to return.
func (td *testDaemon) stop() error {
	td.cancel()
	select {
	case err, ok := <-td.done:
		if ok {
			close(td.done)
		}
		return err
	case <-time.After(90 * time.Second):
		td.t.Errorf("daemon did not stop within 90s")
		return nil
	}
}

// get fetches a path and keeps the body for the canary check.
func (td *testDaemon) get(path string) (int, []byte) {
	td.t.Helper()
	return td.do(http.MethodGet, path, nil, nil)
}

func (td *testDaemon) do(method, path string, body []byte, header http.Header) (int, []byte) {
	td.t.Helper()
	req, err := http.NewRequest(method, td.url+path, bytes.NewReader(body))
	if err != nil {
		td.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		td.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	td.responses.Write(b)
	return resp.StatusCode, b
}

func (td *testDaemon) tenant(id string) (daemon.TenantStatus, bool) {
	td.t.Helper()
	code, body := td.get("/v1/tenants/" + id)
	if code == http.StatusNotFound {
		return daemon.TenantStatus{}, false
	}
	var st daemon.TenantStatus
	if code != http.StatusOK || json.Unmarshal(body, &st) != nil {
		td.t.Fatalf("GET /v1/tenants/%s: %d %s", id, code, body)
	}
	return st, true
}

// waitPhase polls GET /v1/tenants/{id} until the tenant is in phase (and, when rev is
// set, at that revision).
func (td *testDaemon) waitPhase(id, phase, rev string, timeout time.Duration) daemon.TenantStatus {
	td.t.Helper()
	var last daemon.TenantStatus
	testenv.WaitFor(td.t, timeout, fmt.Sprintf("tenant %s %s at %s", id, phase, shortID(rev)), func() (bool, error) {
		st, ok := td.tenant(id)
		last = st
		if !ok {
			return false, fmt.Errorf("not known yet")
		}
		if st.Phase != phase || (rev != "" && st.Revision != rev) {
			return false, fmt.Errorf("phase %s at %s (lastError %q, findings %v)", st.Phase, shortID(st.Revision), st.LastError, st.Findings)
		}
		return true, nil
	})
	return last
}

func shortID(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// assertNoCanaryAnywhere greps the daemon's log, every HTTP response and the CLI's
// outputs for the canary secrets.
func assertNoCanaryAnywhere(t *testing.T, f *Fleet, tds ...*testDaemon) {
	t.Helper()
	all := f.Outputs()
	for _, td := range tds {
		all += td.logs.String() + td.responses.String()
	}
	for name, v := range canaries {
		if strings.Contains(all, v) {
			t.Errorf("canary secret %s appears in the daemon's logs or HTTP responses", name)
		}
	}
}

func githubSign(body []byte) string {
	mac := hmac.New(sha256.New, []byte(webhookSecret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func pushBody(ref, after string) []byte {
	b, _ := json.Marshal(map[string]any{"ref": ref, "after": after, "repository": map[string]any{"full_name": "acme/tenants"}})
	return b
}

// running reports whether a container is running.
func running(name string) bool {
	out, err := exec.Command("docker", "inspect", "-f", "{{.State.Running}}", name).Output()
	return err == nil && strings.TrimSpace(string(out)) == "true"
}

// TestDaemonGitLifecycle: push a tenant → running and ready; push a broken tenant file →
// held, nothing deleted; push a broken app file → the revision is refused, the last good
// one stays in force; edit .env on the worker → healed at the next resync, a hand-added
// key leaves the tenant drifted. Then metrics, the status page in Chromium, canaries.
func TestDaemonGitLifecycle(t *testing.T) {
	t.Parallel()
	f := New(t, Options{SSH: true})
	f.WriteTenant("astral", "maya", `  provider: {id: anthropic}
  telegram: {allowedUsers: [111111111]}`, map[string]string{"ANTHROPIC_API_KEY": canaries["maya"], "TELEGRAM_BOT_TOKEN": canaries["tg"]})
	f.WriteTenant("spawn", "cody1", `  provider: {id: openai-codex}`, nil)
	g := newGitRemote(t, f)
	first := g.git(g.work, "rev-parse", "HEAD")

	logs := &syncBuffer{}
	cfg := daemonConfig(t, f, logs)
	cfg.GitURL = "file://" + g.bare
	cfg.Interval = time.Second
	cfg.Resync = 3 * time.Second
	td := startDaemon(t, cfg, logs)

	if code, _ := td.get("/healthz"); code != http.StatusOK {
		t.Fatalf("healthz: %d", code)
	}
	td.waitPhase("maya", daemon.PhaseReady, first, 90*time.Second)
	td.waitPhase("cody1", daemon.PhaseAwaitingAuth, first, 30*time.Second)
	testenv.WaitFor(t, 30*time.Second, "readyz 200 after the first reconcile", func() (bool, error) {
		if code, body := td.get("/readyz"); code != http.StatusOK {
			return false, fmt.Errorf("%d %s", code, body)
		}
		return true, nil
	})

	// 1. Push a new tenant: running and ready, at the pushed revision.
	f.WriteTenant("spawn", "nova", `  provider: {id: openai-api}
  bundles: [writing@0.1.0]`, map[string]string{"OPENAI_API_KEY": canaries["nova"]})
	rev := g.push("tenant(spawn): add nova")
	st := td.waitPhase("nova", daemon.PhaseReady, rev, 60*time.Second)
	if !running(f.Name("spawn", "nova")) {
		t.Fatal("nova is ready but its container does not run")
	}
	if st.Provider != "openai-api" || !slices.Equal(st.Bundles, []string{"writing@0.1.0"}) || st.App != "spawn" || st.Worker != "w1" {
		t.Errorf("nova's status: %+v", st)
	}
	if st.Applied == nil || st.Applied.Revision != rev || st.Applied.Action != "create" {
		t.Errorf("nova's applied record: %+v", st.Applied)
	}

	// 2. A broken tenant file: held, its container untouched.
	f.WriteRaw("tenants/spawn/nova.yaml", "apiVersion: hermes-gitops/v1\nkind: Tenant\nmetadata:\n  name: nova\n  app: spawn\nspec: [broken\n")
	broken := g.push("break nova")
	st = td.waitPhase("nova", daemon.PhaseHeld, broken, 30*time.Second)
	if !strings.Contains(st.LastError, "tenants/spawn/nova.yaml") {
		t.Errorf("held nova's lastError does not name its file: %q", st.LastError)
	}
	if !running(f.Name("spawn", "nova")) || !running(f.Name("astral", "maya")) {
		t.Fatal("a held tenant's or another tenant's container stopped")
	}

	// 3. A broken app file: the whole revision is refused; the last good one stays.
	appFile := filepath.Join(f.Repo, "apps", "spawn.yaml")
	goodApp, _ := os.ReadFile(appFile)
	f.WriteRaw("apps/spawn.yaml", string(goodApp)+"  notAField: true\n")
	refused := g.push("break the spawn app")
	testenv.WaitFor(t, 30*time.Second, "revision "+shortID(refused)+" refused", func() (bool, error) {
		if s := td.d.Status(); s.Source.Rejected != refused {
			return false, fmt.Errorf("source %+v", s.Source)
		}
		return true, nil
	})
	s := td.d.Status()
	if s.Revision == nil || s.Revision.ID != broken || !strings.Contains(s.Source.LastError, "apps/spawn.yaml") {
		t.Fatalf("after a broken app file: in force %+v, source %+v", s.Revision, s.Source)
	}
	var list struct {
		Revision string                `json:"revision"`
		Tenants  []daemon.TenantStatus `json:"tenants"`
	}
	_, body := td.get("/v1/tenants")
	if err := json.Unmarshal(body, &list); err != nil || list.Revision != broken || len(list.Tenants) != 3 {
		t.Fatalf("GET /v1/tenants while a revision is refused: %v %s", err, body)
	}
	if n := len(f.Containers()); n != 3 {
		t.Fatalf("containers after a refused revision: %v", f.Containers())
	}
	_, page := td.get("/")
	if !strings.Contains(string(page), "Source error") {
		t.Error("the status page does not show the source error")
	}

	// Fix both: nova is ready again.
	f.WriteRaw("apps/spawn.yaml", string(goodApp))
	f.WriteTenant("spawn", "nova", `  provider: {id: openai-api}
  bundles: [writing@0.1.0]`, map[string]string{"OPENAI_API_KEY": canaries["nova"]})
	fixed := g.push("fix spawn and nova")
	td.waitPhase("nova", daemon.PhaseReady, fixed, 60*time.Second)
	if s := td.d.Status(); s.Source.LastError != "" || s.Source.Rejected != "" {
		t.Errorf("source error after the fix: %+v", s.Source)
	}

	// 4. Edit .env on the worker: the managed key is healed at the next resync; the key
	// added by hand stays and leaves maya drifted (env.unmanaged: apply never touches it).
	envPath := filepath.Join(f.Home("astral", "maya"), ".env")
	data, err := os.ReadFile(envPath)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if strings.HasPrefix(l, "ANTHROPIC_API_KEY=") {
			l = "ANTHROPIC_API_KEY=sk-edited-by-hand-0000"
		}
		lines = append(lines, l)
	}
	lines = append(lines, "EXTRA_BY_HAND=yes")
	if err := os.WriteFile(envPath, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st = td.waitPhase("maya", daemon.PhaseDrifted, "", 30*time.Second)
	testenv.WaitFor(t, 30*time.Second, "maya healed", func() (bool, error) {
		b, _ := os.ReadFile(envPath)
		if strings.Contains(string(b), "sk-edited-by-hand") {
			return false, fmt.Errorf(".env still has the hand-edited key")
		}
		return true, nil
	})
	testenv.WaitFor(t, 30*time.Second, "maya restarted with its key", func() (bool, error) {
		return f.Loaded(f.Name("astral", "maya")).Env["ANTHROPIC_API_KEY"] == SHA256(canaries["maya"]), nil
	})
	st = td.waitPhase("maya", daemon.PhaseDrifted, "", 30*time.Second)
	var codes []string
	for _, fd := range st.Findings {
		codes = append(codes, fd.Code)
	}
	if !slices.Contains(codes, "env.unmanaged") || slices.Contains(codes, "env.changed") {
		t.Errorf("maya's findings after the heal: %v", codes)
	}
	if b, _ := os.ReadFile(envPath); !strings.Contains(string(b), "EXTRA_BY_HAND=yes") {
		t.Error("the heal removed a key added by hand")
	}
	testenv.WaitFor(t, 30*time.Second, "a resync that healed maya", func() (bool, error) {
		for _, r := range td.d.Status().History {
			if r.Trigger == "resync" && r.Applied > 0 {
				return true, nil
			}
		}
		return false, nil
	})
	if os.Getenv("HERMES_TEST_DEBUG") != "" {
		t.Logf("daemon log:\n%s", td.logs.String())
	}

	// 5. Metrics scrape and parse cleanly, with every series the issue asks for.
	code, body := td.get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("metrics: %d", code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	for _, name := range []string{"hermes_reconcile_duration_seconds", "hermes_tenants", "hermes_drift_findings",
		"hermes_apply_errors_total", "hermes_applied_revision_info", "hermes_ssh_round_trips_total", "hermes_git_fetch_failures_total"} {
		if fams[name] == nil || len(fams[name].GetMetric()) == 0 {
			t.Errorf("metric %s missing", name)
		}
	}
	if h := fams["hermes_reconcile_duration_seconds"]; h != nil && h.GetMetric()[0].GetHistogram().GetSampleCount() == 0 {
		t.Error("no reconcile observed in the duration histogram")
	}
	label := func(fam, name, value string) float64 {
		for _, m := range fams[fam].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == name && l.GetValue() == value {
					if m.GetGauge() != nil {
						return m.GetGauge().GetValue()
					}
					return m.GetCounter().GetValue()
				}
			}
		}
		return -1
	}
	if v := label("hermes_applied_revision_info", "revision", fixed); v != 1 {
		t.Errorf("hermes_applied_revision_info{revision=%q} = %v", fixed, v)
	}
	if v := label("hermes_tenants", "phase", "drifted"); v != 1 {
		t.Errorf("hermes_tenants{phase=drifted} = %v", v)
	}
	if v := label("hermes_drift_findings", "code", "env.unmanaged"); v != 1 {
		t.Errorf("hermes_drift_findings{code=env.unmanaged} = %v", v)
	}
	if v := label("hermes_ssh_round_trips_total", "worker", "w1"); v <= 0 {
		t.Errorf("hermes_ssh_round_trips_total{worker=w1} = %v", v)
	}

	// 6. The status page renders in headless Chromium with the real table.
	dom := chromiumPage(t, td)
	for id, phase := range map[string]string{"maya": "drifted", "nova": "ready", "cody1": "awaiting-auth"} {
		if !strings.Contains(dom, fmt.Sprintf(`data-tenant="%s" data-phase="%s"`, id, phase)) {
			t.Errorf("the rendered page lacks %s in phase %s", id, phase)
		}
	}
	if !strings.Contains(dom, "env.unmanaged") || !strings.Contains(dom, shortID(fixed)) {
		t.Error("the rendered page lacks maya's finding or the revision in force")
	}

	// 7. Every reconcile logged one summary line with its revision and round trips.
	n := 0
	for _, line := range strings.Split(td.logs.String(), "\n") {
		if strings.Contains(line, `"msg":"reconcile"`) {
			n++
			if !strings.Contains(line, `"revision"`) || !strings.Contains(line, `"round_trips"`) || !strings.Contains(line, `"duration"`) {
				t.Errorf("summary line lacks fields: %s", line)
			}
		}
	}
	if hist := td.d.Status().History; n < len(hist) || n == 0 {
		t.Errorf("%d summary lines for %d reconciles", n, len(hist))
	}
	if err := td.stop(); err != nil {
		t.Errorf("Run returned %v", err)
	}
	assertNoCanaryAnywhere(t, f, td)
}

// chromiumPage renders GET / in headless Chromium: a screenshot (kept in a temp dir, a
// valid PNG of some size) and the DOM after rendering, which it returns.
func chromiumPage(t *testing.T, td *testDaemon) string {
	t.Helper()
	bin := testenv.LookPath(t, "chromium")
	dir := t.TempDir()
	png := filepath.Join(dir, "status-page.png")
	args := func(extra ...string) []string {
		return append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
			"--user-data-dir=" + filepath.Join(dir, "profile"), "--window-size=1280,900"}, extra...)
	}
	run := func(a []string) []byte {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, a...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("chromium %s: %v\n%s", strings.Join(a, " "), err, stderr.String())
		}
		return stdout.Bytes()
	}
	run(args("--screenshot="+png, td.url+"/"))
	img, err := os.ReadFile(png)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	if !bytes.HasPrefix(img, []byte("\x89PNG\r\n\x1a\n")) || len(img) < 20_000 {
		t.Fatalf("screenshot is not a PNG of some size: %d bytes", len(img))
	}
	t.Logf("status page screenshot: %s (%d bytes)", png, len(img))
	if out := os.Getenv("HERMES_TEST_ARTIFACTS"); out != "" {
		_ = os.MkdirAll(out, 0o755)
		_ = os.WriteFile(filepath.Join(out, "daemon-status-page.png"), img, 0o644)
	}
	dom := string(run(args("--dump-dom", td.url+"/")))
	td.responses.Write([]byte(dom))
	if !strings.Contains(dom, `<table id="tenants">`) {
		t.Fatalf("the dumped DOM has no tenants table:\n%s", dom)
	}
	return dom
}

// TestDaemonWebhook: with a one-hour poll interval, a signed push webhook makes the
// daemon fetch (over ssh, with a key and known_hosts) and reconcile at once. Unsigned,
// badly signed and oversized hooks are refused; pings answered; other branches ignored.
func TestDaemonWebhook(t *testing.T) {
	t.Parallel()
	f := New(t, Options{SSH: true})
	f.WriteTenant("spawn", "pax", `  provider: {id: openai-codex}`, nil)
	g := newGitRemote(t, f)

	logs := &syncBuffer{}
	cfg := daemonConfig(t, f, logs)
	knownHosts := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(knownHosts, []byte(f.SSHD.HostKeyLine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.GitURL = fmt.Sprintf("ssh://%s@127.0.0.1:%d%s", f.SSHD.User, f.SSHD.Port, g.bare)
	cfg.Auth = daemon.GitAuth{SSHKeyFile: f.SSHD.UserKeyFile, KnownHostsFile: knownHosts}
	cfg.Interval = time.Hour
	cfg.Resync = time.Hour
	td := startDaemon(t, cfg, logs)
	td.waitPhase("pax", daemon.PhaseAwaitingAuth, "", 60*time.Second)
	td.waitReady()

	hook := func(body []byte, h map[string]string) (int, string) {
		hdr := http.Header{"Content-Type": {"application/json"}}
		for k, v := range h {
			hdr.Set(k, v)
		}
		code, b := td.do(http.MethodPost, "/hooks/git", body, hdr)
		return code, string(b)
	}
	body := pushBody("refs/heads/main", "0000")
	for what, tc := range map[string]struct {
		body []byte
		h    map[string]string
		want int
	}{
		"unsigned":           {body, map[string]string{"X-GitHub-Event": "push"}, 401},
		"bad github sig":     {body, map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": githubSign([]byte("other"))}, 401},
		"sig without prefix": {body, map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": strings.TrimPrefix(githubSign(body), "sha256=")}, 401},
		"bad gitlab token":   {body, map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "nope"}, 401},
		"ping":               {[]byte(`{"zen":"hi"}`), map[string]string{"X-GitHub-Event": "ping", "X-Hub-Signature-256": githubSign([]byte(`{"zen":"hi"}`))}, 200},
		"other branch":       {pushBody("refs/heads/dev", "1"), map[string]string{"X-Gitea-Event": "push", "X-Gitea-Signature": strings.TrimPrefix(githubSign(pushBody("refs/heads/dev", "1")), "sha256=")}, 200},
		"too large":          {bytes.Repeat([]byte("x"), daemon.MaxWebhookBody+1), map[string]string{"X-GitHub-Event": "push"}, 413},
	} {
		if code, b := hook(tc.body, tc.h); code != tc.want {
			t.Errorf("%s: %d %s, want %d", what, code, b, tc.want)
		}
	}
	if got := len(td.d.Status().History); got != 1 {
		t.Fatalf("refused or ignored hooks triggered reconciles: %d", got)
	}

	// A push and its signed webhook: the new tenant runs long before the 1h interval.
	f.WriteTenant("astral", "vega", `  provider: {id: openai}`, map[string]string{"OPENAI_API_KEY": canaries["vega"]})
	rev := g.push("tenant(astral): add vega")
	start := time.Now()
	body = pushBody("refs/heads/main", rev)
	if code, b := hook(body, map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": githubSign(body)}); code != http.StatusAccepted {
		t.Fatalf("signed push webhook: %d %s", code, b)
	}
	td.waitPhase("vega", daemon.PhaseReady, rev, 60*time.Second)
	t.Logf("push webhook → vega ready in %v", time.Since(start).Round(time.Millisecond))
	testenv.WaitFor(t, 30*time.Second, "a webhook-triggered reconcile of "+shortID(rev), func() (bool, error) {
		var triggers []string
		for _, r := range td.d.Status().History {
			triggers = append(triggers, r.Trigger+"@"+shortID(r.Revision))
		}
		if !slices.Contains(triggers, "webhook@"+shortID(rev)) {
			return false, fmt.Errorf("reconciles: %v", triggers)
		}
		return true, nil
	})
	if os.Getenv("HERMES_TEST_DEBUG") != "" {
		t.Logf("daemon log:\n%s", td.logs.String())
	}

	// GitLab's token and Gitea's signature are accepted too.
	if code, b := hook(body, map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": webhookSecret}); code != http.StatusAccepted {
		t.Errorf("gitlab hook: %d %s", code, b)
	}
	if code, b := hook(body, map[string]string{"X-Gitea-Event": "push", "X-Gitea-Signature": strings.TrimPrefix(githubSign(body), "sha256=")}); code != http.StatusAccepted {
		t.Errorf("gitea hook: %d %s", code, b)
	}
	if strings.Contains(td.logs.String(), webhookSecret) || strings.Contains(td.responses.String(), webhookSecret) {
		t.Error("the webhook secret appears in the logs or responses")
	}
	assertNoCanaryAnywhere(t, f, td)
}

// TestDaemonShutdownMidApply runs `hermesctl daemon` in-process and sends the process a
// real SIGTERM while the daemon applies the first of four tenants (one at a time): the
// tenant in flight finishes, no other starts, the daemon exits 0 within the shutdown
// bound, and no half-written file is left. A restarted daemon converges.
func TestDaemonShutdownMidApply(t *testing.T) {
	f := New(t, Options{})
	ids := []string{"sa1", "sa2", "sa3", "sa4"}
	for _, id := range ids {
		f.WriteTenant("spawn", id, `  provider: {id: openai-api}`, map[string]string{"OPENAI_API_KEY": canaries["nova"]})
	}
	f.Env()
	cache := t.TempDir()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- cli.Main([]string{"daemon", "--dir", f.Repo, "--cache-dir", cache, "--listen", "127.0.0.1:0",
			"--concurrency", "1", "--shutdown-timeout", "30s", "--log-format", "json", "--resync", "1h"},
			strings.NewReader(""), io.Discard, &stderr)
	}()
	testenv.WaitFor(t, 60*time.Second, "the first container", func() (bool, error) {
		select {
		case code := <-done:
			t.Fatalf("daemon exited early (%d):\n%s", code, stderr.String())
		default:
		}
		return len(f.Containers()) > 0, nil
	})
	// Keep a handler of our own, so that the signal can never kill the test process even
	// if the daemon had already returned (and stopped listening).
	guard := make(chan os.Signal, 1)
	signal.Notify(guard, syscall.SIGTERM)
	defer signal.Stop(guard)
	sent := time.Now()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var code int
	select {
	case code = <-done:
	case <-time.After(45 * time.Second):
		t.Fatalf("the daemon did not exit within the shutdown bound:\n%s", stderr.String())
	}
	took := time.Since(sent)
	f.AddOutput(stderr.String())
	t.Logf("SIGTERM → exit %d in %v; containers %v", code, took.Round(time.Millisecond), f.Containers())
	if code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, stderr.String())
	}
	if n := len(f.Containers()); n >= len(ids) {
		t.Errorf("the daemon kept taking work after SIGTERM: %d containers", n)
	}
	if !strings.Contains(stderr.String(), "shutting down") {
		t.Errorf("no shutdown log line:\n%s", stderr.String())
	}
	for _, name := range f.Containers() {
		if !running(name) {
			t.Errorf("%s was left not running by the shutdown", name)
		}
	}
	temps, _ := filepath.Glob(filepath.Join(f.Root, "*", "tenants", "*", "hermes-home", ".*hermes-tmp*"))
	more, _ := filepath.Glob(filepath.Join(f.Root, "*", "tenants", "*", "hermes-home", "*", ".*hermes-tmp*"))
	if len(temps)+len(more) != 0 {
		t.Fatalf("half-written files left: %v %v", temps, more)
	}

	// A restarted daemon (same cache dir: the lock was released) converges.
	logs := &syncBuffer{}
	cfg := daemonConfig(t, f, logs)
	cfg.Dir, cfg.CacheDir = f.Repo, cache
	td := startDaemon(t, cfg, logs)
	for _, id := range ids {
		td.waitPhase(id, daemon.PhaseReady, "", 90*time.Second)
	}
	if n := len(f.Containers()); n != len(ids) {
		t.Fatalf("after restart: %v", f.Containers())
	}
	assertNoCanaryAnywhere(t, f, td)
}

// TestDaemonTwoDaemons: two daemons on one fleet (two hosts: two cache dirs). The
// workers' apply lock lets only one apply at a time; the other waits and says so, then
// finds nothing left to do. Every tenant is created exactly once. A third daemon on the
// first one's cache dir waits for the daemon lock and says so too.
func TestDaemonTwoDaemons(t *testing.T) {
	t.Parallel()
	f := New(t, Options{})
	ids := []string{"tw1", "tw2", "tw3"}
	for _, id := range ids {
		f.WriteTenant("spawn", id, `  provider: {id: openai-codex}`, nil)
	}
	logsA, logsB := &syncBuffer{}, &syncBuffer{}
	cfgA := daemonConfig(t, f, logsA)
	cfgA.Dir = f.Repo
	cfgA.Apply.Concurrency = 1
	cfgA.LockRetry = 300 * time.Millisecond
	a := startDaemon(t, cfgA, logsA)
	testenv.WaitFor(t, 60*time.Second, "daemon A applying", func() (bool, error) {
		return a.d.Status().Phases[daemon.PhaseProvisioning] > 0, nil
	})

	cfgB := daemonConfig(t, f, logsB)
	cfgB.Dir = f.Repo
	cfgB.LockRetry = 300 * time.Millisecond
	b := startDaemon(t, cfgB, logsB)
	testenv.WaitFor(t, 30*time.Second, "daemon B waiting for the worker lock", func() (bool, error) {
		return strings.Contains(b.d.Status().Waiting, "locked by hermesctl daemon"), nil
	})
	if _, page := b.get("/"); !strings.Contains(string(page), "locked by") {
		t.Error("B's status page does not say it waits")
	}
	if !strings.Contains(logsB.String(), "another applier holds the worker; waiting") {
		t.Error("B's log does not say it waits")
	}

	// A third daemon on A's cache dir waits for the daemon lock and is not ready.
	logsC := &syncBuffer{}
	cfgC := daemonConfig(t, f, logsC)
	cfgC.Dir, cfgC.CacheDir = f.Repo, cfgA.CacheDir
	c := startDaemon(t, cfgC, logsC)
	testenv.WaitFor(t, 10*time.Second, "daemon C waiting for the daemon lock", func() (bool, error) {
		return strings.Contains(c.d.Status().Waiting, "daemon lock"), nil
	})
	if code, body := c.get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(string(body), "waiting") {
		t.Errorf("C's readyz: %d %s", code, body)
	}
	c.stop()

	for _, td := range []*testDaemon{a, b} {
		for _, id := range ids {
			td.waitPhase(id, daemon.PhaseAwaitingAuth, "", 90*time.Second)
		}
	}
	testenv.WaitFor(t, 30*time.Second, "B done waiting", func() (bool, error) { return b.d.Status().Waiting == "", nil })
	applied, failed := 0, 0
	for _, td := range []*testDaemon{a, b} {
		for _, r := range td.d.Status().History {
			applied += r.Applied
			failed += r.Failed
		}
	}
	if applied != len(ids) || failed != 0 {
		t.Errorf("the two daemons applied %d changes (%d failed), want %d, 0", applied, failed, len(ids))
	}
	if n := len(f.Containers()); n != len(ids) {
		t.Errorf("containers: %v", f.Containers())
	}
}

// TestDaemonBackoffAndUnreachable: a tenant whose container cannot start is in error and
// backs off (not retried at every resync) while the others proceed; fixing its file
// retries it at once. A tenant on an unreachable worker is in error, untouched, and the
// worker is reported; the other worker's tenants are unaffected.
func TestDaemonBackoffAndUnreachable(t *testing.T) {
	t.Parallel()
	f := New(t, Options{})
	f.WriteTenant("spawn", "good1", `  provider: {id: openai-codex}`, nil)
	// Docker refuses a memory limit under 6 MB: the create fails on the worker.
	f.WriteTenant("spawn", "bad1", "  provider: {id: openai-codex}\n  resources: {memory: 4m}", nil)
	f.WriteRaw("workers/w2.yaml", `apiVersion: hermes-gitops/v1
kind: Worker
metadata:
  name: w2
spec:
  transport: ssh
  host: 127.0.0.1
  port: 1
  user: nobody
  hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
  tenantRoot: /srv/hermes
`)
	f.WriteRaw("tenants/spawn/far1.yaml", `apiVersion: hermes-gitops/v1
kind: Tenant
metadata:
  name: far1
  app: spawn
spec:
  worker: w2
  provider: {id: openai-codex}
`)
	logs := &syncBuffer{}
	cfg := daemonConfig(t, f, logs)
	cfg.Dir = f.Repo
	cfg.Resync = 300 * time.Millisecond
	cfg.BackoffBase = time.Hour
	td := startDaemon(t, cfg, logs)

	td.waitPhase("good1", daemon.PhaseAwaitingAuth, "", 60*time.Second)
	bad := td.waitPhase("bad1", daemon.PhaseError, "", 60*time.Second)
	if bad.RetryAt == nil || time.Until(*bad.RetryAt) < 30*time.Minute || !strings.Contains(bad.LastError, "bad1") {
		t.Errorf("bad1 in error: retry %v, lastError %q", bad.RetryAt, bad.LastError)
	}
	far := td.waitPhase("far1", daemon.PhaseError, "", 30*time.Second)
	if !strings.Contains(far.LastError, "worker w2 unreachable") || far.Worker != "w2" {
		t.Errorf("far1: %+v", far)
	}
	// Several resyncs later bad1 was still tried only once.
	n := len(td.d.Status().History)
	testenv.WaitFor(t, 30*time.Second, "three more resyncs", func() (bool, error) {
		return len(td.d.Status().History) >= min(n+3, 20), nil
	})
	failed := 0
	for _, r := range td.d.Status().History {
		failed += r.Failed
	}
	if failed != 1 {
		t.Errorf("bad1 was tried %d times while backing off", failed)
	}
	if s := td.d.Status(); !slices.Equal(s.Unreachable, []string{"w2"}) {
		t.Errorf("unreachable workers: %v", s.Unreachable)
	}
	_, body := td.get("/metrics")
	for _, want := range []string{`hermes_worker_up{worker="w2"} 0`, `hermes_worker_up{worker="w1"} 1`, `hermes_apply_errors_total{worker="w1"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// Fixing the file retries at once, backoff or not.
	f.WriteTenant("spawn", "bad1", "  provider: {id: openai-codex}\n  resources: {memory: 256m}", nil)
	td.waitPhase("bad1", daemon.PhaseAwaitingAuth, "", 60*time.Second)
	if !running(f.Name("spawn", "good1")) || !running(f.Name("spawn", "bad1")) {
		t.Error("containers not running")
	}
}

// BenchmarkDaemonPushToRunning times `git push` plus a signed webhook to the new
// tenant's container running, with the worker over sshd. Target: ≤ 3 s.
func BenchmarkDaemonPushToRunning(b *testing.B) {
	f := New(b, Options{SSH: true})
	f.WriteTenant("spawn", "base", `  provider: {id: openai-codex}`, nil)
	g := newGitRemote(b, f)
	logs := &syncBuffer{}
	cfg := daemonConfig(b, f, logs)
	cfg.GitURL = "file://" + g.bare
	cfg.Interval, cfg.Resync = time.Hour, time.Hour
	td := startDaemon(b, cfg, logs)
	td.waitPhase("base", daemon.PhaseAwaitingAuth, "", 60*time.Second)
	td.waitIdle()

	var total time.Duration
	i := 0
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		i++
		id := fmt.Sprintf("push%d", i)
		f.WriteTenant("spawn", id, `  provider: {id: openai-codex}`, nil)
		g.git(g.work, "add", "-A")
		g.git(g.work, "commit", "--quiet", "-m", "add "+id)
		name := f.Name("spawn", id)
		b.StartTimer()
		start := time.Now()
		logs.Write([]byte(fmt.Sprintf("=== push at %s\n", start.UTC().Format(time.RFC3339Nano))))
		g.git(g.work, "push", "--quiet", "origin", "main")
		body := pushBody("refs/heads/main", "")
		if code, resp := td.do(http.MethodPost, "/hooks/git", body, http.Header{"X-GitHub-Event": {"push"}, "X-Hub-Signature-256": {githubSign(body)}}); code != http.StatusAccepted {
			b.Fatalf("webhook: %d %s", code, resp)
		}
		startedAt := containerStarted(b, name, start)
		total += startedAt.Sub(start)
		b.StopTimer()
		logs.Write([]byte(fmt.Sprintf("=== running at %s\n", startedAt.UTC().Format(time.RFC3339Nano))))
		if !running(name) {
			b.Fatalf("%s started but does not run", name)
		}
		td.waitPhase(id, daemon.PhaseAwaitingAuth, "", 60*time.Second) // settle before the next push
		td.waitIdle()
		b.StartTimer()
	}
	if out := os.Getenv("HERMES_TEST_DEBUG"); out != "" {
		_ = os.WriteFile(out, []byte(logs.String()), 0o644)
	}
	ms := float64(total.Milliseconds()) / float64(b.N)
	b.ReportMetric(ms, "ms/push-to-running")
	b.Logf("git push + webhook → container running: %.0f ms (target ≤ 3000 ms)", ms)
}

// containerStarted returns when Docker started a container, from its event stream
// (replayed from since, so no event is missed and no polling delay is added).
func containerStarted(b *testing.B, name string, since time.Time) time.Time {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "events", "--since", fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond()),
		"--filter", "type=container", "--filter", "event=start", "--filter", "container="+name, "--format", "{{.TimeNano}}")
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Wait()
	defer cancel()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatalf("%s never started: %v", name, err)
	}
	nano, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
	if err != nil {
		b.Fatalf("docker events: %q", line)
	}
	return time.Unix(0, nano)
}

// BenchmarkDaemonMemory1000 loads a desired state of 1,000 tenants (no secrets) and runs
// the daemon's reconcile in --dry-run against a local worker (observed, nothing started),
// then reports the process's resident memory. Target: ≤ 64 MiB.
func BenchmarkDaemonMemory1000(b *testing.B) {
	f := New(b, Options{})
	for i := range 1000 {
		app := []string{"astral", "spawn"}[i%2]
		f.WriteTenant(app, fmt.Sprintf("mem%04d", i), `  provider: {id: openai-codex}`, nil)
	}
	for b.Loop() {
		logs := &syncBuffer{}
		cfg := daemonConfig(b, f, logs)
		cfg.Dir, cfg.DryRun = f.Repo, true
		cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil))
		td := startDaemon(b, cfg, logs)
		testenv.WaitFor(b, 120*time.Second, "the first reconcile", func() (bool, error) { return td.d.Ready(), nil })
		if n := len(td.d.Tenants()); n != 1000 {
			b.Fatalf("%d tenants in the status", n)
		}
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		rss := vmRSS(b)
		b.ReportMetric(rss/(1<<20), "MiB-rss")
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "MiB-heap")
		b.Logf("daemon with 1,000 tenants (dry run, one reconcile): VmRSS %.1f MiB, heap in use %.1f MiB (target ≤ 64 MiB resident)", rss/(1<<20), float64(ms.HeapInuse)/(1<<20))
		td.stop()
		td.d = nil // the cleanup keeps td: let the next iteration start from a clean heap
	}
}

var vmRSSLine = regexp.MustCompile(`(?m)^VmRSS:\s+(\d+) kB`)

func vmRSS(t testing.TB) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		testenv.Missing(t, "/proc/self/status", err.Error())
	}
	m := vmRSSLine.FindSubmatch(data)
	if m == nil {
		t.Fatal("no VmRSS in /proc/self/status")
	}
	kb, _ := strconv.ParseFloat(string(m[1]), 64)
	return kb * 1024
}
