package plan_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/firemountain/hermes-gitops/internal/report"
	"github.com/firemountain/hermes-gitops/internal/testkit"
	"github.com/firemountain/hermes-gitops/reconcile/live"
	"github.com/firemountain/hermes-gitops/reconcile/plan"
	"github.com/firemountain/hermes-gitops/reconcile/render"
	"github.com/firemountain/hermes-gitops/schema"
)

var update = flag.Bool("update", false, "rewrite golden files")

var (
	exampleScopes = testkit.Scopes
	fp            = testkit.FP
	container     = testkit.Container
	home          = testkit.Home
)

func example(t testing.TB) ([]*render.Tenant, *schema.Repo) { return testkit.Example(t, "../..") }

func converged(tenants []*render.Tenant) *live.Worker { return testkit.Converged(tenants, true) }

func find[T any](items []T, match func(T) bool) *T {
	for i := range items {
		if match(items[i]) {
			return &items[i]
		}
	}
	return nil
}

func tenant(ts []*render.Tenant, id string) *render.Tenant {
	for _, t := range ts {
		if t.ID == id {
			return t
		}
	}
	return nil
}

// TestPlanGolden breaks a converged worker in one way per case, plans, and compares the
// rendered plan with a golden file. Together the cases cover every action.
func TestPlanGolden(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(d *plan.Desired, w *live.Worker)
		opts   plan.Options
		want   map[string]plan.Action // tenant → action
	}{
		{"converged", func(d *plan.Desired, w *live.Worker) {}, plan.Options{},
			map[string]plan.Action{"nova": plan.Noop, "cody1": plan.Noop}},
		{"create", func(d *plan.Desired, w *live.Worker) {
			w.Containers = slices.DeleteFunc(w.Containers, func(c live.Container) bool { return c.Tenant() == "nova" })
			w.Homes = slices.DeleteFunc(w.Homes, func(h live.Home) bool { return h.ID == "nova" })
		}, plan.Options{}, map[string]plan.Action{"nova": plan.Create}},
		{"recreate-kb-env-missing", func(d *plan.Desired, w *live.Worker) {
			delete(container(w, "mayaastral").Env, "ASTRAL_KB_ROOT") // docker run without -e (pitfall 7)
		}, plan.Options{}, map[string]plan.Action{"mayaastral": plan.Recreate}},
		{"recreate-hardening-and-image", func(d *plan.Desired, w *live.Worker) {
			c := container(w, "vega")
			c.CapDrop, c.SecurityOpt, c.Memory = []string{}, []string{}, 0
			c.Image = "hermes-runner:old"
		}, plan.Options{}, map[string]plan.Action{"vega": plan.Recreate}},
		{"patch-secret-changed", func(d *plan.Desired, w *live.Worker) {
			home(w, "nova").Env.Keys["OPENAI_API_KEY"] = fp("sk-an-old-key")
		}, plan.Options{}, map[string]plan.Action{"nova": plan.Patch}},
		{"patch-config-and-skills", func(d *plan.Desired, w *live.Worker) {
			h := home(w, "atlas")
			h.Files["config.yaml"] = "sha256:edited-by-hand"
			for p := range h.Files {
				if strings.HasPrefix(p, "skills/research/cited-summary/") {
					delete(h.Files, p)
				}
			}
			h.Lock.Files = append(slices.Clone(h.Lock.Files), live.LockedFile{Path: "skills/writing/retired-skill/SKILL.md", Digest: "sha256:x"})
			h.MissingDirs = []string{"knowledge/raw", "knowledge/entities/people"}
		}, plan.Options{}, map[string]plan.Action{"atlas": plan.Patch}},
		{"unmanaged-env-key-is-not-a-change", func(d *plan.Desired, w *live.Worker) {
			home(w, "vega").Env.Keys["HAND_ADDED"] = fp("x")
		}, plan.Options{}, map[string]plan.Action{"vega": plan.Noop}},
		{"start-stop", func(d *plan.Desired, w *live.Worker) {
			container(w, "vega").State = live.State{Status: "exited", ExitCode: 137}
			tenant(d.Tenants, "nova").State = "suspended"
		}, plan.Options{}, map[string]plan.Action{"vega": plan.Start, "nova": plan.Stop}},
		{"delete", func(d *plan.Desired, w *live.Worker) {
			tenant(d.Tenants, "atlas").State = "deleted"
		}, plan.Options{}, map[string]plan.Action{"atlas": plan.Delete}},
		{"orphan", func(d *plan.Desired, w *live.Worker) {
			d.Tenants = slices.DeleteFunc(d.Tenants, func(t *render.Tenant) bool { return t.ID == "vega" })
		}, plan.Options{}, map[string]plan.Action{"vega": plan.Orphan}},
		{"prune", func(d *plan.Desired, w *live.Worker) {
			d.Tenants = slices.DeleteFunc(d.Tenants, func(t *render.Tenant) bool { return t.ID == "vega" })
		}, plan.Options{Prune: true}, map[string]plan.Action{"vega": plan.Prune}},
		{"prune-never-on-empty-desired-state", func(d *plan.Desired, w *live.Worker) {
			d.Tenants, d.Empty = nil, true
		}, plan.Options{Prune: true}, map[string]plan.Action{"vega": plan.Orphan, "nova": plan.Orphan}},
		{"hold", func(d *plan.Desired, w *live.Worker) {
			d.Tenants = slices.DeleteFunc(d.Tenants, func(t *render.Tenant) bool { return t.ID == "nova" })
			d.Held = append(d.Held, plan.Held{ID: "nova", App: "spawn", Worker: "local", Source: "tenants/spawn/nova.yaml",
				Reasons: []string{"tenants/spawn/nova.yaml:9:5: spec.provider.id: unknown provider \"gpt\""}})
		}, plan.Options{Prune: true}, map[string]plan.Action{"nova": plan.Hold}},
		{"awaiting-auth-dual-write-gap", func(d *plan.Desired, w *live.Worker) {
			home(w, "cody1").Auth = &live.AuthShape{Valid: true, Pool: map[string]int{"openai-codex": 1}}
			home(w, "quill").Auth = nil
		}, plan.Options{}, map[string]plan.Action{"cody1": plan.AwaitingAuth, "quill": plan.AwaitingAuth}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tenants, _ := example(t)
			w := converged(tenants)
			d := plan.Desired{Tenants: tenants, Workers: []string{"local"}, Scopes: exampleScopes}
			tc.mutate(&d, w)
			p := plan.Compute(d, map[string]*live.Worker{"local": w}, tc.opts)
			for id, want := range tc.want {
				c := find(p.Changes, func(c plan.Change) bool { return c.Tenant == id })
				if c == nil || c.Action != want {
					t.Errorf("tenant %s: got %+v, want action %s", id, c, want)
				}
			}
			var buf bytes.Buffer
			report.PlanText(&buf, p, report.Colors{}, false)
			golden(t, filepath.Join("testdata", tc.name+".golden"), buf.Bytes())
		})
	}
}

