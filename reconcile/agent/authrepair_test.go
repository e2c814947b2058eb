package agent

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/firemountain/hermes-gitops/internal/testenv"
	"github.com/firemountain/hermes-gitops/reconcile/live"
)

// Token values planted in the fixtures: none may appear in any StepResult.
var authTokens = []string{"at-POOL-7f3a", "rt-POOL-91c2", "at-LOW-PRIO-0d1e", "at-ANTH-5b6c", "at-RUNTIME-44aa", "rt-RUNTIME-13ff"}

const codex = "openai-codex"

var repairNow = time.Date(2026, 5, 22, 10, 15, 30, 0, time.UTC)

func TestAuthRepair(t *testing.T) {
	poolOnly := `{
  "version": 1,
  "credential_pool": {
    "openai-codex": [
      {"id": "a1", "label": "oauth", "auth_type": "oauth", "priority": 0, "source": "device_code",
       "access_token": "at-POOL-7f3a", "refresh_token": "rt-POOL-91c2"}
    ]
  },
  "updated_at": "2026-05-01T00:00:00Z"
}
`
	tests := []struct {
		name      string
		content   string // "" with noFile: no auth.json
		noFile    bool
		state     string // StepResult.State
		wantErr   string // substring of the error; "" for success
		changed   bool
		access    string // providers[codex].tokens.access_token after
		refresh   string
		preserved []string // top-level keys whose values must not change
		order     []string // top-level key order after the repair
		check     func(t *testing.T, doc map[string]any)
	}{
		{
			name: "pool only: both shapes written", content: poolOnly,
			state: AuthRepaired, changed: true, access: "at-POOL-7f3a", refresh: "rt-POOL-91c2",
			preserved: []string{"version", "credential_pool"},
			order:     []string{"version", "credential_pool", "updated_at", "providers", "active_provider"},
		},
		{
			name: "other providers, unknown keys and other fields of the entry are kept",
			content: `{"version": 1, "zeta_custom": {"nested": [1, 2.50, "x"], "html": "<&>"},
 "providers": {"anthropic": {"tokens": {"access_token": "at-ANTH-5b6c"}, "kind": "pkce"},
               "openai-codex": {"base_url": "https://chatgpt.example/backend", "tokens": {}}},
 "active_provider": "anthropic",
 "credential_pool": {"anthropic": [{"id": "b", "access_token": "at-ANTH-5b6c"}],
                     "openai-codex": [{"id": "lo", "priority": 1, "access_token": "at-LOW-PRIO-0d1e"},
                                      {"id": "hi", "priority": 0, "access_token": "at-POOL-7f3a"},
                                      {"id": "none", "priority": 0}]},
 "alpha_custom": null}`,
			state: AuthRepaired, changed: true, access: "at-POOL-7f3a",
			preserved: []string{"version", "zeta_custom", "credential_pool", "alpha_custom"},
			order:     []string{"version", "zeta_custom", "providers", "active_provider", "credential_pool", "alpha_custom", "updated_at"},
			check: func(t *testing.T, doc map[string]any) {
				p := doc["providers"].(map[string]any)
				anth := p["anthropic"].(map[string]any)
				if anth["kind"] != "pkce" || anth["tokens"].(map[string]any)["access_token"] != "at-ANTH-5b6c" {
					t.Errorf("providers.anthropic changed: %v", anth)
				}
				if got := p[codex].(map[string]any)["base_url"]; got != "https://chatgpt.example/backend" {
					t.Errorf("base_url of the existing entry lost: %v", got)
				}
				if _, ok := p[codex].(map[string]any)["tokens"].(map[string]any)["refresh_token"]; ok {
					t.Error("a refresh token appeared from nowhere")
				}
			},
		},
		{
			name: "runtime shape present, active provider wrong: only active_provider is set",
			content: `{"providers": {"openai-codex": {"tokens": {"access_token": "at-RUNTIME-44aa", "refresh_token": "rt-RUNTIME-13ff"}, "last_refresh": "2026-05-01T00:00:00Z", "auth_mode": "chatgpt"}},
 "active_provider": "anthropic", "credential_pool": {"openai-codex": [{"access_token": "at-POOL-7f3a"}]}}`,
			state: AuthRepaired, changed: true, access: "at-RUNTIME-44aa", refresh: "rt-RUNTIME-13ff",
			preserved: []string{"providers", "credential_pool"},
		},
		{
			name: "already complete: untouched, no backup",
			content: `{"providers": {"openai-codex": {"tokens": {"access_token": "at-RUNTIME-44aa"}}}, "active_provider": "openai-codex",
 "credential_pool": {"openai-codex": [{"access_token": "at-POOL-7f3a"}]}}`,
			state: AuthAlreadyComplete,
		},
		{name: "invalid JSON", content: `{"credential_pool": {"openai-codex": [{"access_token": "at-POOL-7f3a"`, state: AuthInvalid, wantErr: "not valid JSON (syntax error at byte"},
		{name: "not an object", content: `[{"access_token": "at-POOL-7f3a"}]`, state: AuthInvalid, wantErr: "not a JSON object"},
		{name: "no pool entry", content: `{"credential_pool": {"anthropic": [{"access_token": "at-ANTH-5b6c"}]}, "providers": {}}`, state: AuthNoCredential, wantErr: `no credential_pool["openai-codex"] entry holds an access token`},
		{name: "pool entries without an access token", content: `{"credential_pool": {"openai-codex": [{"id": "x", "refresh_token": "rt-POOL-91c2"}, "junk"]}}`, state: AuthNoCredential, wantErr: "holds an access token"},
		{name: "pool is not a list", content: `{"credential_pool": {"openai-codex": {"access_token": "at-POOL-7f3a"}}}`, state: AuthInvalid, wantErr: `credential_pool["openai-codex"] is not a list`},
		{name: "providers is not an object", content: `{"providers": [], "credential_pool": {"openai-codex": [{"access_token": "at-POOL-7f3a"}]}}`, state: AuthInvalid, wantErr: "providers: not a JSON object"},
		{name: "no auth.json", noFile: true, state: AuthInvalid, wantErr: "no auth.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, live.AuthFile)
			var owner *Owner
			if !tt.noFile {
				writeAuth(t, path, tt.content)
				owner = chownIfRoot(t, path)
			}
			r := authRepair(path, codex, repairNow)
			assertNoToken(t, r)
			if r.State != tt.state {
				t.Errorf("state %q, want %q (error %q)", r.State, tt.state, r.Error)
			}
			backups, _ := filepath.Glob(path + ".bak-*")
			if tt.wantErr != "" || tt.state == AuthAlreadyComplete {
				if tt.wantErr != "" && (r.Status != StatusFailed || !strings.Contains(r.Error, tt.wantErr)) {
					t.Fatalf("result %+v, want an error with %q", r, tt.wantErr)
				}
				if !strings.HasPrefix(r.Error, "auth-repair "+path+": ") && tt.wantErr != "" {
					t.Errorf("error %q does not start with the file", r.Error)
				}
				if r.Changed || r.Backup != "" || len(backups) != 0 {
					t.Errorf("changed=%v backup=%q backups=%v, want nothing written", r.Changed, r.Backup, backups)
				}
				if !tt.noFile {
					if got, _ := os.ReadFile(path); string(got) != tt.content {
						t.Errorf("the file changed:\n%s", got)
					}
				}
				if tt.state == AuthAlreadyComplete && (r.Auth == nil || r.Status == StatusFailed) {
					t.Errorf("already complete: %+v", r)
				}
				return
			}
			if r.Error != "" || r.Changed != tt.changed {
				t.Fatalf("result %+v", r)
			}

			// The backup holds the original bytes, 0600, same owner.
			wantBackup := path + ".bak-20260522T101530Z"
			if r.Backup != wantBackup || len(backups) != 1 || backups[0] != wantBackup {
				t.Fatalf("backup %q, files %v, want %s", r.Backup, backups, wantBackup)
			}
			if got, _ := os.ReadFile(wantBackup); string(got) != tt.content {
				t.Errorf("backup content differs from the original:\n%s", got)
			}
			assertFile(t, wantBackup, owner)
			assertFile(t, path, owner)

			data, _ := os.ReadFile(path)
			var doc map[string]any
			if err := json.Unmarshal(data, &doc); err != nil {
				t.Fatalf("result is not JSON: %v\n%s", err, data)
			}
			if doc["active_provider"] != codex || doc["updated_at"] != "2026-05-22T10:15:30Z" {
				t.Errorf("active_provider %v updated_at %v", doc["active_provider"], doc["updated_at"])
			}
			entry, _ := doc["providers"].(map[string]any)[codex].(map[string]any)
			tokens, _ := entry["tokens"].(map[string]any)
			if tokens["access_token"] != tt.access || (tt.refresh != "" && tokens["refresh_token"] != tt.refresh) {
				t.Errorf("providers[%s].tokens = %v", codex, tokens)
			}
			if tt.state == AuthRepaired && tt.access != "at-RUNTIME-44aa" && (entry["auth_mode"] != "chatgpt" || entry["last_refresh"] != "2026-05-22T10:15:30Z") {
				t.Errorf("providers[%s] = %v", codex, entry)
			}
			var before map[string]any
			json.Unmarshal([]byte(tt.content), &before)
			for _, k := range tt.preserved {
				if !reflect.DeepEqual(before[k], doc[k]) {
					t.Errorf("%s changed:\n before %v\n after  %v", k, before[k], doc[k])
				}
			}
			if tt.order != nil {
				if got := topKeys(t, data); !reflect.DeepEqual(got, tt.order) {
					t.Errorf("key order %v, want %v", got, tt.order)
				}
			}
			if st, _ := CheckAuth(r.Auth, codex); st != AuthComplete || r.Auth.Mode != 0o600 {
				t.Errorf("returned shape %+v is %s", r.Auth, st)
			}
			if tt.check != nil {
				tt.check(t, doc)
			}

			// Idempotent: a second run changes nothing and writes no second backup.
			again := authRepair(path, codex, repairNow.Add(time.Minute))
			assertNoToken(t, again)
			if again.State != AuthAlreadyComplete || again.Changed || again.Backup != "" {
				t.Errorf("second run: %+v", again)
			}
			if after, _ := os.ReadFile(path); string(after) != string(data) {
				t.Error("second run rewrote the file")
			}
			if b, _ := filepath.Glob(path + ".bak-*"); len(b) != 1 {
				t.Errorf("backups after a second run: %v", b)
			}
		})
	}
}

