package wizard

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/firemountain/hermes-gitops/schema"
)

func TestSlugify(t *testing.T) {
	for in, want := range map[string]string{
		"Cody":                           "cody",
		"  Nova!  ":                      "nova",
		"Zoë Ørsted's Bot":               "zoe-orsted-s-bot",
		"Straße & Æther":                 "strasse-aether",
		"Ｆｕｌｌｗｉｄｔｈ":                      "fullwidth",
		"Дима Bot":                       "bot",
		"李小龙":                            "agent",
		"":                               "agent",
		"--":                             "agent",
		"Al":                             "al-agent",
		"x":                              "x-agent",
		"R2":                             "r2-agent",
		"007":                            "007",
		"a---b___c":                      "a-b-c",
		"Crème brûlée – the agent™":      "creme-brulee-the-agenttm",
		strings.Repeat("abcdefghij ", 6): "abcdefghij-abcdefghij-abcdefghij-abcdefg",
		"abcdefghij abcdefghij abcdefghij abcdefgh-ij": "abcdefghij-abcdefghij-abcdefghij-abcdefg",
		"abcdefghij abcdefghij abcdefghij abcdefg-hij": "abcdefghij-abcdefghij-abcdefghij-abcdefg",
		"abcdefghij abcdefghij abcdefghij abcdef-ghij": "abcdefghij-abcdefghij-abcdefghij-abcdef",
	} {
		got := Slugify(in)
		if got != want {
			t.Errorf("Slugify(%q) = %q, want %q", in, got, want)
		}
		if !ValidTenantID(got) {
			t.Errorf("Slugify(%q) = %q is not a valid tenant id", in, got)
		}
	}
}

func FuzzSlugify(f *testing.F) {
	for _, s := range []string{"Cody", "Zoë", "", "a", strings.Repeat("é-", 50), "\u2028x\u0085"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if id := Slugify(s); !ValidTenantID(id) {
			t.Errorf("Slugify(%q) = %q is not a valid tenant id", s, id)
		}
	})
}

func TestSuggestID(t *testing.T) {
	taken := map[string]bool{"nova": true, "nova-2": true}
	if got := suggestID("nova", func(s string) bool { return taken[s] }); got != "nova-3" {
		t.Errorf("got %q", got)
	}
	long := strings.Repeat("a", 39) + "b"
	got := suggestID(long, func(s string) bool { return s == long })
	if got != strings.Repeat("a", 38)+"-2" || !ValidTenantID(got) {
		t.Errorf("got %q", got)
	}
	dashy := strings.Repeat("a", 37) + "-bc"
	if got := suggestID(dashy, func(string) bool { return false }); got != strings.Repeat("a", 37)+"-2" {
		t.Errorf("got %q", got)
	}
}

func TestVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	secrets := [][]byte{[]byte("first-secret-0123456789"), []byte("second-secret-0123456789")}
	body := []byte(`{"agentName":"Cody"}`)
	hdr := func(secret string, at time.Time, b []byte) http.Header {
		ts := strconv.FormatInt(at.Unix(), 10)
		return http.Header{HeaderTimestamp: {ts}, HeaderSignature: {Sign([]byte(secret), ts, b)}}
	}
	for _, c := range []struct {
		name string
		h    http.Header
		ok   bool
	}{
		{"first secret", hdr("first-secret-0123456789", now, body), true},
		{"second secret", hdr("second-secret-0123456789", now, body), true},
		{"4m59s old", hdr("first-secret-0123456789", now.Add(-299*time.Second), body), true},
		{"59s ahead", hdr("first-secret-0123456789", now.Add(59*time.Second), body), true},
		{"unknown secret", hdr("third-secret-0123456789", now, body), false},
		{"other body", hdr("first-secret-0123456789", now, []byte(`{}`)), false},
		{"5m01s old", hdr("first-secret-0123456789", now.Add(-301*time.Second), body), false},
		{"61s ahead", hdr("first-secret-0123456789", now.Add(61*time.Second), body), false},
		{"no headers", http.Header{}, false},
		{"not a number", http.Header{HeaderTimestamp: {"yesterday"}, HeaderSignature: {"sha256=00"}}, false},
		{"no prefix", http.Header{HeaderTimestamp: {strconv.FormatInt(now.Unix(), 10)}, HeaderSignature: {strings.TrimPrefix(hdr("first-secret-0123456789", now, body).Get(HeaderSignature), "sha256=")}}, false},
		{"short signature", http.Header{HeaderTimestamp: {strconv.FormatInt(now.Unix(), 10)}, HeaderSignature: {"sha256=abcd"}}, false},
	} {
		err := verify(c.h, body, secrets, now)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret-0123456789") {
			t.Errorf("%s: the error names a secret: %v", c.name, err)
		}
	}
}

