package wizard

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"gopkg.in/yaml.v3"

	"github.com/firemountain/hermes-gitops/schema"
)

// TestEveryProvider sends one signed submission per provider (and per app allow-list)
// and follows each into the remote: the commit is there, the file validates, sops with
// the private key gives the secrets back, and no secret value is anywhere else.
func TestEveryProvider(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	cases := []struct {
		app, provider, envKey string
		extra                 map[string]any
	}{
		{"astral", "anthropic", "ANTHROPIC_API_KEY", map[string]any{
			"telegram": map[string]any{"botToken": botToken(), "allowedUsers": []any{111111111, "222222222"}}}},
		{"astral", "openai", "OPENAI_API_KEY", nil},
		{"spawn", "openai-api", "OPENAI_API_KEY", map[string]any{
			"bundles": []string{"research@0.1.0"}, "skills": []string{"meeting-notes"}, "storage": map[string]any{"quota": "5Gi"}}},
		{"spawn", "openrouter", "OPENROUTER_API_KEY", map[string]any{"provider": map[string]any{"id": "openrouter", "model": "anthropic/claude-sonnet-4.5"}}},
		{"astral", "openai-codex", "", nil},
		{"spawn", "anthropic-oauth", "", map[string]any{"worker": "edge-1"}},
	}
	before := f.count(t, "main")
	var secrets []string
	for _, c := range cases {
		key := ""
		if c.envKey != "" {
			key = canary("sk-canary-")
			secrets = append(secrets, key)
		}
		s := sub("Agent "+c.provider+" Ünïcode", c.app, c.provider, key)
		for k, v := range c.extra {
			s[k] = v
		}
		var token string
		if tg, ok := s["telegram"].(map[string]any); ok {
			token = tg["botToken"].(string)
			secrets = append(secrets, token)
		}
		code, out := f.submit(t, s, nil)
		if code != http.StatusAccepted {
			t.Fatalf("%s: status %d: %v", c.provider, code, out)
		}
		id := "agent-" + c.provider + "-unicode"
		if out["tenantId"] != id || out["branch"] != "main" || out["app"] != c.app {
			t.Errorf("%s: answer %v", c.provider, out)
		}
		if got, want := out["statusUrl"], "/v1/submissions/"+id+"/status"; got != want {
			t.Errorf("%s: statusUrl %v, want %s", c.provider, got, want)
		}
		if got, want := out["authRequired"], c.envKey == ""; got != want {
			t.Errorf("%s: authRequired %v, want %v", c.provider, got, want)
		}
		commit := out["commit"].(string)
		if head := f.git(t, "rev-parse", "main"); head != commit {
			t.Errorf("%s: remote main is %s, the answer says %s", c.provider, head, commit)
		}
		if subj := f.git(t, "log", "-1", "--format=%s|%an <%ae>", commit); subj != "tenant("+c.app+"): add "+id+" via wizard|hermes-gitops wizard <wizard@hermes-gitops.invalid>" {
			t.Errorf("%s: commit %q", c.provider, subj)
		}
		rel := "tenants/" + c.app + "/" + id + ".yaml"
		stored := f.git(t, "show", "main:"+rel)
		if c.envKey == "" && token == "" {
			if strings.Contains(stored, "sops:") {
				t.Errorf("%s: a file without secrets got sops metadata:\n%s", c.provider, stored)
			}
			continue
		}
		plain := f.decrypt(t, "main", rel)
		var doc struct {
			Secrets map[string]string `yaml:"secrets"`
		}
		if err := yaml.Unmarshal([]byte(plain), &doc); err != nil {
			t.Fatal(err)
		}
		if c.envKey != "" && doc.Secrets[c.envKey] != key {
			t.Errorf("%s: sops -d does not give the API key back under %s", c.provider, c.envKey)
		}
		if token != "" && doc.Secrets["TELEGRAM_BOT_TOKEN"] != token {
			t.Errorf("%s: sops -d does not give the bot token back", c.provider)
		}
	}
	if got := f.count(t, "main"); got != before+len(cases) {
		t.Errorf("remote main has %d commits, want %d", got, before+len(cases))
	}
	if out := f.git(t, "fsck", "--strict", "--no-progress"); out != "" {
		t.Errorf("git fsck: %s", out)
	}

	// The whole repository, checked out by the git CLI, validates.
	checkout := filepath.Join(t.TempDir(), "checkout")
	gitRun(t, f.bare, "clone", "-q", f.bare, checkout)
	repo, err := schema.Load(checkout, schema.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if errs := repo.Problems.Errors(); len(errs) > 0 {
		t.Errorf("the repository does not validate:\n%v", errs)
	}
	tg := repo.Tenant("agent-anthropic-unicode")
	if tg == nil || fmt.Sprint(tg.Spec.Telegram.AllowedUsers) != "[111111111 222222222]" {
		t.Errorf("telegram users not written: %+v", tg)
	}
	if sp := repo.Tenant("agent-openai-api-unicode"); sp == nil || sp.Spec.Storage.S3 == nil || sp.Spec.Storage.S3.Quota != "5Gi" || len(sp.Spec.Skills) != 1 {
		t.Errorf("storage or skills not written: %+v", sp)
	}
	if w := repo.Tenant("agent-anthropic-oauth-unicode"); w == nil || w.Spec.Worker != "edge-1" {
		t.Errorf("allowed worker not written")
	}
	f.assertNowhere(t, secrets...)

	f.assertClone(t)

	// Without a daemon, the status says committed.
	code, st := f.status(t, "agent-openai-codex-unicode")
	if code != http.StatusOK || st["stage"] != StageCommitted || st["onRemote"] != true || st["merged"] != true || st["authRequired"] != true {
		t.Errorf("status %d %v", code, st)
	}
}

// TestRefusals: each bad request gets its status, and nothing is committed.
func TestRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	before := f.count(t, "main")
	key := canary("sk-refused-")
	good := func() map[string]any { return sub("Refused Agent", "astral", "anthropic", key) }
	body := func(v any) []byte { b, _ := json.Marshal(v); return b }
	now := time.Now().Unix()

	type check struct {
		name   string
		status int
		field  string // for 400s
		send   func() (*http.Response, []byte)
	}
	post := func(b []byte, secret string, ts int64) func() (*http.Response, []byte) {
		return func() (*http.Response, []byte) {
			return f.request(t, http.MethodPost, "/v1/submissions", b, secret, ts, nil)
		}
	}
	with := func(k string, v any) []byte {
		s := good()
		s[k] = v
		return body(s)
	}
	big := good()
	big["skills"] = []string{strings.Repeat("x", 70<<10)}
	checks := []check{
		{"wrong secret", 401, "", post(body(good()), "not-the-secret-at-all-000", 0)},
		{"unsigned", 401, "", post(body(good()), "", 0)},
		{"stale timestamp", 401, "", post(body(good()), testSecret, now-int64(MaxAge/time.Second)-10)},
		{"future timestamp", 401, "", post(body(good()), testSecret, now+120)},
		{"signature of another body", 401, "", func() (*http.Response, []byte) {
			req, _ := http.NewRequest(http.MethodPost, f.http.URL+"/v1/submissions", bytes.NewReader(body(good())))
			ts := fmt.Sprint(time.Now().Unix())
			req.Header.Set(HeaderTimestamp, ts)
			req.Header.Set(HeaderSignature, Sign([]byte(testSecret), ts, []byte(`{}`)))
			return f.do(t, req)
		}},
		{"unknown field", 400, "color", post(with("color", "red"), testSecret, 0)},
		{"trailing data", 400, "", post(append(body(good()), []byte(` {}`)...), testSecret, 0)},
		{"oversize body", 413, "", post(body(big), testSecret, 0)},
		{"oversize chunked body", 413, "", func() (*http.Response, []byte) {
			req, _ := http.NewRequest(http.MethodPost, f.http.URL+"/v1/submissions", struct{ *bytes.Reader }{bytes.NewReader(body(big))})
			return f.do(t, req)
		}},
		{"duplicate id in another app", 409, "", post(with("tenantId", "nova"), testSecret, 0)},
		{"duplicate derived id", 409, "", post(with("agentName", "  Nova!  "), testSecret, 0)},
		{"provider not allowed for the app", 400, "provider.id", post(body(sub("X Agent", "spawn", "openai", key)), testSecret, 0)},
		{"unknown provider", 400, "provider.id", post(body(sub("X Agent", "spawn", "gemini", key)), testSecret, 0)},
		{"missing api key", 400, "apiKey", post(body(sub("X Agent", "spawn", "anthropic", "")), testSecret, 0)},
		{"api key with a line break", 400, "apiKey", post(body(sub("X Agent", "spawn", "anthropic", key+"\nEVIL=1")), testSecret, 0)},
		{"api key for an oauth provider", 400, "apiKey", post(body(sub("X Agent", "spawn", "anthropic-oauth", key)), testSecret, 0)},
		{"non-numeric telegram id", 400, "telegram.allowedUsers[1]", post(with("telegram", map[string]any{"botToken": botToken(), "allowedUsers": []any{1234, "@nova"}}), testSecret, 0)},
		{"bad bot token", 400, "telegram.botToken", post(with("telegram", map[string]any{"botToken": key, "allowedUsers": []any{1234}}), testSecret, 0)},
		{"unknown bundle", 400, "bundles[0]", post(with("bundles", []string{"nope@1.0.0"}), testSecret, 0)},
		{"unknown skill", 400, "skills[0]", post(with("skills", []string{"no-such-skill"}), testSecret, 0)},
		{"bad quota", 400, "storage.quota", post(with("storage", map[string]any{"quota": "lots"}), testSecret, 0)},
		{"worker not allowed", 400, "worker", post(with("worker", "somewhere"), testSecret, 0)},
		{"unknown app", 400, "app", post(body(sub("X Agent", "nosuchapp", "anthropic", key)), testSecret, 0)},
		{"path in app", 400, "app", post(body(sub("X Agent", "../apps", "anthropic", key)), testSecret, 0)},
		{"bad tenant id", 400, "tenantId", post(with("tenantId", "Not_An_Id"), testSecret, 0)},
		{"wrong type", 400, "owner.email", post(with("owner", map[string]any{"email": 42}), testSecret, 0)},
		{"not json", 400, "", post([]byte(key), testSecret, 0)},
	}
	for _, c := range checks {
		resp, data := c.send()
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, resp.StatusCode, c.status, data)
			continue
		}
		var out errorBody
		if err := json.Unmarshal(data, &out); err != nil || out.Error == "" || out.Message == "" {
			t.Errorf("%s: not an error body: %s", c.name, data)
		}
		if c.field != "" {
			found := false
			for _, e := range out.Errors {
				found = found || e.Field == c.field
			}
			if !found {
				t.Errorf("%s: no error for field %s: %s", c.name, c.field, data)
			}
		}
		if c.status == 409 {
			if out.SuggestedTenantID != "nova-2" {
				t.Errorf("%s: suggested %q, want nova-2", c.name, out.SuggestedTenantID)
			}
		}
	}
	if got := f.count(t, "main"); got != before {
		t.Errorf("refused submissions committed: %d commits, want %d", got, before)
	}
	f.assertNowhere(t, key)

	// The suggestion is free: it is accepted.
	s := good()
	s["tenantId"] = "nova-2"
	if code, out := f.submit(t, s, nil); code != http.StatusAccepted {
		t.Errorf("suggested id refused: %d %v", code, out)
	}
	// A rotated secret is valid too.
	b := body(sub("Rotated Agent", "spawn", "openai-codex", ""))
	if resp, data := f.request(t, http.MethodPost, "/v1/submissions", b, rotatedSecret, 0, nil); resp.StatusCode != http.StatusAccepted {
		t.Errorf("second secret refused: %s", data)
	}
	f.srv.SetSecrets([][]byte{[]byte(rotatedSecret)})
	b = body(sub("Old Secret Agent", "spawn", "openai-codex", ""))
	if resp, _ := f.request(t, http.MethodPost, "/v1/submissions", b, testSecret, 0, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a removed secret still signs: %d", resp.StatusCode)
	}
	f.assertNowhere(t, key)
}