// TestAuthRepairBackupNamesDoNotCollide: two repairs within the same second keep both
// backups.
func TestAuthRepairBackupNamesDoNotCollide(t *testing.T) {
	path := filepath.Join(t.TempDir(), live.AuthFile)
	gap := `{"credential_pool": {"openai-codex": [{"access_token": "at-POOL-7f3a"}]}}`
	for range 2 {
		writeAuth(t, path, gap)
		if r := authRepair(path, codex, repairNow); r.State != AuthRepaired {
			t.Fatalf("%+v", r)
		}
	}
	backups, _ := filepath.Glob(path + ".bak-*")
	if want := []string{path + ".bak-20260522T101530Z", path + ".bak-20260522T101530Z-1"}; !reflect.DeepEqual(backups, want) {
		t.Fatalf("backups %v, want %v", backups, want)
	}
}

// TestAuthRepairRefusesOtherFiles: a symbolic link (the tenant's container can write
// into hermes-home) and a file not named auth.json are refused, untouched.
func TestAuthRepairRefusesOtherFiles(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere.json")
	gap := `{"credential_pool": {"openai-codex": [{"access_token": "at-POOL-7f3a"}]}}`
	writeAuth(t, target, gap)
	link := filepath.Join(dir, "home", live.AuthFile)
	os.MkdirAll(filepath.Dir(link), 0o755)
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{link, target} {
		r := authRepair(p, codex, repairNow)
		if r.Status != StatusFailed || r.State != AuthInvalid {
			t.Errorf("%s: %+v, want refused", p, r)
		}
		assertNoToken(t, r)
	}
	if got, _ := os.ReadFile(target); string(got) != gap {
		t.Error("the link's target changed")
	}
	if b, _ := filepath.Glob(filepath.Join(dir, "*", "*.bak-*")); len(b) != 0 {
		t.Errorf("backups written: %v", b)
	}
}

