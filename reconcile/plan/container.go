package plan

import (
	"fmt"
	"slices"
	"strings"

	"github.com/firemountain/hermes-gitops/reconcile/live"
	"github.com/firemountain/hermes-gitops/reconcile/render"
)

// Fields of a container spec that SpecDiff names.
const (
	FieldName            = "name"
	FieldImage           = "image"
	FieldEnvMissing      = "env-missing"
	FieldEnvDiffers      = "env-differs"
	FieldMounts          = "mounts"
	FieldUser            = "user"
	FieldCapDrop         = "cap-drop"
	FieldCapAdd          = "cap-add"
	FieldNoNewPrivileges = "no-new-privileges"
	FieldMemory          = "memory"
	FieldPids            = "pids-limit"
	FieldRestart         = "restart-policy"
)

// SpecDiff is one way a container differs from its desired spec. Want and Got never
// hold a secret: env values are fingerprints.
type SpecDiff struct {
	Field   string // one of the Field constants
	Subject string // the env variable, for env fields
	Want    string
	Got     string
	Reason  string // for people
}

// ContainerDiff lists how a running container differs from its desired spec. It
// compares what docker inspect shows rather than trusting the spec-hash label, so a
// container re-run by hand (labels copied, an -e flag dropped) is caught too. Any
// difference means a recreate: env, mounts and flags are fixed at creation. The planner
// shows the reasons; drift turns the fields into finding codes.
func ContainerDiff(want render.ContainerSpec, got live.Container) []SpecDiff {
	var d []SpecDiff
	add := func(field, subject, w, g, reason string) {
		d = append(d, SpecDiff{Field: field, Subject: subject, Want: w, Got: g, Reason: reason})
	}
	if got.Name != want.Name {
		add(FieldName, "", want.Name, got.Name, fmt.Sprintf("container name %s, want %s", got.Name, want.Name))
	}
	if got.Image != want.Image {
		add(FieldImage, "", want.Image, got.Image, fmt.Sprintf("image %s, want %s", got.Image, want.Image))
	}
	for _, e := range append(slices.Clone(want.Env), want.SecretEnv...) {
		kind := ""
		if e.Secret {
			kind = "secret, "
		}
		fp, ok := got.Env[e.Name]
		switch {
		case !ok:
			add(FieldEnvMissing, e.Name, e.Name+" set at creation", "not in the container's environment",
				fmt.Sprintf("env %s missing from the container (%sit can only be set at creation)", e.Name, kind))
		case fp != e.Fingerprint:
			add(FieldEnvDiffers, e.Name, e.Fingerprint, fp, fmt.Sprintf("env %s differs (%s%s, want %s)", e.Name, kind, fp, e.Fingerprint))
		}
	}
	if !slices.Equal(want.Mounts, got.Mounts) {
		add(FieldMounts, "", mountsString(want.Mounts), mountsString(got.Mounts),
			fmt.Sprintf("mounts %s, want %s", mountsString(got.Mounts), mountsString(want.Mounts)))
	}
	if want.User != "" && got.User != want.User {
		add(FieldUser, "", want.User, got.User, fmt.Sprintf("user %q, want %q", got.User, want.User))
	}
	for _, c := range want.CapDrop {
		if !slices.ContainsFunc(got.CapDrop, func(g string) bool { return strings.EqualFold(strings.TrimPrefix(g, "CAP_"), c) }) {
			add(FieldCapDrop, "", "--cap-drop="+c, "capabilities kept: "+orNone(got.CapDrop), "hardening: --cap-drop="+c+" missing")
		}
	}
	if len(got.CapAdd) > 0 {
		add(FieldCapAdd, "", "none", strings.Join(got.CapAdd, ","), "hardening: capabilities added: "+strings.Join(got.CapAdd, ", "))
	}
	for _, o := range want.SecurityOpt {
		if !slices.ContainsFunc(got.SecurityOpt, func(g string) bool { return securityOptEqual(g, o) }) {
			add(FieldNoNewPrivileges, "", "--security-opt "+o, orNone(got.SecurityOpt), "hardening: --security-opt "+o+" missing")
		}
	}
	if want.MemoryBytes > 0 && got.Memory != want.MemoryBytes {
		if got.Memory == 0 {
			add(FieldMemory, "", want.Memory, "no limit", "hardening: no memory limit, want "+want.Memory)
		} else {
			add(FieldMemory, "", want.Memory, fmt.Sprintf("%d bytes", got.Memory), fmt.Sprintf("memory limit %d bytes, want %s", got.Memory, want.Memory))
		}
	}
	if want.PidsLimit > 0 && got.PidsLimit != want.PidsLimit {
		add(FieldPids, "", fmt.Sprint(want.PidsLimit), fmt.Sprint(got.PidsLimit), fmt.Sprintf("pids limit %d, want %d", got.PidsLimit, want.PidsLimit))
	}
	if want.RestartPolicy != "" && got.RestartPolicy != want.RestartPolicy {
		add(FieldRestart, "", want.RestartPolicy, got.RestartPolicy, fmt.Sprintf("restart policy %q, want %q", got.RestartPolicy, want.RestartPolicy))
	}
	return d
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

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ",")
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
