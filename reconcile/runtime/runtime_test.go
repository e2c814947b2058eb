package runtime

import (
	"strings"
	"testing"

	"github.com/firemountain/hermes-gitops/reconcile/live"
	"github.com/firemountain/hermes-gitops/reconcile/render"
	"github.com/firemountain/hermes-gitops/schema"
)

// The command builders are tested as exact strings, Kamal-style.
func TestBuilders(t *testing.T) {
	spec := render.ContainerSpec{
		Name: "spawn-tenant-cody1", Image: "runner:1.2", User: "10000:10000",
		Env:           []render.EnvVar{{Name: "HERMES_HOME", Value: schema.Secret("/data/hermes")}},
		SecretEnv:     []render.EnvVar{{Name: "FIRECRAWL_API_KEY", Value: schema.Secret("fc-CANARY"), Secret: true}},
		Mounts:        []live.Mount{{Source: "/srv/spawn/cody1/hermes-home", Destination: "/data/hermes", RW: true}},
		CapDrop:       []string{"ALL"},
		SecurityOpt:   []string{"no-new-privileges:true"},
		Memory:        "1g",
		PidsLimit:     512,
		RestartPolicy: "unless-stopped",
		Labels:        map[string]string{"b": "2", "a": "1"},
	}
	tests := []struct {
		got  []string
		want string
	}{
		{Run(spec), "docker run --detach --name spawn-tenant-cody1 --restart unless-stopped --cap-drop ALL --security-opt no-new-privileges:true --memory 1g --pids-limit 512 --user 10000:10000 --mount type=bind,source=/srv/spawn/cody1/hermes-home,target=/data/hermes --env HERMES_HOME=/data/hermes --label a=1 --label b=2 --log-opt max-size=10m --log-opt max-file=3 runner:1.2"},
		{Remove("c"), "docker rm --force c"},
		{Stop("c"), "docker stop --time 20 c"},
		{Start("c"), "docker start c"},
		{Restart("c"), "docker restart --time 20 c"},
		{Exec("c", "ls", "-1a", "/data"), "docker exec c ls -1a /data"},
		{ExecInteractive("c", "hermes", "auth"), "docker exec --interactive --tty c hermes auth"},
		{ExecStdin("c", "hermes"), "docker exec --interactive c hermes"},
		{Logs("c", 20), "docker logs --tail 20 c"},
	}
	for _, tt := range tests {
		if got := strings.Join(tt.got, " "); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
	if strings.Contains(strings.Join(Run(spec), " "), "fc-CANARY") {
		t.Fatal("a process secret is on the docker run command line")
	}
}
