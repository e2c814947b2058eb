// Package live is the observed state of workers: what runs and what is on disk, as one
// typed value per worker with a stable JSON form. It is pure data so that the planner can
// be tested from fixtures. It never holds a secret value: environment values are keyed
// fingerprints and auth.json is reduced to its shape.
package live

import "strings"

// Labels every managed container carries.
const (
	LabelManagedBy = "dev.hermes-gitops.managed-by"
	LabelTenant    = "dev.hermes-gitops.tenant"
	LabelApp       = "dev.hermes-gitops.app"
	LabelSpecHash  = "dev.hermes-gitops.spec-hash"
	ManagedByValue = "hermes-gitops"
)

// Files hermes-gitops keeps under a tenant's hermes-home.
const (
	ConfigFile = "config.yaml"
	EnvFile    = ".env"
	AuthFile   = "auth.json"
	// LockFile records what hermes-gitops installed: bundle pins and every file with its
	// digest. Only files listed there are ever rewritten or removed.
	LockFile = ".hermes-gitops/lock.json"
)

// Worker is everything observed on one worker in one round trip.
type Worker struct {
	Worker string `json:"worker"`
	// Containers are the managed containers (they carry LabelManagedBy), sorted by name.
	Containers []Container `json:"containers"`
	// Unmanaged are containers named like a tenant container (an app prefix) without the
	// managed-by label; they are reported and never touched.
	Unmanaged []Container `json:"unmanaged"`
	// Homes are the tenant directories found under the app roots, sorted by app and id.
	Homes []Home `json:"homes"`
	// Lock is the apply lock held on the worker, if any.
	Lock *Lock `json:"lock,omitempty"`
	// FingerprintKey is the worker's key for keyed fingerprints. It stays in memory.
	FingerprintKey []byte `json:"-"`
}

// Container is the part of `docker inspect` the reconciler reads.
type Container struct {
	ID            string            `json:"id"`
	Name          string            `json:"name"`
	Image         string            `json:"image"`
	ImageID       string            `json:"imageId"`
	Labels        map[string]string `json:"labels"`
	Env           map[string]string `json:"env"` // name → keyed fingerprint of the value
	Mounts        []Mount           `json:"mounts"`
	User          string            `json:"user"`
	CapAdd        []string          `json:"capAdd"`
	CapDrop       []string          `json:"capDrop"`
	SecurityOpt   []string          `json:"securityOpt"`
	Memory        int64             `json:"memory"`
	PidsLimit     int64             `json:"pidsLimit"`
	RestartPolicy string            `json:"restartPolicy"`
	State         State             `json:"state"`
}

// Tenant is the tenant id label, or "".
func (c Container) Tenant() string { return c.Labels[LabelTenant] }

// App is the app label, or "".
func (c Container) App() string { return c.Labels[LabelApp] }

// Mount is a bind mount of a container.
type Mount struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	RW          bool   `json:"rw"`
}

// State is a container's runtime state.
type State struct {
	Status       string `json:"status"` // created, running, restarting, exited, paused, dead
	Running      bool   `json:"running"`
	Restarting   bool   `json:"restarting"`
	ExitCode     int    `json:"exitCode"`
	Health       string `json:"health,omitempty"` // "", starting, healthy, unhealthy
	RestartCount int    `json:"restartCount"`
	StartedAt    string `json:"startedAt,omitempty"`
}

// Home is what is on disk for one tenant.
type Home struct {
	App  string `json:"app"`
	ID   string `json:"id"`
	Path string `json:"path"`
	// Files maps managed paths (relative to hermes-home) that exist to "sha256:<hex>":
	// config.yaml and every file in the lock.
	Files map[string]string `json:"files"`
	// Env is the .env file, keys with fingerprints; nil when there is no .env.
	Env *EnvShape `json:"env,omitempty"`
	// Auth is the shape of auth.json; nil when there is none.
	Auth *AuthShape `json:"auth,omitempty"`
	// AuthFiles lists other credential files present (e.g. .anthropic_oauth.json).
	AuthFiles []string `json:"authFiles,omitempty"`
	// Lock is the parsed lock file; nil when there is none.
	Lock *InstallLock `json:"lock,omitempty"`
	// MissingDirs are the knowledge-base scaffold directories that do not exist.
	MissingDirs []string `json:"missingDirs,omitempty"`
	// Errors are problems reading this home (unreadable file, bad JSON).
	Errors []string `json:"errors,omitempty"`
}

