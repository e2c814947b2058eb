package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/firemountain/hermes-gitops/reconcile/plan"
)

// Canary secrets: every one is grepped for in every output at the end of each test.
var canaries = map[string]string{
	"maya":  "sk-ant-CANARY-maya-7d41c0",
	"maya2": "sk-ant-CANARY-maya-rotated-91ee2b",
	"vega":  "sk-CANARY-vega-5a0f3e",
	"nova":  "sk-CANARY-nova-2c9b77",
	"atlas": "sk-or-CANARY-atlas-e410aa",
	"tg":    "000000000:CANARY-telegram-bot-8c1d",
}

func assertNoCanary(t *testing.T, f *Fleet) {
	t.Helper()
	out := f.Outputs()
	for name, v := range canaries {
		if strings.Contains(out, v) {
			t.Errorf("canary secret %s appears in hermesctl output", name)
		}
	}
}

// sixTenants writes six tenants over both apps and several providers.
func sixTenants(f *Fleet) {
	f.WriteTenant("astral", "maya", `  provider: {id: anthropic}
  telegram: {allowedUsers: [111111111]}`, map[string]string{"ANTHROPIC_API_KEY": canaries["maya"], "TELEGRAM_BOT_TOKEN": canaries["tg"]})
	f.WriteTenant("astral", "vega", `  provider: {id: openai}`, map[string]string{"OPENAI_API_KEY": canaries["vega"]})
	f.WriteTenant("astral", "orion", `  provider: {id: openai-codex}`, nil)
	f.WriteTenant("spawn", "nova", `  provider: {id: openai-api}
  bundles: [writing@0.1.0]`, map[string]string{"OPENAI_API_KEY": canaries["nova"]})
	f.WriteTenant("spawn", "atlas", `  provider: {id: openrouter}
  skills: [daily-brief]`, map[string]string{"OPENROUTER_API_KEY": canaries["atlas"]})
	f.WriteTenant("spawn", "cody1", `  provider: {id: openai-codex}`, nil)
}

func planJSON(t *testing.T, f *Fleet, args ...string) map[string]plan.Action {
	t.Helper()
	code, out, errOut := f.CLI(append([]string{"plan", "--repo", f.Repo, "--output", "json"}, args...)...)
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s\n%s", code, out, errOut)
	}
	var p struct {
		Changes []struct {
			Tenant string      `json:"tenant"`
			Action plan.Action `json:"action"`
		} `json:"changes"`
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("plan json: %v\n%s", err, out)
	}
	got := map[string]plan.Action{}
	for _, c := range p.Changes {
		got[c.Tenant] = c.Action
	}
	return got
}

func wantActions(t *testing.T, got map[string]plan.Action, want map[string]plan.Action) {
	t.Helper()
	for id, a := range want {
		if got[id] != a {
			t.Errorf("tenant %s: plan says %q, want %q (whole plan: %v)", id, got[id], a, got)
		}
	}
}

func apply(t *testing.T, f *Fleet, args ...string) string {
	t.Helper()
	return f.MustCLI(0, append([]string{"apply", "--repo", f.Repo, "--yes", "--timeout", "60s"}, args...)...)
}