func TestPlanUnreachableWorkerHoldsItsTenants(t *testing.T) {
	tenants, _ := example(t)
	p := plan.Compute(plan.Desired{Tenants: tenants, Workers: []string{"local"}, Scopes: exampleScopes}, map[string]*live.Worker{}, plan.Options{Prune: true})
	for _, c := range p.Changes {
		if c.Action != plan.Hold {
			t.Errorf("%s: %s on an unreachable worker", c.Tenant, c.Action)
		}
	}
	if p.HasChanges() {
		t.Error("a plan for an unreachable worker has changes")
	}
}

func TestPlanIsSortedAndDeterministic(t *testing.T) {
	tenants, _ := example(t)
	w := converged(tenants)
	slices.Reverse(tenants)
	a := plan.Compute(plan.Desired{Tenants: tenants, Workers: []string{"local"}, Scopes: exampleScopes}, map[string]*live.Worker{"local": w}, plan.Options{})
	slices.Reverse(tenants)
	b := plan.Compute(plan.Desired{Tenants: tenants, Workers: []string{"local"}, Scopes: exampleScopes}, map[string]*live.Worker{"local": w}, plan.Options{})
	var ja, jb bytes.Buffer
	report.PlanJSON(&ja, a)
	report.PlanJSON(&jb, b)
	if ja.String() != jb.String() {
		t.Fatal("plan depends on input order")
	}
	for i := 1; i < len(a.Changes); i++ {
		if a.Changes[i-1].Tenant > a.Changes[i].Tenant {
			t.Fatalf("changes not sorted: %s before %s", a.Changes[i-1].Tenant, a.Changes[i].Tenant)
		}
	}
}

// TestPlanShowsNoSecret plans a secret change and a create and greps every rendering for
// the plaintext values of every example secret.
func TestPlanShowsNoSecret(t *testing.T) {
	tenants, repo := example(t)
	w := converged(tenants)
	home(w, "nova").Env.Keys["OPENAI_API_KEY"] = fp("old")
	w.Containers = slices.DeleteFunc(w.Containers, func(c live.Container) bool { return c.Tenant() == "mayaastral" })
	p := plan.Compute(plan.Desired{Tenants: tenants, Workers: []string{"local"}, Scopes: exampleScopes}, map[string]*live.Worker{"local": w}, plan.Options{})
	var out bytes.Buffer
	report.PlanText(&out, p, report.Colors{}, true)
	report.PlanJSON(&out, p)
	report.PlanMarkdown(&out, p)
	if !strings.Contains(out.String(), "OPENAI_API_KEY (secret changed) "+fp("old")+" → "+fp("sk-demo-nova-0000000000000000")) {
		t.Errorf("the secret change is not shown by fingerprint:\n%s", out.String())
	}
	for _, tn := range repo.Tenants {
		for k, v := range tn.SecretValues {
			if strings.Contains(out.String(), v.Reveal()) {
				t.Errorf("secret %s of %s appears in the plan output", k, tn.Metadata.Name)
			}
		}
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