// TestConcurrentSubmissions: 50 at once give 50 commits, none lost, none twice.
func TestConcurrentSubmissions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	before := f.count(t, "main")
	const n = 50
	var wg sync.WaitGroup
	commits := make([]string, n)
	keys := make([]string, n)
	for i := range n {
		keys[i] = canary("sk-conc-")
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, out := f.submit(t, sub(fmt.Sprintf("Concurrent %02d", i), "spawn", "anthropic", keys[i]), nil)
			if code != http.StatusAccepted {
				t.Errorf("submission %d: %d %v", i, code, out)
				return
			}
			commits[i] = out["commit"].(string)
		}()
	}
	wg.Wait()
	if got := f.count(t, "main"); got != before+n {
		t.Fatalf("remote main has %d commits, want %d", got, before+n)
	}
	log := f.git(t, "log", "--format=%H %s", "main")
	seen := map[string]bool{}
	for i, c := range commits {
		if seen[c] {
			t.Errorf("commit %s answered twice", c)
		}
		seen[c] = true
		if strings.Count(log, fmt.Sprintf("add concurrent-%02d via wizard", i)) != 1 {
			t.Errorf("tenant concurrent-%02d is not committed exactly once", i)
		}
		if !strings.Contains(log, c) {
			t.Errorf("commit %s is not on the remote", c)
		}
	}
	if files := f.git(t, "ls-tree", "--name-only", "main", "tenants/spawn/"); strings.Count(files, "concurrent-") != n {
		t.Errorf("want %d files:\n%s", n, files)
	}
	f.assertNowhere(t, keys...)
}

