package live

import "testing"

func TestScopeOwns(t *testing.T) {
	s := Scope{App: "spawn", Root: "/srv/spawn/tenants", Prefix: "spawn-tenant-"}
	c := func(app, name, source string) *Container {
		ct := &Container{Name: name, Labels: map[string]string{LabelApp: app}}
		if source != "" {
			ct.Mounts = []Mount{{Source: source, Destination: "/data/hermes"}}
		}
		return ct
	}
	for _, tc := range []struct {
		name string
		c    *Container
		want bool
	}{
		{"ours", c("spawn", "spawn-tenant-cody1", "/srv/spawn/tenants/cody1/hermes-home"), true},
		{"no mounts yet", c("spawn", "spawn-tenant-cody1", ""), true},
		{"another app's", c("astral", "spawn-tenant-cody1", "/srv/spawn/tenants/cody1/hermes-home"), false},
		{"another fleet's prefix", c("spawn", "e2e1-spawn-cody1", "/srv/spawn/tenants/cody1/hermes-home"), false},
		{"another fleet's root", c("spawn", "spawn-tenant-cody1", "/var/tmp/demo/spawn/tenants/cody1/hermes-home"), false},
		{"a root that only shares a prefix", c("spawn", "spawn-tenant-cody1", "/srv/spawn/tenants-old/cody1/hermes-home"), false},
	} {
		if got := s.Owns(tc.c); got != tc.want {
			t.Errorf("%s: Owns = %v, want %v", tc.name, got, tc.want)
		}
	}
	if OwnedBy(nil, c("spawn", "spawn-tenant-cody1", "")) {
		t.Error("no scope owns anything")
	}
}
