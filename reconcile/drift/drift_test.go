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
	"github.com/firemountain/hermes-gitops/internal/testkit"
	"github.com/firemountain/hermes-gitops/reconcile/drift"
	"github.com/firemountain/hermes-gitops/reconcile/live"
	"github.com/firemountain/hermes-gitops/reconcile/plan"
	"github.com/firemountain/hermes-gitops/reconcile/render"
)

var update = flag.Bool("update", false, "rewrite golden files")

var (
	fp        = testkit.FP
	home      = testkit.Home
	container = testkit.Container
)

// TestDriftReportGolden breaks the example fleet in the control planes' classic ways and
// compares the JSON and markdown reports with golden files.
func TestDriftReportGolden(t *testing.T) {
	tenants, repo := testkit.Example(t, "../..")
	w := testkit.Converged(tenants, false)

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

	scopes := testkit.Scopes
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