// TestRemoteMovedBeforePush: another writer pushes between the server's look at the
// remote and its push; the push is refused by the remote, and the server fetches,
// rebuilds its commit on the new head and pushes once.
func TestRemoteMovedBeforePush(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	var other string
	calls := 0
	f.srv.repo.beforePush = func(plumbing.ReferenceName, plumbing.Hash) {
		calls++
		if calls == 1 {
			other = f.pushFile(t, "tenants/spawn/outside1.yaml", plainTenant("outside1", "spawn"), "a person adds outside1")
		}
	}
	code, out := f.submit(t, sub("Raced Agent", "spawn", "openai-codex", ""), nil)
	if code != http.StatusAccepted {
		t.Fatalf("%d %v", code, out)
	}
	if calls != 2 {
		t.Errorf("pushed %d times, want 2 (refused, then accepted)", calls)
	}
	commit := out["commit"].(string)
	if head := f.git(t, "rev-parse", "main"); head != commit {
		t.Errorf("remote main %s, answer %s", head, commit)
	}
	if parent := f.git(t, "rev-parse", commit+"^"); parent != other {
		t.Errorf("the commit's parent is %s, want the other writer's %s", parent, other)
	}
	if n := strings.Count(f.git(t, "log", "--format=%s", "main"), "add raced-agent via wizard"); n != 1 {
		t.Errorf("committed %d times", n)
	}
	if !strings.Contains(f.logs.String(), "push failed; fetching and trying again") {
		t.Errorf("the retry is not logged")
	}
	f.assertClone(t)
}

