// Package schema is the desired state of a Hermes fleet: the types of the files in a
// desired-state repository (tenants, app profiles, workers), their strict loading with
// file:line:col errors, validation, sops-encrypted secrets and the JSON Schema editors use.
// It knows nothing of SSH or Docker.
package schema

import (
	"gopkg.in/yaml.v3"
)

// APIVersion is the apiVersion every file of a desired-state repository carries.
const APIVersion = "hermes-gitops/v1"

// Kinds of file in a desired-state repository; each lives in its own directory.
const (
	KindTenant = "Tenant"
	KindApp    = "App"
	KindWorker = "Worker"
)

// Lifecycle states of a tenant.
const (
	StateActive    = "active"
	StateSuspended = "suspended"
	StateDeleted   = "deleted"
)

// Transports a worker can be reached by.
const (
	TransportSSH   = "ssh"
	TransportLocal = "local"
)

// Header is the part every file shares.
type Header struct {
	APIVersion string `yaml:"apiVersion" doc:"Always hermes-gitops/v1." enum:"hermes-gitops/v1" required:"true"`
	Kind       string `yaml:"kind" doc:"What the file describes." required:"true"`
}

// Tenant is one file tenants/<app>/<id>.yaml: one Hermes agent of one owner.
type Tenant struct {
	Header   `yaml:",inline"`
	Metadata TenantMeta `yaml:"metadata" required:"true"`
	Spec     TenantSpec `yaml:"spec" required:"true"`
	// Secrets are the tenant's secret environment values (API keys, bot tokens), encrypted
	// in place by sops. In a loaded Tenant they are still ciphertext; see Repo.Decrypt.
	Secrets map[string]string `yaml:"secrets,omitempty" doc:"Secret environment values (API keys, bot tokens), encrypted in place by sops: run 'hermesctl secrets encrypt FILE' or 'sops -e -i FILE' before committing." keypattern:"^[A-Z_][A-Z0-9_]*$"`
	// Sops is the sops metadata block; its content belongs to sops.
	Sops *yaml.Node `yaml:"sops,omitempty" doc:"sops metadata, written by sops. Do not edit."`

	// Source is where the tenant was loaded from.
	Source *Source `yaml:"-"`
	// SecretValues holds the decrypted secrets after Repo.Decrypt; never serialised.
	SecretValues map[string]Secret `yaml:"-" json:"-"`
}

// TenantMeta names a tenant.
type TenantMeta struct {
	Name string `yaml:"name" doc:"Tenant id: lowercase letters, digits and dashes, 3-40 characters, equal to the file name." pattern:"^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$" required:"true"`
	App  string `yaml:"app" doc:"The app profile this tenant belongs to (a file apps/<app>.yaml); equal to the directory name." required:"true"`
}

// TenantSpec is what the tenant should be.
type TenantSpec struct {
	Worker       string         `yaml:"worker" doc:"The worker (a file workers/<name>.yaml) the tenant runs on." required:"true"`
	Owner        Owner          `yaml:"owner" doc:"Who the tenant belongs to."`
	Provider     Provider       `yaml:"provider" doc:"The model provider." required:"true"`
	Bundles      []string       `yaml:"bundles" doc:"Pinned skill bundles, name@version. Omitted: the app's default bundles; [] for none." pattern:"^[a-z0-9][a-z0-9-]*@(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)(-[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?$"`
	Skills       []string       `yaml:"skills" doc:"A-la-carte skills, name or name@version."`
	Toolsets     Toolsets       `yaml:"toolsets" doc:"Which Hermes toolsets the agent may use."`
	Web          Web            `yaml:"web" doc:"Web search and fetch."`
	Telegram     Telegram       `yaml:"telegram" doc:"Telegram access; the bot token goes in secrets.TELEGRAM_BOT_TOKEN."`
	Storage      Storage        `yaml:"storage" doc:"Object storage for the tenant."`
	Resources    Resources      `yaml:"resources" doc:"Container resources."`
	State        string         `yaml:"state" doc:"Lifecycle: active (running), suspended (stopped, data kept) or deleted (container removed, data archived)." enum:"active,suspended,deleted" default:"active"`
	HermesConfig map[string]any `yaml:"hermesConfig" doc:"Extra Hermes config.yaml keys, merged into the rendered config. Keys hermes-gitops manages (model, platform_toolsets, web) cannot be set here."`
}

// Owner is the person a tenant belongs to.
type Owner struct {
	Email string `yaml:"email" doc:"Owner's email address."`
	Name  string `yaml:"name" doc:"Owner's display name."`
}

// Provider is the model provider of a tenant.
type Provider struct {
	ID    string `yaml:"id" doc:"Provider id." enum:"anthropic,anthropic-oauth,openai,openai-api,openai-codex,openrouter" required:"true"`
	Model string `yaml:"model" doc:"Model name; defaults per provider."`
}

// Toolsets switches Hermes toolsets on and off.
type Toolsets struct {
	Terminal *bool    `yaml:"terminal" doc:"The terminal toolset; skills that run scripts need it. Default true." default:"true"`
	Enable   []string `yaml:"enable" doc:"Extra toolsets to enable (for example browser)."`
	Disable  []string `yaml:"disable" doc:"Default toolsets to disable (web, file, skills, memory)."`
}

// TerminalEnabled reports whether the terminal toolset is on (the default).
func (t Toolsets) TerminalEnabled() bool { return t.Terminal == nil || *t.Terminal }

// Web configures Hermes' web backend.
type Web struct {
	Backend string `yaml:"backend" doc:"Hermes web.backend; its API key goes in secrets." enum:"firecrawl,parallel,tavily,exa"`
}

