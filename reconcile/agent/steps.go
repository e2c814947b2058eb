package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/firemountain/hermes-gitops/reconcile/live"
)

// RunSteps executes steps in order; the first failure of a step that is not Optional
// stops the batch and the remaining steps are reported skipped.
func RunSteps(ctx context.Context, steps []Step) []StepResult {
	results := make([]StepResult, len(steps))
	failed := false
	for i, s := range steps {
		if failed || ctx.Err() != nil {
			results[i] = StepResult{Op: s.Op, Status: StatusSkipped}
			continue
		}
		r := runStep(ctx, s)
		r.Op = s.Op
		if r.Status == "" {
			r.Status = StatusOK
		}
		if r.Status == StatusFailed && !s.Optional {
			failed = true
		}
		results[i] = r
	}
	return results
}

func failed(format string, args ...any) StepResult {
	return StepResult{Status: StatusFailed, Error: fmt.Sprintf(format, args...)}
}

func runStep(ctx context.Context, s Step) StepResult {
	if s.Op != OpDocker && s.Op != OpWait && !filepath.IsAbs(s.Path) {
		return failed("%s: path %q is not absolute", s.Op, s.Path)
	}
	mode := fs.FileMode(s.Mode)
	switch s.Op {
	case OpMkdir:
		if mode == 0 {
			mode = 0o755
		}
		created, err := MkdirAllOwned(s.Path, mode, s.Owner)
		if err != nil {
			return failed("mkdir %s: %v", s.Path, err)
		}
		return StepResult{Changed: created}
	case OpWrite:
		if mode == 0 {
			mode = 0o644
		}
		if s.CreateOnly {
			if _, err := os.Lstat(s.Path); err == nil {
				return StepResult{}
			}
		}
		if _, err := MkdirAllOwned(filepath.Dir(s.Path), 0o755, s.Owner); err != nil {
			return failed("write %s: %v", s.Path, err)
		}
		if err := WriteFileAtomic(s.Path, s.Content, mode, s.Owner); err != nil {
			return failed("write %s: %v", s.Path, err)
		}
		return StepResult{Changed: true}
	case OpEnvMerge:
		existing, err := os.ReadFile(s.Path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return failed("read %s: %v", s.Path, err)
		}
		merged := MergeEnv(existing, s.Set, s.Remove)
		if _, err := MkdirAllOwned(filepath.Dir(s.Path), 0o755, s.Owner); err != nil {
			return failed("write %s: %v", s.Path, err)
		}
		if err := WriteFileAtomic(s.Path, merged, 0o600, s.Owner); err != nil {
			return failed("write %s: %v", s.Path, err)
		}
		return StepResult{Changed: string(merged) != string(existing)}
	case OpRemove:
		err := os.Remove(s.Path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return failed("remove %s: %v", s.Path, err)
		}
		if s.StopAt != "" {
			for dir := filepath.Dir(s.Path); strings.HasPrefix(dir, s.StopAt+"/"); dir = filepath.Dir(dir) {
				if os.Remove(dir) != nil { // not empty, or gone
					break
				}
			}
		}
		return StepResult{Changed: err == nil}
	case OpArchive:
		if !filepath.IsAbs(s.To) {
			return failed("archive: destination %q is not absolute", s.To)
		}
		if _, err := os.Lstat(s.Path); errors.Is(err, fs.ErrNotExist) {
			return StepResult{} // nothing to archive
		}
		if _, err := os.Lstat(s.To); err == nil {
			return failed("archive %s: %s already exists", s.Path, s.To)
		}
		if _, err := MkdirAllOwned(filepath.Dir(s.To), 0o700, nil); err != nil {
			return failed("archive %s: %v", s.Path, err)
		}
		if err := os.Rename(s.Path, s.To); err != nil {
			return failed("archive %s: %v", s.Path, err)
		}
		return StepResult{Changed: true}
	case OpDocker:
		return dockerStep(ctx, s)
	case OpWait:
		if s.Wait == nil {
			return failed("wait: no container given")
		}
		return waitContainer(ctx, *s.Wait)
	case OpLock:
		if err := acquireLock(s.Path, s.LockOwner, time.Duration(s.LockTTLSecs)*time.Second); err != nil {
			return failed("%v", err)
		}
		return StepResult{Changed: true}
	case OpUnlock:
		if err := releaseLock(s.Path, s.LockOwner); err != nil {
			return failed("%v", err)
		}
		return StepResult{Changed: true}
	case OpRead:
		base := filepath.Base(s.Path)
		if base == live.EnvFile || base == live.AuthFile || strings.HasSuffix(base, ".key") || strings.Contains(base, "oauth") {
			return failed("read %s: refusing to return a file that holds secrets", s.Path)
		}
		data, err := os.ReadFile(s.Path)
		if errors.Is(err, fs.ErrNotExist) {
			return StepResult{State: "missing"}
		}
		if err != nil {
			return failed("read %s: %v", s.Path, err)
		}
		return StepResult{Output: string(data)}
	case OpAuthRepair:
		return authRepair(s.Path, s.Provider, time.Now())
	}
	return failed("unknown step %q", s.Op)
}

