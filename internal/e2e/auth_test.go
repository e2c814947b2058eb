package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/firemountain/hermes-gitops/internal/cli"
	"github.com/firemountain/hermes-gitops/reconcile/plan"
)

// The stand-in runner's fake `hermes auth add` turns the code typed at its prompt into the
// tokens at-<code> and rt-<code> (internal/standin/runner/auth.go). The fake is small and
// fails on anything but `auth add <provider> --type oauth` and `auth list`; it stands in
// for the real OAuth providers, which cannot run here.
const (
	loginCode = "CODE123"
	gapCode   = "GAP456"
	localCode = "LOCAL789"
)

var authTokenValues = []string{"at-" + loginCode, "rt-" + loginCode, "at-" + gapCode, "rt-" + gapCode, "at-" + localCode, "rt-" + localCode}

// cliIn runs hermesctl in-process with stdin (Fleet.CLI gives an empty one), recording
// its outputs for the secret checks.
func cliIn(f *Fleet, stdin io.Reader, args ...string) (code int, stdout, stderr string) {
	f.T.Helper()
	f.Env()
	var out, errb bytes.Buffer
	code = cli.Main(args, stdin, &out, &errb)
	f.AddOutput(out.String() + errb.String())
	return code, out.String(), errb.String()
}

func assertNoToken(t *testing.T, f *Fleet) {
	t.Helper()
	out := f.Outputs()
	for _, v := range authTokenValues {
		if strings.Contains(out, v) {
			t.Errorf("token %s appears in hermesctl output", v)
		}
	}
}

// authFile is a tenant's auth.json as the worker has it.
type authFile struct {
	ActiveProvider string `json:"active_provider"`
	Providers      map[string]struct {
		Tokens struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
		} `json:"tokens"`
		AuthMode    string `json:"auth_mode"`
		LastRefresh string `json:"last_refresh"`
	} `json:"providers"`
	CredentialPool map[string][]map[string]any `json:"credential_pool"`
	Extra          map[string]any              `json:"hermes_extra"`
}

func readAuth(t *testing.T, path string) authFile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var a authFile
	if err := json.Unmarshal(data, &a); err != nil {
		t.Fatalf("%s is not JSON: %v", path, err)
	}
	return a
}

// assertBothShapes checks the dual write: credential_pool and the runtime shape.
func assertBothShapes(t *testing.T, path, code string) {
	t.Helper()
	a := readAuth(t, path)
	p := a.Providers["openai-codex"]
	if a.ActiveProvider != "openai-codex" || p.Tokens.AccessToken != "at-"+code || p.Tokens.RefreshToken != "rt-"+code || p.AuthMode != "chatgpt" || p.LastRefresh == "" {
		t.Errorf("runtime shape incomplete: active_provider %q, providers[openai-codex] auth_mode %q, last_refresh %q, tokens from the login: %v/%v",
			a.ActiveProvider, p.AuthMode, p.LastRefresh, p.Tokens.AccessToken == "at-"+code, p.Tokens.RefreshToken == "rt-"+code)
	}
	if pool := a.CredentialPool["openai-codex"]; len(pool) != 1 || pool[0]["access_token"] != "at-"+code {
		t.Errorf("credential_pool[openai-codex] has %d entries (or not this login's)", len(pool))
	}
}

func assertOwnerMode(t *testing.T, path string, uid uint32) {
	t.Helper()
	info, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := info.Sys().(*syscall.Stat_t)
	if info.Mode() != 0o600 || st.Uid != uid || st.Gid != uid {
		t.Errorf("%s: mode %v owner %d:%d, want -rw------- %d:%d", filepath.Base(path), info.Mode(), st.Uid, st.Gid, uid, uid)
	}
}

// statusLine returns the auth status row of a tenant.
func statusLine(t *testing.T, f *Fleet, id string) string {
	t.Helper()
	out := f.MustCLI(0, "auth", "status", "--repo", f.Repo)
	for _, l := range strings.Split(out, "\n") {
		if fields := strings.Fields(l); len(fields) > 0 && fields[0] == id {
			return l
		}
	}
	t.Fatalf("auth status has no row for %s:\n%s", id, out)
	return ""
}

// Tenant ids here are unique to these tests: the Docker engine is shared with the other
// tests of the package (and of other packages running at the same time), and the planner
// finds a tenant's container by its tenant label.

