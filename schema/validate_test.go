package schema

import (
	"slices"
	"strings"
	"testing"

	"github.com/firemountain/hermes-gitops/bundles"
)

const knownProviders = "anthropic, anthropic-oauth, openai, openai-api, openai-codex, openrouter"

// validationCase is one rule: a repository (the defaults of repoFS plus files) and every
// error and warning its load must report, exactly and in order. Notes are compared only
// when notes is set.
type validationCase struct {
	name  string
	files map[string]string
	want  []string
	notes bool
	// bug, when set, describes a bug of the non-test code this row exposes; the row is
	// skipped until it is fixed (see the test report).
	bug string
}

// sopsBlock is a stand-in for the sops metadata of an encrypted file (loading does not
// decrypt).
var sopsBlock = []string{"sops:", "  version: 3.13.3"}

func withSops(lines ...string) []string { return append(lines, sopsBlock...) }

func tenantCases() []validationCase {
	F := adaPath
	return []validationCase{
		// The base tenant itself is valid.
		{name: "valid tenant", files: map[string]string{F: adaCodex()}, notes: true, want: []string{
			F + ":9:9: note: spec.provider.id: provider openai-codex signs in after the tenant is created: run 'hermesctl auth login ada'",
		}},

		// Strict decoding.
		{name: "unknown key with suggestion", files: map[string]string{F: ada("  wroker: local", "  provider:", "    id: openai-codex")}, want: []string{
			F + `:7:3: spec.wroker: unknown field "wroker"; did you mean "worker"?`,
		}},
		{name: "unknown key with suggestion, case only", files: map[string]string{F: strings.Replace(adaCodex(), "apiVersion:", "APIVersion:", 1)}, want: []string{
			F + `:1:1: APIVersion: unknown field "APIVersion"; did you mean "apiVersion"?`,
		}},
		{name: "unknown nested key with suggestion", files: map[string]string{F: adaCodex("  owner:", "    emial: ada@example.com")}, want: []string{
			F + `:11:5: spec.owner.emial: unknown field "emial"; did you mean "email"?`,
		}},
		{name: "unknown key, list of fields at top level", files: map[string]string{F: adaCodex("colour: blue")}, want: []string{
			F + `:10:1: colour: unknown field "colour" (fields allowed here: apiVersion, kind, metadata, secrets, sops, spec)`,
		}},
		{name: "unknown key, list of fields in a struct", files: map[string]string{F: adaCodex("  owner:", "    colour: blue")}, want: []string{
			F + `:11:5: spec.owner.colour: unknown field "colour" (fields allowed in spec.owner: email, name)`,
		}},
		{name: "string where a list is", files: map[string]string{F: adaCodex("  bundles: writing@0.1.0")}, want: []string{
			F + `:10:12: spec.bundles: expected a list, got a string`,
		}},
		{name: "number where a string is", files: map[string]string{F: adaCodex("  owner:", "    name: 42")}, want: []string{
			F + `:11:11: spec.owner.name: expected a string, got a number`,
		}},
		{name: "string where a boolean is", files: map[string]string{F: adaCodex("  toolsets:", `    terminal: "no"`)}, want: []string{
			F + `:11:15: spec.toolsets.terminal: expected true or false, got a string`,
		}},
		{name: "list where a mapping is", files: map[string]string{F: adaCodex("  owner: [ada]")}, want: []string{
			F + `:10:10: spec.owner: expected a mapping of fields, got a list`,
		}},
		{name: "string where a map is", files: map[string]string{F: adaCodex("  hermesConfig: verbose")}, want: []string{
			F + `:10:17: spec.hermesConfig: expected a mapping, got a string`,
		}},
		{name: "whole document is not a mapping", files: map[string]string{F: y("- apiVersion: hermes-gitops/v1")}, want: []string{
			F + `:1:1: expected a mapping of fields, got a list`,
		}},
		{name: "duplicate key", files: map[string]string{F: ada("  worker: local", "  worker: local", "  provider:", "    id: openai-codex")}, want: []string{
			F + `:8:3: spec.worker: duplicate key "worker" (first defined at line 7)`,
		}},
		{name: "duplicate secret key", files: map[string]string{F: adaProvider("anthropic", withSops("secrets:", "  ANTHROPIC_API_KEY: "+fakeENC, "  ANTHROPIC_API_KEY: "+canary)...)}, want: []string{
			F + `:12:3: secrets.ANTHROPIC_API_KEY: duplicate key "ANTHROPIC_API_KEY" (first defined at line 11)`,
		}},
		{name: "duplicate hermesConfig key", files: map[string]string{F: adaCodex("  hermesConfig:", "    display: 1", "    display: 2")}, want: []string{
			F + `:12:5: spec.hermesConfig.display: duplicate key "display" (first defined at line 11)`,
		}},
		{name: "duplicate nested hermesConfig key", files: map[string]string{F: adaCodex("  hermesConfig:", "    display:", "      compact: true", "      compact: false")}, want: []string{
			F + `:13:7: spec.hermesConfig.display.compact: duplicate key "compact"`,
		}},
		{name: "missing required field", files: map[string]string{F: ada("  worker: local")}, want: []string{
			F + `:7:3: spec: missing required field "provider"`,
		}},
		{name: "missing required metadata.name", files: map[string]string{F: y("apiVersion: hermes-gitops/v1", "kind: Tenant", "metadata:", "  app: spawn", "spec:", "  worker: local", "  provider:", "    id: openai-codex")}, want: []string{
			F + `:4:3: metadata: missing required field "name"`,
		}},
		{name: "missing required sections", files: map[string]string{F: y("apiVersion: hermes-gitops/v1", "kind: Tenant")}, want: []string{
			F + `:1:1: missing required field "metadata"`,
			F + `:1:1: missing required field "spec"`,
		}},

		// YAML itself.
		{name: "YAML syntax error (unterminated quote)", files: map[string]string{F: ada(`  worker: "local`, "  provider:", "    id: openai-codex")}, want: []string{
			F + `:7:1: invalid YAML: found unexpected end of stream`,
		}},
		{name: "YAML syntax error (unclosed flow list)", files: map[string]string{F: ada("  worker: [local", "  provider:", "    id: openai-codex")}, want: []string{
			F + `:7:1: invalid YAML: did not find expected ',' or ']'`,
		}},
		{name: "YAML syntax error (unclosed flow mapping)", files: map[string]string{F: ada("  worker: local", "  provider: {id: openai-codex", "  skills: []")}, want: []string{
			F + `:8:1: invalid YAML: did not find expected ',' or '}'`,
		}},
		{name: "YAML syntax error (anchor without a name)", files: map[string]string{F: ada("  worker: &", "  provider:", "    id: openai-codex")}, want: []string{
			F + `:7:1: invalid YAML: did not find expected alphabetic or numeric character`,
		}, bug: "decode.go yamlErrorLine adds 1 to every message starting with \"did not find expected\", but seven of them are scanner errors, which yaml.v3 already reports 1-based: reported at line 8"},
		{name: "YAML syntax error (undefined tag handle)", files: map[string]string{F: adaCodex("  skills: !e!x []")}, want: []string{
			F + `:10:1: invalid YAML: found undefined tag handle`,
		}, bug: "decode.go yamlErrorLine does not correct the 0-based line of the parser errors that do not start with \"did not find expected\": reported at line 9"},
		{name: "YAML syntax error (unknown escape)", files: map[string]string{F: adaCodex(`  owner: "a\qb"`)}, want: []string{
			F + `:10:1: invalid YAML: found unknown escape character`,
		}},
		{name: "YAML syntax error (tab)", files: map[string]string{F: "apiVersion: hermes-gitops/v1\nkind: Tenant\nmetadata:\n\tname: ada\n"}, want: []string{
			F + `:4:1: invalid YAML: found character that cannot start any token`,
		}},
		{name: "empty file", files: map[string]string{F: ""}, want: []string{
			F + `:1:1: the file is empty`,
		}},
		{name: "file of comments only", files: map[string]string{F: "# nothing yet\n"}, want: []string{
			F + `:1:1: the file is empty`,
		}},
		{name: "two YAML documents", files: map[string]string{F: adaCodex("---", "apiVersion: hermes-gitops/v1")}, want: []string{
			F + `:10:1: a file holds exactly one YAML document; remove the extra '---' document`,
		}},

		// Header.
		{name: "wrong apiVersion", files: map[string]string{F: strings.Replace(adaCodex(), "hermes-gitops/v1", "hermes-gitops/v2", 1)}, want: []string{
			F + `:1:13: apiVersion: unsupported apiVersion "hermes-gitops/v2"; this hermesctl reads "hermes-gitops/v1"`,
		}},
		{name: "wrong kind for the directory", files: map[string]string{F: strings.Replace(adaCodex(), "kind: Tenant", "kind: App", 1)}, want: []string{
			F + `:2:7: kind: a file under tenants/ must be of kind Tenant, not "App"`,
		}},

		// Identity.
		{name: "tenant id pattern", files: map[string]string{"tenants/spawn/Ada_1.yaml": tenantFile("spawn", "Ada_1", codexSpec...)}, want: []string{
			`tenants/spawn/Ada_1.yaml:4:9: metadata.name: tenant id "Ada_1" must be 3-40 lowercase letters, digits or dashes, starting and ending with a letter or digit`,
		}},
		{name: "tenant id too short", files: map[string]string{"tenants/spawn/ab.yaml": tenantFile("spawn", "ab", codexSpec...)}, want: []string{
			`tenants/spawn/ab.yaml:4:9: metadata.name: tenant id "ab" must be 3-40 lowercase letters, digits or dashes, starting and ending with a letter or digit`,
		}},
		{name: "tenant id ends with a dash", files: map[string]string{"tenants/spawn/ada-.yaml": tenantFile("spawn", "ada-", codexSpec...)}, want: []string{
			`tenants/spawn/ada-.yaml:4:9: metadata.name: tenant id "ada-" must be 3-40 lowercase letters, digits or dashes, starting and ending with a letter or digit`,
		}},
		{name: "tenant id differs from the file name", files: map[string]string{F: tenantFile("spawn", "bob", codexSpec...)}, want: []string{
			F + `:4:9: metadata.name: tenant id "bob" must equal the file name "ada"`,
		}},
		{name: "app differs from the directory", files: map[string]string{F: tenantFile("astral", "ada", codexSpec...)}, want: []string{
			F + `:5:8: metadata.app: app "astral" does not match the directory tenants/spawn/`,
		}},
		{name: "unknown app", files: map[string]string{F: tenantFile("nope", "ada", codexSpec...)}, want: []string{
			F + `:5:8: metadata.app: unknown app "nope"; apps: astral, spawn`,
		}},
		{name: "unknown worker", files: map[string]string{F: ada("  worker: far", "  provider:", "    id: openai-codex")}, want: []string{
			F + `:7:11: spec.worker: unknown worker "far"; workers: local`,
		}},
		{name: "duplicate tenant id across apps", files: map[string]string{
			F:                         adaCodex(),
			"tenants/astral/ada.yaml": tenantFile("astral", "ada", codexSpec...),
		}, want: []string{
			`tenants/astral/ada.yaml:4:9: metadata.name: tenant id "ada" is also used by tenants/spawn/ada.yaml; tenant ids are unique across apps`,
			F + `:4:9: metadata.name: tenant id "ada" is also used by tenants/astral/ada.yaml; tenant ids are unique across apps`,
		}},
		{name: "file directly in tenants/", files: map[string]string{"tenants/ada.yaml": adaCodex()}, want: []string{
			`tenants/ada.yaml:1:1: tenant files live in tenants/<app>/<id>.yaml; move this file into its app's directory`,
		}},

		// Provider.
		{name: "unknown provider", files: map[string]string{F: adaProvider("gemini")}, want: []string{
			F + `:9:9: spec.provider.id: unknown provider "gemini"; known: ` + knownProviders,
		}},
		{name: "provider not allowed for the app", files: map[string]string{F: adaProvider("openai", withSops("secrets:", "  OPENAI_API_KEY: "+fakeENC)...)}, want: []string{
			F + `:9:9: spec.provider.id: provider "openai" is not allowed for app spawn (allowed: anthropic, anthropic-oauth, openai-api, openai-codex, openrouter)`,
		}},
		{name: "anthropic without its key", files: map[string]string{F: adaProvider("anthropic")}, want: []string{
			F + `:1:1: secrets: provider anthropic needs secrets.ANTHROPIC_API_KEY`,
		}},
		{name: "anthropic with another key only", files: map[string]string{F: adaProvider("anthropic", withSops("secrets:", "  OPENAI_API_KEY: "+fakeENC)...)}, want: []string{
			F + `:10:1: secrets: provider anthropic needs secrets.ANTHROPIC_API_KEY`,
		}},
		{name: "openai without its key", files: map[string]string{"tenants/astral/ada.yaml": tenantFile("astral", "ada", "  worker: local", "  provider:", "    id: openai")}, want: []string{
			`tenants/astral/ada.yaml:1:1: secrets: provider openai needs secrets.OPENAI_API_KEY`,
		}},
		{name: "openai-api without its key", files: map[string]string{F: adaProvider("openai-api")}, want: []string{
			F + `:1:1: secrets: provider openai-api needs secrets.OPENAI_API_KEY`,
		}},
		{name: "openrouter without its key", files: map[string]string{F: adaProvider("openrouter")}, want: []string{
			F + `:1:1: secrets: provider openrouter needs secrets.OPENROUTER_API_KEY`,
		}},
		{name: "API-key provider with its key", files: map[string]string{F: adaProvider("openrouter", withSops("secrets:", "  OPENROUTER_API_KEY: "+fakeENC)...)}, notes: true, want: []string{}},
		{name: "openai-codex signs in later", files: map[string]string{F: adaProvider("openai-codex")}, notes: true, want: []string{
			F + `:9:9: note: spec.provider.id: provider openai-codex signs in after the tenant is created: run 'hermesctl auth login ada'`,
		}},
		{name: "anthropic-oauth signs in later", files: map[string]string{F: adaProvider("anthropic-oauth")}, notes: true, want: []string{
			F + `:9:9: note: spec.provider.id: provider anthropic-oauth signs in after the tenant is created: run 'hermesctl auth login ada'`,
		}},

		// Telegram.
		{name: "telegram users without a bot token", files: map[string]string{F: adaCodex("  telegram:", "    allowedUsers: [111111111]")}, want: []string{
			F + `:1:1: secrets: telegram.allowedUsers is set, so secrets.TELEGRAM_BOT_TOKEN is required`,
		}},
		{name: "non-positive telegram ids", files: map[string]string{F: adaCodex(withSops("  telegram:", "    allowedUsers:", "      - 0", "      - -5", "      - 7", "secrets:", "  TELEGRAM_BOT_TOKEN: "+fakeENC)...)}, want: []string{
			F + `:12:9: spec.telegram.allowedUsers[0]: Telegram user ids are positive numbers`,
			F + `:13:9: spec.telegram.allowedUsers[1]: Telegram user ids are positive numbers`,
		}},

		// Bundles and skills.
		{name: "unknown bundle", files: map[string]string{F: adaCodex("  bundles: [nope@1.0.0]")}, want: []string{
			F + `:10:13: spec.bundles[0]: unknown bundle "nope" in the bundle catalogue`,
		}},
		{name: "unpublished bundle version", files: map[string]string{F: adaCodex("  bundles: [astral-core@0.3.0]")}, want: []string{
			F + `:10:13: spec.bundles[0]: bundle astral-core has no published version 0.3.0 (published: 0.1.0, 0.2.0)`,
		}},
		{name: "bundle pinned twice", files: map[string]string{F: adaCodex("  bundles: [writing@0.1.0, writing@0.1.0]")}, want: []string{
			F + `:10:28: spec.bundles[1]: bundle writing is pinned twice (also at spec.bundles[0]); pin one version`,
		}},
		{name: "bundle ref without version", files: map[string]string{F: adaCodex("  bundles: [writing]")}, want: []string{
			F + `:10:13: spec.bundles[0]: reference "writing": missing "@version" (want name@version, e.g. astral-core@0.2.0)`,
		}},
		{name: "bundle ref with a v", files: map[string]string{F: adaCodex("  bundles:", "    - writing@v0.1.0")}, want: []string{
			F + `:11:7: spec.bundles[0]: reference "writing@v0.1.0": bad version "v0.1.0": drop the leading "v": versions are written 1.2.3, not v1.2.3`,
		}},
		{name: "unknown skill", files: map[string]string{F: adaCodex("  skills: [nope]")}, want: []string{
			F + `:10:12: spec.skills[0]: unknown skill "nope" in the bundle catalogue (known: daily-brief, kb-capture, meeting-notes, pdf-digest)`,
		}},
		{name: "unknown skill version", files: map[string]string{F: adaCodex("  skills: [daily-brief@9.9.9]")}, want: []string{
			F + `:10:12: spec.skills[0]: unknown skill "daily-brief@9.9.9" in the bundle catalogue (known: daily-brief, kb-capture, meeting-notes, pdf-digest)`,
		}},
		{name: "known skills", files: map[string]string{F: adaCodex("  skills: [daily-brief, kb-capture@1.0.0]")}, want: []string{}},
		{name: "bundle needs terminal, which is off", files: map[string]string{F: adaCodex("  bundles: [research@0.1.0]", "  toolsets:", "    terminal: false")}, want: []string{
			F + `:10:12: spec.bundles: bundle research@0.1.0 needs the terminal toolset, but spec.toolsets.terminal is false`,
		}},
		{name: "default bundle of the app needs terminal, which is off", files: map[string]string{"tenants/astral/ada.yaml": tenantFile("astral", "ada", append(slices.Clone(codexSpec), "  toolsets:", "    terminal: false")...)}, want: []string{
			`tenants/astral/ada.yaml:6:1: spec.bundles: bundle astral-core@0.2.0 (a default bundle of app astral) needs the terminal toolset, but spec.toolsets.terminal is false`,
		}},
		{name: "no bundles needs no terminal", files: map[string]string{"tenants/astral/ada.yaml": tenantFile("astral", "ada", append(slices.Clone(codexSpec), "  bundles: []", "  toolsets:", "    terminal: false")...)}, want: []string{}},
		{name: "bundle needs a disabled toolset", files: map[string]string{F: adaCodex("  bundles: [research@0.1.0]", "  toolsets:", "    disable: [web]")}, want: []string{
			F + `:10:12: spec.bundles: bundle research@0.1.0 needs the web toolset, which spec.toolsets.disable turns off`,
		}},
		{name: "skill needs terminal, which is off", files: map[string]string{F: adaCodex("  skills: [kb-capture]", "  toolsets:", "    terminal: false")}, want: []string{
			F + `:10:12: spec.skills[0]: skill kb-capture@1.0.0 needs the terminal toolset, but spec.toolsets.terminal is false`,
		}},
		{name: "bundle needs an env var the app does not bake", files: map[string]string{F: adaCodex("  bundles: [astral-core@0.2.0]")}, want: []string{
			F + `:10:12: spec.bundles: bundle astral-core@0.2.0 needs ASTRAL_KB_ROOT in the container's process environment; bake it into app spawn (spec.env) — .env alone is not enough, skills do not read it`,
		}},
		{name: "bundle needs a process secret the tenant lacks", files: map[string]string{
			"apps/spawn.yaml": appFile("spawn", append(slices.Clone(spawnSpec), "  processSecrets: [ASTRAL_KB_ROOT]")...),
			F:                 adaCodex("  bundles: [astral-core@0.2.0]"),
		}, want: []string{
			F + `:10:12: spec.bundles: bundle astral-core@0.2.0 needs ASTRAL_KB_ROOT, a process secret of app spawn: add secrets.ASTRAL_KB_ROOT`,
		}},
		{name: "bundle process secret present", files: map[string]string{
			"apps/spawn.yaml": appFile("spawn", append(slices.Clone(spawnSpec), "  processSecrets: [ASTRAL_KB_ROOT]")...),
			F:                 adaCodex(withSops("  bundles: [astral-core@0.2.0]", "secrets:", "  ASTRAL_KB_ROOT: "+fakeENC)...),
		}, want: []string{}},

		// Secrets.
		{name: "plaintext secrets (no sops block)", files: map[string]string{F: adaProvider("anthropic", "secrets:", "  ANTHROPIC_API_KEY: "+canary)}, want: []string{
			F + `:10:1: secrets: secrets are not encrypted: run 'hermesctl secrets encrypt tenants/spawn/ada.yaml' (or 'sops -e -i') before committing; a plaintext secret must never be committed`,
		}},
		{name: "plaintext value in a sops file", files: map[string]string{F: adaProvider("anthropic", withSops("secrets:", "  ANTHROPIC_API_KEY: "+fakeENC, "  TELEGRAM_BOT_TOKEN: "+canary)...)}, want: []string{
			F + `:12:23: secrets.TELEGRAM_BOT_TOKEN: value is not encrypted by sops: edit secrets with 'sops edit tenants/spawn/ada.yaml', never by hand`,
		}},
		{name: "malformed ENC value in a sops file", files: map[string]string{F: adaProvider("anthropic", withSops("secrets:", "  ANTHROPIC_API_KEY: ENC[AES256_GCM,data:"+canary+"]")...)}, want: []string{
			F + `:11:22: secrets.ANTHROPIC_API_KEY: value is not encrypted by sops: edit secrets with 'sops edit tenants/spawn/ada.yaml', never by hand`,
		}},
		{name: "secret that is not a string", files: map[string]string{F: adaProvider("anthropic", withSops("secrets:", "  ANTHROPIC_API_KEY: [\""+canary+"\"]")...)}, want: []string{
			F + `:11:22: secrets.ANTHROPIC_API_KEY: expected a string, got a list`,
			F + `:11:22: secrets.ANTHROPIC_API_KEY: value is not encrypted by sops: edit secrets with 'sops edit tenants/spawn/ada.yaml', never by hand`,
		}},
		{name: "secrets not a mapping", files: map[string]string{F: adaProvider("anthropic", withSops("secrets: ANTHROPIC_API_KEY="+canary)...)}, want: []string{
			F + `:10:10: secrets: expected a mapping, got a string`,
			F + `:10:10: secrets: provider anthropic needs secrets.ANTHROPIC_API_KEY`,
			F + `:11:1: warning: sops: sops metadata without secrets: nothing is encrypted`,
		}},
		{name: "secret key not an env name", files: map[string]string{F: adaCodex(withSops("secrets:", "  openai_key: "+fakeENC)...)}, want: []string{
			F + `:11:15: secrets.openai_key: "openai_key" is not an environment variable name (A-Z, 0-9, _)`,
		}},
		{name: "sops block without secrets", files: map[string]string{F: adaCodex(sopsBlock...)}, want: []string{
			F + `:10:1: warning: sops: sops metadata without secrets: nothing is encrypted`,
		}},

		// hermesConfig.
		{name: "hermesConfig sets model", files: map[string]string{F: adaCodex("  hermesConfig:", "    model:", "      default: gpt-5", "    display:", "      compact: true")}, want: []string{
			F + `:11:5: spec.hermesConfig.model: config key "model" is managed from spec.provider; set it there`,
		}},
		{name: "hermesConfig sets platform_toolsets and web", files: map[string]string{F: adaCodex("  hermesConfig:", "    platform_toolsets: [web]", "    web: {backend: exa}")}, want: []string{
			F + `:11:24: spec.hermesConfig.platform_toolsets: config key "platform_toolsets" is managed from spec.toolsets; set it there`,
			F + `:12:10: spec.hermesConfig.web: config key "web" is managed from spec.web; set it there`,
		}},

		// Resources, storage, state, owner, web, toolsets.
		{name: "bad memory", files: map[string]string{F: adaCodex("  resources:", "    memory: 1GB")}, want: []string{
			F + `:11:13: spec.resources.memory: "1GB" is not a Docker memory size (e.g. 512m, 1g)`,
		}},
		{name: "zero quota", files: map[string]string{F: adaCodex("  storage:", "    s3:", "      quota: 0Gi")}, want: []string{
			F + `:12:14: spec.storage.s3.quota: "0Gi" is not a positive size such as 5Gi or 500Mi`,
		}},
		{name: "bad quota unit", files: map[string]string{F: adaCodex("  storage:", "    s3:", "      quota: 5GB")}, want: []string{
			F + `:12:14: spec.storage.s3.quota: "5GB" is not a positive size such as 5Gi or 500Mi`,
		}},
		{name: "bad state", files: map[string]string{F: adaCodex("  state: paused")}, want: []string{
			F + `:10:10: spec.state: must be active, suspended or deleted, not "paused"`,
		}},
		{name: "bad owner email", files: map[string]string{F: adaCodex("  owner:", "    email: ada.example.com")}, want: []string{
			F + `:11:12: spec.owner.email: "ada.example.com" is not an email address`,
		}},
		{name: "unknown web backend", files: map[string]string{F: adaCodex("  web:", "    backend: bing")}, want: []string{
			F + `:11:14: spec.web.backend: unknown web backend "bing"; known: exa, firecrawl, parallel, tavily`,
		}},
		{name: "web backend without its key", files: map[string]string{F: adaCodex("  web:", "    backend: tavily")}, want: []string{
			F + `:11:14: warning: spec.web.backend: web backend tavily has no secrets.TAVILY_API_KEY: web tools will fail`,
		}},
		{name: "terminal in toolsets.enable", files: map[string]string{F: adaCodex("  toolsets:", "    enable: [browser, terminal]")}, want: []string{
			F + `:11:23: spec.toolsets.enable[1]: switch the terminal toolset with toolsets.terminal: true|false`,
		}},
		{name: "bad toolset name", files: map[string]string{F: adaCodex("  toolsets:", "    disable: [Memory]")}, want: []string{
			F + `:11:15: spec.toolsets.disable[0]: "Memory" is not a toolset name`,
		}},
	}
}

