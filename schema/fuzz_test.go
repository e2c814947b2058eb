package schema

import (
	"encoding/json"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"gopkg.in/yaml.v3"
)

// fuzzEnv is what every fuzz input is loaded with: the example's apps and workers, and
// the demo key with the plaintexts of the example's secrets (which must never show up in
// a problem either).
type fuzzEnv struct {
	files    map[string][]byte // apps/ and workers/ of the example
	tenants  map[string][]byte // tenants/<app>/<id>.yaml of the example
	ids      *Identities
	plainSet []string
}

var loadFuzzEnv = sync.OnceValues(func() (*fuzzEnv, error) {
	env := &fuzzEnv{files: map[string][]byte{}, tenants: map[string][]byte{}}
	err := filepath.WalkDir(exampleDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !isYAML(p) {
			return err
		}
		rel, _ := filepath.Rel(exampleDir, p)
		rel = filepath.ToSlash(rel)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		switch {
		case strings.HasPrefix(rel, "apps/"), strings.HasPrefix(rel, "workers/"):
			env.files[rel] = b
		case strings.HasPrefix(rel, "tenants/"):
			env.tenants[rel] = b
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	key, err := os.ReadFile(filepath.Join(exampleDir, "demo.agekey"))
	if err != nil {
		return nil, err
	}
	if env.ids, err = ParseIdentities(string(key), "demo.agekey"); err != nil {
		return nil, err
	}
	for _, b := range env.tenants {
		if !strings.Contains(string(b), "\nsops:") {
			continue
		}
		vals, err := DecryptSecrets(b, env.ids)
		if err != nil {
			return nil, err
		}
		for _, v := range vals {
			env.plainSet = append(env.plainSet, v.Reveal())
		}
	}
	return env, nil
})

var (
	fuzzAppRE  = regexp.MustCompile(`(?m)^  app: ([a-z]+)\s*$`)
	fuzzNameRE = regexp.MustCompile(`(?m)^  name: [a-z0-9-]+\s*$`)
)

const fuzzID = "fuzz1"

// asFuzzTenant renames an example tenant to fuzzID, so that seeds pass the id checks.
func asFuzzTenant(b []byte) string {
	return fuzzNameRE.ReplaceAllString(string(b), "  name: "+fuzzID)
}

// fuzzPath is where an input is loaded: under the app it names (so that a valid input
// loads clean), else under spawn.
func fuzzPath(data string) string {
	app := "spawn"
	if m := fuzzAppRE.FindStringSubmatch(data); m != nil && (m[1] == "astral" || m[1] == "spawn") {
		app = m[1]
	}
	return path.Join(TenantsDir, app, fuzzID+".yaml")
}

func fuzzSeeds(env *fuzzEnv) []string {
	var seeds []string
	for _, name := range slices.Sorted(mapKeys(env.tenants)) {
		s := asFuzzTenant(env.tenants[name])
		seeds = append(seeds, s, s[:len(s)/2], strings.Replace(s, "  ", "\t", 1))
	}
	plain := tenantFile("spawn", fuzzID, "  worker: local", "  provider:", "    id: anthropic")
	seeds = append(seeds,
		// Plaintext secrets, in every shape a person might write them.
		plain+y("secrets:", "  ANTHROPIC_API_KEY: "+canary),
		plain+y("secrets:", "  ANTHROPIC_API_KEY: "+canary, "sops:", "  version: 3.13.3"),
		plain+y("secrets:", "  ANTHROPIC_API_KEY: ENC[AES256_GCM,data:"+canary+",iv:MTIz,tag:MTIz,type:str]", "sops:", "  version: 3.13.3"),
		plain+y(`secrets: {ANTHROPIC_API_KEY: "`+canary+`"}`),
		plain+y("secrets:", "  ANTHROPIC_API_KEY: |", "    "+canary),
		plain+y("secrets:", "  anthropic_api_key: "+canary),
		plain+y("secrets:", "  ANTHROPIC_API_KEY: "+fakeENC, "  ANTHROPIC_API_KEY: "+canary),
		plain+y("secrets:", "  ANTHROPIC_API_KEY: ["+canary+"]"),
		plain+y("secrets:", "  ANTHROPIC_API_KEY: !!binary "+canary),
		plain+y("secrets:", "  ANTHROPIC_API_KEY: &k "+canary, "  OPENAI_API_KEY: *k"),
		plain+y("secrets:", "  ANTHROPIC_API_KEY: '"+canary+"", "  X: 1"),
		// Broken in other ways.
		"",
		"# comment only\n",
		"- a list\n",
		"apiVersion: hermes-gitops/v1\nkind: Tenant\n---\nkind: Tenant\n",
		adaCodex("  owner: &o {name: Ada}", "  skills: [*o]"),
		adaCodex("  hermesConfig:", "    display: {compact: true, list: [1, 2.5, null, yes]}", "    model: x"),
		adaCodex("  telegram:", "    allowedUsers: [0x10, -1, 99999999999999999999, 1.5]"),
		adaCodex("  bundles: [writing@0.1.0, writing@0.1.0, nope, a@v1, astral-core@9.9.9]", "  skills: [nope, kb-capture@1.0.0]", "  toolsets: {terminal: false, enable: [terminal, Bad]}"),
		adaCodex("  storage: {s3: {}}", "  resources: {memory: lots}", "  state: gone", "  web: {backend: tavily}", "colour: blue", "  wroker: x"),
		"apiVersion: [\n",
		"~\n",
		"!",
		adaCodex(`  worker: ""`, "  provider: {id: ~}"),
		"{a: 1, a: 2}\n",
		"? [a, b]\n: c\n",
	)
	return seeds
}

func FuzzLoadTenant(f *testing.F) {
	env, err := loadFuzzEnv()
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range fuzzSeeds(env) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		file := fuzzPath(data)
		fsys := fstest.MapFS{file: {Data: []byte(data), Mode: 0o644}}
		for p, b := range env.files {
			fsys[p] = &fstest.MapFile{Data: b, Mode: 0o644}
		}
		r, err := LoadFS(fsys, "fuzz", LoadOptions{})
		if err != nil {
			t.Fatalf("LoadFS: %v", err)
		}
		checkFuzzRepo(t, r, file, data, env)
		r.Decrypt(env.ids)
		checkFuzzRepo(t, r, file, data, env)
		// A tenant is held exactly when its file has errors (the example's apps and
		// workers are valid): never held without being reported.
		tn := r.Tenants[0]
		if held, errs := r.Held(tn), r.TenantProblems(tn).HasErrors(); held != errs {
			if tn.Spec.Worker == "" {
			}
			t.Fatalf("Held = %v, but the file's errors are %v", held, r.TenantProblems(tn).Errors())
		}
	})
}

