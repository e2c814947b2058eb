package plan

import (
	"fmt"
	"slices"
	"strings"

	"github.com/firemountain/hermes-gitops/reconcile/live"
	"github.com/firemountain/hermes-gitops/reconcile/render"
)

// ContainerDiff lists how a running container differs from its desired spec, one
// human-readable reason each. It compares what docker inspect shows rather than trusting
// the spec-hash label, so a container re-run by hand (labels copied, an -e flag dropped)
// is caught too. Any difference means a recreate: env, mounts and flags are fixed at
// creation.
func ContainerDiff(want render.ContainerSpec, got live.Container) []string {
	var r []string
	if got.Name != want.Name {
		r = append(r, fmt.Sprintf("container name %s, want %s", got.Name, want.Name))
	}
	if got.Image != want.Image {
		r = append(r, fmt.Sprintf("image %s, want %s", got.Image, want.Image))
	}
	for _, e := range want.Env {
		fp, ok := got.Env[e.Name]
		switch {
		case !ok:
			r = append(r, fmt.Sprintf("env %s missing from the container (it can only be set at creation)", e.Name))
		case fp != e.Fingerprint:
			r = append(r, fmt.Sprintf("env %s differs (%s, want %s)", e.Name, fp, e.Fingerprint))
		}
	}
	for _, e := range want.SecretEnv {
		fp, ok := got.Env[e.Name]
		switch {
		case !ok:
			r = append(r, fmt.Sprintf("env %s missing from the container (secret, set at creation)", e.Name))
		case fp != e.Fingerprint:
			r = append(r, fmt.Sprintf("env %s changed (secret, %s → %s)", e.Name, fp, e.Fingerprint))
		}
	}
	if !mountsEqual(want.Mounts, got.Mounts) {
		r = append(r, fmt.Sprintf("mounts %s, want %s", mountsString(got.Mounts), mountsString(want.Mounts)))
	}
	if want.User != "" && got.User != want.User {
		r = append(r, fmt.Sprintf("user %q, want %q", got.User, want.User))
	}
	for _, c := range want.CapDrop {
		if !slices.ContainsFunc(got.CapDrop, func(g string) bool { return strings.EqualFold(strings.TrimPrefix(g, "CAP_"), c) }) {
			r = append(r, "hardening: --cap-drop="+c+" missing")
		}
	}
	if len(got.CapAdd) > 0 {
		r = append(r, "hardening: capabilities added: "+strings.Join(got.CapAdd, ", "))
	}
	for _, o := range want.SecurityOpt {
		if !slices.ContainsFunc(got.SecurityOpt, func(g string) bool { return securityOptEqual(g, o) }) {
			r = append(r, "hardening: --security-opt "+o+" missing")
		}
	}
	if want.MemoryBytes > 0 && got.Memory != want.MemoryBytes {
		if got.Memory == 0 {
			r = append(r, "hardening: no memory limit, want "+want.Memory)
		} else {
			r = append(r, fmt.Sprintf("memory limit %d bytes, want %s", got.Memory, want.Memory))
		}
	}
	if want.PidsLimit > 0 && got.PidsLimit != want.PidsLimit {
		r = append(r, fmt.Sprintf("pids limit %d, want %d", got.PidsLimit, want.PidsLimit))
	}
	if want.RestartPolicy != "" && got.RestartPolicy != want.RestartPolicy {
		r = append(r, fmt.Sprintf("restart policy %q, want %q", got.RestartPolicy, want.RestartPolicy))
	}
	return r
}

// securityOptEqual treats "no-new-privileges" and "no-new-privileges:true" as the same.
func securityOptEqual(a, b string) bool {
	norm := func(s string) string {
		s = strings.ReplaceAll(s, "=", ":")
		if s == "no-new-privileges" {
			return "no-new-privileges:true"
		}
		return s
	}
	return norm(a) == norm(b)
}

func mountsEqual(a, b []live.Mount) bool {
	return slices.Equal(a, b)
}

func mountsString(ms []live.Mount) string {
	if len(ms) == 0 {
		return "none"
	}
	var parts []string
	for _, m := range ms {
		mode := "ro"
		if m.RW {
			mode = "rw"
		}
		parts = append(parts, m.Source+":"+m.Destination+":"+mode)
	}
	return strings.Join(parts, ", ")
}
