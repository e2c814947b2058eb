package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	ok := map[string]struct{ in, want string }{
		"block": {"model:\n  provider: openai-codex\n  default: gpt-5\n", "openai-codex"},
		"rendered": {`# managed by hermes-gitops
model:
  default: claude-sonnet-4-5
  provider: anthropic   # the Hermes provider
  api_mode: anthropic_messages
platform_toolsets:
  cli: [hermes-cli]
  telegram:
    - hermes-telegram
web:
  backend: firecrawl
`, "anthropic"},
		"quoted":         {"model:\n    provider: \"custom\"\n    base_url: 'https://api.openai.com/v1'\n", "custom"},
		"quoted key":     {"\"model\":\n  \"provider\": openrouter\n", "openrouter"},
		"flow":           {"model: {provider: openrouter, default: x}\n", "openrouter"},
		"document start": {"---\nmodel:\n  provider: anthropic\n", "anthropic"},
		"crlf":           {"model:\r\n  provider: anthropic\r\n", "anthropic"},
		"nested ignored": {"model:\n  extra:\n    provider: nope\n  provider: openai\nprovider: top\n", "openai"},
		"other first":    {"terminal:\n  backend: local\n  env_passthrough:\n    - FOO\nmodel:\n  provider: auto\n", "auto"},
	}
	for name, c := range ok {
		got, err := parseConfig([]byte(c.in))
		if err != nil || got != c.want {
			t.Errorf("%s: parseConfig = %q, %v; want %q", name, got, err, c.want)
		}
	}
	bad := map[string]string{
		"empty":          "",
		"no model":       "web:\n  backend: exa\n",
		"scalar model":   "model: openai\n",
		"no provider":    "model:\n  default: gpt-5\n",
		"empty provider": "model:\n  provider: \"\"\n",
		"garbage":        "}{ not yaml\n",
		"tab indent":     "model:\n\tprovider: openai\n",
		"top-level list": "- model\n",
		"unterminated":   "model:\n  provider: \"openai\n",
		"duplicate":      "model:\n  provider: a\n  provider: b\n",
		"bad flow":       "model: {provider: a\n",
	}
	for name, in := range bad {
		if got, err := parseConfig([]byte(in)); err == nil {
			t.Errorf("%s: parseConfig = %q, want an error", name, got)
		}
	}
}

func TestParseConfigErrorsHideContents(t *testing.T) {
	_, err := parseConfig([]byte("model:\n  provider: x\n  api_key: \"sk-canary-123\n"))
	if err == nil {
		t.Fatal("want an error")
	}
	if strings.Contains(err.Error(), "canary") {
		t.Errorf("error reveals the line: %v", err)
	}
}

