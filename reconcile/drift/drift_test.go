package drift_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/firemountain/hermes-gitops/internal/report"
	"github.com/firemountain/hermes-gitops/reconcile/agent"
	"github.com/firemountain/hermes-gitops/reconcile/drift"
	"github.com/firemountain/hermes-gitops/reconcile/live"
	"github.com/firemountain/hermes-gitops/reconcile/plan"
	"github.com/firemountain/hermes-gitops/reconcile/render"
	"github.com/firemountain/hermes-gitops/schema"
)

var update = flag.Bool("update", false, "rewrite golden files")

var key = []byte("0123456789abcdef0123456789abcdef")

func fp(v string) string { return agent.Fingerprint(key, v) }

// fixture renders tenants.example and a worker on which all of it runs as desired.
func fixture(t *testing.T) ([]*render.Tenant, *live.Worker, *schema.Repo) {
	t.Helper()
	repo, err := schema.Load("../../tenants.example", schema.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := os.ReadFile("../../tenants.example/demo.agekey")
	ids, err := schema.ParseIdentities(string(k), "demo")
	if err != nil {
		t.Fatal(err)
	}
	repo.Decrypt(ids)
	var tenants []*render.Tenant
	w := &live.Worker{Worker: "local"}
	for _, tn := range repo.Tenants {
		rt, err := render.Render(render.Input{Tenant: tn, App: repo.Apps[tn.Metadata.App], Worker: repo.Workers[tn.Spec.Worker], Catalogue: repo.Catalogue, Fingerprint: fp})
		if err != nil {
			t.Fatal(err)
		}
		tenants = append(tenants, rt)
		c := rt.Container
		ct := live.Container{Name: c.Name, Image: c.Image, Labels: c.Labels, Env: map[string]string{}, Mounts: c.Mounts, User: c.User,
			CapDrop: []string{"ALL"}, SecurityOpt: []string{"no-new-privileges:true"}, Memory: c.MemoryBytes, PidsLimit: c.PidsLimit,
			RestartPolicy: c.RestartPolicy, State: live.State{Status: "running", Running: true, Health: "healthy"}}
		for _, e := range c.Env {
			ct.Env[e.Name] = e.Fingerprint
		}
		w.Containers = append(w.Containers, ct)
		h := live.Home{App: rt.App, ID: rt.ID, Path: rt.Home, Files: map[string]string{}, Env: &live.EnvShape{Keys: map[string]string{}, Mode: 0o600}}
		for _, f := range rt.Files {
			h.Files[f.Path] = f.Digest
		}
		for _, e := range rt.Env {
			h.Env.Keys[e.Name] = e.Fingerprint
			h.Env.Order = append(h.Env.Order, e.Name)
		}
		lock := rt.Lock
		h.Lock = &lock
		w.Homes = append(w.Homes, h)
	}
	return tenants, w, repo
}

func home(w *live.Worker, id string) *live.Home {
	for i := range w.Homes {
		if w.Homes[i].ID == id {
			return &w.Homes[i]
		}
	}
	return nil
}

func container(w *live.Worker, id string) *live.Container {
	for i := range w.Containers {
		if w.Containers[i].Tenant() == id {
			return &w.Containers[i]
		}
	}
	return nil
}

// TestDriftReportGolden breaks the example fleet in the control planes' classic ways and
// compares the JSON and markdown reports with golden files.
func TestDriftReportGolden(t *testing.T) {
	tenants, w, repo := fixture(t)

	// .env edited by hand: a managed key changed, one added by hand.
	nova := home(w, "nova")
	nova.Env.Keys["OPENAI_API_KEY"] = fp("sk-edited-by-hand")
	nova.Env.Keys["HAND_ADDED"] = fp("1")
	nova.Env.Order = append(nova.Env.Order, "HAND_ADDED")
	// Re-run by hand without the KB root and the hardening flags.
	vega := container(w, "vega")
	delete(vega.Env, "ASTRAL_KB_ROOT")
	vega.CapDrop, vega.SecurityOpt, vega.Memory = []string{}, []string{}, 0
	// config.yaml: terminal switched off.
	atlas := home(w, "atlas")
	atlas.Files["config.yaml"] = "sha256:edited"
	var atlasConf []byte
	for _, tn := range tenants {
		if tn.ID == "atlas" {
			atlasConf = tn.Files[slices.IndexFunc(tn.Files, func(f render.File) bool { return f.Path == "config.yaml" })].Content
		}
	}
	liveConf := strings.Replace(string(atlasConf), "[terminal, ", "[", -1)
	liveConf = strings.Replace(liveConf, "backend: tavily", "backend: firecrawl", 1)
	// Knowledge base gone; a skill missing; a bundle at an older version.
	maya := home(w, "mayaastral")
	maya.MissingDirs = []string{"knowledge", "knowledge/raw"}
	for p := range maya.Files {
		if strings.HasPrefix(p, "skills/astral/synastry/") {
			delete(maya.Files, p)
		}
	}
	maya.Lock.Bundles = []live.LockedBundle{{Name: "astral-core", Version: "0.1.0"}, {Name: "astral-hd", Version: "0.2.0"}}
	// OAuth: the dual-write gap, and one not logged in.
	home(w, "cody1").Auth = &live.AuthShape{Valid: true, Pool: map[string]int{"openai-codex": 1}, Mode: 0o600}
	// A stopped container, a look-alike and an orphan.
	container(w, "orion").State = live.State{Status: "exited", ExitCode: 1, RestartCount: 5}
	w.Unmanaged = append(w.Unmanaged, live.Container{Name: "spawn-tenant-lookalike", State: live.State{Status: "running"}})
	w.Containers = append(w.Containers, live.Container{Name: "spawn-tenant-gone", Labels: map[string]string{
		live.LabelManagedBy: live.ManagedByValue, live.LabelTenant: "gone", live.LabelApp: "spawn"}, State: live.State{Status: "running", Running: true}})

	scopes := map[string][]plan.Scope{"local": {
		{App: "astral", Root: "/var/tmp/hermes-gitops-demo/astral/tenants", Prefix: "astral-tenant-"},
		{App: "spawn", Root: "/var/tmp/hermes-gitops-demo/spawn/tenants", Prefix: "spawn-tenant-"},
	}}
	obs := map[string]*live.Worker{"local": w}
	p := plan.Compute(plan.Desired{Tenants: tenants, Workers: []string{"local"}, Scopes: scopes}, obs, plan.Options{})
	findings := drift.Compute(drift.Input{Plan: p, Observed: obs, LiveConfs: map[string][]byte{"atlas": []byte(liveConf)}})
	rep := report.NewDriftReport(findings, drift.Summarize(tenants, obs, findings))

	var js, md, text bytes.Buffer
	if err := report.DriftJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	report.DriftMarkdown(&md, rep)
	report.DriftText(&text, rep, report.Colors{})
	golden(t, "testdata/report.golden.json", js.Bytes())
	golden(t, "testdata/report.golden.md", md.Bytes())
	golden(t, "testdata/report.golden.txt", text.Bytes())

	for _, want := range []string{"env.changed", "env.unmanaged", "container.env-missing", "container.hardening", "config.changed",
		"kb.missing", "skills.missing", "skills.version", "auth.dual-write-gap", "auth.awaiting-login", "container.crash-loop",
		"container.unmanaged", "tenant.orphan"} {
		if rep.Summary.ByCode[want] == 0 {
			t.Errorf("no %s finding", want)
		}
	}
	if !strings.Contains(text.String(), "platform_toolsets.cli lost terminal") || !strings.Contains(text.String(), "web.backend is firecrawl, git says tavily") {
		t.Errorf("config diff is not field-level:\n%s", text.String())
	}
	all := js.String() + md.String() + text.String()
	for _, tn := range repo.Tenants {
		for k, v := range tn.SecretValues {
			if strings.Contains(all, v.Reveal()) {
				t.Errorf("secret %s of %s is in the report", k, tn.Metadata.Name)
			}
		}
	}
}

func TestConfigDiffMasksSecretLookingKeys(t *testing.T) {
	d := drift.ConfigDiff([]byte("model:\n  provider: anthropic\n"), []byte("model:\n  provider: anthropic\n  api_key: sk-pasted-by-hand\n"))
	if len(d) != 1 || d[0].Path != "model.api_key" || d[0].Live != "(set)" || strings.Contains(d[0].String(), "sk-pasted") {
		t.Fatalf("diff %+v", d)
	}
	if d := drift.ConfigDiff([]byte("a: 1\n"), []byte("a: [\n")); len(d) != 1 || !strings.Contains(d[0].Live, "invalid YAML") {
		t.Fatalf("unparsable live config: %+v", d)
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		os.WriteFile(path, got, 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update to accept):\n%s", path, got)
	}
}
