// Package agent is the worker side of hermes-gitops: a small program (standard library
// only) that hermesctl ships to each worker and talks to with one JSON request per round
// trip. It observes every tenant of the worker at once, and applies batches of atomic
// file writes and docker commands. Secret values travel only towards it: what it returns
// holds fingerprints and shapes, never values.
package agent

import "github.com/firemountain/hermes-gitops/reconcile/live"

// ProtocolVersion changes when requests or responses change incompatibly.
const ProtocolVersion = 1

// Request is one round trip's work.
type Request struct {
	Protocol int             `json:"protocol"`
	Observe  *ObserveRequest `json:"observe,omitempty"`
	Steps    []Step          `json:"steps,omitempty"`
}

// Response answers a Request.
type Response struct {
	Protocol int          `json:"protocol"`
	Observed *live.Worker `json:"observed,omitempty"`
	// FingerprintKey is the worker's fingerprint key (see live.Worker.FingerprintKey).
	FingerprintKey []byte       `json:"fingerprintKey,omitempty"`
	Steps          []StepResult `json:"steps,omitempty"`
	Error          string       `json:"error,omitempty"`
}

// ObserveRequest says where to look.
type ObserveRequest struct {
	Worker string `json:"worker"`
	// StateDir holds the agent's own state on the worker: fingerprint key, locks.
	StateDir string    `json:"stateDir"`
	Apps     []AppRoot `json:"apps"`
	// Scaffold lists directories (relative to hermes-home) every tenant should have.
	Scaffold []string `json:"scaffold"`
	// Docker can be switched off for workers without it (tests of file observation).
	SkipDocker bool `json:"skipDocker,omitempty"`
}

// AppRoot is where one app's tenants live on the worker.
type AppRoot struct {
	App             string `json:"app"`
	Root            string `json:"root"`
	ContainerPrefix string `json:"containerPrefix"`
}

// Step operations.
const (
	OpMkdir    = "mkdir"     // create Path (and parents) with Mode, owned by Owner
	OpWrite    = "write"     // write Content to Path atomically; CreateOnly keeps an existing file
	OpEnvMerge = "env-merge" // merge Set/Remove into the .env at Path, keeping other lines
	OpRemove   = "remove"    // remove the file at Path (missing is fine), then empty parents up to StopAt
	OpArchive  = "archive"   // rename Path to To (never deletes)
	OpDocker   = "docker"    // run Argv (argv[0] is "docker"); EnvFile goes by a 0600 --env-file
	OpWait     = "wait"      // wait for a container to run (and be healthy)
	OpLock     = "lock"      // take the worker lock at Path for Owner until TTL
	OpUnlock   = "unlock"    // release the worker lock at Path if Owner holds it
	OpRead     = "read"      // return a non-secret file's content (config.yaml for diffs)
	// OpAuthRepair completes the runtime shape of the auth.json at Path for the provider
	// key Provider from its credential_pool entry (hermesctl auth repair): it backs the
	// file up (auth.json.bak-<UTC timestamp>, 0600, same owner), sets
	// providers[Provider] = {tokens, last_refresh, auth_mode}, active_provider and
	// updated_at, keeps every other key, and writes atomically with 0600 and the same
	// owner. A complete file is left untouched. The result carries State (AuthRepaired,
	// AuthAlreadyComplete, or on refusal AuthNoCredential / AuthInvalid), Backup and the
	// resulting shape in Auth; never a token.
	OpAuthRepair = "auth-repair"
)

// Step is one operation of an apply batch. Steps run in order; the first failure stops
// the batch and the rest are reported skipped.
type Step struct {
	Op         string   `json:"op"`
	Path       string   `json:"path,omitempty"`
	Content    []byte   `json:"content,omitempty"`
	Mode       uint32   `json:"mode,omitempty"`
	Owner      *Owner   `json:"owner,omitempty"`
	CreateOnly bool     `json:"createOnly,omitempty"`
	Set        []EnvVar `json:"set,omitempty"`
	Remove     []string `json:"remove,omitempty"`
	StopAt     string   `json:"stopAt,omitempty"`
	To         string   `json:"to,omitempty"`
	Argv       []string `json:"argv,omitempty"`
	EnvFile    []EnvVar `json:"envFile,omitempty"`
	// IgnoreMissing makes a docker step succeed when the container does not exist
	// ("No such container"), so removals are idempotent.
	IgnoreMissing bool `json:"ignoreMissing,omitempty"`
	// Optional steps are checks: a failure is reported but does not stop the batch, so
	// independent checks share one round trip.
	Optional bool `json:"optional,omitempty"`
	// EnvNamesOnly makes a docker step return only the variable names of output that
	// lists an environment (KEY=VALUE, newline- or NUL-separated): values stay here.
	EnvNamesOnly bool      `json:"envNamesOnly,omitempty"`
	Wait         *WaitSpec `json:"wait,omitempty"`
	LockOwner    string    `json:"lockOwner,omitempty"`
	LockTTLSecs  int       `json:"lockTTLSecs,omitempty"`
	// Provider is the auth.json key of an OAuth provider (auth-repair): openai-codex.
	Provider string `json:"provider,omitempty"`
}

// Owner is a uid:gid for files.
type Owner struct {
	UID int `json:"uid"`
	GID int `json:"gid"`
}

// EnvVar is a name and value; values are secrets and never come back.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// WaitSpec says what "up" means for a container.
type WaitSpec struct {
	Container   string `json:"container"`
	TimeoutMS   int    `json:"timeoutMs"`
	StableForMS int    `json:"stableForMs"`
	LogLines    int    `json:"logLines"`
}

// StepResult is the outcome of one step.
type StepResult struct {
	Op      string   `json:"op"`
	Status  string   `json:"status"` // ok, failed, skipped
	Error   string   `json:"error,omitempty"`
	Output  string   `json:"output,omitempty"`
	Logs    []string `json:"logs,omitempty"`
	Changed bool     `json:"changed,omitempty"`
	State   string   `json:"state,omitempty"`
	// Backup is the backup file an auth-repair step wrote, if any.
	Backup string `json:"backup,omitempty"`
	// Auth is the shape of auth.json after an auth-repair step (keys only, no token).
	Auth *live.AuthShape `json:"auth,omitempty"`
}

// Step statuses.
const (
	StatusOK      = "ok"
	StatusFailed  = "failed"
	StatusSkipped = "skipped"
)
