package schema

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"
)

const exampleDir = "../tenants.example"

func loadExample(t *testing.T) *Repo {
	t.Helper()
	r, err := Load(exampleDir, LoadOptions{})
	if err != nil {
		t.Fatalf("Load(%s): %v", exampleDir, err)
	}
	return r
}

func TestLoadExample(t *testing.T) {
	r := loadExample(t)
	if r.Problems.HasErrors() {
		t.Fatalf("the example has errors:\n%s", r.Problems.Errors())
	}
	wantNotes := []string{
		"tenants/astral/orion.yaml:14:9: note: spec.provider.id: provider openai-codex signs in after the tenant is created: run 'hermesctl auth login orion'",
		"tenants/spawn/cody1.yaml:13:9: note: spec.provider.id: provider openai-codex signs in after the tenant is created: run 'hermesctl auth login cody1'",
		"tenants/spawn/quill.yaml:14:9: note: spec.provider.id: provider anthropic-oauth signs in after the tenant is created: run 'hermesctl auth login quill'",
	}
	if got := strs(r.Problems, true); !slices.Equal(got, wantNotes) {
		t.Errorf("problems of the example differ\n%s", diffLines(wantNotes, got))
	}
	if err := r.Usable(); err != nil {
		t.Errorf("Usable: %v", err)
	}
	var ids []string
	for _, tn := range r.Tenants {
		ids = append(ids, tn.Metadata.Name)
		if r.Held(tn) {
			t.Errorf("tenant %s is held", tn.Metadata.Name)
		}
	}
	if want := []string{"atlas", "cody1", "mayaastral", "nova", "orion", "quill", "vega"}; !slices.Equal(ids, want) {
		t.Errorf("tenants = %q, want %q (sorted by id)", ids, want)
	}
	if got := slices.Sorted(mapKeys(r.Apps)); !slices.Equal(got, []string{"astral", "spawn"}) {
		t.Errorf("apps = %q", got)
	}
	if got := slices.Sorted(mapKeys(r.Workers)); !slices.Equal(got, []string{"edge-1", "local"}) {
		t.Errorf("workers = %q", got)
	}

	// Defaults, as consumers read them.
	maya, orion, cody, quill, atlas := r.Tenant("mayaastral"), r.Tenant("orion"), r.Tenant("cody1"), r.Tenant("quill"), r.Tenant("atlas")
	if maya == nil || orion == nil || cody == nil || quill == nil || atlas == nil {
		t.Fatal("an example tenant is missing")
	}
	if want := []string{"astral-core@0.2.0", "astral-hd@0.2.0"}; !slices.Equal(maya.Spec.Bundles, want) {
		t.Errorf("mayaastral omits bundles: got %q, want the app's defaults %q", maya.Spec.Bundles, want)
	}
	if want := []string{"astral-core@0.1.0"}; !slices.Equal(orion.Spec.Bundles, want) {
		t.Errorf("orion pins its bundles: got %q, want %q", orion.Spec.Bundles, want)
	}
	if len(cody.Spec.Bundles) != 0 {
		t.Errorf("cody1 (app spawn, defaultBundles []) got bundles %q", cody.Spec.Bundles)
	}
	for _, c := range []struct {
		tn    *Tenant
		model string
	}{{maya, "claude-sonnet-4-5"}, {orion, "gpt-5-codex"}, {cody, "gpt-5-codex"}, {quill, "claude-sonnet-4-5"}, {atlas, "anthropic/claude-sonnet-4.5"}} {
		if c.tn.Spec.Provider.Model != c.model {
			t.Errorf("%s: model = %q, want %q", c.tn.Metadata.Name, c.tn.Spec.Provider.Model, c.model)
		}
	}
	for _, tn := range r.Tenants {
		if tn.Spec.State != StateActive {
			t.Errorf("%s: state = %q, want the default %q", tn.Metadata.Name, tn.Spec.State, StateActive)
		}
	}
	if orion.Spec.Resources.Memory != "1g" || atlas.Spec.Resources.Memory != "768m" {
		t.Errorf("memory: orion %q (want the app's 1g), atlas %q (want its own 768m)", orion.Spec.Resources.Memory, atlas.Spec.Resources.Memory)
	}
	if atlas.Spec.Storage.S3 == nil || atlas.Spec.Storage.S3.Quota != "5Gi" {
		t.Errorf("atlas storage = %+v", atlas.Spec.Storage)
	}
	if got := maya.Spec.Telegram.AllowedUsers; !slices.Equal(got, []int64{111111111}) {
		t.Errorf("mayaastral telegram users = %v", got)
	}
	if got := slices.Sorted(mapKeys(maya.Secrets)); !slices.Equal(got, []string{"ANTHROPIC_API_KEY", "TELEGRAM_BOT_TOKEN"}) {
		t.Errorf("mayaastral secrets = %q", got)
	}
	for k, v := range maya.Secrets {
		if !IsEncryptedValue(v) {
			t.Errorf("mayaastral secrets.%s is not ciphertext after Load", k)
		}
	}
	if maya.SecretValues != nil {
		t.Error("Load decrypted secrets; only Repo.Decrypt may")
	}
	if maya.Source == nil || maya.Source.File != "tenants/astral/mayaastral.yaml" {
		t.Errorf("mayaastral source = %+v", maya.Source)
	}
	if got := maya.Source.Pos("spec.provider.id"); got != (Pos{13, 9}) {
		t.Errorf("Pos(spec.provider.id) = %v", got)
	}
	if got := maya.Source.Pos("spec.bundles"); got != (Pos{7, 1}) {
		t.Errorf("Pos(spec.bundles), not written, = %v; want its parent spec at 7:1", got)
	}
	if maya.Source.Has("spec.bundles") || !maya.Source.Has("spec.resources.memory") {
		t.Error("Source.Has is wrong")
	}
	raw, err := os.ReadFile(filepath.Join(exampleDir, "tenants/astral/mayaastral.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.RawFile(maya), raw) {
		t.Error("RawFile differs from the file on disk")
	}
	if got, want := r.AbsPath("tenants/astral/mayaastral.yaml"), filepath.Join(exampleDir, "tenants", "astral", "mayaastral.yaml"); got != want {
		t.Errorf("AbsPath = %q, want %q", got, want)
	}

	// Apps and workers.
	astral, spawn := r.Apps["astral"], r.Apps["spawn"]
	if astral.Spec.RestartPolicy != "unless-stopped" || astral.Spec.PidsLimit != 512 || astral.Spec.MountPath != "/data/hermes" {
		t.Errorf("astral defaults: %+v", astral.Spec)
	}
	if spawn.Spec.DefaultBundles == nil || len(spawn.Spec.DefaultBundles) != 0 {
		t.Errorf("spawn defaultBundles = %#v, want an empty, non-nil list", spawn.Spec.DefaultBundles)
	}
	local, edge := r.Workers["local"], r.Workers["edge-1"]
	if local.Spec.Transport != TransportLocal || local.Spec.AgentDir != "/var/tmp/hermes-gitops-demo/.hermes-gitops/bin" || local.Spec.Port != 22 {
		t.Errorf("local worker defaults: %+v", local.Spec)
	}
	if edge.Spec.Transport != TransportSSH || edge.Spec.Port != 22 || edge.Spec.AgentDir != "/srv/.hermes-gitops/bin" {
		t.Errorf("edge-1 worker: %+v", edge.Spec)
	}
	if got := TenantHome(astral, local, "mayaastral"); got != "/var/tmp/hermes-gitops-demo/astral/tenants/mayaastral/hermes-home" {
		t.Errorf("TenantHome = %q", got)
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestLoadDefaults(t *testing.T) {
	r := loadFiles(t, map[string]string{
		"tenants/astral/omitted.yaml": tenantFile("astral", "omitted", codexSpec...),
		"tenants/astral/nulled.yaml":  tenantFile("astral", "nulled", append(slices.Clone(codexSpec), "  bundles:")...),
		"tenants/astral/emptied.yaml": tenantFile("astral", "emptied", append(slices.Clone(codexSpec), "  bundles: []")...),
		"tenants/astral/pinned.yaml":  tenantFile("astral", "pinned", append(slices.Clone(codexSpec), "  bundles: [astral-core@0.1.0]", "  state: suspended", "  resources: {memory: 2g}")...),
		"tenants/spawn/keyed.yaml": tenantFile("spawn", "keyed", withSops("  worker: local", "  provider:", "    id: openrouter",
			"secrets:", "  OPENROUTER_API_KEY: "+fakeENC)...),
		"tenants/spawn/modelled.yaml": tenantFile("spawn", "modelled", "  worker: local", "  provider:", "    id: anthropic-oauth", "    model: claude-opus-4"),
	})
	if r.Problems.HasErrors() {
		t.Fatalf("unexpected errors:\n%s", r.Problems.Errors())
	}
	for _, c := range []struct {
		id, model, memory, state string
		bundles                  []string
	}{
		{"omitted", "gpt-5-codex", "1g", StateActive, []string{"astral-core@0.2.0"}},
		{"nulled", "gpt-5-codex", "1g", StateActive, []string{"astral-core@0.2.0"}},
		{"emptied", "gpt-5-codex", "1g", StateActive, []string{}},
		{"pinned", "gpt-5-codex", "2g", StateSuspended, []string{"astral-core@0.1.0"}},
		{"keyed", "anthropic/claude-sonnet-4.5", "1g", StateActive, nil},
		{"modelled", "claude-opus-4", "1g", StateActive, nil},
	} {
		tn := r.Tenant(c.id)
		if tn == nil {
			t.Errorf("no tenant %s", c.id)
			continue
		}
		s := tn.Spec
		if s.Provider.Model != c.model || s.Resources.Memory != c.memory || s.State != c.state || !slices.Equal(s.Bundles, c.bundles) {
			t.Errorf("%s: model %q memory %q state %q bundles %q; want %q %q %q %q", c.id,
				s.Provider.Model, s.Resources.Memory, s.State, s.Bundles, c.model, c.memory, c.state, c.bundles)
		}
		if !s.Toolsets.TerminalEnabled() {
			t.Errorf("%s: terminal is off by default", c.id)
		}
	}
	if s := r.Tenant("emptied").Spec.Bundles; s == nil {
		t.Error("bundles: [] became nil; it must stay an explicit empty list")
	}
	// The app's default bundles are copied, not shared.
	r.Tenant("omitted").Spec.Bundles[0] = "changed@1.0.0"
	if r.Apps["astral"].Spec.DefaultBundles[0] != "astral-core@0.2.0" || r.Tenant("nulled").Spec.Bundles[0] != "astral-core@0.2.0" {
		t.Error("tenants share the app's defaultBundles slice")
	}
	if r.Tenant("nope") != nil {
		t.Error("Tenant(nope) found a tenant")
	}
}

func TestLoadHeldAndUsable(t *testing.T) {
	t.Run("broken tenant file is held, repo usable", func(t *testing.T) {
		r := loadFiles(t, map[string]string{
			"tenants/spawn/good.yaml":   tenantFile("spawn", "good", codexSpec...),
			"tenants/spawn/broken.yaml": "apiVersion: [\n",
			"tenants/spawn/wrong.yaml":  tenantFile("spawn", "wrong", "  worker: nowhere", "  provider:", "    id: openai-codex"),
		})
		if err := r.Usable(); err != nil {
			t.Errorf("Usable: %v", err)
		}
		good, broken, wrong := r.Tenant("good"), r.Tenant("broken"), r.Tenant("wrong")
		if good == nil || broken == nil || wrong == nil {
			t.Fatalf("tenants: %v", r.Tenants)
		}
		if r.Held(good) || !r.Held(broken) || !r.Held(wrong) {
			t.Errorf("held: good %v broken %v wrong %v; want false true true", r.Held(good), r.Held(broken), r.Held(wrong))
		}
		// A file that does not parse still yields a tenant named after its file and its
		// directory, so that its live container is held rather than seen as an orphan.
		if broken.Metadata.App != "spawn" || broken.Source.File != "tenants/spawn/broken.yaml" {
			t.Errorf("broken tenant = %+v %+v", broken.Metadata, broken.Source)
		}
		if got := strs(r.TenantProblems(broken), true); len(got) != 1 || !strings.HasPrefix(got[0], "tenants/spawn/broken.yaml:") {
			t.Errorf("TenantProblems(broken) = %q", got)
		}
		if got := r.TenantProblems(good); len(got) != 1 || got[0].Severity != Note {
			t.Errorf("TenantProblems(good) = %v, want its OAuth note only", got)
		}
		if got := strs(r.TenantProblems(wrong), false); !slices.Equal(got, []string{`tenants/spawn/wrong.yaml:7:11: spec.worker: unknown worker "nowhere"; workers: local`}) {
			t.Errorf("TenantProblems(wrong) = %q", got)
		}
	})
	t.Run("broken app holds its tenants, repo unusable", func(t *testing.T) {
		r := loadFiles(t, map[string]string{
			"apps/spawn.yaml":          appFile("spawn", append(slices.Clone(spawnSpec), "  user: root")...),
			"tenants/spawn/ada.yaml":   adaCodex(),
			"tenants/astral/vega.yaml": tenantFile("astral", "vega", codexSpec...),
		})
		if r.Held(r.Tenant("vega")) || !r.Held(r.Tenant("ada")) {
			t.Errorf("held: vega %v ada %v; want false true", r.Held(r.Tenant("vega")), r.Held(r.Tenant("ada")))
		}
		if len(r.TenantProblems(r.Tenant("ada")).Errors()) != 0 {
			t.Error("the app's problem is reported on the tenant")
		}
		err := r.Usable()
		if err == nil || !strings.Contains(err.Error(), "apps/spawn.yaml:10:9: spec.user: must be numeric uid:gid") {
			t.Errorf("Usable = %v", err)
		}
		var ps Problems
		if !errors.As(err, &ps) || len(ps) != 1 {
			t.Errorf("Usable wraps %T %v, want the app's one problem", err, err)
		}
	})
	t.Run("broken worker holds its tenants", func(t *testing.T) {
		r := loadFiles(t, map[string]string{
			"workers/local.yaml":     workerFile("local", "  transport: local", "  tenantRoot: relative"),
			"tenants/spawn/ada.yaml": adaCodex(),
		})
		if !r.Held(r.Tenant("ada")) || r.Usable() == nil {
			t.Error("a tenant of a broken worker must be held and the repository unusable")
		}
	})
	t.Run("unknown app and worker hold", func(t *testing.T) {
		r := loadFiles(t, map[string]string{"tenants/nope/ada.yaml": tenantFile("nope", "ada", codexSpec...)})
		if !r.Held(r.Tenant("ada")) {
			t.Error("a tenant of an unknown app is not held")
		}
	})
	t.Run("no tenants directory is unusable", func(t *testing.T) {
		r := loadFiles(t, map[string]string{"tenants": absent})
		if r.Usable() == nil {
			t.Error("Usable is nil without tenants/")
		}
	})
}

func TestLoadDirErrors(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "missing"), LoadOptions{}); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want a not-exist error", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(file, LoadOptions{}); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("Load(file) = %v", err)
	}
	// Load over a directory on disk gives the same result as LoadFS over the same files.
	files := map[string]string{adaPath: adaCodex("  owner: {email: nope}")}
	dir := writeRepo(t, files)
	r, err := Load(dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strs(r.Problems, true), strs(loadFiles(t, files).Problems, true); !slices.Equal(got, want) {
		t.Errorf("Load and LoadFS differ\n%s", diffLines(want, got))
	}
}

// TestLoadIgnoresOtherFiles: only .yaml and .yml files count; hidden files and other
// extensions are not desired state.
func TestLoadIgnoresOtherFiles(t *testing.T) {
	r := loadFiles(t, map[string]string{
		"tenants/spawn/ada.yml":         adaCodex(),
		"tenants/spawn/.draft.yaml":     "not: [valid",
		"tenants/spawn/README.md":       "# notes",
		"tenants/spawn/ada.yaml.orig":   "not: [valid",
		"tenants/.hidden/x.yaml":        "not: [valid",
		"tenants/README.md":             "# tenants",
		"apps/.template.yaml":           "not: [valid",
		"workers/notes.txt":             "hello",
		"tenants/spawn/sub/nested.yaml": "not: [valid",
	})
	if got := strs(r.Problems, false); len(got) != 0 {
		t.Errorf("problems: %q", got)
	}
	if len(r.Tenants) != 1 || r.Tenants[0].Source.File != "tenants/spawn/ada.yml" {
		t.Errorf("tenants = %v", r.Tenants)
	}
}

// TestLoadBrokenSecondDocument: a file whose second YAML document does not parse is as
// invalid as one with two documents; it must not be loaded as if the rest were absent.
func TestLoadBrokenSecondDocument(t *testing.T) {
	for _, tail := range [][]string{{"---", "foo: ["}, {"...", "foo: ]"}} {
		r := loadFiles(t, map[string]string{adaPath: adaCodex(tail...)})
		if !r.TenantProblems(r.Tenant("ada")).HasErrors() {
			t.Errorf("%q: no error; problems:\n%s", tail, r.Problems)
		}
	}
}

// Anchors and aliases: a file is untrusted input (a pull request, the wizard), so an
// alias that contains itself must be an error, not an endless recursion, and alias
// expansion must be bounded ("billion laughs"). Each case runs in a child process with a
// deadline, so that a regression cannot hang or crash the test binary.
var aliasCases = map[string]string{
	"cycle-map":  adaCodex("  hermesConfig: &x {a: *x}"),
	"cycle-list": adaCodex("  hermesConfig:", "    a: &x [*x]"),
	"laughs": adaCodex("  hermesConfig:",
		"    a: &a [x, x, x, x, x, x, x, x, x, x]",
		"    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]",
		"    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]",
		"    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]",
		"    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]",
		"    f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]",
	),
}

const aliasChildEnv = "SCHEMA_TEST_ALIAS_CASE"

func TestAliasChild(t *testing.T) {
	c := os.Getenv(aliasChildEnv)
	if c == "" {
		return // only the helper process of TestLoadAliases runs this
	}
	debug.SetMaxStack(64 << 20) // a runaway recursion dies in a second, not minutes
	r := loadFiles(t, map[string]string{adaPath: aliasCases[c]})
	fmt.Printf("problems:\n%s\n", r.Problems)
	if !r.TenantProblems(r.Tenant("ada")).HasErrors() {
		t.Fatalf("no error for %s", c)
	}
}

func TestLoadAliases(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range slices.Sorted(mapKeys(aliasCases)) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, exe, "-test.run=^TestAliasChild$", "-test.v")
			cmd.Env = append(os.Environ(), aliasChildEnv+"="+name, "GOMEMLIMIT=512MiB", "GOGC=50")
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("loading did not finish within 10s")
			}
			if err != nil {
				t.Fatalf("child: %v\n%s", err, lastLines(string(out), 20))
			}
		})
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestLoadNullAndEmptyRequired: a required section or field written as null or "" is as
// missing as an absent one. Otherwise the file loads without a problem and its tenant is
// either held without being reported, or applied with no provider.
func TestLoadNullAndEmptyRequired(t *testing.T) {
	for name, c := range map[string]struct{ file, content string }{
		"tenant document null":       {adaPath, "~\n"},
		"tenant document bare tag":   {adaPath, "!\n"},
		"tenant metadata and spec ~": {adaPath, y("apiVersion: hermes-gitops/v1", "kind: Tenant", "metadata: ~", "spec: ~")},
		"tenant spec null":           {adaPath, y("apiVersion: hermes-gitops/v1", "kind: Tenant", "metadata:", "  name: ada", "  app: spawn", "spec: null")},
		"tenant worker empty":        {adaPath, ada(`  worker: ""`, "  provider:", "    id: openai-codex")},
		"tenant worker null":         {adaPath, ada("  worker: ~", "  provider:", "    id: openai-codex")},
		"tenant provider id empty":   {adaPath, ada("  worker: local", "  provider:", `    id: ""`)},
		"tenant provider null":       {adaPath, ada("  worker: local", "  provider:")},
		"tenant kind null":           {adaPath, strings.Replace(adaCodex(), "kind: Tenant", "kind:", 1)},
		"app document null":          {"apps/spawn.yaml", "~\n"},
		"app spec null":              {"apps/spawn.yaml", y("apiVersion: hermes-gitops/v1", "kind: App", "metadata:", "  name: spawn", "spec: ~")},
		"app image empty":            {"apps/spawn.yaml", appFile("spawn", spawnSpec[0], `  image: ""`, spawnSpec[2], spawnSpec[3])},
		"worker document null":       {"workers/local.yaml", "null\n"},
	} {
		t.Run(name, func(t *testing.T) {
			files := map[string]string{c.file: c.content}
			if c.file != adaPath {
				files[adaPath] = adaCodex()
			}
			r := loadFiles(t, files)
			if !r.fileHasErrors(c.file) {
				held := "held without being reported"
				if tn := r.Tenant("ada"); tn != nil && !r.Held(tn) {
					held = "NOT held: it would be applied"
				}
				t.Errorf("%s loads without an error, tenant ada %s; problems:\n%s", c.file, held, r.Problems)
			}
		})
	}
}
