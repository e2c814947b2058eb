package plan_test

import (
	"fmt"
	"testing"
	"testing/fstest"

	"github.com/firemountain/hermes-gitops/reconcile/live"
	"github.com/firemountain/hermes-gitops/reconcile/plan"
	"github.com/firemountain/hermes-gitops/reconcile/render"
	"github.com/firemountain/hermes-gitops/schema"
)

// fleet renders n tenants of a generated repository (no secrets: they do not change the
// planner's work, which compares fingerprints).
func fleet(b *testing.B, n int) []*render.Tenant {
	b.Helper()
	fsys := fstest.MapFS{
		"apps/spawn.yaml": {Data: []byte("apiVersion: hermes-gitops/v1\nkind: App\nmetadata: {name: spawn}\nspec:\n  containerPrefix: spawn-tenant-\n  image: runner:1\n  tenantRoot: spawn\n  user: \"10000:10000\"\n  env: {HERMES_HOME: /data/hermes}\n  providers: [openai-codex]\n  defaultBundles: [writing@0.1.0, research@0.1.0]\n")},
		"workers/w1.yaml": {Data: []byte("apiVersion: hermes-gitops/v1\nkind: Worker\nmetadata: {name: w1}\nspec: {transport: local, tenantRoot: /srv}\n")},
	}
	for i := range n {
		fsys[fmt.Sprintf("tenants/spawn/t%04d.yaml", i)] = &fstest.MapFile{Data: []byte(fmt.Sprintf(
			"apiVersion: hermes-gitops/v1\nkind: Tenant\nmetadata: {name: t%04d, app: spawn}\nspec:\n  worker: w1\n  provider: {id: openai-codex}\n  skills: [daily-brief]\n", i))}
	}
	repo, err := schema.LoadFS(fsys, "bench", schema.LoadOptions{})
	if err != nil || repo.Problems.HasErrors() {
		b.Fatalf("%v %v", err, repo.Problems.Errors())
	}
	var out []*render.Tenant
	for _, t := range repo.Tenants {
		rt, err := render.Render(render.Input{Tenant: t, App: repo.Apps["spawn"], Worker: repo.Workers["w1"], Catalogue: repo.Catalogue, Fingerprint: fp})
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, rt)
	}
	return out
}

// BenchmarkPlan1000 plans 1,000 converged tenants with a few drifted ones (target:
// ≤ 20 ms per plan).
func BenchmarkPlan1000(b *testing.B) {
	tenants := fleet(b, 1000)
	w := converged(tenants)
	for i := 0; i < len(w.Homes); i += 50 {
		w.Homes[i].Files["config.yaml"] = "sha256:drifted"
	}
	obs := map[string]*live.Worker{"w1": w}
	d := plan.Desired{Tenants: tenants, Workers: []string{"w1"}, Scopes: map[string][]plan.Scope{"w1": {{App: "spawn", Root: "/srv/spawn", Prefix: "spawn-tenant-"}}}}
	b.ReportAllocs()
	b.ResetTimer()
	var p *plan.Plan
	for b.Loop() {
		p = plan.Compute(d, obs, plan.Options{})
	}
	b.StopTimer()
	if s := p.Summarize(); s.Patch != 20 || s.Noop+s.AwaitingAuth != 980 {
		b.Fatalf("unexpected plan: %+v", s)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/plan")
}
