package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/firemountain/hermes-gitops/reconcile"
	"github.com/firemountain/hermes-gitops/reconcile/agent"
	"github.com/firemountain/hermes-gitops/reconcile/live"
	"github.com/firemountain/hermes-gitops/reconcile/render"
	"github.com/firemountain/hermes-gitops/reconcile/worker"
	"github.com/firemountain/hermes-gitops/schema"
)

// seedHomes writes n tenant homes of app spawn straight onto the worker's disk (the
// worker is this host), each with config.yaml, .env, a lock and one skill file.
func seedHomes(t testing.TB, f *Fleet, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		id := fmt.Sprintf("t%04d", i)
		ids[i] = id
		home := f.Home("spawn", id)
		for _, d := range render.Scaffold {
			os.MkdirAll(filepath.Join(home, d), 0o755)
		}
		os.MkdirAll(filepath.Join(home, ".hermes-gitops"), 0o755)
		os.MkdirAll(filepath.Join(home, "skills", "general", "s1"), 0o755)
		os.WriteFile(filepath.Join(home, "config.yaml"), []byte("model:\n  provider: openrouter\n  default: x\n"), 0o644)
		os.WriteFile(filepath.Join(home, ".env"), []byte(fmt.Sprintf("OPENROUTER_API_KEY=sk-or-%d\nHERMES_HOME=/data/hermes\n", i)), 0o600)
		os.WriteFile(filepath.Join(home, "skills", "general", "s1", "SKILL.md"), []byte("---\nname: s1\n---\n"), 0o644)
		os.WriteFile(filepath.Join(home, live.LockFile), []byte(`{"version":1,"bundles":[],"skills":[],"files":[{"path":"skills/general/s1/SKILL.md","digest":"sha256:x"}]}`), 0o644)
		os.WriteFile(filepath.Join(home, "auth.json"), []byte(`{"version":1,"credential_pool":{}}`), 0o600)
	}
	return ids
}

// startContainers runs n managed containers of the seeded homes, 8 at a time.
func startContainers(t testing.TB, f *Fleet, ids []string) {
	t.Helper()
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	errs := make(chan error, len(ids))
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			home := f.Home("spawn", id)
			os.Chown(home, 10000, 10000)
			out, err := exec.Command("docker", "run", "-d", "--name", f.Name("spawn", id), "--user", "10000:10000",
				"--cap-drop", "ALL", "--memory", "64m", "--mount", "type=bind,source="+home+",target=/data/hermes",
				"--label", live.LabelManagedBy+"="+live.ManagedByValue, "--label", live.LabelTenant+"="+id, "--label", live.LabelApp+"=spawn",
				f.Image).CombinedOutput()
			if err != nil {
				errs <- fmt.Errorf("run %s: %v %s", id, err, out)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// observeConn connects to the fleet's worker as the CLI does.
func observeConn(t testing.TB, f *Fleet) (*worker.Conn, []agent.AppRoot) {
	t.Helper()
	repo, err := schema.Load(f.Repo, schema.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w := repo.Workers["w1"]
	opts := worker.Options{Agent: f.Agent}
	if f.SSHD != nil {
		opts.KeyFile = f.SSHD.UserKeyFile
	}
	conn, err := worker.Dial(w, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, reconcile.AppRoots(repo, w)
}

// TestObserveFiftyTenantsInOneRoundTrip observes 50 tenant homes and 10 containers over a
// real sshd and counts the round trips: after the first contact (connect, install the
// agent) an observation is exactly one.
func TestObserveFiftyTenantsInOneRoundTrip(t *testing.T) {
	f := New(t, Options{SSH: true})
	ids := seedHomes(t, f, 50)
	startContainers(t, f, ids[:10])
	conn, apps := observeConn(t, f)
	ctx := context.Background()

	if _, err := conn.Observe(ctx, apps, render.Scaffold); err != nil {
		t.Fatal(err)
	}
	first := conn.RoundTrips()
	if first > 4 { // connect, try, upload agent, run
		t.Errorf("first observation took %d round trips, want at most 4", first)
	}
	w, err := conn.Observe(ctx, apps, render.Scaffold)
	if err != nil {
		t.Fatal(err)
	}
	if n := conn.RoundTrips() - first; n != 1 {
		t.Fatalf("an observation of 50 tenants took %d round trips, want exactly 1", n)
	}
	if len(w.Homes) != 50 {
		t.Fatalf("observed %d homes, want 50", len(w.Homes))
	}
	mine := 0
	for _, c := range w.Containers {
		if c.App() == "spawn" && len(c.Name) > len(f.Prefix) && c.Name[:len(f.Prefix)] == f.Prefix {
			mine++
		}
	}
	if mine != 10 {
		t.Fatalf("observed %d of this test's containers, want 10", mine)
	}
	h := w.Home("spawn", "t0007")
	if h == nil || h.Env == nil || h.Env.Keys["OPENROUTER_API_KEY"] == "" || h.Files["skills/general/s1/SKILL.md"] == "" || len(h.MissingDirs) != 0 {
		t.Fatalf("home t0007 observed as %+v", h)
	}
	if h.Env.Keys["OPENROUTER_API_KEY"] == "sk-or-7" {
		t.Fatal("a secret value came back from the worker")
	}
}