// Telegram configures the Telegram gateway.
type Telegram struct {
	AllowedUsers []int64 `yaml:"allowedUsers" doc:"Numeric Telegram user ids allowed to talk to the bot; needs secrets.TELEGRAM_BOT_TOKEN."`
}

// Storage configures object storage.
type Storage struct {
	S3 *S3Storage `yaml:"s3" doc:"A dedicated S3 bucket."`
}

// S3Storage is a tenant's bucket.
type S3Storage struct {
	Quota string `yaml:"quota" doc:"Bucket quota, e.g. 5Gi." pattern:"^[0-9]+(Ki|Mi|Gi|Ti|K|M|G|T)?$" required:"true"`
}

// Resources limits the tenant's container.
type Resources struct {
	Memory string `yaml:"memory" doc:"Docker memory limit, e.g. 1g or 512m. Default: the app's, else 1g." pattern:"^[0-9]+[bkmg]?$"`
}

// App is one file apps/<name>.yaml: how the tenants of one control plane are run.
type App struct {
	Header   `yaml:",inline"`
	Metadata NameMeta `yaml:"metadata" required:"true"`
	Spec     AppSpec  `yaml:"spec" required:"true"`
	Source   *Source  `yaml:"-"`
}

// NameMeta names an app or a worker.
type NameMeta struct {
	Name string `yaml:"name" doc:"Name, equal to the file name." pattern:"^[a-z0-9][a-z0-9-]*$" required:"true"`
}

// AppSpec is an app profile.
type AppSpec struct {
	ContainerPrefix string            `yaml:"containerPrefix" doc:"Container name prefix; a tenant's container is <prefix><id>." required:"true"`
	Image           string            `yaml:"image" doc:"The runner image, pinned (a tag or a digest)." required:"true"`
	TenantRoot      string            `yaml:"tenantRoot" doc:"Where tenant directories live on the worker: absolute, or relative to the worker's tenantRoot. A tenant's hermes-home is <tenantRoot>/<id>/hermes-home." required:"true"`
	MountPath       string            `yaml:"mountPath" doc:"Where hermes-home is mounted in the container. Default /data/hermes." default:"/data/hermes"`
	User            string            `yaml:"user" doc:"uid:gid the container runs as; managed files are owned by it." pattern:"^[0-9]+:[0-9]+$"`
	Env             map[string]string `yaml:"env" doc:"Non-secret variables baked into the container's process environment at creation (e.g. ASTRAL_KB_ROOT). Changing one recreates the containers." keypattern:"^[A-Z_][A-Z0-9_]*$"`
	ProcessSecrets  []string          `yaml:"processSecrets" doc:"Names of tenant secrets that skill subprocesses need in the process environment; passed by a 0600 --env-file, never on a command line."`
	Providers       []string          `yaml:"providers" doc:"Providers tenants of this app may use." required:"true"`
	DefaultBundles  []string          `yaml:"defaultBundles" doc:"Bundles for tenants that do not list their own."`
	Memory          string            `yaml:"memory" doc:"Default memory limit. Default 1g." pattern:"^[0-9]+[bkmg]?$"`
	RestartPolicy   string            `yaml:"restartPolicy" doc:"Docker restart policy. Default unless-stopped." enum:"no,always,unless-stopped,on-failure"`
	PidsLimit       int               `yaml:"pidsLimit" doc:"Maximum processes in a tenant container. Default 512."`
}

// Worker is one file workers/<name>.yaml: a Docker host tenants run on.
type Worker struct {
	Header   `yaml:",inline"`
	Metadata NameMeta   `yaml:"metadata" required:"true"`
	Spec     WorkerSpec `yaml:"spec" required:"true"`
	Source   *Source    `yaml:"-"`
}

// WorkerSpec says how to reach a worker.
type WorkerSpec struct {
	Transport      string `yaml:"transport" doc:"ssh, or local to run on this host." enum:"ssh,local" default:"ssh"`
	Host           string `yaml:"host" doc:"Host name or address (ssh)."`
	Port           int    `yaml:"port" doc:"SSH port. Default 22."`
	User           string `yaml:"user" doc:"SSH user; it must be able to run docker."`
	HostKey        string `yaml:"hostKey" doc:"The worker's SSH host key: a known_hosts line or an 'ssh-ed25519 AAAA...' key. Either this or knownHostsFile is required for ssh."`
	KnownHostsFile string `yaml:"knownHostsFile" doc:"A known_hosts file to verify the host key with, relative to the repository or absolute."`
	TenantRoot     string `yaml:"tenantRoot" doc:"Base directory for app tenant roots that are relative." required:"true"`
	AgentDir       string `yaml:"agentDir" doc:"Where hermes-gitops caches its worker agent. Default <tenantRoot>/.hermes-gitops/bin."`
}

// Source records where a file was loaded from, for errors with file:line:col.
type Source struct {
	File string // path relative to the repository, slash-separated
	pos  map[string]Pos
	root Pos
}

// Pos is a position in a file, 1-based.
type Pos struct{ Line, Col int }

// Pos returns where the value at a dotted field path (e.g. "spec.provider.id" or
// "spec.bundles[1]") was written, falling back to its closest written parent.
func (s *Source) Pos(path string) Pos {
	if s == nil {
		return Pos{}
	}
	for p := path; p != ""; p = parentPath(p) {
		if pos, ok := s.pos[p]; ok {
			return pos
		}
	}
	return s.root
}

// Has reports whether a field path was written in the file.
func (s *Source) Has(path string) bool {
	if s == nil {
		return false
	}
	_, ok := s.pos[path]
	return ok
}

func parentPath(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		switch p[i] {
		case '.':
			return p[:i]
		case '[':
			return p[:i]
		}
	}
	return ""
}
