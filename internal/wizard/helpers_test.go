package wizard

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/firemountain/hermes-gitops/internal/testenv"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers (the server's log).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// remote is a bare repository seeded with tenants.example, whose .sops.yaml names a
// recipient generated for the test.
type remote struct {
	bare     string // the bare repository, the server's remote
	work     string // a clone made with the git CLI, for writes "by a person"
	identity *age.X25519Identity
}

var gitEnv = []string{
	"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
	"GIT_AUTHOR_NAME=Test Person", "GIT_AUTHOR_EMAIL=person@example.com",
	"GIT_COMMITTER_NAME=Test Person", "GIT_COMMITTER_EMAIL=person@example.com",
}

// gitRun runs the git CLI in dir and returns its trimmed output.
func gitRun(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := gitOutput(dir, args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

func gitOutput(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), gitEnv...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

var recipientRE = regexp.MustCompile(`(?m)^(\s*age:\s*)age1[0-9a-z]+\s*$`)

// newRemote makes the bare remote and a work clone of it.
func newRemote(t testing.TB) *remote {
	t.Helper()
	testenv.LookPath(t, "git")
	tmp := t.TempDir()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	rm := &remote{bare: filepath.Join(tmp, "remote.git"), work: filepath.Join(tmp, "work"), identity: id}
	if err := os.CopyFS(rm.work, os.DirFS("../../tenants.example")); err != nil {
		t.Fatal(err)
	}
	sopsFile := filepath.Join(rm.work, ".sops.yaml")
	conf, err := os.ReadFile(sopsFile)
	if err != nil {
		t.Fatal(err)
	}
	if !recipientRE.Match(conf) {
		t.Fatalf(".sops.yaml of tenants.example has no age recipient line:\n%s", conf)
	}
	conf = recipientRE.ReplaceAll(conf, []byte("${1}"+id.Recipient().String()))
	if err := os.WriteFile(sopsFile, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	gitRun(t, tmp, "init", "-q", "--bare", "-b", "main", rm.bare)
	gitRun(t, rm.work, "init", "-q", "-b", "main")
	gitRun(t, rm.work, "add", "-A")
	gitRun(t, rm.work, "commit", "-q", "-m", "seed from tenants.example")
	gitRun(t, rm.work, "remote", "add", "origin", rm.bare)
	gitRun(t, rm.work, "push", "-q", "origin", "main")
	return rm
}

// git runs git against the bare remote.
func (rm *remote) git(t testing.TB, args ...string) string {
	t.Helper()
	return gitRun(t, rm.bare, append([]string{"--git-dir", rm.bare}, args...)...)
}

func (rm *remote) count(t testing.TB, ref string) int {
	t.Helper()
	n, err := strconv.Atoi(rm.git(t, "rev-list", "--count", ref))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// pushFile commits a file from the work clone on top of the remote's main and pushes
// it, as a person would.
func (rm *remote) pushFile(t testing.TB, rel, content, msg string) string {
	t.Helper()
	gitRun(t, rm.work, "pull", "-q", "--rebase", "origin", "main")
	p := filepath.Join(rm.work, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	gitRun(t, rm.work, "add", rel)
	gitRun(t, rm.work, "commit", "-q", "-m", msg)
	gitRun(t, rm.work, "push", "-q", "origin", "main")
	return gitRun(t, rm.work, "rev-parse", "HEAD")
}

// plainTenant is a valid tenant file without secrets.
func plainTenant(id, app string) string {
	return "apiVersion: hermes-gitops/v1\nkind: Tenant\nmetadata:\n  name: " + id + "\n  app: " + app +
		"\nspec:\n  worker: local\n  provider:\n    id: openai-codex\n"
}

// fixture is a server on a fresh remote, with its log captured.
type fixture struct {
	*remote
	srv     *Server
	http    *httptest.Server
	logs    *syncBuffer
	secrets [][]byte
	clone   string

	mu        sync.Mutex
	responses bytes.Buffer // every response body, to search for leaked secrets
}

const (
	testSecret    = "0123456789abcdef-test-secret-one"
	rotatedSecret = "fedcba9876543210-test-secret-two"
)

func newFixture(t testing.TB, mut func(*Config)) *fixture {
	t.Helper()
	return startServer(t, newRemote(t), mut)
}

func startServer(t testing.TB, rm *remote, mut func(*Config)) *fixture {
	t.Helper()
	f := &fixture{remote: rm, logs: &syncBuffer{}, secrets: [][]byte{[]byte(testSecret), []byte(rotatedSecret)}}
	f.clone = filepath.Join(filepath.Dir(rm.bare), "clone")
	cfg := Config{
		RepoURL:        rm.bare,
		CloneDir:       f.clone,
		Secrets:        f.secrets,
		DefaultWorker:  "local",
		AllowedWorkers: []string{"edge-1"},
		RateLimit:      1000,
		RateBurst:      1000,
		FetchInterval:  time.Hour,
		Logger:         slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mut != nil {
		mut(&cfg)
	}
	srv, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.srv = srv
	f.http = httptest.NewServer(srv.Handler())
	t.Cleanup(f.http.Close)
	return f
}

// request sends a request signed with secret at ts (unix seconds; 0 = now).
func (f *fixture) request(t testing.TB, method, path string, body []byte, secret string, ts int64, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	if ts == 0 {
		ts = time.Now().Unix()
	}
	req, err := http.NewRequest(method, f.http.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	stamp := strconv.FormatInt(ts, 10)
	if secret != "" {
		req.Header.Set(HeaderTimestamp, stamp)
		req.Header.Set(HeaderSignature, Sign([]byte(secret), stamp, body))
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return f.do(t, req)
}

func (f *fixture) do(t testing.TB, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.responses.Write(data)
	for k, vs := range resp.Header {
		f.responses.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
	}
	f.mu.Unlock()
	return resp, data
}

// submit posts a signed submission and decodes the answer.
func (f *fixture) submit(t testing.TB, sub any, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	body, err := json.Marshal(sub)
	if err != nil {
		t.Fatal(err)
	}
	resp, data := f.request(t, http.MethodPost, "/v1/submissions", body, testSecret, 0, hdr)
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("answer %d is not JSON: %v\n%s", resp.StatusCode, err, data)
	}
	return resp.StatusCode, out
}

func (f *fixture) status(t testing.TB, id string) (int, map[string]any) {
	t.Helper()
	resp, data := f.request(t, http.MethodGet, "/v1/submissions/"+id+"/status", nil, testSecret, 0, nil)
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("answer %d is not JSON: %v\n%s", resp.StatusCode, err, data)
	}
	return resp.StatusCode, out
}

// assertClone checks that the server's clone is at the remote's main.
func (f *fixture) assertClone(t testing.TB) {
	t.Helper()
	want := f.git(t, "rev-parse", "main")
	for _, ref := range []string{"refs/heads/main", "refs/remotes/origin/main"} {
		if got := gitRun(t, f.clone, "--git-dir", f.clone, "rev-parse", ref); got != want {
			t.Errorf("clone %s at %s, remote main at %s", ref, got, want)
		}
	}
	if f.srv.repo.head.String() != want {
		t.Errorf("server head %s, remote main %s", f.srv.repo.head, want)
	}
}

func (f *fixture) allResponses() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.responses.String()
}

// assertNowhere checks that a secret value appears in no git object of the remote or
// the clone, no file of the clone, no log line and no response.
func (f *fixture) assertNowhere(t testing.TB, secrets ...string) {
	t.Helper()
	stores := map[string]string{
		"the remote's objects": gitRun(t, f.bare, "--git-dir", f.bare, "cat-file", "--batch-all-objects", "--batch"),
		"the clone's objects":  gitRun(t, f.clone, "--git-dir", f.clone, "cat-file", "--batch-all-objects", "--batch"),
		"the server log":       f.logs.String(),
		"the responses":        f.allResponses(),
	}
	var files strings.Builder
	_ = filepath.WalkDir(f.clone, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			data, _ := os.ReadFile(p)
			files.Write(data)
		}
		return nil
	})
	stores["the clone's files"] = files.String()
	for _, s := range secrets {
		for where, text := range stores {
			if strings.Contains(text, s) {
				t.Errorf("a secret value appears in %s", where)
			}
		}
	}
}

// decrypt runs 'sops -d' on a file of the remote with the test's private key.
func (rm *remote) decrypt(t testing.TB, ref, rel string) string {
	t.Helper()
	sops := testenv.LookPath(t, "sops")
	file := filepath.Join(t.TempDir(), filepath.Base(rel))
	if err := os.WriteFile(file, []byte(rm.git(t, "show", ref+":"+rel)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sops, "-d", file)
	cmd.Env = append(os.Environ(), "SOPS_AGE_KEY="+rm.identity.String(), "SOPS_AGE_KEY_FILE=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sops -d %s: %v\n%s", rel, err, out)
	}
	return string(out)
}

func canary(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func botToken() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return "7012345678:" + hex.EncodeToString(b)
}

// sub is a submission as a control plane would send it.
func sub(agent, app, provider, key string) map[string]any {
	s := map[string]any{
		"agentName": agent,
		"app":       app,
		"owner":     map[string]any{"email": "owner@example.com", "name": "Owner"},
		"provider":  map[string]any{"id": provider},
	}
	if key != "" {
		s["apiKey"] = key
	}
	return s
}
