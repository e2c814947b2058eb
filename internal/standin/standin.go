// Package standin builds the stand-in Hermes runner image that tests and the demo run
// instead of the private runner images: FROM scratch, one small static Go program
// (./runner) that reads its hermes-home, serves /health on 127.0.0.1:8642 and carries a
// fake `hermes` CLI and a few tools (ls, cat, touch, rm, env, id) as links to itself.
package standin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// What the image provides, for tests that run it as the reconciler will.
const (
	Repository = "hermes-runner-standin" // image repository; tags are content digests
	LatestTag  = Repository + ":latest"  // also points at the newest build
	Home       = "/data/hermes"          // HERMES_HOME in the image
	UID, GID   = 10000, 10000            // the image's USER, as in the Hermes images
	Port       = 8642                    // /health and /loaded, on 127.0.0.1 only
	runnerPkg  = "github.com/firemountain/hermes-gitops/internal/standin/runner"
)

// Applets are the names under /bin that run the stand-in binary as that tool.
var Applets = []string{"cat", "env", "hermes", "id", "ls", "rm", "touch"}

// Dockerfile is the image recipe. The build context holds rootfs/ with /runner, the
// /bin links to it and /tmp. The health check answers fast (1s interval, so apply's wait
// is short) but tolerates a loaded host: with a hundred containers on two cores a check
// can take seconds, and ten in a row must fail before the container counts as unhealthy.
const Dockerfile = `FROM scratch
COPY rootfs/ /
ENV HERMES_HOME=/data/hermes PATH=/bin
USER 10000:10000
HEALTHCHECK --interval=1s --timeout=5s --start-period=1s --retries=10 CMD ["/runner","health"]
ENTRYPOINT ["/runner"]
`

// Build compiles the runner, builds the image and returns its tag,
// hermes-runner-standin:<12 hex>, where the hex starts the sha256 of the whole build
// context (binary, links, Dockerfile). The image is also tagged :latest. When an image
// with that tag exists the build is skipped, so a rerun costs one `go build` (cached) and
// a `docker image inspect`. Builds from concurrent processes are serialised by a lock
// file. Needs the go and docker CLIs; never pulls.
func Build(ctx context.Context) (tag string, err error) {
	src, err := runnerDir(ctx)
	if err != nil {
		return "", fmt.Errorf("stand-in runner image: locate runner source: %w", err)
	}
	work, err := os.MkdirTemp("", "hermes-standin-*")
	if err != nil {
		return "", fmt.Errorf("stand-in runner image: %w", err)
	}
	defer os.RemoveAll(work)

	if err := writeContext(ctx, src, work); err != nil {
		return "", fmt.Errorf("stand-in runner image: %w", err)
	}
	digest, err := contextDigest(work)
	if err != nil {
		return "", fmt.Errorf("stand-in runner image: %w", err)
	}
	tag = Repository + ":" + digest[:12]

	unlock, err := lock(ctx, filepath.Join(os.TempDir(), Repository+".lock"))
	if err != nil {
		return "", fmt.Errorf("stand-in runner image %s: lock: %w", tag, err)
	}
	defer unlock()
	if _, err := docker(ctx, "image", "inspect", "--format", "{{.Id}}", tag); err != nil {
		// Every instruction is a step of about a second with the legacy builder: no
		// --label, the tag already names the content.
		if _, err := docker(ctx, "build", "--force-rm", "--pull=false", "-t", tag, "-t", LatestTag, work); err != nil {
			return "", fmt.Errorf("stand-in runner image %s: %w", tag, err)
		}
		return tag, nil
	}
	if _, err := docker(ctx, "tag", tag, LatestTag); err != nil {
		return "", fmt.Errorf("stand-in runner image %s: %w", tag, err)
	}
	return tag, nil
}

// BuildWithoutHealthcheck returns the stand-in with its health check switched off
// (<tag>-nohc, derived FROM the local image, never pulled). Scale benchmarks use it: a
// hundred containers each probed every second would measure Docker's exec overhead,
// not the reconciler.
func BuildWithoutHealthcheck(ctx context.Context) (string, error) {
	base, err := Build(ctx)
	if err != nil {
		return "", err
	}
	tag := base + "-nohc"
	if _, err := docker(ctx, "image", "inspect", "--format", "{{.Id}}", tag); err == nil {
		return tag, nil
	}
	work, err := os.MkdirTemp("", "hermes-standin-nohc-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	if err := os.WriteFile(filepath.Join(work, "Dockerfile"), []byte("FROM "+base+"\nHEALTHCHECK NONE\n"), 0o644); err != nil {
		return "", err
	}
	if _, err := docker(ctx, "build", "--pull=false", "-t", tag, work); err != nil {
		return "", fmt.Errorf("stand-in runner image %s: %w", tag, err)
	}
	return tag, nil
}

// runnerDir finds ./runner next to this file; with -trimpath the recorded path is not a
// real one, so ask `go list` instead (works from inside the module).
func runnerDir(ctx context.Context) (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		dir := filepath.Join(filepath.Dir(file), "runner")
		if _, err := os.Stat(filepath.Join(dir, "main.go")); err == nil {
			return dir, nil
		}
	}
	out, err := run(ctx, nil, "go", "list", "-f", "{{.Dir}}", runnerPkg)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(out), nil
}

// writeContext lays out the docker build context in dir.
func writeContext(ctx context.Context, src, dir string) error {
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "tmp"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			return err
		}
	}
	// Set modes explicitly: the umask must not change the digest.
	for d, mode := range map[string]fs.FileMode{"": 0o755, "bin": 0o755, "tmp": 0o777 | fs.ModeSticky} {
		if err := os.Chmod(filepath.Join(rootfs, d), mode); err != nil {
			return err
		}
	}
	bin := filepath.Join(rootfs, "runner")
	// -buildvcs=false and -trimpath keep the binary, and so the tag, the same whatever
	// the checkout's path or state.
	env := []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + runtime.GOARCH}
	if _, err := runIn(ctx, src, env, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", bin, "."); err != nil {
		return err
	}
	if err := os.Chmod(bin, 0o755); err != nil {
		return err
	}
	// Links rather than copies: one layer of one binary. The kernel keeps argv[0], which
	// is how the binary knows which tool it is.
	for _, a := range Applets {
		if err := os.Symlink("/runner", filepath.Join(rootfs, "bin", a)); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(Dockerfile), 0o644)
}

// contextDigest hashes every entry of the build context: path, type and mode, and the
// content of a file or the target of a link, each length-prefixed.
func contextDigest(dir string) (string, error) {
	h := sha256.New()
	field := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		field([]byte(filepath.ToSlash(rel)))
		field([]byte(info.Mode().String()))
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			dest, err := os.Readlink(path)
			if err != nil {
				return err
			}
			field([]byte(dest))
		case info.Mode().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			field(data)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func docker(ctx context.Context, args ...string) (string, error) {
	// The legacy builder is what this project's engines have (and what works without
	// buildx); FROM scratch needs nothing newer.
	return run(ctx, []string{"DOCKER_BUILDKIT=0", "DOCKER_CLI_HINTS=false"}, "docker", args...)
}

func run(ctx context.Context, env []string, name string, args ...string) (string, error) {
	return runIn(ctx, "", env, name, args...)
}

// runIn runs a program and returns its stdout; an error carries the end of its output.
func runIn(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		if len(msg) > 2000 {
			msg = "…" + msg[len(msg)-2000:]
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = errors.Join(err, ctxErr)
		}
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return stdout.String(), nil
}
