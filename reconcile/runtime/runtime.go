// Package runtime builds docker commands as argv. Builders are pure functions tested as
// exact strings (as Kamal's command classes are); running them is the agent's job, which
// executes argv directly, without a shell.
package runtime

import (
	"maps"
	"slices"
	"strconv"

	"github.com/firemountain/hermes-gitops/reconcile/render"
)

// StopTimeout is how long docker waits for a tenant to exit before killing it.
const StopTimeout = 20

// Run returns the `docker run -d` argv of a container spec. Secret environment
// (spec.SecretEnv) is not on it: the agent passes it with a 0600 --env-file inserted after
// "run", so no secret is ever on a command line.
func Run(spec render.ContainerSpec) []string {
	argv := []string{"docker", "run", "--detach",
		"--name", spec.Name,
		"--restart", spec.RestartPolicy,
	}
	for _, c := range spec.CapDrop {
		argv = append(argv, "--cap-drop", c)
	}
	for _, o := range spec.SecurityOpt {
		argv = append(argv, "--security-opt", o)
	}
	if spec.Memory != "" {
		argv = append(argv, "--memory", spec.Memory)
	}
	if spec.PidsLimit > 0 {
		argv = append(argv, "--pids-limit", strconv.FormatInt(spec.PidsLimit, 10))
	}
	if spec.User != "" {
		argv = append(argv, "--user", spec.User)
	}
	for _, m := range spec.Mounts {
		mount := "type=bind,source=" + m.Source + ",target=" + m.Destination
		if !m.RW {
			mount += ",readonly"
		}
		argv = append(argv, "--mount", mount)
	}
	for _, e := range spec.Env {
		argv = append(argv, "--env", e.Name+"="+e.Value.Reveal())
	}
	for _, k := range slices.Sorted(maps.Keys(spec.Labels)) {
		argv = append(argv, "--label", k+"="+spec.Labels[k])
	}
	argv = append(argv, "--log-opt", "max-size=10m", "--log-opt", "max-file=3")
	return append(argv, spec.Image)
}

// Remove force-removes a container (its data lives in the bind mount and stays).
func Remove(name string) []string { return []string{"docker", "rm", "--force", name} }

// Stop stops a container, giving it StopTimeout seconds.
func Stop(name string) []string {
	return []string{"docker", "stop", "--time", strconv.Itoa(StopTimeout), name}
}

// Start starts a stopped container.
func Start(name string) []string { return []string{"docker", "start", name} }

// Restart restarts a container so it reloads its files.
func Restart(name string) []string {
	return []string{"docker", "restart", "--time", strconv.Itoa(StopTimeout), name}
}

// Exec runs a command in a running container.
func Exec(name string, cmd ...string) []string {
	return append([]string{"docker", "exec", name}, cmd...)
}

// ExecInteractive runs a command in a container with a terminal attached.
func ExecInteractive(name string, cmd ...string) []string {
	return append([]string{"docker", "exec", "--interactive", "--tty", name}, cmd...)
}

// ExecStdin runs a command in a container with stdin attached but no terminal (for a
// worker reached without a pseudo-terminal).
func ExecStdin(name string, cmd ...string) []string {
	return append([]string{"docker", "exec", "--interactive", name}, cmd...)
}

// Logs returns the last n log lines of a container.
func Logs(name string, n int) []string {
	return []string{"docker", "logs", "--tail", strconv.Itoa(n), name}
}