// TestAuthLoginAndRepair: over a real sshd and Docker, an openai-codex tenant is logged in
// through a real pseudo-terminal with the stand-in's fake `hermes auth add`, then its
// auth.json loses the runtime shape (the control planes' pitfall 2) and auth repair
// completes it from credential_pool.
func TestAuthLoginAndRepair(t *testing.T) {
	f := New(t, Options{SSH: true})
	f.WriteTenant("spawn", "authcodex", `  provider: {id: openai-codex}`, nil)
	f.WriteTenant("astral", "authkey", `  provider: {id: anthropic}`, map[string]string{"ANTHROPIC_API_KEY": canaries["maya"]})
	apply(t, f, "--concurrency", "1")
	home := f.Home("spawn", "authcodex")
	authPath := filepath.Join(home, "auth.json")

	// Before the login: awaiting login, in auth status and in plan.
	if l := statusLine(t, f, "authcodex"); !strings.Contains(l, "w1") || !strings.Contains(l, "openai-codex") || !strings.Contains(l, "awaiting login → hermesctl auth login authcodex") {
		t.Errorf("status before the login: %q", l)
	}
	if out := f.MustCLI(0, "auth", "status", "--repo", f.Repo); strings.Contains(out, "authkey") || !strings.Contains(out, "1 OAuth tenant: 0 complete, 1 awaiting login, 0 to repair.") {
		t.Errorf("status lists:\n%s", out)
	}
	wantActions(t, planJSON(t, f), map[string]plan.Action{"authcodex": plan.AwaitingAuth, "authkey": plan.Noop})

	// The login, with the code coming from a pipe: over ssh it runs in a pseudo-terminal.
	code, out, errOut := cliIn(f, strings.NewReader(loginCode+"\n"), "auth", "login", "authcodex", "--repo", f.Repo)
	if code != 0 {
		t.Fatalf("auth login: exit %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("auth login over ssh:\n%q", out)
	for _, want := range []string{
		"Logging authcodex in to openai-codex: hermes auth add openai-codex inside " + f.Name("spawn", "authcodex") + " on worker w1.",
		"Paste the authorization code: ",
		// A pseudo-terminal turns the program's \n into \r\n; a pipe would not.
		"Logged in to openai-codex.\r\n",
		"auth complete for authcodex: credential in credential_pool, providers[openai-codex] with tokens, active_provider=openai-codex\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("login output lacks %q:\n%s", want, out)
		}
	}
	assertBothShapes(t, authPath, loginCode)
	if l := statusLine(t, f, "authcodex"); !strings.Contains(l, "complete") || strings.Contains(l, "→") {
		t.Errorf("status after the login: %q", l)
	}
	wantActions(t, planJSON(t, f), map[string]plan.Action{"authcodex": plan.Noop})
	if _, planOut, _ := f.CLI("plan", "--repo", f.Repo); strings.Contains(planOut, "awaiting") {
		t.Errorf("plan after the login:\n%s", planOut)
	}

	// The dual-write gap: a login that reached credential_pool only.
	gap := `{
  "version": 1,
  "credential_pool": {
    "openai-codex": [
      {"id": "d1", "label": "oauth", "auth_type": "oauth", "priority": 0, "source": "device_code",
       "access_token": "at-` + gapCode + `", "refresh_token": "rt-` + gapCode + `"}
    ]
  },
  "hermes_extra": {"keep": [1, "two"]},
  "updated_at": "2026-05-01T00:00:00Z"
}
`
	if err := os.WriteFile(authPath, []byte(gap), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(authPath, 10000, 10000); err != nil {
		t.Fatal(err)
	}
	_, planOut, _ := f.CLI("plan", "--repo", f.Repo)
	if !strings.Contains(planOut, "(the dual-write gap); run 'hermesctl auth repair authcodex'") {
		t.Errorf("plan does not report the dual-write gap:\n%s", planOut)
	}
	t.Logf("plan with the dual-write gap:\n%s", planOut)
	if l := statusLine(t, f, "authcodex"); !strings.Contains(l, "dual-write gap → hermesctl auth repair authcodex") {
		t.Errorf("status with the gap: %q", l)
	}

	out = f.MustCLI(0, "auth", "repair", "authcodex", "--repo", f.Repo)
	if !strings.Contains(out, "tenant authcodex: auth.json repaired on worker w1; the original is kept as auth.json.bak-") ||
		!strings.Contains(out, "auth complete for authcodex: credential in credential_pool, providers[openai-codex] with tokens, active_provider=openai-codex") {
		t.Errorf("repair output:\n%s", out)
	}
	t.Logf("auth repair:\n%s", out)
	assertBothShapes(t, authPath, gapCode)
	assertOwnerMode(t, authPath, 10000)
	if a := readAuth(t, authPath); a.Extra == nil || len(a.Extra["keep"].([]any)) != 2 {
		t.Errorf("an unknown key was not kept: %v", a.Extra)
	}
	backups, _ := filepath.Glob(authPath + ".bak-*")
	if len(backups) != 1 {
		t.Fatalf("backups: %v", backups)
	}
	if b, _ := os.ReadFile(backups[0]); string(b) != gap {
		t.Error("the backup is not the original file")
	}
	assertOwnerMode(t, backups[0], 10000)
	// The container (uid 10000) still reads its file.
	if list := f.Docker("exec", f.Name("spawn", "authcodex"), "hermes", "auth", "list"); list != "openai-codex" {
		t.Errorf("hermes auth list in the container: %q", list)
	}
	wantActions(t, planJSON(t, f), map[string]plan.Action{"authcodex": plan.Noop})
	if _, planOut, _ := f.CLI("plan", "--repo", f.Repo); strings.Contains(planOut, "awaiting") {
		t.Errorf("plan after the repair:\n%s", planOut)
	}
	if l := statusLine(t, f, "authcodex"); !strings.Contains(l, "complete") || strings.Contains(l, "→") {
		t.Errorf("status after the repair: %q", l)
	}

	// Again: nothing to do, no second backup.
	before, _ := os.ReadFile(authPath)
	out = f.MustCLI(0, "auth", "repair", "authcodex", "--repo", f.Repo)
	if !strings.Contains(out, "tenant authcodex: auth.json already complete; nothing changed, no backup written.") {
		t.Errorf("second repair:\n%s", out)
	}
	if after, _ := os.ReadFile(authPath); !bytes.Equal(before, after) {
		t.Error("the second repair rewrote auth.json")
	}
	if b, _ := filepath.Glob(authPath + ".bak-*"); len(b) != 1 {
		t.Errorf("backups after the second repair: %v", b)
	}

	// Refusals, each starting with the tenant.
	f.WriteTenant("spawn", "authpending", `  provider: {id: openai-codex}`, nil)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"auth", "login", "authkey"}, "error: tenant authkey: provider anthropic uses an API key (ANTHROPIC_API_KEY in the tenant's secrets), not an OAuth login"},
		{[]string{"auth", "repair", "authkey"}, "error: tenant authkey: provider anthropic uses an API key"},
		{[]string{"auth", "login", "authpending"}, "error: tenant authpending: no container on worker w1 yet; create it first with 'hermesctl apply --tenant authpending'"},
		{[]string{"auth", "repair", "authpending"}, "error: tenant authpending: worker w1: auth-repair " + filepath.Join(f.Home("spawn", "authpending"), "auth.json") + ": no auth.json"},
		{[]string{"auth", "login", "nosuch"}, "error: tenant nosuch: no tenant file with this id"},
		{[]string{"auth", "status", "--tenant", "authkey"}, "error: tenant authkey: provider anthropic uses an API key"},
	} {
		code, out, errOut := cliIn(f, strings.NewReader(""), append(c.args, "--repo", f.Repo)...)
		if code != 1 || !strings.HasPrefix(errOut, c.want) {
			t.Errorf("hermesctl %s: exit %d, stderr %q, want it to start with %q\n%s", strings.Join(c.args, " "), code, errOut, c.want, out)
		}
	}
	assertNoToken(t, f)
	assertNoCanary(t, f)
}

