package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type driftJSON struct {
	Version  int  `json:"version"`
	Drift    bool `json:"drift"`
	Findings []struct {
		Code     string `json:"code"`
		Severity string `json:"severity"`
		Tenant   string `json:"tenant"`
		Subject  string `json:"subject"`
		Message  string `json:"message"`
		Action   string `json:"action"`
	} `json:"findings"`
}

func driftReport(t *testing.T, f *Fleet, wantCode int) driftJSON {
	t.Helper()
	code, out, errOut := f.CLI("drift", "--repo", f.Repo, "--output", "json")
	if code != wantCode {
		t.Fatalf("drift: exit %d, want %d\n%s\n%s", code, wantCode, out, errOut)
	}
	var r driftJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("drift json: %v\n%s", err, out)
	}
	return r
}

// has reports whether the report has a finding code for tenant (and subject, if given).
func (r driftJSON) has(tenant, code, subject string) bool {
	for _, f := range r.Findings {
		if f.Tenant == tenant && f.Code == code && (subject == "" || f.Subject == subject) {
			return true
		}
	}
	return false
}

func (r driftJSON) codes() []string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, f.Tenant+":"+f.Code+":"+f.Subject)
	}
	return out
}

// TestDriftFindsAndApplyRepairs breaks real tenants on a real worker (sshd + Docker) the
// way the control planes' pitfalls did, asserts the exact finding codes, and checks that
// apply clears every finding it owns.
func TestDriftFindsAndApplyRepairs(t *testing.T) {
	f := New(t, Options{SSH: true})
	f.WriteTenant("astral", "maya", `  provider: {id: anthropic}`, map[string]string{"ANTHROPIC_API_KEY": canaries["maya"]})
	f.WriteTenant("astral", "vega", `  provider: {id: openai}`, map[string]string{"OPENAI_API_KEY": canaries["vega"]})
	f.WriteTenant("spawn", "nova", `  provider: {id: openai-api}
  bundles: [writing@0.1.0]`, map[string]string{"OPENAI_API_KEY": canaries["nova"]})
	f.WriteTenant("spawn", "cody1", `  provider: {id: openai-codex}`, nil)
	f.WriteTenant("spawn", "pax", `  provider: {id: openai-codex}`, nil)
	f.WriteTenant("spawn", "old1", `  provider: {id: openai-codex}`, nil)
	apply(t, f)

	// A freshly applied fleet has no drift; the codex tenants only await their login.
	r := driftReport(t, f, 0)
	for _, fd := range r.Findings {
		if fd.Code != "auth.awaiting-login" || fd.Severity != "info" {
			t.Errorf("fresh fleet has finding %+v", fd)
		}
	}
	f.MustCLI(0, "verify", "--all", "--repo", f.Repo)

	// Break everything.
	maya, vega := f.Home("astral", "maya"), f.Home("astral", "vega")
	env, _ := os.ReadFile(filepath.Join(maya, ".env"))
	edited := strings.Replace(string(env), canaries["maya"], "sk-ant-edited-by-hand-0000", 1) + "HAND_ADDED=1\n"
	os.WriteFile(filepath.Join(maya, ".env"), []byte(edited), 0o600)
	os.RemoveAll(filepath.Join(maya, "knowledge"))
	os.RemoveAll(filepath.Join(maya, "skills", "astral", "transit-report"))

	cfgPath := filepath.Join(f.Home("spawn", "nova"), "config.yaml")
	cfg, _ := os.ReadFile(cfgPath)
	os.WriteFile(cfgPath, []byte(strings.Replace(string(cfg), "[terminal, ", "[", 1)), 0o644)

	skill := filepath.Join(vega, "skills", "astral", "natal-chart", "SKILL.md")
	os.WriteFile(skill, []byte("---\nname: natal-chart\n---\nedited on the worker\n"), 0o644)

	os.WriteFile(filepath.Join(f.Home("spawn", "cody1"), "auth.json"),
		[]byte(`{"version":1,"credential_pool":{"openai-codex":[{"id":"x","auth_type":"oauth","access_token":"at-CANARY-pool-token"}]}}`), 0o600)

	// vega's container re-run by hand the old way: labels copied, but no -e ASTRAL_KB_ROOT
	// and none of the hardening flags.
	vegaName := f.Name("astral", "vega")
	labels := f.Docker("inspect", "-f", `{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}`, vegaName)
	f.Docker("rm", "-f", vegaName)
	args := []string{"run", "-d", "--name", vegaName, "--user", "10000:10000", "--restart", "unless-stopped",
		"--mount", "type=bind,source=" + vega + ",target=/data/hermes", "-e", "HERMES_HOME=/data/hermes"}
	for _, l := range strings.Split(strings.TrimSuffix(labels, ";"), ";") {
		args = append(args, "--label", l)
	}
	f.Docker(append(args, f.Image)...)

	f.Docker("stop", "--time", "1", f.Name("spawn", "pax"))
	f.RemoveTenant("spawn", "old1")
	f.Docker("run", "-d", "--name", f.Prefix+"spawn-lookalike", f.Image)

	r = driftReport(t, f, 3)
	for _, want := range []struct{ tenant, code, subject string }{
		{"maya", "env.changed", "ANTHROPIC_API_KEY"},
		{"maya", "env.unmanaged", "HAND_ADDED"},
		{"maya", "kb.missing", ""},
		{"maya", "skills.missing", "skills/astral/transit-report"},
		{"nova", "config.changed", "platform_toolsets.cli"},
		{"vega", "skills.modified", "skills/astral/natal-chart"},
		{"vega", "container.env-missing", "ASTRAL_KB_ROOT"},
		{"vega", "container.hardening", "cap-drop"},
		{"vega", "container.hardening", "no-new-privileges"},
		{"vega", "container.hardening", "memory"},
		{"cody1", "auth.dual-write-gap", "openai-codex"},
		{"pax", "container.stopped", ""},
		{"old1", "tenant.orphan", ""},
		{"", "container.unmanaged", f.Prefix + "spawn-lookalike"},
	} {
		if !r.has(want.tenant, want.code, want.subject) {
			t.Errorf("missing finding %s %s %s; got %v", want.tenant, want.code, want.subject, r.codes())
		}
	}
	for _, fd := range r.Findings {
		if fd.Tenant == "nova" && fd.Code == "config.changed" && !strings.Contains(fd.Message, "platform_toolsets.cli lost terminal") {
			t.Errorf("config diff not field-level: %q", fd.Message)
		}
		if fd.Tenant == "vega" && fd.Code == "container.env-missing" && !strings.Contains(fd.Action, "recreate") {
			t.Errorf("env-missing is not repaired by a recreate: %q", fd.Action)
		}
	}
	// The text and markdown forms carry the same findings.
	_, text, _ := f.CLI("drift", "--repo", f.Repo)
	_, md, _ := f.CLI("drift", "--repo", f.Repo, "--output", "markdown")
	for _, s := range []string{text, md} {
		if !strings.Contains(s, "container.env-missing") || !strings.Contains(s, "astral-core") {
			t.Errorf("report lacks findings or bundle skew:\n%s", s)
		}
	}

	// A mis-mounted container fails verify's isolation checks.
	code, vout, _ := f.CLI("verify", "--all", "--repo", f.Repo)
	if code != 1 || !strings.Contains(vout, "FAIL w1/pax running") {
		t.Errorf("verify on the broken fleet: exit %d\n%s", code, vout)
	}

	// apply repairs all it owns; what it must not touch stays reported.
	apply(t, f)
	r = driftReport(t, f, 3)
	var left []string
	for _, fd := range r.Findings {
		left = append(left, fd.Tenant+":"+fd.Code)
	}
	slices.Sort(left)
	want := []string{":container.unmanaged", "cody1:auth.dual-write-gap", "maya:env.unmanaged", "old1:tenant.orphan", "pax:auth.awaiting-login"}
	if !slices.Equal(left, want) {
		t.Errorf("after apply, findings %v; want %v", left, want)
	}
	if got := f.Docker("inspect", "-f", "{{.HostConfig.CapDrop}}", vegaName); got != "[ALL]" {
		t.Errorf("vega not recreated hardened: CapDrop %s", got)
	}
	if l := f.Loaded(vegaName); !slices.Contains(l.ProcessEnv, "ASTRAL_KB_ROOT") {
		t.Errorf("vega still lacks ASTRAL_KB_ROOT: %v", l.ProcessEnv)
	}
	if env, _ := os.ReadFile(filepath.Join(maya, ".env")); !strings.Contains(string(env), "HAND_ADDED=1") {
		t.Error("apply deleted a key added by hand")
	}

	// Verify: a deliberately mis-mounted container fails isolation.
	paxName := f.Name("spawn", "pax")
	labels = f.Docker("inspect", "-f", `{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}`, paxName)
	f.Docker("rm", "-f", paxName)
	args = []string{"run", "-d", "--name", paxName, "--user", "10000:10000", "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true",
		"--memory", "256m", "--pids-limit", "512", "--restart", "unless-stopped",
		"--mount", "type=bind,source=" + f.Home("spawn", "pax") + ",target=/data/hermes",
		"--mount", "type=bind,source=" + maya + ",target=/data/other", "-e", "HERMES_HOME=/data/hermes"}
	for _, l := range strings.Split(strings.TrimSuffix(labels, ";"), ";") {
		args = append(args, "--label", l)
	}
	f.Docker(append(args, f.Image)...)
	code, vout, _ = f.CLI("verify", "--all", "--repo", f.Repo)
	if code != 1 || !strings.Contains(vout, "FAIL w1/pax isolation.mounts") || !strings.Contains(vout, "FAIL w1/pax isolation.probe: probes of other tenants are visible: maya") {
		t.Errorf("verify did not catch the mis-mounted container: exit %d\n%s", code, vout)
	}
	if !strings.Contains(vout, "PASS w1/maya isolation.probe") || !strings.Contains(vout, "PASS w1/vega kb.host-to-container") {
		t.Errorf("verify fails healthy tenants:\n%s", vout)
	}
	// Probes are removed afterwards.
	if left, _ := filepath.Glob(filepath.Join(maya, "knowledge", "raw", ".hermes-verify-*")); len(left) != 0 {
		t.Errorf("verify left probes: %v", left)
	}
	out := f.Outputs()
	if strings.Contains(out, "at-CANARY-pool-token") || strings.Contains(out, "sk-ant-edited-by-hand") {
		t.Error("a token or hand-edited secret appears in the output")
	}
	assertNoCanary(t, f)
}