func appWorkerCases() []validationCase {
	A, W := "apps/spawn.yaml", "workers/local.yaml"
	spawn := func(more ...string) map[string]string {
		return map[string]string{A: appFile("spawn", append(slices.Clone(spawnSpec), more...)...)}
	}
	return []validationCase{
		{name: "app: bad user", files: spawn("  user: root"), want: []string{
			A + `:10:9: spec.user: must be numeric uid:gid, e.g. 10000:10000`,
		}},
		{name: "app: unknown provider", files: map[string]string{A: appFile("spawn", spawnSpec[0], spawnSpec[1], spawnSpec[2], "  providers: [anthropic, gemini]")}, want: []string{
			A + `:9:26: spec.providers[1]: unknown provider "gemini"; known: ` + knownProviders,
		}},
		{name: "app: env name", files: spawn("  env:", "    kb_root: /x"), want: []string{
			A + `:11:14: spec.env.kb_root: "kb_root" is not an environment variable name (A-Z, 0-9, _)`,
		}},
		{name: "app: process secret name", files: spawn("  processSecrets: [kb-key]"), want: []string{
			A + `:10:20: spec.processSecrets[0]: "kb-key" is not an environment variable name`,
		}},
		{name: "app: bad memory", files: spawn("  memory: 1GB"), want: []string{
			A + `:10:11: spec.memory: "1GB" is not a Docker memory size (e.g. 512m, 1g)`,
		}},
		{name: "app: bad restart policy", files: spawn("  restartPolicy: sometimes"), want: []string{
			A + `:10:18: spec.restartPolicy: must be one of no, always, unless-stopped, on-failure`,
		}},
		{name: "app: negative pids limit", files: spawn("  pidsLimit: -1"), want: []string{
			A + `:10:14: spec.pidsLimit: must be positive`,
		}},
		{name: "app: relative mount path", files: spawn("  mountPath: data/hermes"), want: []string{
			A + `:10:14: spec.mountPath: must be an absolute path in the container`,
		}},
		{name: "app: bad container prefix", files: map[string]string{A: appFile("spawn", "  containerPrefix: -bad", spawnSpec[1], spawnSpec[2], spawnSpec[3])}, want: []string{
			A + `:6:20: spec.containerPrefix: "-bad" is not a valid container name prefix (letters, digits, _ . -)`,
		}},
		{name: "app: unknown default bundle", files: spawn("  defaultBundles: [nope@1.0.0]"), want: []string{
			A + `:10:20: spec.defaultBundles[0]: unknown bundle "nope" in the bundle catalogue`,
		}},
		{name: "app: name differs from the file name", files: map[string]string{A: appFile("spawnx", spawnSpec...)}, want: []string{
			A + `:4:9: metadata.name: app name "spawnx" must equal the file name "spawn"`,
		}},
		{name: "app: missing image", files: map[string]string{A: appFile("spawn", spawnSpec[0], spawnSpec[2], spawnSpec[3])}, want: []string{
			A + `:6:3: spec: missing required field "image"`,
		}},
		{name: "app: wrong kind", files: map[string]string{A: strings.Replace(appSpawnText, "kind: App", "kind: Worker", 1)}, want: []string{
			A + `:2:7: kind: a file under apps/ must be of kind App, not "Worker"`,
		}},
		{name: "worker: ssh without host key", files: map[string]string{"workers/edge.yaml": workerFile("edge", "  host: 10.0.0.1", "  user: deploy", "  tenantRoot: /srv")}, want: []string{
			`workers/edge.yaml:5:1: spec: an ssh worker needs hostKey or knownHostsFile: host keys are always verified`,
		}},
		{name: "worker: ssh without host and user", files: map[string]string{"workers/edge.yaml": workerFile("edge", "  transport: ssh", "  hostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl", "  tenantRoot: /srv")}, want: []string{
			`workers/edge.yaml:5:1: spec: an ssh worker needs host`,
			`workers/edge.yaml:5:1: spec: an ssh worker needs user`,
		}},
		{name: "worker: ssh with a known_hosts file", files: map[string]string{"workers/edge.yaml": workerFile("edge", "  host: 10.0.0.1", "  user: deploy", "  knownHostsFile: known_hosts", "  tenantRoot: /srv")}, want: []string{}},
		{name: "worker: relative tenantRoot", files: map[string]string{W: workerFile("local", "  transport: local", "  tenantRoot: srv/hermes")}, want: []string{
			W + `:7:15: spec.tenantRoot: must be an absolute path on the worker`,
		}},
		{name: "worker: relative agentDir", files: map[string]string{W: workerFile("local", "  transport: local", "  tenantRoot: /srv", "  agentDir: bin")}, want: []string{
			W + `:8:13: spec.agentDir: must be an absolute path on the worker`,
		}},
		{name: "worker: bad transport", files: map[string]string{W: workerFile("local", "  transport: telnet", "  tenantRoot: /srv")}, want: []string{
			W + `:6:14: spec.transport: must be ssh or local, not "telnet"`,
		}},
		{name: "worker: port out of range", files: map[string]string{W: workerFile("local", "  transport: local", "  port: 70000", "  tenantRoot: /srv")}, want: []string{
			W + `:7:9: spec.port: must be between 1 and 65535`,
		}},
		{name: "worker: name differs from the file name", files: map[string]string{W: workerFile("edge", "  transport: local", "  tenantRoot: /srv")}, want: []string{
			W + `:4:9: metadata.name: worker name "edge" must equal the file name "local"`,
		}},
		{name: "worker: missing tenantRoot", files: map[string]string{W: workerFile("local", "  transport: local")}, want: []string{
			W + `:6:3: spec: missing required field "tenantRoot"`,
		}},
		{name: "repo: no apps", files: map[string]string{"apps/astral.yaml": absent, "apps/spawn.yaml": absent}, want: []string{
			`apps: no app profiles (apps/<name>.yaml)`,
		}},
		{name: "repo: no workers", files: map[string]string{W: absent}, want: []string{
			`workers: no workers (workers/<name>.yaml)`,
		}},
		{name: "repo: no tenants directory", files: map[string]string{"tenants": absent}, want: []string{
			`tenants: no tenants directory: a desired-state repository has tenants/<app>/<id>.yaml files`,
		}},
		{name: "repo: problems of several files, sorted by file, line and column", files: map[string]string{
			A:                         appFile("spawn", append(slices.Clone(spawnSpec), "  user: root", "  memory: lots")...),
			W:                         workerFile("local", "  transport: local", "  tenantRoot: srv"),
			"tenants/astral/zed.yaml": tenantFile("astral", "zed", "  worker: far", "  provider:", "    id: openai-codex", "  state: gone"),
			adaPath:                   adaCodex("  resources:", "    memory: 1GB", "  bundles: [nope@1.0.0]"),
		}, want: []string{
			A + `:10:9: spec.user: must be numeric uid:gid, e.g. 10000:10000`,
			A + `:11:11: spec.memory: "lots" is not a Docker memory size (e.g. 512m, 1g)`,
			`tenants/astral/zed.yaml:7:11: spec.worker: unknown worker "far"; workers: local`,
			`tenants/astral/zed.yaml:10:10: spec.state: must be active, suspended or deleted, not "gone"`,
			adaPath + `:11:13: spec.resources.memory: "1GB" is not a Docker memory size (e.g. 512m, 1g)`,
			adaPath + `:12:13: spec.bundles[0]: unknown bundle "nope" in the bundle catalogue`,
			W + `:7:15: spec.tenantRoot: must be an absolute path on the worker`,
		}},
	}
}

