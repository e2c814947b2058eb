package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/firemountain/hermes-gitops/internal/standin"
)

var (
	dockerOnce sync.Once
	dockerErr  error

	imageOnce sync.Once
	imageTag  string
	imageErr  error
)

// RequireDocker stops the test via Missing unless the docker CLI reaches an engine
// (`docker version --format {{.Server.Version}}`). The probe runs once per process.
func RequireDocker(t testing.TB) {
	t.Helper()
	dockerOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, dockerErr = dockerOutput(ctx, "version", "--format", "{{.Server.Version}}")
	})
	if dockerErr != nil {
		Missing(t, "docker", dockerErr.Error())
	}
}

// RunnerImage returns the tag of the stand-in Hermes runner image (see internal/standin),
// building it on first use in the test process. A failed build fails the test: Docker
// is there, so the build must work.
func RunnerImage(t testing.TB) string {
	t.Helper()
	RequireDocker(t)
	imageOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		imageTag, imageErr = standin.Build(ctx)
	})
	if imageErr != nil {
		t.Fatalf("build the stand-in runner image: %v", imageErr)
	}
	return imageTag
}

// CleanupContainers registers a cleanup that force-removes every container carrying
// label ("key" or "key=value"), with its anonymous volumes. Use a label unique to the
// test, and call it after t.TempDir so the containers go before their bind mounts do.
func CleanupContainers(t testing.TB, label string) {
	t.Helper()
	if key, _, _ := strings.Cut(label, "="); strings.TrimSpace(key) == "" {
		// `--filter label=` would not narrow anything down: never risk other containers.
		t.Fatalf("CleanupContainers: label %q has no key", label)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := dockerOutput(ctx, "ps", "-aq", "--no-trunc", "--filter", "label="+label)
		if err != nil {
			t.Errorf("clean up containers labelled %s: %v", label, err)
			return
		}
		ids := strings.Fields(out)
		if len(ids) == 0 {
			return
		}
		if _, err := dockerOutput(ctx, append([]string{"rm", "-f", "-v"}, ids...)...); err != nil {
			t.Errorf("clean up containers labelled %s: %v", label, err)
		}
	})
}

// WaitFor polls cond every 50ms until it reports true, and fails the test when timeout
// passes first, naming what it waited for and the last error cond returned. An error
// does not end the wait: cond may fail while the thing it checks is still starting.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		ok, err := cond()
		if err == nil && ok {
			return
		}
		if err != nil {
			last = err
		}
		if !time.Now().Before(deadline) {
			if last != nil {
				t.Fatalf("timed out after %v waiting for %s; last error: %v", timeout, what, last)
			}
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
			return
		}
		<-tick.C
	}
}

// dockerOutput runs the docker CLI and returns its stdout; an error carries its stderr.
func dockerOutput(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			err = fmt.Errorf("%w: %s", err, msg)
		}
		return "", fmt.Errorf("docker %s: %w", strings.Join(args, " "), err)
	}
	return stdout.String(), nil
}