func TestParseSecrets(t *testing.T) {
	s, err := ParseSecrets("# rotation: new first\n new-secret-0123456789 \n\nold-secret-0123456789\n", "\n")
	if err != nil || len(s) != 2 || string(s[0]) != "new-secret-0123456789" {
		t.Errorf("%q %v", s, err)
	}
	if _, err := ParseSecrets("ok-secret-0123456789,short", ","); err == nil || strings.Contains(err.Error(), "short") && !strings.Contains(err.Error(), "shorter") {
		t.Errorf("short secret: %v", err)
	}
	if _, err := ParseSecrets("# nothing\n", "\n"); err == nil {
		t.Errorf("no secret accepted")
	}
}

func TestLimiter(t *testing.T) {
	l := newLimiter(2, 3) // 2 per second, bursts of 3
	now := time.Unix(0, 0)
	for i := range 3 {
		if ok, _ := l.allow("a", now); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, wait := l.allow("a", now)
	if ok || wait != 500*time.Millisecond {
		t.Errorf("past the burst: %v %v", ok, wait)
	}
	if ok, _ := l.allow("b", now); !ok {
		t.Errorf("another client is limited too")
	}
	if ok, _ := l.allow("a", now.Add(500*time.Millisecond)); !ok {
		t.Errorf("refilled token refused")
	}
	if ok, _ := newLimiter(0, 0).allow("a", now); !ok {
		t.Errorf("rate 0 must disable the limit")
	}
	for i := range maxBuckets + 10 {
		l.allow(strconv.Itoa(i), now.Add(time.Hour))
	}
	if len(l.buckets) > maxBuckets {
		t.Errorf("%d buckets kept", len(l.buckets))
	}
}

func TestReplayCache(t *testing.T) {
	c := newReplayCache(time.Minute, 3)
	now := time.Unix(0, 0)
	for i := range 5 {
		c.put([]string{"k" + strconv.Itoa(i)}, "fp", accepted{TenantID: strconv.Itoa(i)}, now)
	}
	if _, ok := c.get("k0", now); ok {
		t.Errorf("the oldest entry survived the size bound")
	}
	if e, ok := c.get("k4", now); !ok || e.resp.TenantID != "4" {
		t.Errorf("newest entry lost")
	}
	if _, ok := c.get("k4", now.Add(2*time.Minute)); ok {
		t.Errorf("expired entry returned")
	}
	if len(c.byKey) != 3 || len(c.order) != 3 {
		t.Errorf("cache holds %d keys, %d in order", len(c.byKey), len(c.order))
	}
}

func TestCandidateFS(t *testing.T) {
	base := fstest.MapFS{
		"apps/spawn.yaml":          {Data: []byte("app")},
		"workers/local.yaml":       {Data: []byte("worker")},
		"tenants/spawn/nova.yaml":  {Data: []byte("hidden")},
		"tenants/astral/vega.yaml": {Data: []byte("hidden")},
	}
	fsys := candidateFS{base: base, file: "tenants/spawn/new.yaml", data: []byte("new tenant")}
	if err := fstest.TestFS(fsys, "apps/spawn.yaml", "workers/local.yaml", "tenants/spawn/new.yaml"); err != nil {
		t.Fatal(err)
	}
	entries, err := fsReadDir(fsys, "tenants")
	if err != nil || len(entries) != 1 || entries[0] != "spawn/" {
		t.Errorf("tenants/ lists %v %v", entries, err)
	}
	if _, err := fsys.Open("tenants/spawn/nova.yaml"); err == nil {
		t.Errorf("another tenant is visible")
	}
}

func fsReadDir(fsys candidateFS, dir string) ([]string, error) {
	f, err := fsys.Open(dir)
	if err != nil {
		return nil, err
	}
	d := f.(*memDir)
	es, err := d.ReadDir(-1)
	var out []string
	for _, e := range es {
		n := e.Name()
		if e.IsDir() {
			n += "/"
		}
		out = append(out, n)
	}
	return out, err
}

func TestDecodeAndCheck(t *testing.T) {
	body := `{"agentName":" Cody ","app":"spawn","owner":{"email":"c@example.com"},"provider":{"id":"anthropic","model":"claude-sonnet-4-5"},
		"apiKey":"sk-ant-0123","bundles":[],"telegram":{"botToken":"123456:ABCDEFGHIJKLMNOPQRSTUVWXYZ_-abc","allowedUsers":[42,"43"]},"storage":{"quota":"5Gi"}}`
	s, errs := decodeSubmission([]byte(body))
	if errs != nil {
		t.Fatal(errs)
	}
	c, errs := check(s, "local", nil)
	if errs != nil {
		t.Fatal(errs)
	}
	plain, err := c.tenantYAML("cody")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Spec struct {
			Worker   string
			Bundles  []string
			Telegram struct {
				AllowedUsers []int64 `yaml:"allowedUsers"`
			}
		}
		Secrets map[string]string
	}
	if err := yaml.Unmarshal(plain, &f); err != nil {
		t.Fatalf("%v\n%s", err, plain)
	}
	if f.Spec.Worker != "local" || f.Spec.Bundles == nil || len(f.Spec.Bundles) != 0 ||
		len(f.Spec.Telegram.AllowedUsers) != 2 || f.Secrets["ANTHROPIC_API_KEY"] != "sk-ant-0123" || f.Secrets[schema.TelegramTokenKey] == "" {
		t.Errorf("tenant file:\n%s", plain)
	}
	if !strings.HasPrefix(string(plain), "# yaml-language-server") || !strings.Contains(string(plain), `for the agent "Cody".`) {
		t.Errorf("header:\n%s", plain)
	}
	// A name cannot break out of its comment.
	c.AgentName = "Evil\nsecrets:\n  X: 1\u2028y"
	plain, _ = c.tenantYAML("cody")
	if lines := strings.Split(string(plain), "\n"); !strings.HasPrefix(lines[1], "# Added") || strings.Contains(lines[1], "\u2028") || !strings.HasPrefix(lines[2], "apiVersion:") {
		t.Errorf("agent name escaped its comment:\n%s", plain)
	}
	// Secrets are "[secret]" however the submission is printed.
	out, _ := json.Marshal(s)
	if strings.Contains(string(out), "sk-ant-0123") || strings.Contains(string(out), "ABCDEFGHIJ") {
		t.Errorf("a secret marshals in clear: %s", out)
	}

	for body, field := range map[string]string{
		`{"agentName":"x","app":"spawn","owner":{"email":"a@b"},"provider":{"id":"anthropic"},"apiKey":"k","telegram":{"botToken":"1:2","allowedUsers":[1.5]}}`:       "telegram.allowedUsers[0]",
		`{"agentName":"x","app":"spawn","owner":{"email":"a@b"},"provider":{"id":"anthropic"},"apiKey":"k","telegram":{"botToken":"1:2","allowedUsers":[-4]}}`:        "telegram.allowedUsers[0]",
		`{"agentName":"x","app":"spawn","owner":{"email":"a@b"},"provider":{"id":"anthropic"},"apiKey":"k","telegram":{"allowedUsers":[4]}}`:                          "telegram.botToken",
		`{"agentName":"x","app":"spawn","owner":{"email":"a@b"},"provider":{"id":"anthropic"},"apiKey":"k","telegram":{"botToken":"123:abcdefghijklmnopqrstuvwxyz"}}`: "telegram.allowedUsers",
		`{"agentName":"x","app":"spawn","owner":{"email":"not-an-email"},"provider":{"id":"openai-codex"}}`:                                                           "owner.email",
		`{"agentName":"x","app":"spawn","owner":{"email":"a@b"},"provider":{"id":"openai-codex","model":"a b"}}`:                                                      "provider.model",
		`{"agentName":"","app":"spawn","owner":{"email":"a@b"},"provider":{"id":"openai-codex"}}`:                                                                     "agentName",
		`{"agentName":"x","app":"spawn","owner":{"email":"a@b"},"provider":{"id":"openai-codex"},"storage":{}}`:                                                       "storage.quota",
		`{"agentName":"x","app":"spawn","owner":{"email":"a@b"},"provider":{"id":"openai-codex"},"worker":"Edge 1"}`:                                                  "worker",
	} {
		s, errs := decodeSubmission([]byte(body))
		if errs == nil {
			_, errs = check(s, "local", nil)
		}
		found := false
		for _, e := range errs {
			found = found || e.Field == field
		}
		if !found {
			t.Errorf("%s: want an error on %s, got %v", body, field, errs)
		}
	}
}

// TestTreeFS: the head commit of the bare clone is a well-behaved fs.FS, and a
// repository loaded through it validates as its checkout does.
func TestTreeFS(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	fsys, err := f.srv.repo.headFS()
	if err != nil {
		t.Fatal(err)
	}
	if err := fstest.TestFS(fsys, "apps/spawn.yaml", "workers/local.yaml", ".sops.yaml", "tenants/spawn/nova.yaml", "tenants/astral/vega.yaml"); err != nil {
		t.Fatal(err)
	}
	repo, err := schema.LoadFS(fsys, "head", schema.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(repo.Tenants) != 7 || repo.Problems.HasErrors() {
		t.Errorf("%d tenants, problems:\n%v", len(repo.Tenants), repo.Problems)
	}
}