// TestAuthLoginLocal: on a local worker there is no pseudo-terminal: the login runs with
// docker exec -i, reading the code from standard input as it is.
func TestAuthLoginLocal(t *testing.T) {
	f := New(t, Options{})
	f.WriteTenant("astral", "authlocal", `  provider: {id: openai-codex}`, nil)
	apply(t, f, "--concurrency", "1")
	code, out, errOut := cliIn(f, strings.NewReader(localCode+"\n"), "auth", "login", "authlocal", "--repo", f.Repo)
	if code != 0 {
		t.Fatalf("auth login: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "Paste the authorization code: ") || !strings.Contains(out, "auth complete for authlocal:") {
		t.Errorf("login output:\n%s", out)
	}
	if strings.Contains(out, "\r") {
		t.Errorf("a local login went through a terminal:\n%q", out)
	}
	assertBothShapes(t, filepath.Join(f.Home("astral", "authlocal"), "auth.json"), localCode)
	status := f.MustCLI(0, "auth", "status", "--repo", f.Repo, "--tenant", "authlocal")
	t.Logf("auth status:\n%s", status)
	if !strings.Contains(status, "TENANT     WORKER  PROVIDER      POOL  RUNTIME  ACTIVE        VERDICT\nauthlocal  w1      openai-codex  1     tokens   openai-codex  complete\n") {
		t.Errorf("auth status:\n%s", status)
	}
	wantActions(t, planJSON(t, f), map[string]plan.Action{"authlocal": plan.Noop})
	assertNoToken(t, f)
}

// TestAuthHelp: every auth command explains itself with examples.
func TestAuthHelp(t *testing.T) {
	for _, sub := range []string{"login", "repair", "status"} {
		var out, errb bytes.Buffer
		if code := cli.Main([]string{"auth", sub, "--help"}, strings.NewReader(""), &out, &errb); code != 0 {
			t.Errorf("auth %s --help: exit %d", sub, code)
		}
		if !strings.Contains(out.String(), "Examples:\n  hermesctl auth "+sub) {
			t.Errorf("auth %s --help has no examples:\n%s", sub, out.String())
		}
	}
}