// dockerStep runs one docker command. Secret environment for the container goes through
// a 0600 file given to --env-file and removed right after, so it never appears on a
// command line or in the worker's process list.
func dockerStep(ctx context.Context, s Step) StepResult {
	if len(s.Argv) < 2 || s.Argv[0] != "docker" {
		return failed("docker step: argv must start with docker and a subcommand")
	}
	args := slices.Clone(s.Argv[1:])
	if len(s.EnvFile) > 0 {
		if args[0] != "run" && args[0] != "create" {
			return failed("docker %s: an env file is only for run or create", args[0])
		}
		f, err := os.CreateTemp("", "hermes-env-*")
		if err != nil {
			return failed("env file: %v", err)
		}
		defer os.Remove(f.Name())
		var b strings.Builder
		for _, kv := range s.EnvFile {
			if strings.ContainsAny(kv.Value, "\n\r") {
				f.Close()
				return failed("env file: %s holds a newline, which --env-file cannot carry", kv.Name)
			}
			b.WriteString(kv.Name + "=" + kv.Value + "\n")
		}
		if err := f.Chmod(0o600); err != nil {
			f.Close()
			return failed("env file: %v", err)
		}
		if _, err := f.WriteString(b.String()); err != nil {
			f.Close()
			return failed("env file: %v", err)
		}
		f.Close()
		args = slices.Insert(args, 1, "--env-file", f.Name())
	}
	out, err := docker(ctx, args...)
	if err != nil {
		if s.IgnoreMissing && strings.Contains(err.Error(), "No such container") {
			return StepResult{}
		}
		return failed("%v", err)
	}
	if s.EnvNamesOnly {
		return StepResult{Output: envNames(out)}
	}
	return StepResult{Output: tail(string(out), 4096), Changed: true}
}

// envNames keeps the names of an environment listing, one per line, sorted.
func envNames(out []byte) string {
	var names []string
	for _, kv := range strings.FieldsFunc(string(out), func(r rune) bool { return r == 0 || r == '\n' }) {
		if k, _, ok := strings.Cut(kv, "="); ok && validEnvName(k) {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	return strings.Join(slices.Compact(names), "\n")
}

// waitContainer polls a container until it is running and stable (healthy when it has a
// health check), or reports it failed with its last log lines.
func waitContainer(ctx context.Context, w WaitSpec) StepResult {
	timeout := time.Duration(w.TimeoutMS) * time.Millisecond
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	stable := time.Duration(w.StableForMS) * time.Millisecond
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var first *inspectJSON
	var runningSince time.Time
	var last inspectJSON
	// Each poll is a docker CLI process: a quarter second keeps eight concurrent waits
	// from eating a small worker's CPU.
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		out, err := docker(ctx, "inspect", "--type", "container", w.Container)
		if err == nil {
			var r []inspectJSON
			if json.Unmarshal(out, &r) == nil && len(r) == 1 {
				last = r[0]
				if first == nil {
					first = &r[0]
				}
				st := last.State
				switch {
				case last.RestartCount > first.RestartCount || st.Restarting || (!st.Running && st.Status == "exited"):
					return crashed(w, last, "crash-looping")
				case st.Health != nil && st.Health.Status == "unhealthy":
					return crashed(w, last, "unhealthy")
				case st.Running && st.Health != nil:
					if st.Health.Status == "healthy" {
						return StepResult{State: "healthy"}
					}
				case st.Running:
					if runningSince.IsZero() {
						runningSince = time.Now()
					}
					if time.Since(runningSince) >= stable {
						return StepResult{State: "running"}
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			state := last.State.Status
			if last.State.Health != nil {
				state += "/" + last.State.Health.Status
			}
			r := crashed(w, last, "not up within "+timeout.String()+" (state "+state+")")
			return r
		case <-tick.C:
		}
	}
}

func crashed(w WaitSpec, last inspectJSON, why string) StepResult {
	r := failed("container %s %s (exit code %d, %d restarts)", w.Container, why, last.State.ExitCode, last.RestartCount)
	r.State = last.State.Status
	n := w.LogLines
	if n <= 0 {
		n = 20
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, dockerBinary, "logs", "--tail", fmt.Sprint(n), w.Container).CombinedOutput()
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if l != "" {
			r.Logs = append(r.Logs, l)
		}
	}
	return r
}
