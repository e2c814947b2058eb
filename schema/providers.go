package schema

import "sort"

// ProviderInfo is what hermes-gitops knows of one provider id: the secret it needs and how
// Hermes' config.yaml names it. It is the one provider table of the project (the control
// planes' providerConfig()).
type ProviderInfo struct {
	ID string
	// EnvKey is the secret the provider needs in .env; empty for OAuth providers.
	EnvKey string
	// HermesProvider, BaseURL and APIMode are Hermes' model.provider, model.base_url and
	// model.api_mode.
	HermesProvider string
	BaseURL        string
	APIMode        string
	DefaultModel   string
	// OAuth providers need a login after the tenant is created (hermesctl auth login).
	OAuth bool
	// AuthFile is a file Hermes reads besides auth.json for this provider, if any.
	AuthFile string
}

var providers = map[string]ProviderInfo{
	"openai": {ID: "openai", EnvKey: "OPENAI_API_KEY", HermesProvider: "custom",
		BaseURL: "https://api.openai.com/v1", APIMode: "chat_completions", DefaultModel: "gpt-4.1"},
	"openai-api": {ID: "openai-api", EnvKey: "OPENAI_API_KEY", HermesProvider: "custom",
		BaseURL: "https://api.openai.com/v1", APIMode: "chat_completions", DefaultModel: "gpt-4.1"},
	"openai-codex": {ID: "openai-codex", HermesProvider: "openai-codex", APIMode: "codex_responses",
		DefaultModel: "gpt-5-codex", OAuth: true},
	"anthropic": {ID: "anthropic", EnvKey: "ANTHROPIC_API_KEY", HermesProvider: "anthropic",
		APIMode: "anthropic_messages", DefaultModel: "claude-sonnet-4-5"},
	"anthropic-oauth": {ID: "anthropic-oauth", HermesProvider: "anthropic", APIMode: "anthropic_messages",
		DefaultModel: "claude-sonnet-4-5", OAuth: true, AuthFile: ".anthropic_oauth.json"},
	"openrouter": {ID: "openrouter", EnvKey: "OPENROUTER_API_KEY", HermesProvider: "openrouter",
		DefaultModel: "anthropic/claude-sonnet-4.5"},
}

// LookupProvider returns the table entry of a provider id.
func LookupProvider(id string) (ProviderInfo, bool) {
	p, ok := providers[id]
	return p, ok
}

// ProviderIDs lists every known provider id, sorted.
func ProviderIDs() []string {
	ids := make([]string, 0, len(providers))
	for id := range providers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// AuthKey is the key under which Hermes stores a provider's OAuth credential in
// auth.json (credential_pool and providers): anthropic-oauth is stored as anthropic.
func (p ProviderInfo) AuthKey() string { return p.HermesProvider }

// WebBackendKeys maps Hermes' web.backend values to the secret each needs.
var WebBackendKeys = map[string]string{
	"firecrawl": "FIRECRAWL_API_KEY",
	"parallel":  "PARALLEL_API_KEY",
	"tavily":    "TAVILY_API_KEY",
	"exa":       "EXA_API_KEY",
}

// Telegram secret and setting names in .env.
const (
	TelegramTokenKey        = "TELEGRAM_BOT_TOKEN"
	TelegramAllowedUsersKey = "TELEGRAM_ALLOWED_USERS"
)