// TestAuthRepairStep runs the step as hermesctl sends it: through JSON and Handle.
func TestAuthRepairStep(t *testing.T) {
	path := filepath.Join(t.TempDir(), live.AuthFile)
	writeAuth(t, path, `{"credential_pool": {"openai-codex": [{"access_token": "at-POOL-7f3a", "refresh_token": "rt-POOL-91c2"}]}}`)
	req := Request{Protocol: ProtocolVersion, Steps: []Step{
		{Op: OpAuthRepair, Path: "relative/auth.json", Provider: codex},
	}}
	resp := Handle(context.Background(), &req)
	if r := resp.Steps[0]; r.Status != StatusFailed || !strings.Contains(r.Error, "not absolute") {
		t.Errorf("relative path: %+v", r)
	}
	req.Steps = []Step{{Op: OpAuthRepair, Path: path}}
	if r := Handle(context.Background(), &req).Steps[0]; r.Status != StatusFailed || !strings.Contains(r.Error, "no provider key") {
		t.Errorf("no provider: %+v", r)
	}
	data, _ := json.Marshal(Request{Protocol: ProtocolVersion, Steps: []Step{{Op: OpAuthRepair, Path: path, Provider: codex}}})
	var decoded Request
	json.Unmarshal(data, &decoded)
	out, _ := json.Marshal(Handle(context.Background(), &decoded))
	for _, tok := range authTokens {
		if strings.Contains(string(out), tok) {
			t.Errorf("the response carries token %s: %s", tok, out)
		}
	}
	var back Response
	json.Unmarshal(out, &back)
	r := back.Steps[0]
	if r.Status != StatusOK || r.State != AuthRepaired || r.Auth == nil || r.Backup == "" || r.Op != OpAuthRepair {
		t.Fatalf("%s", out)
	}
	if st, why := CheckAuth(r.Auth, codex); st != AuthComplete {
		t.Errorf("shape after repair: %s (%s)", st, why)
	}
}