// TestPushLandedAnswerLost: the remote took the push but the server did not hear it (here:
// the same commit reaches the remote by another way first, so the server's own update is
// refused). The retry finds the commit on the remote and answers 202 with it: one
// commit, no 409 for the tenant the submission itself created.
func TestPushLandedAnswerLost(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	before := f.count(t, "main")
	calls := 0
	f.srv.repo.beforePush = func(ref plumbing.ReferenceName, commit plumbing.Hash) {
		calls++
		if calls == 1 {
			gitRun(t, f.clone, "--git-dir", f.clone, "push", "-q", f.bare, commit.String()+":"+ref.String())
		}
	}
	code, out := f.submit(t, sub("Lost Answer", "spawn", "openai-codex", ""), nil)
	if code != http.StatusAccepted {
		t.Fatalf("%d %v", code, out)
	}
	if head := f.git(t, "rev-parse", "main"); head != out["commit"] {
		t.Errorf("remote at %s, answer %v", head, out["commit"])
	}
	if got := f.count(t, "main"); got != before+1 {
		t.Errorf("%d commits, want %d", got, before+1)
	}
	if calls != 1 || !strings.Contains(f.logs.String(), "an earlier push of this submission had landed") {
		t.Errorf("%d pushes; log:\n%s", calls, f.logs.String())
	}
	f.assertClone(t)
}

