package live

import (
	"fmt"
	"slices"
)

// AuthStatus classifies the auth.json of an OAuth tenant for one provider key. The rule is
// shared by the planner, drift and the auth commands:
// Hermes reads OAuth credentials from two places, credential_pool.<key> (`hermes auth
// list`, status probes) and providers.<key>.tokens with active_provider = <key> (the
// gateway, cron and model calls: the runtime shape). Both must be there.
type AuthStatus string

// Auth statuses, from the worst.
const (
	// AuthAwaitingLogin: no auth.json, an unreadable one, or neither shape: log in.
	AuthAwaitingLogin AuthStatus = "awaiting login"
	// AuthDualWriteGap: the credential is in credential_pool but providers.<key> has no
	// tokens (the control planes' pitfall 2): `hermesctl auth repair` completes it.
	AuthDualWriteGap AuthStatus = "dual-write gap"
	// AuthActiveWrong: providers.<key> has tokens but active_provider names another
	// provider: `hermesctl auth repair` sets it.
	AuthActiveWrong AuthStatus = "active provider wrong"
	// AuthComplete: providers.<key> with tokens and active_provider = <key>.
	AuthComplete AuthStatus = "complete"
)

// CheckAuth classifies an auth.json shape (nil: no auth.json) for provider key and says
// what is missing, in words that name keys and never values.
//
// A provider whose runtime credential lives in a file of its own (anthropic-oauth:
// .anthropic_oauth.json) is complete with its credential_pool entry and that file, one of
// files (the home's AuthFiles).
func CheckAuth(a *AuthShape, key string, files []string, authFile string) (AuthStatus, string) {
	if authFile != "" && a != nil && a.Valid && a.Pool[key] > 0 {
		if slices.Contains(files, authFile) || slices.Contains(a.Providers, key) {
			return AuthComplete, ""
		}
		return AuthAwaitingLogin, fmt.Sprintf("credential_pool[%q] has an entry but %s is missing", key, authFile)
	}
	switch {
	case a == nil:
		return AuthAwaitingLogin, "no auth.json"
	case !a.Valid:
		return AuthAwaitingLogin, "auth.json is not valid JSON"
	}
	inPool := a.Pool[key] > 0
	runtime := slices.Contains(a.Providers, key)
	switch {
	case !inPool && !runtime:
		what := fmt.Sprintf("no credential_pool[%q] entry and no providers[%q] with tokens", key, key)
		if slices.Contains(a.ProvidersWithoutTokens, key) {
			what = fmt.Sprintf("no credential_pool[%q] entry, and providers[%q] has no tokens", key, key)
		}
		return AuthAwaitingLogin, what
	case !runtime:
		return AuthDualWriteGap, fmt.Sprintf("credential_pool[%q] has %d entr%s but providers[%q] has no tokens", key, a.Pool[key], plural(a.Pool[key], "y", "ies"), key)
	case a.ActiveProvider != key:
		return AuthActiveWrong, fmt.Sprintf("active_provider is %q, not %q", a.ActiveProvider, key)
	}
	return AuthComplete, ""
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