func runValidationCases(t *testing.T, cases []validationCase) {
	t.Helper()
	seen := map[string]bool{}
	for _, tc := range cases {
		if seen[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := loadFiles(t, tc.files)
			got := strs(r.Problems, tc.notes)
			want := tc.want
			if want == nil {
				want = []string{}
			}
			if !slices.Equal(got, want) {
				t.Errorf("problems differ\n%s", diffLines(want, got))
			}
			assertSorted(t, r.Problems)
			assertNoLeak(t, r.Problems)
			for _, p := range r.Problems {
				if p.File == "" {
					t.Errorf("problem without a file: %#v", p)
				}
			}
		})
	}
}

// TestValidateTenant has one row per rule of a tenant file.
func TestValidateTenant(t *testing.T) { runValidationCases(t, tenantCases()) }

// TestValidateAppWorkerRepo has one row per rule of app profiles, workers and the
// repository layout.
func TestValidateAppWorkerRepo(t *testing.T) { runValidationCases(t, appWorkerCases()) }

// TestCatalogueAssumptions pins what the rows above assume of the built-in catalogue, so
// that a catalogue change shows up here rather than as puzzling row failures.
func TestCatalogueAssumptions(t *testing.T) {
	cat, err := bundles.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ref            string
		toolsets, envs []string
	}{
		{"astral-core@0.2.0", []string{"terminal"}, []string{"ASTRAL_KB_ROOT"}},
		{"astral-core@0.1.0", []string{"terminal"}, []string{"ASTRAL_KB_ROOT"}},
		{"astral-hd@0.2.0", []string{"terminal"}, nil},
		{"research@0.1.0", []string{"web", "terminal"}, nil},
		{"writing@0.1.0", nil, nil},
	} {
		ref, err := bundles.ParseRef(c.ref)
		if err != nil {
			t.Fatal(err)
		}
		b, ok := cat.Bundle(ref.Name, ref.Version)
		if !ok {
			t.Errorf("%s is not in the built-in catalogue", c.ref)
			continue
		}
		if !slices.Equal(b.RequiresToolsets, c.toolsets) && !(len(b.RequiresToolsets) == 0 && len(c.toolsets) == 0) {
			t.Errorf("%s requires toolsets %q, the tests assume %q", c.ref, b.RequiresToolsets, c.toolsets)
		}
		if !slices.Equal(b.RequiresEnv, c.envs) && !(len(b.RequiresEnv) == 0 && len(c.envs) == 0) {
			t.Errorf("%s requires env %q, the tests assume %q", c.ref, b.RequiresEnv, c.envs)
		}
	}
	if got := cat.Versions("astral-core"); !slices.Equal(got, []string{"0.1.0", "0.2.0"}) {
		t.Errorf("astral-core versions = %q", got)
	}
	sk, ok := cat.Skill("kb-capture", "")
	if !ok || !slices.Contains(sk.RequiresToolsets, "terminal") {
		t.Errorf("kb-capture should be an à-la-carte skill needing terminal: %+v", sk)
	}
	var names []string
	for _, s := range cat.Skills() {
		if !slices.Contains(names, s.Name) {
			names = append(names, s.Name)
		}
	}
	if want := []string{"daily-brief", "kb-capture", "meeting-notes", "pdf-digest"}; !slices.Equal(names, want) {
		t.Errorf("à-la-carte skills = %q, the tests assume %q", names, want)
	}
}