// TestStaleClone: the clone is behind (a person pushed since the last fetch); a new
// id is committed on top of the person's commit, and an id the person just added gets a
// 409 even though the clone had not seen it.
func TestStaleClone(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil) // fetch interval 1h: never fetches on its own
	other := f.pushFile(t, "tenants/astral/outside2.yaml", plainTenant("outside2", "astral"), "a person adds outside2")
	s := sub("Whatever", "spawn", "openai-codex", "")
	s["tenantId"] = "outside2"
	if code, out := f.submit(t, s, nil); code != http.StatusConflict || out["suggestedTenantId"] != "outside2-2" {
		t.Errorf("id added behind the clone's back: %d %v", code, out)
	}
	code, out := f.submit(t, sub("Late Agent", "spawn", "openai-codex", ""), nil)
	if code != http.StatusAccepted {
		t.Fatalf("%d %v", code, out)
	}
	if parent := f.git(t, "rev-parse", out["commit"].(string)+"^"); parent != other {
		t.Errorf("parent %s, want %s", parent, other)
	}
}

// TestPersistentFailure: a remote that refuses every push gives 503 after the bounded
// retries, commits nothing and leaves the clone clean at the remote head.
func TestPersistentFailure(t *testing.T) {
	t.Parallel()
	rm := newRemote(t)
	f := startServer(t, rm, func(c *Config) { c.PushAttempts = 3 })
	hook := filepath.Join(rm.bare, "hooks", "pre-receive")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\necho 'refused by test' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	before := f.git(t, "rev-parse", "main")
	key := canary("sk-fail-")
	resp, data := f.request(t, http.MethodPost, "/v1/submissions", mustJSON(sub("Doomed Agent", "spawn", "anthropic", key)), testSecret, 0, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("%d %s", resp.StatusCode, data)
	}
	if after := f.git(t, "rev-parse", "main"); after != before {
		t.Errorf("remote moved to %s", after)
	}
	f.assertClone(t)
	if out := gitRun(t, f.clone, "--git-dir", f.clone, "fsck", "--dangling", "--no-progress"); strings.Contains(out, "dangling") {
		t.Errorf("the failed attempts left objects in the clone:\n%s", out)
	}
	if n := strings.Count(f.logs.String(), "push failed; fetching and trying again"); n != 3 {
		t.Errorf("%d push attempts logged, want 3", n)
	}
	// Once the remote accepts pushes again, so does the server.
	if err := os.Remove(hook); err != nil {
		t.Fatal(err)
	}
	if code, out := f.submit(t, sub("Doomed Agent", "spawn", "anthropic", key), nil); code != http.StatusAccepted {
		t.Errorf("after recovery: %d %v", code, out)
	}
	f.assertNowhere(t, key)
}

// fakeGitHub is the pull request endpoint of the GitHub API, and nothing else: any
// other call fails the test.
type fakeGitHub struct {
	t     *testing.T
	mu    sync.Mutex
	calls []map[string]any
	fail  bool // answer 422, as GitHub does for an invalid request
}

