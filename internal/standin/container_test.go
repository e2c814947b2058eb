package standin_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/firemountain/hermes-gitops/internal/standin"
	"github.com/firemountain/hermes-gitops/internal/testenv"
)

// These tests run the stand-in image on the machine's Docker engine the way the
// reconciler runs a tenant. The image is a fake of the private Hermes runner (see
// runner/main.go); what is real here is Docker, the mounts and the security flags.

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// docker runs the docker CLI with stdin and returns stdout, failing the test on error.
func docker(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := tryDocker(t, stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func tryDocker(t *testing.T, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(t.Context(), "docker", args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), errors.New("docker " + strings.Join(args, " ") + ": " + err.Error() + ": " + stderr.String())
	}
	return stdout.String(), nil
}

// hermesHome writes files into a fresh hermes-home (mode 0600) and hands it to the
// image's user, as the reconciler does on a worker. Without root (a laptop with a
// rootful engine) chown is refused: open the modes up instead.
func hermesHome(t *testing.T, files map[string]string) string {
	t.Helper()
	home := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(home, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	err := filepath.WalkDir(home, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, standin.UID, standin.GID)
	})
	if errors.Is(err, fs.ErrPermission) {
		t.Logf("cannot chown to %d:%d (not root): making %s world-accessible instead", standin.UID, standin.GID, home)
		err = filepath.WalkDir(home, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return os.Chmod(path, 0o777)
			}
			return os.Chmod(path, 0o644)
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	return home
}

// runTenant starts a container with the flags the reconciler uses and returns its name.
func runTenant(t *testing.T, image, label, home string) string {
	t.Helper()
	name := "hermes-standin-test-" + randomHex(t)
	docker(t, "", "run", "-d", "--name", name,
		"--cap-drop=ALL", "--security-opt", "no-new-privileges:true", "--memory=256m",
		"--user", "10000:10000",
		"-v", home+":"+standin.Home, "-e", "HERMES_HOME="+standin.Home,
		"--label", label, image)
	return name
}

func inspect(t *testing.T, container, format string) string {
	t.Helper()
	return strings.TrimSpace(docker(t, "", "inspect", "-f", format, container))
}

func TestTenantContainer(t *testing.T) {
	t.Parallel()
	image := testenv.RunnerImage(t)
	label := "hermes-gitops.test.standin=" + randomHex(t)
	canary := "sk-standin-canary-" + randomHex(t)
	home := hermesHome(t, map[string]string{
		"config.yaml": "model:\n  provider: openai-codex\n  default: gpt-5\n",
		".env":        "OPENAI_API_KEY=" + canary + "\nTELEGRAM_ALLOWED_USERS=11,22\n",
		// Another provider's login, which the device flow must keep.
		"auth.json": `{"version":1,"providers":{"anthropic":{"tokens":{"access_token":"a"}}},` +
			`"credential_pool":{"anthropic":[{"id":"p1","auth_type":"oauth","source":"pkce"}]}}`,
	})
	testenv.CleanupContainers(t, label)
	c := runTenant(t, image, label, home)

	testenv.WaitFor(t, 30*time.Second, "container "+c+" to become healthy", func() (bool, error) {
		state := inspect(t, c, "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}")
		if strings.HasPrefix(state, "exited") || strings.HasPrefix(state, "dead") {
			logs, _ := tryDocker(t, "", "logs", c)
			t.Fatalf("container %s stopped (%s); logs: %s", c, state, logs)
		}
		if state != "running healthy" {
			return false, errors.New("state: " + state)
		}
		return true, nil
	})

	t.Run("logs name keys, never values", func(t *testing.T) {
		cmd := exec.CommandContext(t.Context(), "docker", "logs", c)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatal(err)
		}
		if want := "runner: provider=openai-codex keys=OPENAI_API_KEY,TELEGRAM_ALLOWED_USERS\n"; string(out) != want {
			t.Errorf("logs = %q, want %q", out, want)
		}
	})

	t.Run("loaded fingerprints the .env values", func(t *testing.T) {
		out := docker(t, "", "exec", c, "/runner", "loaded")
		if strings.Contains(out, canary) {
			t.Fatalf("/loaded reveals the secret: %s", out)
		}
		var doc struct {
			Provider   string            `json:"provider"`
			Env        map[string]string `json:"env"`
			ProcessEnv []string          `json:"processEnv"`
			StartedAt  string            `json:"startedAt"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		sum := sha256.Sum256([]byte(canary))
		if got, want := doc.Env["OPENAI_API_KEY"], "sha256:"+hex.EncodeToString(sum[:]); got != want {
			t.Errorf("OPENAI_API_KEY fingerprint = %s, want %s", got, want)
		}
		if doc.Provider != "openai-codex" || len(doc.Env) != 2 || doc.StartedAt == "" {
			t.Errorf("loaded = %s", out)
		}
		names := "," + strings.Join(doc.ProcessEnv, ",") + ","
		if !strings.Contains(names, ",HERMES_HOME,") || strings.Contains(names, ",OPENAI_API_KEY,") || strings.Contains(names, ",TELEGRAM_ALLOWED_USERS,") {
			t.Errorf("processEnv = %v, want the container's own variables and no .env key", doc.ProcessEnv)
		}
	})

	t.Run("no secret in docker inspect", func(t *testing.T) {
		if out := docker(t, "", "inspect", c); strings.Contains(out, canary) {
			t.Errorf("docker inspect shows the secret")
		}
	})

	t.Run("ls lists hermes-home", func(t *testing.T) {
		out := docker(t, "", "exec", c, "ls", "-1a", standin.Home)
		if want := ".\n..\n.env\nauth.json\nconfig.yaml\n"; out != want {
			t.Errorf("ls -1a = %q, want %q", out, want)
		}
		if _, err := tryDocker(t, "", "exec", c, "ls", "-1a", "/nonexistent"); err == nil || !strings.Contains(err.Error(), "No such file") {
			t.Errorf("ls of a missing dir: %v", err)
		}
	})

	t.Run("no capabilities, no new privileges, uid 10000", func(t *testing.T) {
		status := docker(t, "", "exec", c, "cat", "/proc/self/status")
		for _, want := range []string{"CapEff:\t0000000000000000\n", "CapPrm:\t0000000000000000\n", "NoNewPrivs:\t1\n"} {
			if !strings.Contains(status, want) {
				t.Errorf("/proc/self/status lacks %q", want)
			}
		}
		if out := docker(t, "", "exec", c, "id"); out != "uid=10000 gid=10000 groups=10000\n" {
			t.Errorf("id = %q", out)
		}
	})

	t.Run("writes only where it may", func(t *testing.T) {
		probe := standin.Home + "/probe"
		docker(t, "", "exec", c, "touch", probe)
		docker(t, "", "exec", c, "rm", probe)
		if _, err := os.Stat(filepath.Join(home, "probe")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("probe still on the host: %v", err)
		}
		if _, err := tryDocker(t, "", "exec", c, "touch", "/runner"); err == nil || !strings.Contains(err.Error(), "Permission denied") {
			t.Errorf("touch /runner as uid 10000: %v", err)
		}
	})

	t.Run("hermes auth add writes both shapes", func(t *testing.T) {
		out := docker(t, "CODE-77\n", "exec", "-i", c, "hermes", "auth", "add", "openai-codex", "--type", "oauth")
		for _, want := range []string{"enter code ABCD-1234", "Paste the authorization code: ", "Logged in to openai-codex."} {
			if !strings.Contains(out, want) {
				t.Errorf("output %q lacks %q", out, want)
			}
		}
		path := filepath.Join(home, "auth.json")
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("auth.json mode %v, want 0600", fi.Mode().Perm())
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != standin.UID {
			t.Errorf("auth.json owned by uid %d, want %d", st.Uid, standin.UID)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var auth struct {
			Version        int    `json:"version"`
			ActiveProvider string `json:"active_provider"`
			Providers      map[string]struct {
				Tokens      map[string]string `json:"tokens"`
				LastRefresh string            `json:"last_refresh"`
				AuthMode    string            `json:"auth_mode"`
			} `json:"providers"`
			Pool      map[string][]map[string]any `json:"credential_pool"`
			UpdatedAt string                      `json:"updated_at"`
		}
		if err := json.Unmarshal(data, &auth); err != nil {
			t.Fatalf("%v: %s", err, data)
		}
		p := auth.Providers["openai-codex"]
		if auth.Version != 1 || auth.ActiveProvider != "openai-codex" || auth.UpdatedAt == "" ||
			p.Tokens["access_token"] != "at-CODE-77" || p.Tokens["refresh_token"] != "rt-CODE-77" ||
			p.AuthMode != "chatgpt" || p.LastRefresh == "" {
			t.Errorf("runtime shape wrong: %s", data)
		}
		pool := auth.Pool["openai-codex"]
		if len(pool) != 1 || pool[0]["access_token"] != "at-CODE-77" || pool[0]["auth_type"] != "oauth" || pool[0]["source"] != "device_code" {
			t.Errorf("credential_pool shape wrong: %s", data)
		}
		if _, ok := auth.Providers["anthropic"]; !ok || len(auth.Pool["anthropic"]) != 1 {
			t.Errorf("the other provider's login was lost: %s", data)
		}
		if out := docker(t, "", "exec", c, "hermes", "auth", "list"); out != "anthropic\nopenai-codex\n" {
			t.Errorf("hermes auth list = %q", out)
		}
		if _, err := tryDocker(t, "\n", "exec", "-i", c, "hermes", "auth", "add", "openai-codex", "--type", "oauth"); err == nil {
			t.Errorf("an empty code succeeded")
		}
	})

	t.Run("docker stop ends it cleanly", func(t *testing.T) {
		docker(t, "", "stop", "-t", "20", c)
		if code := inspect(t, c, "{{.State.ExitCode}}"); code != "0" {
			t.Errorf("exit code after docker stop = %s, want 0 (SIGTERM handled, not killed)", code)
		}
	})
}

func TestTenantWithoutConfigCrashes(t *testing.T) {
	t.Parallel()
	image := testenv.RunnerImage(t)
	label := "hermes-gitops.test.standin=" + randomHex(t)
	home := hermesHome(t, map[string]string{".env": "OPENAI_API_KEY=sk-x\n"})
	testenv.CleanupContainers(t, label)
	c := runTenant(t, image, label, home)

	testenv.WaitFor(t, 30*time.Second, "container "+c+" to exit", func() (bool, error) {
		return inspect(t, c, "{{.State.Status}}") == "exited", nil
	})
	if code := inspect(t, c, "{{.State.ExitCode}}"); code == "0" {
		t.Errorf("exit code 0, want a failure")
	}
	cmd := exec.CommandContext(t.Context(), "docker", "logs", c)
	logs, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logs), "config.yaml") {
		t.Errorf("logs do not say why: %q", logs)
	}
}
