// Package testkit builds the fixtures the pure packages' tests share: the example
// desired state rendered with a fixed fingerprint key, and the observation of a worker on
// which it runs exactly as desired (tests then break it one way at a time).
package testkit

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/firemountain/hermes-gitops/reconcile/agent"
	"github.com/firemountain/hermes-gitops/reconcile/live"
	"github.com/firemountain/hermes-gitops/reconcile/plan"
	"github.com/firemountain/hermes-gitops/reconcile/render"
	"github.com/firemountain/hermes-gitops/schema"
)

// Key is the fingerprint key of the fixtures' worker.
var Key = []byte("0123456789abcdef0123456789abcdef")

// FP fingerprints a value with Key.
func FP(v string) string { return agent.Fingerprint(Key, v) }

// Scopes are where tenants.example's apps live on its local worker.
var Scopes = map[string][]plan.Scope{"local": {
	{App: "astral", Root: "/var/tmp/hermes-gitops-demo/astral/tenants", Prefix: "astral-tenant-"},
	{App: "spawn", Root: "/var/tmp/hermes-gitops-demo/spawn/tenants", Prefix: "spawn-tenant-"},
}}

// Example loads tenants.example from repoRoot (the module root, relative to the test),
// decrypts it with its demo key and renders every tenant with Key.
func Example(t testing.TB, repoRoot string) ([]*render.Tenant, *schema.Repo) {
	t.Helper()
	dir := filepath.Join(repoRoot, "tenants.example")
	repo, err := schema.Load(dir, schema.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(filepath.Join(dir, "demo.agekey"))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := schema.ParseIdentities(string(key), "demo.agekey")
	if err != nil {
		t.Fatal(err)
	}
	repo.Decrypt(ids)
	if repo.Problems.HasErrors() {
		t.Fatalf("the example has errors:\n%v", repo.Problems)
	}
	var out []*render.Tenant
	for _, tn := range repo.Tenants {
		rt, err := render.Render(render.Input{Tenant: tn, App: repo.Apps[tn.Metadata.App], Worker: repo.Workers[tn.Spec.Worker], Catalogue: repo.Catalogue, Fingerprint: FP})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rt)
	}
	return out, repo
}

// Converged is the observation of a worker on which every tenant is exactly as desired;
// with loggedIn, OAuth tenants have a complete auth.json.
func Converged(tenants []*render.Tenant, loggedIn bool) *live.Worker {
	w := &live.Worker{Worker: "local", FingerprintKey: Key}
	for _, t := range tenants {
		c := t.Container
		ct := live.Container{ID: "id-" + t.ID, Name: c.Name, Image: c.Image, Labels: c.Labels, Env: map[string]string{"PATH": FP("/bin")},
			Mounts: c.Mounts, User: c.User, CapDrop: []string{"ALL"}, CapAdd: []string{}, SecurityOpt: []string{"no-new-privileges:true"},
			Memory: c.MemoryBytes, PidsLimit: c.PidsLimit, RestartPolicy: c.RestartPolicy,
			State: live.State{Status: "running", Running: true, Health: "healthy"}}
		for _, e := range append(slices.Clone(c.Env), c.SecretEnv...) {
			ct.Env[e.Name] = e.Fingerprint
		}
		w.Containers = append(w.Containers, ct)
		h := live.Home{App: t.App, ID: t.ID, Path: t.Home, Files: map[string]string{}, Env: &live.EnvShape{Keys: map[string]string{}, Mode: 0o600}}
		for _, f := range t.Files {
			h.Files[f.Path] = f.Digest
		}
		for _, e := range t.Env {
			h.Env.Keys[e.Name] = e.Fingerprint
			h.Env.Order = append(h.Env.Order, e.Name)
		}
		lock := t.Lock
		h.Lock = &lock
		if loggedIn && t.Provider.OAuth {
			k := t.Provider.AuthKey()
			h.Auth = &live.AuthShape{Valid: true, ActiveProvider: k, Providers: []string{k}, Pool: map[string]int{k: 1}, Mode: 0o600}
		}
		w.Homes = append(w.Homes, h)
	}
	return w
}

// Container returns the container of a tenant in w.
func Container(w *live.Worker, id string) *live.Container {
	for i := range w.Containers {
		if w.Containers[i].Tenant() == id {
			return &w.Containers[i]
		}
	}
	return nil
}

// Home returns the home of a tenant in w.
func Home(w *live.Worker, id string) *live.Home {
	for i := range w.Homes {
		if w.Homes[i].ID == id {
			return &w.Homes[i]
		}
	}
	return nil
}