func (g *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.t.Helper()
	if r.Method != http.MethodPost || r.URL.Path != "/repos/acme/tenants/pulls" {
		g.t.Errorf("unexpected GitHub API call %s %s", r.Method, r.URL.Path)
		http.Error(w, "unexpected", http.StatusTeapot)
		return
	}
	if r.Header.Get("Authorization") != "Bearer ghp_testtoken123" || r.Header.Get("Accept") != "application/vnd.github+json" {
		g.t.Errorf("bad GitHub headers: %v", r.Header)
		http.Error(w, "bad credentials", http.StatusUnauthorized)
		return
	}
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		g.t.Errorf("GitHub body: %v", err)
	}
	g.mu.Lock()
	g.calls = append(g.calls, body)
	n, fail := len(g.calls), g.fail
	g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if fail {
		w.WriteHeader(http.StatusUnprocessableEntity)
		fmt.Fprint(w, `{"message": "Validation Failed"}`)
		return
	}
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"number": %d, "html_url": "https://github.com/acme/tenants/pull/%d"}`, n, n)
}

// TestReviewMode: the submission becomes a branch wizard/<id> with a pull request; main
// is untouched.
func TestReviewMode(t *testing.T) {
	t.Parallel()
	gh := &fakeGitHub{t: t}
	api := httptest.NewServer(gh)
	defer api.Close()
	f := newFixture(t, func(c *Config) {
		c.Mode = ModeReview
		c.GitHub = &GitHub{Token: "ghp_testtoken123", Repo: "acme/tenants", APIURL: api.URL}
		c.Redact = []string{"ghp_testtoken123"}
	})
	main := f.git(t, "rev-parse", "main")
	key := canary("sk-review-")
	code, out := f.submit(t, sub("Reviewed Agent", "spawn", "openrouter", key), nil)
	if code != http.StatusAccepted {
		t.Fatalf("%d %v", code, out)
	}
	if out["branch"] != "wizard/reviewed-agent" || out["pullRequestUrl"] != "https://github.com/acme/tenants/pull/1" {
		t.Errorf("answer %v", out)
	}
	if got := f.git(t, "rev-parse", "main"); got != main {
		t.Errorf("main moved to %s", got)
	}
	commit := out["commit"].(string)
	if got := f.git(t, "rev-parse", "wizard/reviewed-agent"); got != commit {
		t.Errorf("branch at %s, answer %s", got, commit)
	}
	if parent := f.git(t, "rev-parse", commit+"^"); parent != main {
		t.Errorf("branch not based on main")
	}
	plain := f.decrypt(t, "wizard/reviewed-agent", "tenants/spawn/reviewed-agent.yaml")
	if !strings.Contains(plain, key) {
		t.Errorf("sops -d does not give the key back")
	}
	if len(gh.calls) != 1 || gh.calls[0]["head"] != "wizard/reviewed-agent" || gh.calls[0]["base"] != "main" ||
		gh.calls[0]["title"] != "tenant(spawn): add reviewed-agent via wizard" {
		t.Errorf("pull request calls %v", gh.calls)
	}
	// The same id again, while the first waits for review: 409.
	s := sub("Reviewed Agent", "spawn", "openai-codex", "")
	if code, out := f.submit(t, s, nil); code != http.StatusConflict || out["suggestedTenantId"] != "reviewed-agent-2" {
		t.Errorf("pending id: %d %v", code, out)
	}
	code, st := f.status(t, "reviewed-agent")
	if code != http.StatusOK || st["branch"] != "wizard/reviewed-agent" || st["merged"] != false || st["onRemote"] != true || st["commit"] != commit {
		t.Errorf("status %d %v", code, st)
	}
	// After the merge, the status follows main.
	gitRun(t, f.work, "fetch", "-q", "origin")
	gitRun(t, f.work, "merge", "-q", "--no-edit", "origin/wizard/reviewed-agent")
	gitRun(t, f.work, "push", "-q", "origin", "main")
	f.srv.mu.Lock()
	f.srv.repo.lastFetch = time.Time{}
	f.srv.mu.Unlock()
	if code, st := f.status(t, "reviewed-agent"); code != http.StatusOK || st["merged"] != true || st["branch"] != "main" {
		t.Errorf("status after merge %d %v", code, st)
	}
	// GitHub refuses the pull request: the branch is pushed all the same.
	gh.mu.Lock()
	gh.fail = true
	gh.mu.Unlock()
	merged := f.git(t, "rev-parse", "main")
	code, out = f.submit(t, sub("Second Reviewed", "spawn", "openai-codex", ""), nil)
	if code != http.StatusAccepted || out["pullRequestUrl"] != nil || out["branch"] != "wizard/second-reviewed" {
		t.Errorf("without a pull request: %d %v", code, out)
	}
	if got := f.git(t, "rev-parse", "wizard/second-reviewed"); got != out["commit"] {
		t.Errorf("branch at %s, answer %v", got, out["commit"])
	}
	if !strings.Contains(f.logs.String(), "pull request not opened; the branch is pushed") || len(gh.calls) != 2 {
		t.Errorf("the failed pull request is not logged (%d calls)", len(gh.calls))
	}
	if got := f.git(t, "rev-parse", "main"); got != merged {
		t.Errorf("main moved to %s", got)
	}
	if strings.Contains(f.logs.String(), "ghp_testtoken123") {
		t.Errorf("the GitHub token is in the log")
	}
	f.assertNowhere(t, key, "ghp_testtoken123")
}

// TestIdempotency: a retried submission replays the first answer; no second commit.
func TestIdempotency(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	before := f.count(t, "main")
	s := sub("Retry Agent", "astral", "anthropic", canary("sk-idem-"))
	hdr := map[string]string{"Idempotency-Key": "signup-42"}

	// Five copies at once (a client retrying eagerly): one commit, one answer.
	var wg sync.WaitGroup
	answers := make([]map[string]any, 5)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, out := f.submit(t, s, hdr)
			if code != http.StatusAccepted {
				t.Errorf("copy %d: %d %v", i, code, out)
			}
			answers[i] = out
		}()
	}
	wg.Wait()
	for _, a := range answers[1:] {
		if fmt.Sprint(a) != fmt.Sprint(answers[0]) {
			t.Errorf("answers differ: %v vs %v", a, answers[0])
		}
	}
	// The same payload without the header is recognised too.
	resp, data := f.request(t, http.MethodPost, "/v1/submissions", mustJSON(s), testSecret, 0, nil)
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Idempotent-Replayed") != "true" || !strings.Contains(string(data), answers[0]["commit"].(string)) {
		t.Errorf("payload replay: %d %s", resp.StatusCode, data)
	}
	if got := f.count(t, "main"); got != before+1 {
		t.Errorf("%d commits, want %d", got, before+1)
	}
	// The key with another payload is an error.
	other := sub("Other Agent", "astral", "openai-codex", "")
	if code, out := f.submit(t, other, hdr); code != http.StatusUnprocessableEntity {
		t.Errorf("key reuse: %d %v", code, out)
	}
}

// TestRateLimit: past the burst, a client gets 429 with Retry-After.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.RateLimit, c.RateBurst = 0.01, 2 })
	for i := 0; i < 2; i++ {
		if code, _ := f.status(t, "nobody"); code != http.StatusNotFound {
			t.Fatalf("request %d: %d", i, code)
		}
	}
	resp, data := f.request(t, http.MethodPost, "/v1/submissions", mustJSON(sub("Limited", "spawn", "openai-codex", "")), testSecret, 0, nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("%d %s %v", resp.StatusCode, data, resp.Header)
	}
	// Health checks are not limited.
	if r, _ := http.Get(f.http.URL + "/healthz"); r.StatusCode != http.StatusOK {
		t.Errorf("healthz %d", r.StatusCode)
	}
}

// fakeDaemon serves GET /v1/tenants/{id} from a map and fails the test on anything else.
type fakeDaemon struct {
	t  *testing.T
	mu sync.Mutex
	st map[string]TenantStatus
}

func (d *fakeDaemon) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutPrefix(r.URL.Path, "/v1/tenants/")
	if r.Method != http.MethodGet || !ok {
		d.t.Errorf("unexpected daemon call %s %s", r.Method, r.URL.Path)
		http.Error(w, "unexpected", http.StatusTeapot)
		return
	}
	d.mu.Lock()
	st, found := d.st[id]
	d.mu.Unlock()
	if !found {
		http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
		return
	}
	_ = json.NewEncoder(w).Encode(st)
}

func (d *fakeDaemon) set(id string, st TenantStatus) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.st[id] = st
}

// TestStatus follows a submission through committed → applied → ready.
func TestStatus(t *testing.T) {
	t.Parallel()
	d := &fakeDaemon{t: t, st: map[string]TenantStatus{}}
	daemon := httptest.NewServer(d)
	defer daemon.Close()
	f := newFixture(t, func(c *Config) { c.Status = HTTPStatus{BaseURL: daemon.URL} })
	code, out := f.submit(t, sub("Status Agent", "astral", "openai-codex", ""), nil)
	if code != http.StatusAccepted {
		t.Fatalf("%d %v", code, out)
	}
	id, commit := out["tenantId"].(string), out["commit"].(string)
	steps := []struct {
		st    *TenantStatus
		stage string
		auth  bool
	}{
		{nil, StageCommitted, true},
		{&TenantStatus{Phase: PhasePending}, StageCommitted, true},
		{&TenantStatus{Phase: PhaseProvisioning, Revision: commit}, StageApplied, true},
		{&TenantStatus{Phase: PhaseAwaitingAuth, Revision: commit}, StageApplied, true},
		{&TenantStatus{Phase: PhaseError, Revision: commit, LastError: "tenant status-agent: docker run: exit 125"}, StageApplied, true},
		{&TenantStatus{Phase: PhaseReady, Revision: commit}, StageReady, true},
	}
	for _, s := range steps {
		if s.st != nil {
			d.set(id, *s.st)
		}
		code, st := f.status(t, id)
		if code != http.StatusOK || st["stage"] != s.stage || st["commit"] != commit || st["authRequired"] != s.auth {
			t.Errorf("phase %v: %d %v", s.st, code, st)
		}
		if s.st != nil && (st["phase"] != s.st.Phase || st["lastError"] != nilIfEmpty(s.st.LastError)) {
			t.Errorf("phase %v: %v", s.st, st)
		}
	}
	// A tenant of the repository the server did not submit is known too.
	d.set("vega", TenantStatus{Phase: PhaseReady})
	if code, st := f.status(t, "vega"); code != http.StatusOK || st["stage"] != StageReady || st["app"] != "astral" {
		t.Errorf("vega: %d %v", code, st)
	}
	// The daemon down: still committed, with a note.
	daemon.Close()
	if code, st := f.status(t, id); code != http.StatusOK || st["stage"] != StageCommitted || st["statusError"] == nil {
		t.Errorf("daemon down: %d %v", code, st)
	}
	if code, _ := f.status(t, "no-such-tenant"); code != http.StatusNotFound {
		t.Errorf("unknown tenant: %d", code)
	}
	if resp, _ := f.request(t, http.MethodGet, "/v1/submissions/"+id+"/status", nil, "", 0, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned status: %d", resp.StatusCode)
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// TestRestart: a server started on an existing clone fetches and carries on; a clone of
// another remote is refused.
func TestRestart(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	if code, out := f.submit(t, sub("Before Restart", "spawn", "openai-codex", ""), nil); code != http.StatusAccepted {
		t.Fatalf("%d %v", code, out)
	}
	f.pushFile(t, "tenants/spawn/outside3.yaml", plainTenant("outside3", "spawn"), "a person adds outside3")
	g := startServer(t, f.remote, nil)
	g.assertClone(t)
	s := sub("x", "spawn", "openai-codex", "")
	s["tenantId"] = "outside3"
	if code, _ := g.submit(t, s, nil); code != http.StatusConflict {
		t.Errorf("restart did not fetch: %d", code)
	}
	if code, out := g.submit(t, sub("After Restart", "spawn", "openai-codex", ""), nil); code != http.StatusAccepted {
		t.Errorf("%d %v", code, out)
	}
	_, err := New(context.Background(), Config{RepoURL: t.TempDir(), CloneDir: g.clone, Secrets: g.secrets, DefaultWorker: "local"})
	if err == nil || !strings.Contains(err.Error(), "another remote") {
		t.Errorf("clone of another remote: %v", err)
	}
	_, err = New(context.Background(), Config{RepoURL: f.bare, CloneDir: f.work, Secrets: g.secrets, DefaultWorker: "local"})
	if err == nil || !strings.Contains(err.Error(), "not a bare clone") {
		t.Errorf("a checkout as clone dir: %v", err)
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
