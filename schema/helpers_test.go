package schema

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// canary is a secret value planted in test files: it must never appear in a problem, an
// error or any printed form of a Secret.
const canary = "CANARY-5b1f0c3e9d27a4e1-do-not-leak"

// fakeENC has the shape of a sops-encrypted value. Loading only checks the shape (it
// decrypts nothing), so it stands for any encrypted secret in validation tests.
const fakeENC = "ENC[AES256_GCM,data:c2VjcmV0,iv:MTIzNDU2Nzg5MDEy,tag:MTIzNDU2Nzg5MDEyMzQ1Ng==,type:str]"

// absent, as the content of a path in a test repository, removes a default file.
const absent = "\x00absent"

// y joins lines into a YAML file, so that a test can count the lines it writes.
func y(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

// Default files of every test repository: two apps and a local worker, all valid.
var (
	appAstralText = y(
		"apiVersion: hermes-gitops/v1", // 1
		"kind: App",                    // 2
		"metadata:",                    // 3
		"  name: astral",               // 4
		"spec:",                        // 5
		"  containerPrefix: astral-tenant-",
		"  image: hermes-runner-standin:latest",
		"  tenantRoot: astral/tenants",
		"  env:",
		"    ASTRAL_KB_ROOT: /data/hermes/knowledge",
		"  providers: [anthropic, anthropic-oauth, openai, openai-codex, openrouter]",
		"  defaultBundles: [astral-core@0.2.0]",
	)
	// spawnSpec is the spec of apps/spawn.yaml, lines 6 to 9.
	spawnSpec = []string{
		"  containerPrefix: spawn-tenant-",                                                // 6
		"  image: hermes-runner-standin:latest",                                           // 7
		"  tenantRoot: spawn/tenants",                                                     // 8
		"  providers: [anthropic, anthropic-oauth, openai-api, openai-codex, openrouter]", // 9
	}
	appSpawnText    = appFile("spawn", spawnSpec...)
	workerLocalText = workerFile("local", "  transport: local", "  tenantRoot: /srv/hermes")
)

// appFile is an app profile; its spec starts on line 6.
func appFile(name string, spec ...string) string {
	return y(append([]string{"apiVersion: hermes-gitops/v1", "kind: App", "metadata:", "  name: " + name, "spec:"}, spec...)...)
}

// workerFile is a worker; its spec starts on line 6.
func workerFile(name string, spec ...string) string {
	return y(append([]string{"apiVersion: hermes-gitops/v1", "kind: Worker", "metadata:", "  name: " + name, "spec:"}, spec...)...)
}

// tenantFile is a tenant file: metadata.name on line 4, metadata.app on line 5, "spec:"
// on line 6 and the given lines from line 7 (they may include top-level keys such as
// secrets: after the spec's own lines).
func tenantFile(app, name string, lines ...string) string {
	return y(append([]string{"apiVersion: hermes-gitops/v1", "kind: Tenant", "metadata:", "  name: " + name, "  app: " + app, "spec:"}, lines...)...)
}

// codexSpec is a minimal valid tenant spec (lines 7-9); openai-codex needs no secret.
var codexSpec = []string{"  worker: local", "  provider:", "    id: openai-codex"}

// ada is tenants/spawn/ada.yaml with the given lines from line 7.
func ada(lines ...string) string { return tenantFile("spawn", "ada", lines...) }

// adaCodex is ada with codexSpec (lines 7-9) and more lines from line 10.
func adaCodex(more ...string) string { return ada(append(slices.Clone(codexSpec), more...)...) }

// adaProvider is ada on a provider (lines 7-9) and more lines from line 10.
func adaProvider(provider string, more ...string) string {
	return ada(append([]string{"  worker: local", "  provider:", "    id: " + provider}, more...)...)
}

const adaPath = "tenants/spawn/ada.yaml"

func baseFiles() map[string]string {
	return map[string]string{
		"apps/astral.yaml":   appAstralText,
		"apps/spawn.yaml":    appSpawnText,
		"workers/local.yaml": workerLocalText,
	}
}

// repoFS is a desired-state repository: the default apps and worker, an empty tenants/
// directory, and files (path → content; absent removes a default path).
func repoFS(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{"tenants": {Mode: fs.ModeDir | 0o755}}
	for p, c := range baseFiles() {
		fsys[p] = &fstest.MapFile{Data: []byte(c), Mode: 0o644}
	}
	for p, c := range files {
		if c == absent {
			delete(fsys, p)
			continue
		}
		fsys[p] = &fstest.MapFile{Data: []byte(c), Mode: 0o644}
	}
	return fsys
}

// loadFiles loads repoFS(files).
func loadFiles(t testing.TB, files map[string]string) *Repo {
	t.Helper()
	r, err := LoadFS(repoFS(files), "testrepo", LoadOptions{})
	if err != nil {
		t.Fatalf("LoadFS: %v", err)
	}
	return r
}

// writeRepo writes the default files and files to a new directory and returns it.
func writeRepo(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	all := baseFiles()
	for p, c := range files {
		all[p] = c
	}
	for p, c := range all {
		if c == absent {
			continue
		}
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, TenantsDir), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// strs renders problems with Problem.String, keeping notes only when withNotes is set.
func strs(ps Problems, withNotes bool) []string {
	out := []string{}
	for _, p := range ps {
		if p.Severity == Note && !withNotes {
			continue
		}
		out = append(out, p.String())
	}
	return out
}

// assertNoLeak fails if a secret value appears in any problem.
func assertNoLeak(t testing.TB, ps Problems, secrets ...string) {
	t.Helper()
	for _, p := range ps {
		for _, s := range append([]string{canary}, secrets...) {
			if s != "" && (strings.Contains(p.String(), s) || strings.Contains(p.Field, s)) {
				t.Errorf("a problem leaks a secret value: %s", p)
			}
		}
	}
}

// assertSorted fails unless problems are ordered by file, line and column.
func assertSorted(t testing.TB, ps Problems) {
	t.Helper()
	if !slices.IsSortedFunc(ps, func(a, b Problem) int {
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Col - b.Col
	}) {
		t.Errorf("problems are not sorted by file, line and column:\n%s", ps)
	}
}

func diffLines(want, got []string) string {
	var b strings.Builder
	b.WriteString("want:\n")
	for _, w := range want {
		b.WriteString("  " + w + "\n")
	}
	b.WriteString("got:\n")
	for _, g := range got {
		b.WriteString("  " + g + "\n")
	}
	return b.String()
}
