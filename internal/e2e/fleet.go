// Package e2e is the harness of the end-to-end tests: a desired-state repository in a
// temp dir, a worker reached through a real sshd (optionally behind a proxy that can cut
// the link) or locally, the machine's Docker engine with the stand-in runner image, and
// hermesctl run in-process with every output kept for canary checks.
package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/firemountain/hermes-gitops/internal/cli"
	"github.com/firemountain/hermes-gitops/internal/standin"
	"github.com/firemountain/hermes-gitops/internal/testenv"
	"github.com/firemountain/hermes-gitops/reconcile"
	"github.com/firemountain/hermes-gitops/reconcile/worker"
	"github.com/firemountain/hermes-gitops/schema"
)

// Options choose the worker's transport.
type Options struct {
	// SSH reaches the worker through a real sshd on 127.0.0.1 (default: local transport).
	SSH bool
	// Proxy puts a TCP proxy between hermesctl and sshd, to cut the link.
	Proxy bool
	// NoHealthcheck runs the stand-in without its health check (scale benchmarks).
	NoHealthcheck bool
}

// Fleet is one test's world.
type Fleet struct {
	T       testing.TB
	Repo    string // the desired-state repository
	Root    string // the worker's tenant root
	Prefix  string // container name prefix of this test, e.g. "e2e3f9a1-"
	Image   string
	KeyFile string // age identity file
	SSHD    *testenv.SSHD
	Proxy   *testenv.Proxy
	Agent   *worker.AgentBinary

	mu      sync.Mutex
	outputs bytes.Buffer // everything any command printed
}

var (
	agentOnce sync.Once
	agentBin  *worker.AgentBinary
	agentErr  error
)

// AgentBinary builds cmd/hermes-agent once per test process.
func AgentBinary(t testing.TB) *worker.AgentBinary {
	agentOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hermes-agent-")
		if err != nil {
			agentErr = err
			return
		}
		_, file, _, _ := runtime.Caller(0)
		out := filepath.Join(dir, "hermes-agent")
		cmd := exec.Command("go", "build", "-o", out, "./cmd/hermes-agent")
		cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			agentErr = fmt.Errorf("build agent: %v\n%s", err, b)
			return
		}
		agentBin, agentErr = worker.NewAgentBinary(out, "run")
	})
	if agentErr != nil {
		t.Fatal(agentErr)
	}
	return agentBin
}

// New sets up a fleet with two apps (astral, spawn) and one worker "w1".
func New(t testing.TB, opts Options) *Fleet {
	t.Helper()
	image := testenv.RunnerImage(t)
	if opts.NoHealthcheck {
		var err error
		if image, err = standin.BuildWithoutHealthcheck(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	f := &Fleet{T: t, Image: image, Repo: t.TempDir(), Root: t.TempDir(), Agent: AgentBinary(t)}
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano())))
	f.Prefix = "e2e" + hex.EncodeToString(sum[:4]) + "-"
	t.Cleanup(f.removeContainers)

	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	f.KeyFile = filepath.Join(t.TempDir(), "key.txt")
	f.write(f.KeyFile, id.String()+"\n")
	f.write(filepath.Join(f.Repo, ".sops.yaml"), fmt.Sprintf(`creation_rules:
  - path_regex: ^tenants/.*\.ya?ml$
    encrypted_regex: ^secrets$
    mac_only_encrypted: true
    age: %s
stores:
  yaml:
    indent: 2
`, id.Recipient()))
	f.WriteApp("astral", `  env:
    HERMES_HOME: /data/hermes
    ASTRAL_KB_ROOT: /data/hermes/knowledge
  providers: [anthropic, openai, openai-codex, openrouter, anthropic-oauth]
  defaultBundles: [astral-core@0.1.0]`)
	f.WriteApp("spawn", `  env:
    HERMES_HOME: /data/hermes
  providers: [anthropic, openai-api, openai-codex, openrouter, anthropic-oauth]`)

	w := "  transport: local\n"
	if opts.SSH {
		f.SSHD = testenv.StartSSHD(t)
		port := f.SSHD.Port
		if opts.Proxy {
			f.Proxy = testenv.StartProxy(t, f.SSHD.Addr())
			port = f.Proxy.Port()
		}
		w = fmt.Sprintf("  transport: ssh\n  host: 127.0.0.1\n  port: %d\n  user: %s\n  hostKey: %q\n", port, f.SSHD.User, f.SSHD.HostKeyLine)
	}
	f.write(filepath.Join(f.Repo, "workers", "w1.yaml"), fmt.Sprintf(`apiVersion: hermes-gitops/v1
kind: Worker
metadata:
  name: w1
spec:
%s  tenantRoot: %s
`, w, f.Root))
	os.MkdirAll(filepath.Join(f.Repo, "tenants", "astral"), 0o755)
	os.MkdirAll(filepath.Join(f.Repo, "tenants", "spawn"), 0o755)
	return f
}