// EnvShape is a .env file without its values.
type EnvShape struct {
	// Keys maps each key to the keyed fingerprint of its (last) value.
	Keys map[string]string `json:"keys"`
	// Order lists keys in file order, first occurrence.
	Order []string `json:"order"`
	// Duplicates lists keys defined more than once.
	Duplicates []string `json:"duplicates,omitempty"`
	Mode       uint32   `json:"mode"`
}

// AuthShape is what auth.json holds, without any token.
type AuthShape struct {
	Valid          bool   `json:"valid"` // parsed as JSON
	ActiveProvider string `json:"activeProvider,omitempty"`
	// Providers lists entries of "providers" that hold an access token.
	Providers []string `json:"providers,omitempty"`
	// ProvidersWithoutTokens lists entries of "providers" with no access token.
	ProvidersWithoutTokens []string `json:"providersWithoutTokens,omitempty"`
	// Pool maps each credential_pool provider to its number of entries.
	Pool map[string]int `json:"pool,omitempty"`
	Mode uint32         `json:"mode"`
}

// InstallLock is the lock file hermes-gitops writes into hermes-home.
type InstallLock struct {
	Version int            `json:"version"`
	Bundles []LockedBundle `json:"bundles"`
	Skills  []LockedBundle `json:"skills"`
	Files   []LockedFile   `json:"files"`
	// Env lists the .env keys hermes-gitops manages; a key dropped from the desired state
	// is removed from .env only if it is listed here.
	Env  []string `json:"env,omitempty"`
	Dirs []string `json:"dirs,omitempty"`
}

// LockedBundle is an installed bundle or à-la-carte skill.
type LockedBundle struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Digest  string `json:"digest"`
}

// LockedFile is a file hermes-gitops installed.
type LockedFile struct {
	Path   string `json:"path"`
	Digest string `json:"digest"`
}

// Lock is the apply lock of a worker.
type Lock struct {
	Owner   string `json:"owner"`
	Expires string `json:"expires"` // RFC 3339
}

// Container returns the managed container of a tenant, if any.
func (w *Worker) Container(tenant string) *Container {
	for i := range w.Containers {
		if w.Containers[i].Tenant() == tenant {
			return &w.Containers[i]
		}
	}
	return nil
}

// Home returns the home of a tenant of an app, if any.
func (w *Worker) Home(app, tenant string) *Home {
	for i := range w.Homes {
		if w.Homes[i].App == app && w.Homes[i].ID == tenant {
			return &w.Homes[i]
		}
	}
	return nil
}

// Scope is where one app of a desired state keeps its tenants on a worker.
type Scope struct {
	App, Root, Prefix string
}

// Owns reports whether a managed container belongs to the scope: its app label, its name
// prefix and (when it has mounts) a hermes-home mount under the app's root. Several
// fleets, or a fleet and a demo, can share a Docker host with the same tenant ids; only
// containers a scope owns are ever taken for a tenant's.
func (s Scope) Owns(c *Container) bool {
	if s.App != c.App() || !strings.HasPrefix(c.Name, s.Prefix) {
		return false
	}
	if len(c.Mounts) == 0 {
		return true
	}
	for _, m := range c.Mounts {
		if strings.HasPrefix(m.Source, strings.TrimSuffix(s.Root, "/")+"/") {
			return true
		}
	}
	return false
}

// OwnedBy reports whether any of the scopes owns the container.
func OwnedBy(scopes []Scope, c *Container) bool {
	for _, s := range scopes {
		if s.Owns(c) {
			return true
		}
	}
	return false
}