func TestParseDotenv(t *testing.T) {
	in := `# tenant secrets
OPENAI_API_KEY=sk-plain
export TELEGRAM_BOT_TOKEN = "123:abc \"quoted\" \n end"
TELEGRAM_ALLOWED_USERS='1,2 # not a comment'
INLINE=value # a comment
HASH=a#b
EMPTY=
  SPACED  =  x y  
DUP=first
DUP=second
`
	got, err := parseDotenv([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"OPENAI_API_KEY":         "sk-plain",
		"TELEGRAM_BOT_TOKEN":     "123:abc \"quoted\" \n end",
		"TELEGRAM_ALLOWED_USERS": "1,2 # not a comment",
		"INLINE":                 "value",
		"HASH":                   "a#b",
		"EMPTY":                  "",
		"SPACED":                 "x y",
		"DUP":                    "second",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseDotenv =\n%q\nwant\n%q", got, want)
	}

	for name, in := range map[string]string{
		"no equals":    "JUST_A_NAME\n",
		"bad name":     "1ABC=x\n",
		"dash name":    "A-B=x\n",
		"unterminated": "K=\"sk-canary\n",
		"single":       "K='sk-canary\n",
		"trailing":     "K=\"a\"sk-canary\n",
	} {
		_, err := parseDotenv([]byte(in))
		if err == nil {
			t.Errorf("%s: want an error", name)
			continue
		}
		if strings.Contains(err.Error(), "canary") {
			t.Errorf("%s: error reveals the value: %v", name, err)
		}
	}
}

func writeHome(t *testing.T, files map[string]string) string {
	t.Helper()
	home := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(home, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return home
}

func TestLoadAndHandler(t *testing.T) {
	home := writeHome(t, map[string]string{
		"config.yaml": "model:\n  provider: openrouter\n",
		".env":        "OPENROUTER_API_KEY=sk-canary\nA=1\n",
	})
	t.Setenv("STANDIN_PROCESS_VAR", "not-a-secret")
	st, err := load(home, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(st.keys(), ","); got != "A,OPENROUTER_API_KEY" {
		t.Errorf("keys = %s", got)
	}
	srv := httptest.NewServer(st.handler())
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(buf.String()) != `{"status":"ok"}` {
		t.Errorf("/health = %d %q", resp.StatusCode, buf.String())
	}

	resp, err = http.Get(srv.URL + "/loaded")
	if err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if strings.Contains(buf.String(), "sk-canary") || strings.Contains(buf.String(), "not-a-secret") {
		t.Fatalf("/loaded reveals a value: %s", buf.String())
	}
	var doc state
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	// sha256("sk-canary"), computed independently with sha256sum.
	const want = "sha256:4bfe7fabc8de906cdc89971cd69e6703da4bf23ce364222512d95a3d4fb8f7d1"
	if doc.Provider != "openrouter" || doc.Env["OPENROUTER_API_KEY"] != want || doc.StartedAt != "2026-01-02T03:04:05Z" {
		t.Errorf("/loaded = %+v", doc)
	}
	found := false
	for _, n := range doc.ProcessEnv {
		found = found || n == "STANDIN_PROCESS_VAR"
		if n == "OPENROUTER_API_KEY" {
			t.Errorf(".env key leaked into the process env")
		}
	}
	if !found {
		t.Errorf("processEnv %v lacks STANDIN_PROCESS_VAR", doc.ProcessEnv)
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := load(writeHome(t, nil), time.Now()); err == nil || !strings.Contains(err.Error(), "config.yaml") {
		t.Errorf("missing config.yaml: err = %v", err)
	}
	home := writeHome(t, map[string]string{"config.yaml": "model:\n  provider: a\n", ".env": "K=\"sk-canary\n"})
	if _, err := load(home, time.Now()); err == nil || strings.Contains(err.Error(), "canary") {
		t.Errorf("bad .env: err = %v", err)
	}
	home = writeHome(t, map[string]string{"config.yaml": "model:\n  provider: a\n"})
	if st, err := load(home, time.Now()); err != nil || len(st.Env) != 0 {
		t.Errorf("no .env: %+v, %v", st, err)
	}
}

func TestServeBrokenHomeExits1(t *testing.T) {
	t.Setenv("HERMES_HOME", writeHome(t, map[string]string{"config.yaml": "model: nope\n"}))
	var out, errb bytes.Buffer
	if rc := run([]string{"/runner"}, nil, &out, &errb); rc != 1 {
		t.Fatalf("rc = %d", rc)
	}
	if !strings.Contains(errb.String(), "model is not a mapping") {
		t.Errorf("stderr = %q", errb.String())
	}
}

func TestAddOAuthPreservesOthers(t *testing.T) {
	old := `{
  "version": 1,
  "active_provider": "anthropic",
  "providers": {
    "anthropic": {"tokens": {"access_token": "a1"}},
    "openai-codex": {"tokens": {"access_token": "old"}, "base_url": "https://chatgpt.com/backend-api/codex"}
  },
  "credential_pool": {
    "anthropic": [{"id": "x1", "auth_type": "oauth", "source": "pkce"}],
    "openai-codex": [
      {"id": "k1", "label": "key", "auth_type": "api_key", "source": "manual"},
      {"id": "o1", "label": "oauth", "auth_type": "oauth", "source": "device_code", "access_token": "at-old"}
    ]
  },
  "something_else": {"kept": true}
}`
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	data, err := addOAuth([]byte(old), "openai-codex", "CODE9", now, "newid")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	wantJSON := `{
  "version": 1,
  "active_provider": "openai-codex",
  "providers": {
    "anthropic": {"tokens": {"access_token": "a1"}},
    "openai-codex": {
      "tokens": {"access_token": "at-CODE9", "refresh_token": "rt-CODE9"},
      "last_refresh": "2026-05-01T12:00:00Z",
      "auth_mode": "chatgpt",
      "base_url": "https://chatgpt.com/backend-api/codex"
    }
  },
  "credential_pool": {
    "anthropic": [{"id": "x1", "auth_type": "oauth", "source": "pkce"}],
    "openai-codex": [
      {"id": "k1", "label": "key", "auth_type": "api_key", "source": "manual"},
      {"id": "newid", "label": "oauth", "auth_type": "oauth", "priority": 0, "source": "device_code", "access_token": "at-CODE9"}
    ]
  },
  "something_else": {"kept": true},
  "updated_at": "2026-05-01T12:00:00Z"
}`
	var want map[string]any
	if err := json.Unmarshal([]byte(wantJSON), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("addOAuth =\n%s\nwant\n%s", data, wantJSON)
	}
}

func TestAddOAuthFreshAndInvalid(t *testing.T) {
	data, err := addOAuth(nil, "openai-codex", "C", time.Unix(0, 0), "id1")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Version        int                         `json:"version"`
		ActiveProvider string                      `json:"active_provider"`
		Providers      map[string]map[string]any   `json:"providers"`
		Pool           map[string][]map[string]any `json:"credential_pool"`
		UpdatedAt      string                      `json:"updated_at"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Version != 1 || got.ActiveProvider != "openai-codex" || got.Providers["openai-codex"]["auth_mode"] != "chatgpt" ||
		len(got.Pool["openai-codex"]) != 1 || got.Pool["openai-codex"][0]["access_token"] != "at-C" || got.UpdatedAt == "" {
		t.Errorf("fresh auth.json = %s", data)
	}
	for _, bad := range []string{"[]", "{not json", `{"providers": []}`, `{"credential_pool": {"openai-codex": {}}}`} {
		if _, err := addOAuth([]byte(bad), "openai-codex", "C", time.Now(), "id"); err == nil {
			t.Errorf("addOAuth(%s): want an error", bad)
		}
	}
}

func TestHermesAuthAddAndList(t *testing.T) {
	home := writeHome(t, map[string]string{"auth.json": `{"version":1,"credential_pool":{"anthropic":[{"id":"a"}]}}`})
	t.Setenv("HERMES_HOME", home)
	var out, errb bytes.Buffer
	rc := run([]string{"hermes", "auth", "add", "openai-codex", "--type", "oauth"}, strings.NewReader("XYZ-42\n"), &out, &errb)
	if rc != 0 {
		t.Fatalf("rc = %d, stderr %q", rc, errb.String())
	}
	for _, want := range []string{"Open https://auth.example.invalid/device and enter code ABCD-1234\n", "Paste the authorization code: ", "Logged in to openai-codex.\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout %q lacks %q", out.String(), want)
		}
	}
	fi, err := os.Stat(filepath.Join(home, "auth.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("auth.json: %v, %v", fi, err)
	}
	if left, _ := filepath.Glob(filepath.Join(home, ".auth.json.tmp-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	out.Reset()
	if rc := run([]string{"/runner", "hermes", "auth", "list"}, nil, &out, &errb); rc != 0 || out.String() != "anthropic\nopenai-codex\n" {
		t.Errorf("auth list = %d %q", rc, out.String())
	}
}

func TestHermesAuthAddEmptyCodeAndUsage(t *testing.T) {
	home := writeHome(t, nil)
	t.Setenv("HERMES_HOME", home)
	var out, errb bytes.Buffer
	if rc := run([]string{"hermes", "auth", "add", "openai-codex", "--type=oauth"}, strings.NewReader("\n"), &out, &errb); rc != 1 {
		t.Errorf("empty code: rc = %d", rc)
	}
	if _, err := os.Stat(filepath.Join(home, "auth.json")); !os.IsNotExist(err) {
		t.Errorf("auth.json written after an empty code: %v", err)
	}
	for _, args := range [][]string{
		{"hermes"}, {"hermes", "chat"}, {"hermes", "auth", "add", "openai-codex"},
		{"hermes", "auth", "add", "openai-codex", "--type", "api-key"}, {"hermes", "auth", "add", "a", "b", "--type", "oauth"},
		{"hermes", "auth", "add", "../x", "--type", "oauth"},
	} {
		if rc := run(args, strings.NewReader("code\n"), &out, &errb); rc != 2 {
			t.Errorf("%v: rc = %d, want 2", args, rc)
		}
	}
}

func TestApplets(t *testing.T) {
	dir := writeHome(t, map[string]string{"config.yaml": "x", ".env": "y"})
	var out, errb bytes.Buffer
	if rc := run([]string{"/bin/ls", "-1a", dir}, nil, &out, &errb); rc != 0 || out.String() != ".\n..\n.env\nconfig.yaml\n" {
		t.Errorf("ls -1a = %d %q", rc, out.String())
	}
	out.Reset()
	if rc := run([]string{"runner", "ls", dir}, nil, &out, &errb); rc != 0 || out.String() != "config.yaml\n" {
		t.Errorf("ls = %d %q", rc, out.String())
	}
	out.Reset()
	if rc := run([]string{"ls", "-l", filepath.Join(dir, ".env")}, nil, &out, &errb); rc != 0 || !strings.HasPrefix(out.String(), "-rw------- 1 ") {
		t.Errorf("ls -l = %d %q", rc, out.String())
	}
	errb.Reset()
	if rc := run([]string{"ls", "-1a", filepath.Join(dir, "missing")}, nil, &out, &errb); rc != 2 || !strings.Contains(errb.String(), "No such file or directory") {
		t.Errorf("ls missing = %d %q", rc, errb.String())
	}
	out.Reset()
	if rc := run([]string{"cat", filepath.Join(dir, "config.yaml"), filepath.Join(dir, ".env")}, nil, &out, &errb); rc != 0 || out.String() != "xy" {
		t.Errorf("cat = %d %q", rc, out.String())
	}
	if rc := run([]string{"cat", filepath.Join(dir, "missing")}, nil, &out, &errb); rc != 1 {
		t.Errorf("cat missing = %d", rc)
	}
	f := filepath.Join(dir, "new")
	if rc := run([]string{"touch", f}, nil, &out, &errb); rc != 0 {
		t.Errorf("touch = %d", rc)
	}
	if rc := run([]string{"rm", f}, nil, &out, &errb); rc != 0 {
		t.Errorf("rm = %d", rc)
	}
	if _, err := os.Stat(f); !os.IsNotExist(err) {
		t.Errorf("rm left %s: %v", f, err)
	}
	if rc := run([]string{"rm", f}, nil, &out, &errb); rc != 1 {
		t.Errorf("rm missing = %d", rc)
	}
	if rc := run([]string{"rm", "-f", f}, nil, &out, &errb); rc != 0 {
		t.Errorf("rm -f missing = %d", rc)
	}
	if rc := run([]string{"rm", dir}, nil, &out, &errb); rc != 1 {
		t.Errorf("rm dir = %d", rc)
	}
	out.Reset()
	if rc := run([]string{"id"}, nil, &out, &errb); rc != 0 || !strings.HasPrefix(out.String(), "uid=") || !strings.Contains(out.String(), " gid=") {
		t.Errorf("id = %d %q", rc, out.String())
	}
	out.Reset()
	t.Setenv("STANDIN_ENV_PROBE", "1")
	if rc := run([]string{"env"}, nil, &out, &errb); rc != 0 || !strings.Contains(out.String(), "STANDIN_ENV_PROBE=1\n") {
		t.Errorf("env = %d", rc)
	}
	if rc := run([]string{"runner", "sh", "-c", "true"}, nil, &out, &errb); rc != 2 {
		t.Errorf("sh = %d, want 2 (there is no shell)", rc)
	}
}