func (f *Fleet) write(path, content string) {
	f.T.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		f.T.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		f.T.Fatal(err)
	}
}

// WriteApp writes apps/<name>.yaml; extra is appended to its spec (indented 2).
func (f *Fleet) WriteApp(name, extra string) {
	f.write(filepath.Join(f.Repo, "apps", name+".yaml"), fmt.Sprintf(`apiVersion: hermes-gitops/v1
kind: App
metadata:
  name: %s
spec:
  containerPrefix: %s%s-
  image: %s
  tenantRoot: %s/tenants
  user: "10000:10000"
  memory: 256m
%s
`, name, f.Prefix, name, f.Image, name, extra))
}

// WriteTenant writes tenants/<app>/<id>.yaml with spec (YAML lines indented 2, without
// "worker") and secrets encrypted with sops.
func (f *Fleet) WriteTenant(app, id, spec string, secrets map[string]string) {
	f.T.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: hermes-gitops/v1\nkind: Tenant\nmetadata:\n  name: %s\n  app: %s\nspec:\n  worker: w1\n%s\n", id, app, strings.TrimRight(spec, "\n"))
	if len(secrets) > 0 {
		b.WriteString("secrets:\n")
		keys := make([]string, 0, len(secrets))
		for k := range secrets {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "  %s: %q\n", k, secrets[k])
		}
	}
	path := filepath.Join(f.Repo, "tenants", app, id+".yaml")
	data := []byte(b.String())
	if len(secrets) > 0 {
		var err error
		data, err = schema.EncryptYAML(data, filepath.Join(f.Repo, ".sops.yaml"), path)
		if err != nil {
			f.T.Fatalf("encrypt %s: %v", id, err)
		}
	}
	f.write(path, string(data))
}

// RemoveTenant deletes a tenant file.
func (f *Fleet) RemoveTenant(app, id string) {
	f.T.Helper()
	if err := os.Remove(filepath.Join(f.Repo, "tenants", app, id+".yaml")); err != nil {
		f.T.Fatal(err)
	}
}

// WriteRaw writes a repository file as is (for broken files).
func (f *Fleet) WriteRaw(rel, content string) { f.write(filepath.Join(f.Repo, rel), content) }

// Env sets the environment hermesctl reads for this fleet.
func (f *Fleet) Env() {
	t, ok := f.T.(interface{ Setenv(k, v string) })
	if !ok {
		return
	}
	t.Setenv("SOPS_AGE_KEY_FILE", f.KeyFile)
	t.Setenv("SOPS_AGE_KEY", "")
	t.Setenv("HERMES_AGENT_BINARY", f.Agent.Path)
	t.Setenv("NO_COLOR", "1")
	if f.SSHD != nil {
		t.Setenv("HERMES_SSH_KEY_FILE", f.SSHD.UserKeyFile)
	}
}

// CLI runs hermesctl in-process and returns its exit code and outputs.
func (f *Fleet) CLI(args ...string) (code int, stdout, stderr string) {
	f.T.Helper()
	f.Env()
	var out, errb bytes.Buffer
	code = cli.Main(args, strings.NewReader(""), &out, &errb)
	f.AddOutput(out.String() + errb.String())
	return code, out.String(), errb.String()
}

