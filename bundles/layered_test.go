package bundles

import (
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// overlayDir is a desired-state repository's own bundles/ directory: a new bundle, a
// shadowing writing@0.1.0, and a newer daily-brief, all published in its own bundles.sum.
func overlayDir(t *testing.T) string {
	t.Helper()
	base := builtinMap(t)
	m := fstest.MapFS{}
	for p, f := range base {
		switch {
		case strings.HasPrefix(p, "writing/0.1.0/"):
			m[p] = f
		case strings.HasPrefix(p, "skills/daily-brief/1.0.0/"):
			m["skills/daily-brief/1.1.0/"+strings.TrimPrefix(p, "skills/daily-brief/1.0.0/")] = f
		}
	}
	edit(t, m, "writing/0.1.0/bundle.yaml", "description: >-\n", "description: >-\n  ACME house style.\n")
	edit(t, m, "skills/daily-brief/1.1.0/SKILL.md", "version: 1.0.0\n", "version: 1.1.0\n")
	m["acme-ops/0.1.0/bundle.yaml"] = &fstest.MapFile{Data: []byte("name: acme-ops\nversion: 0.1.0\ndescription: ACME on-call.\nskills: [runbook]\nrequires: {toolsets: [terminal], env: []}\n")}
	m["acme-ops/0.1.0/skills/runbook/SKILL.md"] = &fstest.MapFile{Data: []byte("---\nname: runbook\ndescription: Follow the ACME runbook.\nversion: 0.1.0\nmetadata:\n  hermes:\n    requires_toolsets: [terminal]\n---\n\n# Runbook\n")}
	dir := writeDir(t, m)
	if _, err := RecordSums(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLayered(t *testing.T) {
	base := mustLoad(t, os.DirFS(publishedDir(t))) // the built-in content with a fresh record
	overlay := mustLoad(t, os.DirFS(overlayDir(t)))
	c := Layered(base, overlay)

	w, ok := c.Bundle("writing", "0.1.0")
	if !ok || !strings.HasPrefix(w.Description, "ACME house style.") {
		t.Errorf("writing@0.1.0 = %+v, want the overlay's", w)
	}
	if bw, _ := base.Bundle("writing", "0.1.0"); strings.HasPrefix(bw.Description, "ACME") {
		t.Error("Layered changed the base catalogue")
	}
	core, ok := c.Bundle("astral-core", "0.2.0")
	if bc, _ := base.Bundle("astral-core", "0.2.0"); !ok || core != bc {
		t.Error("astral-core@0.2.0 from the base is not visible")
	}
	ops, ok := c.Bundle("acme-ops", "0.1.0")
	if !ok || ops.Category != "acme-ops" || ops.Skills[0].InstallDir() != "skills/acme-ops/runbook" {
		t.Errorf("acme-ops@0.1.0 = %+v", ops)
	}
	if s, ok := c.Skill("daily-brief", ""); !ok || s.Version != "1.1.0" {
		t.Errorf("Skill(daily-brief, \"\") = %v, want the overlay's 1.1.0", s)
	}
	if _, ok := c.Skill("daily-brief", "1.0.0"); !ok {
		t.Error("daily-brief@1.0.0 from the base is not visible")
	}
	if got := c.Versions("skills/daily-brief"); !slices.Equal(got, []string{"1.0.0", "1.1.0"}) {
		t.Errorf("Versions(skills/daily-brief) = %v", got)
	}
	var refs []string
	for _, b := range c.Bundles() {
		refs = append(refs, b.Ref().String())
	}
	want := []string{"acme-ops@0.1.0", "astral-core@0.1.0", "astral-core@0.2.0", "astral-hd@0.2.0", "research@0.1.0", "writing@0.1.0"}
	if !slices.Equal(refs, want) {
		t.Errorf("Bundles() = %v, want %v", refs, want)
	}
	// Each entry is held to the bundles.sum it came with.
	if errs := c.Verify(); errs != nil {
		t.Errorf("Verify on the layered catalogue: %q", errorStrings(errs))
	}
	if Layered(nil, overlay).Verify() != nil || len(Layered(base, nil).Bundles()) != len(base.Bundles()) {
		t.Error("Layered with a nil side misbehaves")
	}
}