func checkFuzzRepo(t *testing.T, r *Repo, file, data string, env *fuzzEnv) {
	t.Helper()
	for _, p := range r.Problems {
		if p.File == "" || p.Line < 0 || p.Col < 0 {
			t.Fatalf("bad problem position: %#v", p)
		}
		if p.File != file {
			t.Fatalf("a problem about another file (the example's apps and workers are valid): %s", p)
		}
		if p.Line > strings.Count(data, "\n")+2 {
			t.Fatalf("problem beyond the end of the file: %s", p)
		}
		switch p.Severity {
		case Error, Warning, Note:
		default:
			t.Fatalf("bad severity: %#v", p)
		}
		for _, v := range env.plainSet {
			if strings.Contains(p.String(), v) {
				t.Fatalf("a problem leaks a decrypted secret of the example: %s", p)
			}
		}
	}
	assertSorted(t, r.Problems)
	if _, err := json.Marshal(r.Problems); err != nil {
		t.Fatal(err)
	}
	if len(r.Tenants) != 1 {
		t.Fatalf("%d tenants from one file", len(r.Tenants))
	}
	tn := r.Tenants[0]
	if tn.Source == nil || tn.Source.File != file || tn.Metadata.Name == "" || tn.Metadata.App == "" {
		t.Fatalf("tenant %+v from %s", tn.Metadata, file)
	}
	if r.Usable() != nil {
		t.Fatalf("a tenant file made the repository unusable: %v", r.Usable())
	}
	if canaryIsSecretValue(data) {
		for _, p := range r.Problems {
			if strings.Contains(p.String(), canary) {
				t.Fatalf("a problem leaks a secret value: %s", p)
			}
		}
	}
}

// canaryIsSecretValue reports whether the input holds the canary once, inside a value of
// its secrets: map. Anywhere else (a key, a field) a problem may quote it.
func canaryIsSecretValue(data string) bool {
	if strings.Count(data, canary) != 1 {
		return false
	}
	var doc struct {
		Secrets map[string]any `yaml:"secrets"`
	}
	if err := yaml.Unmarshal([]byte(data), &doc); err != nil {
		return false
	}
	var holds func(v any) bool
	holds = func(v any) bool {
		switch v := v.(type) {
		case string:
			return strings.Contains(v, canary)
		case []any:
			return slices.ContainsFunc(v, holds)
		case map[string]any:
			for _, x := range v {
				if holds(x) {
					return true
				}
			}
		}
		return false
	}
	for _, v := range doc.Secrets {
		if holds(v) {
			return true
		}
	}
	return false
}

// TestFuzzSeedsExercise: the seeds cover what the fuzz target checks: valid examples
// load clean, and the canary is planted as a secret value.
func TestFuzzSeedsExercise(t *testing.T) {
	env, err := loadFuzzEnv()
	if err != nil {
		t.Fatal(err)
	}
	if len(env.plainSet) < 5 {
		t.Errorf("%d decrypted example secrets", len(env.plainSet))
	}
	clean, planted := 0, 0
	for _, s := range fuzzSeeds(env) {
		if canaryIsSecretValue(s) {
			planted++
		}
		fsys := fstest.MapFS{fuzzPath(s): {Data: []byte(s)}}
		for p, b := range env.files {
			fsys[p] = &fstest.MapFile{Data: b}
		}
		r, err := LoadFS(fsys, "fuzz", LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !r.Problems.HasErrors() {
			clean++
		}
	}
	if clean < len(env.tenants) || planted < 8 {
		t.Errorf("%d seeds load clean (want at least the %d examples), %d plant the canary as a secret", clean, len(env.tenants), planted)
	}
}