// TestValidateAppWorkerNamePattern: app and worker names are declared (NameMeta's
// pattern, in the JSON Schema) as lowercase letters, digits and dashes.
func TestValidateAppWorkerNamePattern(t *testing.T) {
	r := loadFiles(t, map[string]string{
		"apps/Spawn_2.yaml":   appFile("Spawn_2", spawnSpec...),
		"workers/Edge 1.yaml": workerFile("Edge 1", "  transport: local", "  tenantRoot: /srv"),
	})
	for _, f := range []string{"apps/Spawn_2.yaml", "workers/Edge 1.yaml"} {
		if !r.fileHasErrors(f) {
			t.Errorf("%s loads without an error; problems:\n%s", f, r.Problems)
		}
	}
}

// A tenant root ends up in `docker run --mount type=bind,source=…`, a comma-separated
// list: a comma or quote in it must be refused, not passed on.
func TestValidateMountablePaths(t *testing.T) {
	r := loadFiles(t, map[string]string{
		"workers/odd.yaml": workerFile("odd", "  transport: local", "  tenantRoot: /srv/a,readonly=false"),
	})
	want := `workers/odd.yaml:7:15: spec.tenantRoot: a path given to docker --mount cannot contain a comma, a quote or a newline`
	found := false
	for _, p := range r.Problems {
		if p.String() == want {
			found = true
		}
	}
	if !found {
		t.Fatalf("want %q in:\n%s", want, r.Problems)
	}
}