// TestReconcileLifecycle is the sequence against a worker reached over a real
// sshd and the machine's Docker engine.
func TestReconcileLifecycle(t *testing.T) {
	f := New(t, Options{SSH: true})
	sixTenants(f)

	// 1. Create six tenants; a second apply plans nothing.
	out := apply(t, f)
	if !strings.Contains(out, "Apply complete: 6 ok, 0 failed") {
		t.Fatalf("first apply:\n%s", out)
	}
	if got := f.Containers(); len(got) != 6 {
		t.Fatalf("containers after create: %v", got)
	}
	for _, name := range f.Containers() {
		assertHardened(t, f, name)
	}
	got := planJSON(t, f)
	for id, a := range got {
		if a.Mutates() {
			t.Errorf("second plan wants %s for %s", a, id)
		}
	}
	out = f.MustCLI(0, "apply", "--repo", f.Repo, "--yes")
	if strings.Contains(out, "Apply complete") {
		t.Fatalf("second apply did something:\n%s", out)
	}
	if code, _, _ := f.CLI("plan", "--repo", f.Repo, "--detailed-exitcode"); code != 0 {
		t.Fatalf("plan --detailed-exitcode on a converged fleet exited %d, want 0", code)
	}
	maya := f.Name("astral", "maya")
	if l := f.Loaded(maya); l.Env["ANTHROPIC_API_KEY"] != SHA256(canaries["maya"]) || l.Provider != "anthropic" {
		t.Fatalf("maya loaded %+v", l)
	}
	// The secret is in the 0600 .env only, never in the container's config.
	if inspect := f.Docker("inspect", maya); strings.Contains(inspect, canaries["maya"]) {
		t.Fatal("docker inspect shows maya's API key")
	}
	envInfo, err := os.Stat(filepath.Join(f.Home("astral", "maya"), ".env"))
	if err != nil || envInfo.Mode().Perm() != 0o600 {
		t.Fatalf(".env: %v %v", envInfo, err)
	}

	// 2. Rotate a provider key: patch .env and restart; the runner loaded the new key.
	f.WriteTenant("astral", "maya", `  provider: {id: anthropic}
  telegram: {allowedUsers: [111111111]}`, map[string]string{"ANTHROPIC_API_KEY": canaries["maya2"], "TELEGRAM_BOT_TOKEN": canaries["tg"]})
	if code, _, _ := f.CLI("plan", "--repo", f.Repo, "--detailed-exitcode"); code != 2 {
		t.Fatalf("plan --detailed-exitcode with a change exited %d, want 2", code)
	}
	code, planOut, _ := f.CLI("plan", "--repo", f.Repo)
	if code != 0 || !strings.Contains(planOut, "ANTHROPIC_API_KEY (secret changed) fp:") || !strings.Contains(planOut, "Plan: 0 to create, 0 to recreate, 1 to patch, 0 to delete") {
		t.Fatalf("plan after key rotation:\n%s", planOut)
	}
	apply(t, f)
	if l := f.Loaded(maya); l.Env["ANTHROPIC_API_KEY"] != SHA256(canaries["maya2"]) {
		t.Fatalf("after rotation the runner loaded %s, want the new key", l.Env["ANTHROPIC_API_KEY"])
	}

	// 3. Change a baked env var of the app: recreate, new env inside, knowledge kept.
	note := filepath.Join(f.Home("astral", "vega"), "knowledge", "entities", "people", "kathleen.md")
	if err := os.WriteFile(note, []byte("# Kathleen Brown\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.WriteApp("astral", `  env:
    HERMES_HOME: /data/hermes
    ASTRAL_KB_ROOT: /data/hermes/knowledge
    ASTRAL_TIMEZONE: Europe/Berlin
  providers: [anthropic, openai, openai-codex, openrouter, anthropic-oauth]
  defaultBundles: [astral-core@0.1.0]`)
	wantActions(t, planJSON(t, f), map[string]plan.Action{"maya": plan.Recreate, "vega": plan.Recreate, "orion": plan.Recreate, "nova": plan.Noop})
	oldID := f.Docker("inspect", "-f", "{{.Id}}", f.Name("astral", "vega"))
	apply(t, f)
	vega := f.Name("astral", "vega")
	if id := f.Docker("inspect", "-f", "{{.Id}}", vega); id == oldID {
		t.Fatal("vega's container was not recreated")
	}
	if l := f.Loaded(vega); !slices.Contains(l.ProcessEnv, "ASTRAL_TIMEZONE") || !slices.Contains(l.ProcessEnv, "ASTRAL_KB_ROOT") {
		t.Fatalf("vega's process env after recreate: %v", l.ProcessEnv)
	}
	if b, err := os.ReadFile(note); err != nil || string(b) != "# Kathleen Brown\n" {
		t.Fatalf("knowledge lost in recreate: %q %v", b, err)
	}
	if ls := f.Docker("exec", vega, "ls", "-1a", "/data/hermes/knowledge/entities/people"); !strings.Contains(ls, "kathleen.md") {
		t.Fatalf("the container does not see its knowledge: %s", ls)
	}

	// 4. Change config: patch and restart.
	started := f.Loaded(f.Name("spawn", "nova")).StartedAt
	f.WriteTenant("spawn", "nova", `  provider: {id: openai-api, model: gpt-4.1-mini}
  bundles: [writing@0.1.0]
  web: {backend: exa}`, map[string]string{"OPENAI_API_KEY": canaries["nova"], "EXA_API_KEY": "exa-not-secret-enough"})
	wantActions(t, planJSON(t, f), map[string]plan.Action{"nova": plan.Patch, "maya": plan.Noop})
	apply(t, f)
	cfg, _ := os.ReadFile(filepath.Join(f.Home("spawn", "nova"), "config.yaml"))
	if !strings.Contains(string(cfg), "backend: exa") || !strings.Contains(string(cfg), "default: gpt-4.1-mini") {
		t.Fatalf("config.yaml not patched:\n%s", cfg)
	}
	if now := f.Loaded(f.Name("spawn", "nova")).StartedAt; now == started {
		t.Fatal("nova was not restarted after its config changed")
	}

	// 5. Bump a bundle pin: only skills change.
	f.WriteTenant("astral", "vega", `  provider: {id: openai}
  bundles: [astral-core@0.2.0]`, map[string]string{"OPENAI_API_KEY": canaries["vega"]})
	_, planOut, _ = f.CLI("plan", "--repo", f.Repo, "--tenant", "vega")
	for _, line := range strings.Split(planOut, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "worker ") || strings.HasPrefix(line, "~") || strings.HasPrefix(line, "Plan:") {
			continue
		}
		if !strings.Contains(line, "skill") && !strings.Contains(line, "lock.json") {
			t.Errorf("a bundle bump changes more than skills: %q", line)
		}
	}
	apply(t, f, "--tenant", "vega")
	var lock struct {
		Bundles []struct{ Name, Version string }
	}
	lockData, _ := os.ReadFile(filepath.Join(f.Home("astral", "vega"), ".hermes-gitops", "lock.json"))
	json.Unmarshal(lockData, &lock)
	if len(lock.Bundles) != 1 || lock.Bundles[0].Version != "0.2.0" {
		t.Fatalf("lock after bump: %s", lockData)
	}
	if _, err := os.Stat(filepath.Join(f.Home("astral", "vega"), "skills", "astral", "synastry", "SKILL.md")); err != nil {
		t.Fatalf("0.2.0's synastry skill not installed: %v", err)
	}

	// 6. Suspend: stopped. 7. Delete: container gone, data archived.
	f.WriteTenant("astral", "orion", `  provider: {id: openai-codex}
  state: suspended`, nil)
	wantActions(t, planJSON(t, f), map[string]plan.Action{"orion": plan.Stop})
	apply(t, f)
	if running := f.Docker("inspect", "-f", "{{.State.Running}}", f.Name("astral", "orion")); running != "false" {
		t.Fatalf("orion still running after suspend")
	}
	f.WriteTenant("astral", "orion", `  provider: {id: openai-codex}
  state: deleted`, nil)
	wantActions(t, planJSON(t, f), map[string]plan.Action{"orion": plan.Delete})
	apply(t, f)
	if slices.Contains(f.Containers(), f.Name("astral", "orion")) {
		t.Fatal("orion's container survived its deletion")
	}
	archived, _ := filepath.Glob(filepath.Join(f.Root, "astral", "tenants", ".archive", "orion-*", "hermes-home", "config.yaml"))
	if len(archived) != 1 {
		t.Fatalf("orion's data is not archived: %v", archived)
	}
	if _, err := os.Stat(f.Home("astral", "orion")); !os.IsNotExist(err) {
		t.Fatalf("orion's home still in place: %v", err)
	}

	// 8. A broken tenant file: held, nothing deleted even with --prune.
	f.WriteRaw("tenants/spawn/nova.yaml", "apiVersion: hermes-gitops/v1\nkind: Tenant\nmetadata:\n  name: nova\n  app: spawn\nspec: [broken\n")
	got = planJSON(t, f, "--prune")
	wantActions(t, got, map[string]plan.Action{"nova": plan.Hold})
	out = f.MustCLI(0, "apply", "--repo", f.Repo, "--yes", "--prune")
	if !slices.Contains(f.Containers(), f.Name("spawn", "nova")) {
		t.Fatalf("a held tenant's container was removed:\n%s", out)
	}

	// 9. An empty tenants dir: nothing deleted, even with --prune --force.
	for _, id := range []string{"maya", "vega", "orion"} {
		f.RemoveTenant("astral", id)
	}
	for _, id := range []string{"nova", "atlas", "cody1"} {
		f.RemoveTenant("spawn", id)
	}
	before := f.Containers()
	code, out, _ = f.CLI("apply", "--repo", f.Repo, "--yes", "--prune", "--force")
	if after := f.Containers(); !slices.Equal(before, after) {
		t.Fatalf("an empty desired state removed containers (exit %d): %v → %v\n%s", code, before, after, out)
	}
	assertNoCanary(t, f)
}

// TestDeletionLimit: three deletions out of ten without --force are refused; with
// --force they go through.
func TestDeletionLimit(t *testing.T) {
	f := New(t, Options{})
	for i := range 10 {
		f.WriteTenant("spawn", "t"+string(rune('a'+i))+"x", `  provider: {id: openai-codex}`, nil)
	}
	apply(t, f, "--concurrency", "8")
	for _, id := range []string{"tax", "tbx", "tcx"} {
		f.WriteTenant("spawn", id, "  provider: {id: openai-codex}\n  state: deleted", nil)
	}
	code, out, errOut := f.CLI("apply", "--repo", f.Repo, "--yes")
	if code != 1 || !strings.Contains(errOut, "apply refused") || !strings.Contains(errOut, "removes 3 of its 10 tenants; one pass may remove at most 1 without --force") {
		t.Fatalf("3 of 10 deletions not refused (exit %d):\n%s\n%s", code, out, errOut)
	}
	if n := len(f.Containers()); n != 10 {
		t.Fatalf("refused apply still removed containers: %d left", n)
	}
	apply(t, f, "--force")
	if n := len(f.Containers()); n != 7 {
		t.Fatalf("after --force: %d containers, want 7", n)
	}
}

// TestApplySurvivesConnectionLoss cuts the SSH link in the middle of an apply; the next
// apply converges with no duplicate container and no half-written file.
func TestApplySurvivesConnectionLoss(t *testing.T) {
	f := New(t, Options{SSH: true, Proxy: true})
	sixTenants(f)
	f.Env()
	done := make(chan string, 1)
	go func() {
		_, out, errOut := f.CLI("apply", "--repo", f.Repo, "--yes", "--concurrency", "2")
		done <- out + errOut
	}()
	// Cut as soon as the first container exists: the apply is mid-flight.
	deadline := time.Now().Add(60 * time.Second)
	for len(f.Containers()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	f.Proxy.CutAll()
	first := <-done
	t.Logf("interrupted apply:\n%s", first)

	apply(t, f)
	got := planJSON(t, f)
	for id, a := range got {
		if a.Mutates() {
			t.Errorf("after recovery %s still needs %s", id, a)
		}
	}
	names := f.Containers()
	if len(names) != 6 || len(slices.Compact(slices.Clone(names))) != 6 {
		t.Fatalf("containers after recovery: %v", names)
	}
	temps, _ := filepath.Glob(filepath.Join(f.Root, "*", "tenants", "*", "hermes-home", ".*hermes-tmp*"))
	more, _ := filepath.Glob(filepath.Join(f.Root, "*", "tenants", "*", "hermes-home", "*", ".*hermes-tmp*"))
	if len(temps)+len(more) != 0 {
		t.Fatalf("half-written files left: %v %v", temps, more)
	}
	assertNoCanary(t, f)
}

// assertHardened checks every hardening flag from docker inspect.
func assertHardened(t *testing.T, f *Fleet, name string) {
	t.Helper()
	in := f.Inspect(name)
	hc := in["HostConfig"].(map[string]any)
	if caps, _ := hc["CapDrop"].([]any); len(caps) != 1 || caps[0] != "ALL" {
		t.Errorf("%s: CapDrop %v", name, hc["CapDrop"])
	}
	if opts, _ := hc["SecurityOpt"].([]any); !slices.Contains(opts, any("no-new-privileges:true")) {
		t.Errorf("%s: SecurityOpt %v", name, hc["SecurityOpt"])
	}
	if mem, _ := hc["Memory"].(float64); mem != 256<<20 {
		t.Errorf("%s: Memory %v", name, hc["Memory"])
	}
	if pids, _ := hc["PidsLimit"].(float64); pids != 512 {
		t.Errorf("%s: PidsLimit %v", name, hc["PidsLimit"])
	}
	if rp := hc["RestartPolicy"].(map[string]any)["Name"]; rp != "unless-stopped" {
		t.Errorf("%s: RestartPolicy %v", name, rp)
	}
	cfg := in["Config"].(map[string]any)
	if cfg["User"] != "10000:10000" {
		t.Errorf("%s: User %v", name, cfg["User"])
	}
	mounts := in["Mounts"].([]any)
	if len(mounts) != 1 || mounts[0].(map[string]any)["Destination"] != "/data/hermes" {
		t.Errorf("%s: mounts %v", name, mounts)
	}
	if status := f.Docker("exec", name, "cat", "/proc/1/status"); !strings.Contains(status, "CapEff:\t0000000000000000") {
		t.Errorf("%s: effective capabilities not zero", name)
	}
	_ = context.Background
}

// TestApplyReportsCrashLoop: a tenant whose container crash-loops is reported failed with
// its last log lines, the secret it logged redacted; the other tenant of the same apply is
// created all the same.
func TestApplyReportsCrashLoop(t *testing.T) {
	f := New(t, Options{})
	f.WriteTenant("spawn", "good1", `  provider: {id: openrouter}`, map[string]string{"OPENROUTER_API_KEY": canaries["atlas"]})
	f.WriteTenant("spawn", "bad1", `  provider: {id: anthropic}
  hermesConfig: {standin_crash: ANTHROPIC_API_KEY}`, map[string]string{"ANTHROPIC_API_KEY": canaries["maya"]})
	code, out, errOut := f.CLI("apply", "--repo", f.Repo, "--yes", "--timeout", "30s")
	if code != 1 {
		t.Fatalf("apply with a crash-looping tenant exited %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"w1/good1: create ok", "w1/bad1: create failed", "crash-looping",
		"| runner: fatal: the provider rejected the key in ANTHROPIC_API_KEY: [secret ANTHROPIC_API_KEY]",
		"Apply complete: 1 ok, 1 failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q:\n%s", want, out)
		}
	}
	if running := f.Docker("inspect", "-f", "{{.State.Running}}", f.Name("spawn", "good1")); running != "true" {
		t.Error("the healthy tenant is not running")
	}
	assertNoCanary(t, f)
}

// TestApplyWaitsForAnotherApplier: the worker lock is taken with the observation; while
// another applier holds it, apply changes nothing and says who holds it.
func TestApplyWaitsForAnotherApplier(t *testing.T) {
	f := New(t, Options{})
	f.WriteTenant("spawn", "solo", `  provider: {id: openai-codex}`, nil)
	lock := filepath.Join(f.Root, ".hermes-gitops", "apply.lock")
	os.MkdirAll(filepath.Dir(lock), 0o700)
	os.WriteFile(lock, []byte(`{"owner":"someone else","expires":"`+time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)+`"}`), 0o600)
	code, out, errOut := f.CLI("apply", "--repo", f.Repo, "--yes")
	if code != 1 || !strings.Contains(errOut, "worker w1: worker is locked by someone else") || len(f.Containers()) != 0 {
		t.Fatalf("apply under another's lock: exit %d, containers %v\n%s%s", code, f.Containers(), out, errOut)
	}
	os.Remove(lock)
	apply(t, f)
	if len(f.Containers()) != 1 {
		t.Fatalf("containers after the lock was released: %v", f.Containers())
	}
	if _, err := os.Stat(lock); !os.IsNotExist(err) {
		t.Fatalf("apply left its lock behind: %v", err)
	}
}
