package agent

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/firemountain/hermes-gitops/internal/testenv"
)

// TestSecretEnvNeverOnACommandLine runs a container the way apply does for a profile
// that passes a secret into the process environment. A shim in front of docker records
// every argv the agent executes (what `ps` on the worker would show): the secret is in
// none of them, it reaches the container through a 0600 --env-file, and that file is
// gone afterwards.
func TestSecretEnvNeverOnACommandLine(t *testing.T) {
	image := testenv.RunnerImage(t)
	sh := testenv.LookPath(t, "sh")
	dir := t.TempDir()
	argvLog := filepath.Join(dir, "argv.log")
	envFiles := filepath.Join(dir, "envfiles.log")
	shim := filepath.Join(dir, "docker")
	real, err := exec.LookPath("docker")
	if err != nil {
		t.Fatal(err)
	}
	// The shim logs argv, and the mode of any --env-file while it exists.
	os.WriteFile(shim, []byte(`#!`+sh+`
printf '%s\n' "$*" >> `+argvLog+`
prev=
for a in "$@"; do
  if [ "$prev" = "--env-file" ]; then stat -c '%a' "$a" >> `+envFiles+`; echo "$a" >> `+envFiles+`; fi
  prev=$a
done
exec `+real+` "$@"
`), 0o755)
	old := dockerBinary
	dockerBinary = shim
	t.Cleanup(func() { dockerBinary = old })

	name := "agent-envfile-" + filepath.Base(dir)
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", name).Run() })
	const secret = "sk-CANARY-process-secret-93b1"
	res := RunSteps(context.Background(), []Step{
		{Op: OpDocker, Argv: []string{"docker", "run", "--detach", "--name", name, "--cap-drop", "ALL", "--entrypoint", "/runner", image, "env"}, EnvFile: []EnvVar{{Name: "FIRECRAWL_API_KEY", Value: secret}}},
		{Op: OpDocker, Argv: []string{"docker", "wait", name}},
		{Op: OpDocker, Argv: []string{"docker", "logs", name}, EnvNamesOnly: true},
	})
	for _, r := range res {
		if r.Status != StatusOK {
			t.Fatalf("steps: %+v", res)
		}
	}
	argv, _ := os.ReadFile(argvLog)
	if strings.Contains(string(argv), secret) {
		t.Fatalf("the secret appeared on a docker command line:\n%s", argv)
	}
	if !strings.Contains(string(argv), "run --env-file ") {
		t.Fatalf("docker run was not given an env file:\n%s", argv)
	}
	files, _ := os.ReadFile(envFiles)
	lines := strings.Fields(string(files))
	if len(lines) != 2 || lines[0] != "600" {
		t.Fatalf("env file mode/name: %q", files)
	}
	if _, err := os.Stat(lines[1]); !os.IsNotExist(err) {
		t.Fatalf("the env file %s was not removed: %v", lines[1], err)
	}
	// The container got it (names only come back from the agent).
	if !strings.Contains(res[2].Output, "FIRECRAWL_API_KEY") || strings.Contains(res[2].Output, secret) {
		t.Fatalf("container env names: %q", res[2].Output)
	}
}
