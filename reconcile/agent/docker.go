package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"sort"
	"strings"

	"github.com/firemountain/hermes-gitops/reconcile/live"
)

// dockerBinary is the docker CLI the agent runs; tests may point it elsewhere.
var dockerBinary = "docker"

// docker runs the docker CLI with argv (no shell) and returns stdout; a failure carries
// the end of stderr.
func docker(ctx context.Context, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, dockerBinary, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("docker %s: %w: %s", args[0], err, tail(stderr.String(), 2048))
	}
	return stdout.Bytes(), nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

// observeContainers lists containers with the managed-by label or an app's name prefix,
// and inspects them all in one docker call. A container removed between the listing and
// the inspection fails the whole inspect, so that case is retried once.
func observeContainers(ctx context.Context, apps []AppRoot, key []byte) (managed, unmanaged []live.Container, err error) {
	for attempt := 0; ; attempt++ {
		managed, unmanaged, err = listAndInspect(ctx, apps, key)
		if err == nil || attempt == 1 || !strings.Contains(err.Error(), "No such") {
			return managed, unmanaged, err
		}
	}
}

func listAndInspect(ctx context.Context, apps []AppRoot, key []byte) (managed, unmanaged []live.Container, err error) {
	out, err := docker(ctx, "ps", "-a", "--no-trunc", "--format", `{{.ID}}	{{.Names}}	{{.Label "`+live.LabelManagedBy+`"}}`)
	if err != nil {
		return nil, nil, err
	}
	var ids []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 3 {
			continue
		}
		if f[2] != "" || hasAppPrefix(f[1], apps) {
			ids = append(ids, f[0])
		}
	}
	managed, unmanaged = []live.Container{}, []live.Container{}
	if len(ids) == 0 {
		return managed, unmanaged, nil
	}
	out, err = docker(ctx, append([]string{"inspect", "--type", "container"}, ids...)...)
	if err != nil {
		return nil, nil, err
	}
	var raw []inspectJSON
	if err := json.Unmarshal(out, &raw); err != nil {
		return nil, nil, fmt.Errorf("docker inspect: %w", err)
	}
	for _, r := range raw {
		c := r.container(key)
		if c.Labels[live.LabelManagedBy] == live.ManagedByValue {
			managed = append(managed, c)
		} else {
			unmanaged = append(unmanaged, c)
		}
	}
	byName := func(cs []live.Container) {
		sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	}
	byName(managed)
	byName(unmanaged)
	return managed, unmanaged, nil
}

func hasAppPrefix(name string, apps []AppRoot) bool {
	for _, a := range apps {
		if a.ContainerPrefix != "" && strings.HasPrefix(name, a.ContainerPrefix) {
			return true
		}
	}
	return false
}

// inspectJSON is the subset of `docker inspect` read.
type inspectJSON struct {
	ID           string `json:"Id"`
	Name         string `json:"Name"`
	Image        string `json:"Image"`
	RestartCount int    `json:"RestartCount"`
	State        struct {
		Status     string `json:"Status"`
		Running    bool   `json:"Running"`
		Restarting bool   `json:"Restarting"`
		ExitCode   int    `json:"ExitCode"`
		StartedAt  string `json:"StartedAt"`
		Health     *struct {
			Status string `json:"Status"`
		} `json:"Health"`
	} `json:"State"`
	Config struct {
		Image  string            `json:"Image"`
		Env    []string          `json:"Env"`
		Labels map[string]string `json:"Labels"`
		User   string            `json:"User"`
	} `json:"Config"`
	HostConfig struct {
		CapAdd        []string `json:"CapAdd"`
		CapDrop       []string `json:"CapDrop"`
		SecurityOpt   []string `json:"SecurityOpt"`
		Memory        int64    `json:"Memory"`
		PidsLimit     *int64   `json:"PidsLimit"`
		RestartPolicy struct {
			Name string `json:"Name"`
		} `json:"RestartPolicy"`
	} `json:"HostConfig"`
	Mounts []struct {
		Type        string `json:"Type"`
		Source      string `json:"Source"`
		Destination string `json:"Destination"`
		RW          bool   `json:"RW"`
	} `json:"Mounts"`
}

// container converts inspect output; env values become keyed fingerprints here.
func (r inspectJSON) container(key []byte) live.Container {
	c := live.Container{
		ID: r.ID, Name: strings.TrimPrefix(r.Name, "/"), Image: r.Config.Image, ImageID: r.Image,
		Labels: r.Config.Labels, Env: map[string]string{}, User: r.Config.User,
		CapAdd: nonNil(r.HostConfig.CapAdd), CapDrop: nonNil(r.HostConfig.CapDrop), SecurityOpt: nonNil(r.HostConfig.SecurityOpt),
		Memory: r.HostConfig.Memory, RestartPolicy: r.HostConfig.RestartPolicy.Name,
		Mounts: []live.Mount{},
		State: live.State{
			Status: r.State.Status, Running: r.State.Running, Restarting: r.State.Restarting,
			ExitCode: r.State.ExitCode, RestartCount: r.RestartCount, StartedAt: r.State.StartedAt,
		},
	}
	if c.Labels == nil {
		c.Labels = map[string]string{}
	}
	if r.HostConfig.PidsLimit != nil {
		c.PidsLimit = *r.HostConfig.PidsLimit
	}
	if r.State.Health != nil {
		c.State.Health = r.State.Health.Status
	}
	for _, kv := range r.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		c.Env[k] = Fingerprint(key, v)
	}
	for _, m := range r.Mounts {
		c.Mounts = append(c.Mounts, live.Mount{Source: m.Source, Destination: m.Destination, RW: m.RW})
	}
	sort.Slice(c.Mounts, func(i, j int) bool { return c.Mounts[i].Destination < c.Mounts[j].Destination })
	slices.Sort(c.CapAdd)
	slices.Sort(c.CapDrop)
	slices.Sort(c.SecurityOpt)
	return c
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}