// MustCLI runs hermesctl and fails the test unless it exits with want.
func (f *Fleet) MustCLI(want int, args ...string) string {
	f.T.Helper()
	code, out, errOut := f.CLI(args...)
	if code != want {
		f.T.Fatalf("hermesctl %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, out, errOut)
	}
	return out + errOut
}

// Session loads the repository and plans, as the CLI does.
func (f *Fleet) Session(ctx context.Context, prune bool) *reconcile.Session {
	f.T.Helper()
	repo, err := schema.Load(f.Repo, schema.LoadOptions{})
	if err != nil {
		f.T.Fatal(err)
	}
	key, _ := os.ReadFile(f.KeyFile)
	ids, err := schema.ParseIdentities(string(key), "test key")
	if err != nil {
		f.T.Fatal(err)
	}
	opts := worker.Options{Agent: f.Agent, RepoDir: f.Repo}
	if f.SSHD != nil {
		opts.KeyFile = f.SSHD.UserKeyFile
	}
	s, err := reconcile.NewSession(ctx, repo, reconcile.Config{Identities: ids, Worker: opts, Prune: prune})
	if err != nil {
		f.T.Fatal(err)
	}
	f.T.Cleanup(s.Close)
	return s
}

// Outputs is everything hermesctl printed so far.
func (f *Fleet) Outputs() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.outputs.String()
}

// AddOutput records text produced outside the CLI (reports) for canary checks.
func (f *Fleet) AddOutput(s string) {
	f.mu.Lock()
	f.outputs.WriteString(s)
	f.mu.Unlock()
}

// Docker runs the docker CLI and returns its trimmed output; failure fails the test.
func (f *Fleet) Docker(args ...string) string {
	f.T.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		f.T.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Containers lists this fleet's container names (all states), sorted.
func (f *Fleet) Containers() []string {
	f.T.Helper()
	out, err := exec.Command("docker", "ps", "-a", "--filter", "name=^"+f.Prefix, "--format", "{{.Names}}").Output()
	if err != nil {
		f.T.Fatal(err)
	}
	names := strings.Fields(string(out))
	slices.Sort(names)
	return names
}

// Name is the container name of a tenant.
func (f *Fleet) Name(app, id string) string { return f.Prefix + app + "-" + id }

// Home is a tenant's hermes-home on the worker.
func (f *Fleet) Home(app, id string) string {
	return filepath.Join(f.Root, app, "tenants", id, "hermes-home")
}

// Inspect returns `docker inspect` of a container.
func (f *Fleet) Inspect(name string) map[string]any {
	f.T.Helper()
	var v []map[string]any
	if err := json.Unmarshal([]byte(f.Docker("inspect", name)), &v); err != nil || len(v) != 1 {
		f.T.Fatalf("inspect %s: %v", name, err)
	}
	return v[0]
}

// Loaded is what the stand-in runner in a container loaded at start.
type Loaded struct {
	Provider   string            `json:"provider"`
	Env        map[string]string `json:"env"`
	ProcessEnv []string          `json:"processEnv"`
	StartedAt  string            `json:"startedAt"`
}

// Loaded asks the stand-in runner what it loaded.
func (f *Fleet) Loaded(name string) Loaded {
	f.T.Helper()
	var l Loaded
	if err := json.Unmarshal([]byte(f.Docker("exec", name, "/runner", "loaded")), &l); err != nil {
		f.T.Fatalf("loaded %s: %v", name, err)
	}
	return l
}

// SHA256 is the plain digest the stand-in reports for a loaded value.
func SHA256(v string) string {
	sum := sha256.Sum256([]byte(v))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func (f *Fleet) removeContainers() {
	out, _ := exec.Command("docker", "ps", "-aq", "--filter", "name=^"+f.Prefix).Output()
	if ids := strings.Fields(string(out)); len(ids) > 0 {
		exec.Command("docker", append([]string{"rm", "-f", "-v"}, ids...)...).Run()
	}
}