// TestAuthRepairWaitsForHermesLock: while Hermes holds auth.lock, the repair waits, and
// gives up with a clear error rather than race a token refresh.
func TestAuthRepairWaitsForHermesLock(t *testing.T) {
	dir := t.TempDir()
	lock := filepath.Join(dir, "auth.lock")
	writeAuth(t, lock, "")
	f, err := os.Open(lock)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		testenv.Missing(t, "flock", err.Error())
	}
	if _, err := lockAuth(lock, 200*time.Millisecond); err == nil || !strings.Contains(err.Error(), "auth.lock is held") {
		t.Fatalf("lock held by Hermes: err = %v", err)
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	unlock, err := lockAuth(lock, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	// No lock file: nothing to wait for, and none is created.
	unlock, err = lockAuth(filepath.Join(dir, "missing.lock"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if _, err := os.Stat(filepath.Join(dir, "missing.lock")); !os.IsNotExist(err) {
		t.Error("lockAuth created a lock file")
	}
}

func TestCheckAuth(t *testing.T) {
	tests := []struct {
		name  string
		shape *live.AuthShape
		want  AuthStatus
		why   string
	}{
		{"no file", nil, AuthAwaitingLogin, "no auth.json"},
		{"invalid", &live.AuthShape{}, AuthAwaitingLogin, "not valid JSON"},
		{"empty", &live.AuthShape{Valid: true}, AuthAwaitingLogin, `no credential_pool["openai-codex"] entry and no providers`},
		{"runtime entry without tokens", &live.AuthShape{Valid: true, ProvidersWithoutTokens: []string{codex}}, AuthAwaitingLogin, `providers["openai-codex"] has no tokens`},
		{"pool only", &live.AuthShape{Valid: true, Pool: map[string]int{codex: 1}}, AuthDualWriteGap, `credential_pool["openai-codex"] has 1 entry but providers["openai-codex"] has no tokens`},
		{"pool of another provider", &live.AuthShape{Valid: true, Pool: map[string]int{"anthropic": 2}, Providers: []string{"anthropic"}, ActiveProvider: "anthropic"}, AuthAwaitingLogin, "no credential_pool"},
		{"active wrong", &live.AuthShape{Valid: true, Pool: map[string]int{codex: 1}, Providers: []string{codex}, ActiveProvider: "anthropic"}, AuthActiveWrong, `active_provider is "anthropic", not "openai-codex"`},
		{"complete", &live.AuthShape{Valid: true, Pool: map[string]int{codex: 1}, Providers: []string{codex}, ActiveProvider: codex}, AuthComplete, ""},
		{"runtime only, as the planner counts it", &live.AuthShape{Valid: true, Providers: []string{codex}, ActiveProvider: codex}, AuthComplete, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := CheckAuth(tt.shape, codex)
			if got != tt.want || !strings.Contains(why, tt.why) || (tt.why == "" && why != "") {
				t.Errorf("CheckAuth = %q, %q; want %q, %q", got, why, tt.want, tt.why)
			}
		})
	}
}

func writeAuth(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// chownIfRoot gives the file the container user's uid (as Hermes in the container
// writes it) when the test can, and returns the owner the file has.
func chownIfRoot(t *testing.T, path string) *Owner {
	t.Helper()
	if os.Geteuid() == 0 {
		if err := os.Chown(path, 10000, 10000); err != nil {
			t.Fatal(err)
		}
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fileOwner(info)
}

func assertFile(t *testing.T, path string, owner *Owner) {
	t.Helper()
	info, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode() != 0o600 {
		t.Errorf("%s: mode %v, want -rw-------", filepath.Base(path), info.Mode())
	}
	if got := fileOwner(info); owner != nil && *got != *owner {
		t.Errorf("%s: owner %v, want %v", filepath.Base(path), *got, *owner)
	}
}

func assertNoToken(t *testing.T, r StepResult) {
	t.Helper()
	out, _ := json.Marshal(r)
	for _, tok := range authTokens {
		if strings.Contains(string(out), tok) {
			t.Errorf("the step result carries token %s: %s", tok, out)
		}
	}
}

func topKeys(t *testing.T, data []byte) []string {
	t.Helper()
	obj, err := parseObject(data)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, m := range obj {
		keys = append(keys, m.key)
	}
	return keys
}
