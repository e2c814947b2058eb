package agent

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestMain(m *testing.M) {
	// Re-executed by TestWriteFileAtomicSurvivesCrash as the process that gets killed.
	if p := os.Getenv("AGENT_TEST_WRITE"); p != "" {
		if err := WriteFileAtomic(p, []byte("new content"), 0o600, nil); err != nil {
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestMergeEnv(t *testing.T) {
	tests := []struct {
		name     string
		existing string
		set      []EnvVar
		remove   []string
		want     string
	}{
		{"empty file", "", []EnvVar{{"A", "1"}}, nil, "A=1\n"},
		{"update in place keeps comments and order",
			"# tenant secrets\nA=old\n\n# hand-added\nHAND=x\n", []EnvVar{{"A", "new"}}, nil,
			"# tenant secrets\nA=new\n\n# hand-added\nHAND=x\n"},
		{"append new keys in given order", "A=1\n", []EnvVar{{"C", "3"}, {"B", "2"}}, nil, "A=1\nC=3\nB=2\n"},
		{"remove keys", "A=1\nTELEGRAM_BOT_TOKEN=t\nB=2\n", nil, []string{"TELEGRAM_BOT_TOKEN"}, "A=1\nB=2\n"},
		{"duplicates collapse to the effective (last) value at the first position",
			"A=1\nB=x\nB=y\nC=3\n", nil, nil, "A=1\nB=y\nC=3\n"},
		{"duplicate managed key", "K=1\nK=2\n", []EnvVar{{"K", "3"}}, nil, "K=3\n"},
		{"values that need quoting", "", []EnvVar{{"Q", `a "b" #c $d`}, {"N", "line1\nline2"}}, nil,
			"Q=\"a \\\"b\\\" #c $d\"\nN=\"line1\\nline2\"\n"},
		{"export prefix and unparsable lines are kept", "export A=1\nnot a line\n", []EnvVar{{"B", "2"}}, nil,
			"export A=1\nnot a line\nB=2\n"},
		{"no trailing newline", "A=1", []EnvVar{{"A", "1"}}, nil, "A=1\n"},
		{"crlf", "A=1\r\nB=2\r\n", nil, nil, "A=1\nB=2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(MergeEnv([]byte(tt.existing), tt.set, tt.remove))
			if got != tt.want {
				t.Errorf("MergeEnv =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestParseEnvValues(t *testing.T) {
	tests := map[string]string{
		`A=plain`:               "plain",
		`A = spaced `:           "spaced",
		`A="quoted # not"`:      "quoted # not",
		`A='single $x'`:         "single $x",
		`A=value # comment`:     "value",
		`export A=exported`:     "exported",
		`A="esc\"aped\\ \n"`:    "esc\"aped\\ \n",
		`A=`:                    "",
		`A=with=equals`:         "with=equals",
		`A="unterminated value`: "unterminated value",
	}
	for line, want := range tests {
		l := parseEnvLine(line)
		if l.key != "A" || l.value != want {
			t.Errorf("parseEnvLine(%q) = %q %q, want A %q", line, l.key, l.value, want)
		}
	}
}

// FuzzEnvRoundTrip: whatever a secret value holds, writing it with MergeEnv and reading it
// back gives the same value, and it cannot inject a second key.
func FuzzEnvRoundTrip(f *testing.F) {
	for _, s := range []string{"", "plain", "a b", `"q"`, "'s'", "x\ny=1", "#c", `\`, "$(id)", "`id`", "ünï", "a\r\nB=2", " lead"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if strings.ContainsRune(v, 0) {
			return
		}
		out := MergeEnv([]byte("KEEP=1\n"), []EnvVar{{"SECRET", v}}, nil)
		values, order, _ := envValues(parseEnv(out))
		if values["SECRET"] != v {
			t.Fatalf("value %q came back as %q from %q", v, values["SECRET"], out)
		}
		if len(order) != 2 || values["KEEP"] != "1" {
			t.Fatalf("value %q changed the keys: %v in %q", v, order, out)
		}
	})
}

func TestWriteFileAtomicSurvivesCrash(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, ".env")
	if err := WriteFileAtomic(p, []byte("old content"), 0o600, nil); err != nil {
		t.Fatal(err)
	}
	// Kill a writer between the temp write and the rename.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "AGENT_TEST_WRITE="+p, "HERMES_AGENT_FAULT=after-temp-write")
	err := cmd.Run()
	var ee *exec.ExitError
	if !errorsAs(err, &ee) || ee.ExitCode() != 137 {
		t.Fatalf("the writer was not killed at the fault point: %v", err)
	}
	if got, _ := os.ReadFile(p); string(got) != "old content" {
		t.Fatalf("after a crash the file holds %q, want the old content", got)
	}
	temps, _ := filepath.Glob(filepath.Join(dir, "*"+tempMarker+"*"))
	if len(temps) != 1 {
		t.Fatalf("expected the crash to leave one temp file, found %v", temps)
	}
	// The next write completes and cleans up what the crash left.
	if err := WriteFileAtomic(p, []byte("newer"), 0o600, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); string(got) != "newer" {
		t.Fatalf("file holds %q", got)
	}
	info, _ := os.Stat(p)
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", info.Mode().Perm())
	}
	if temps, _ := filepath.Glob(filepath.Join(dir, "*"+tempMarker+"*")); len(temps) != 0 {
		t.Fatalf("stale temp files left: %v", temps)
	}
}

func errorsAs(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}

func TestLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state", applyLockName)
	if err := acquireLock(p, "alice", time.Minute); err != nil {
		t.Fatal(err)
	}
	err := acquireLock(p, "bob", time.Minute)
	if held, ok := err.(*LockHeldError); !ok || held.Owner != "alice" {
		t.Fatalf("bob got %v, want a LockHeldError naming alice", err)
	}
	if err := acquireLock(p, "alice", time.Minute); err != nil {
		t.Fatalf("alice cannot renew her own lock: %v", err)
	}
	if err := releaseLock(p, "bob"); err == nil {
		t.Fatal("bob released alice's lock")
	}
	if err := releaseLock(p, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := acquireLock(p, "bob", time.Minute); err != nil {
		t.Fatalf("bob cannot take a released lock: %v", err)
	}
	// A crashed holder's lock expires and is taken over.
	data, _ := json.Marshal(map[string]string{"owner": "crashed", "expires": time.Now().Add(-time.Second).Format(time.RFC3339Nano)})
	os.WriteFile(p, data, 0o600)
	if err := acquireLock(p, "carol", time.Minute); err != nil {
		t.Fatalf("an expired lock was not taken over: %v", err)
	}
	if l := readLock(p); l == nil || l.Owner != "carol" {
		t.Fatalf("lock now %+v", l)
	}
}

// TestObserveHomes observes a tree of tenant homes built the way the control planes'
// drift left them, and compares the JSON with a golden file.
func TestObserveHomes(t *testing.T) {
	root := t.TempDir()
	state := filepath.Join(root, "state")
	os.MkdirAll(state, 0o700)
	os.WriteFile(filepath.Join(state, "fingerprint.key"), []byte(strings.Repeat("ab", 32)), 0o600)
	write := func(rel, content string, mode os.FileMode) {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	// astral/maya: complete; codex credential in the pool but no runtime entry.
	write("astral/maya/hermes-home/config.yaml", "model:\n  provider: openai-codex\n", 0o644)
	write("astral/maya/hermes-home/.env", "# secrets\nTELEGRAM_BOT_TOKEN=tok\nHAND=1\nHAND=2\n", 0o600)
	write("astral/maya/hermes-home/auth.json", `{"version":1,"credential_pool":{"openai-codex":[{"id":"1","access_token":"SECRET-TOKEN"}]}}`, 0o600)
	write("astral/maya/hermes-home/.hermes-gitops/lock.json", `{"version":1,"bundles":[{"name":"astral-core","version":"0.2.0","digest":"sha256:x"}],"skills":[],"files":[{"path":"skills/astral-core/kb/SKILL.md","digest":"sha256:y"},{"path":"skills/astral-core/gone/SKILL.md","digest":"sha256:z"},{"path":"../escape","digest":"sha256:e"}]}`, 0o644)
	write("astral/maya/hermes-home/skills/astral-core/kb/SKILL.md", "---\nname: kb\n---\n", 0o644)
	os.MkdirAll(filepath.Join(root, "astral/maya/hermes-home/knowledge/raw"), 0o755)
	// spawn/cody1: bare home, bad auth.json, no knowledge base.
	write("spawn/cody1/hermes-home/auth.json", `{not json`, 0o644)
	// noise that must be ignored
	os.MkdirAll(filepath.Join(root, "spawn/.archive/old/hermes-home"), 0o755)
	os.MkdirAll(filepath.Join(root, "spawn/nohome"), 0o755)

	w, key, err := Observe(context.Background(), &ObserveRequest{
		Worker: "w1", StateDir: state, SkipDocker: true,
		Apps:     []AppRoot{{App: "spawn", Root: filepath.Join(root, "spawn")}, {App: "astral", Root: filepath.Join(root, "astral")}, {App: "none", Root: filepath.Join(root, "missing")}},
		Scaffold: []string{"knowledge/raw", "knowledge/entities/people"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != 32 {
		t.Fatalf("key of %d bytes", len(key))
	}
	got, _ := json.MarshalIndent(w, "", "  ")
	got = []byte(strings.ReplaceAll(string(got), root, "$ROOT") + "\n")
	if strings.Contains(string(got), "SECRET-TOKEN") || strings.Contains(string(got), "tok\"") {
		t.Fatalf("a secret value leaked into the observation:\n%s", got)
	}
	golden := filepath.Join("testdata", "observe_homes.golden.json")
	if *update {
		os.MkdirAll("testdata", 0o755)
		os.WriteFile(golden, got, 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("observation differs from %s (go test -update to accept):\n%s", golden, got)
	}
}

func TestFingerprintKeyIsStable(t *testing.T) {
	dir := t.TempDir()
	k1, err := loadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := loadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(k1) != string(k2) || len(k1) != 32 {
		t.Fatalf("key changed between calls")
	}
	info, _ := os.Stat(filepath.Join(dir, "fingerprint.key"))
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", info.Mode().Perm())
	}
	if Fingerprint(k1, "a") == Fingerprint([]byte("other"), "a") || Fingerprint(k1, "a") == Fingerprint(k1, "b") {
		t.Fatal("fingerprints do not depend on key and value")
	}
}

func TestReadRefusesSecretFiles(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{".env", "auth.json", ".anthropic_oauth.json", "fingerprint.key"} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte("secret"), 0o600)
		r := runStep(context.Background(), Step{Op: OpRead, Path: p})
		if r.Status != StatusFailed || strings.Contains(r.Output, "secret") {
			t.Errorf("read %s: %+v", name, r)
		}
	}
}

func TestStepsStopAtFirstFailure(t *testing.T) {
	dir := t.TempDir()
	res := RunSteps(context.Background(), []Step{
		{Op: OpMkdir, Path: filepath.Join(dir, "a/b"), Mode: 0o750},
		{Op: OpWrite, Path: "relative", Content: []byte("x")},
		{Op: OpWrite, Path: filepath.Join(dir, "never"), Content: []byte("x")},
	})
	if res[0].Status != StatusOK || !res[0].Changed || res[1].Status != StatusFailed || res[2].Status != StatusSkipped {
		t.Fatalf("results %+v", res)
	}
	if _, err := os.Stat(filepath.Join(dir, "never")); err == nil {
		t.Fatal("a step after the failure ran")
	}
	// create-only never overwrites; archive moves, never deletes
	p := filepath.Join(dir, "a/b/README.md")
	RunSteps(context.Background(), []Step{{Op: OpWrite, Path: p, Content: []byte("mine"), CreateOnly: true}})
	RunSteps(context.Background(), []Step{{Op: OpWrite, Path: p, Content: []byte("theirs"), CreateOnly: true}})
	if got, _ := os.ReadFile(p); string(got) != "mine" {
		t.Fatalf("create-only overwrote: %q", got)
	}
	res = RunSteps(context.Background(), []Step{{Op: OpArchive, Path: filepath.Join(dir, "a"), To: filepath.Join(dir, ".archive/a-1")}})
	if res[0].Status != StatusOK {
		t.Fatal(res)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, ".archive/a-1/b/README.md")); string(got) != "mine" {
		t.Fatalf("archive lost data: %q", got)
	}
}

func TestOptionalStepsDoNotStopTheBatch(t *testing.T) {
	dir := t.TempDir()
	res := RunSteps(context.Background(), []Step{
		{Op: OpWrite, Path: "relative", Optional: true},
		{Op: OpWrite, Path: filepath.Join(dir, "after"), Content: []byte("x")},
	})
	if res[0].Status != StatusFailed || res[1].Status != StatusOK {
		t.Fatalf("results %+v", res)
	}
}
