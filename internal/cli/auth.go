package cli

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"text/tabwriter"

	"golang.org/x/term"

	"github.com/firemountain/hermes-gitops/reconcile"
	"github.com/firemountain/hermes-gitops/reconcile/agent"
	"github.com/firemountain/hermes-gitops/reconcile/live"
	"github.com/firemountain/hermes-gitops/reconcile/render"
	"github.com/firemountain/hermes-gitops/reconcile/runtime"
	"github.com/firemountain/hermes-gitops/reconcile/worker"
	"github.com/firemountain/hermes-gitops/schema"
)

// The auth commands read the desired state only to find a tenant's worker, container and
// hermes-home: they decrypt no secret and need no age key. What they learn of auth.json
// is its shape (which keys exist), never a token.

func authCmd() *command {
	return &command{
		name:  "auth",
		usage: "auth COMMAND",
		short: "log OAuth tenants in, and check or repair their auth.json",
		long: `Tenants whose provider is an OAuth subscription (openai-codex, anthropic-oauth) need a
login after their container is created. Hermes keeps the credential in auth.json in two
places, and needs both: credential_pool.<provider> ('hermes auth list', status probes) and
providers.<provider>.tokens with active_provider = <provider> (the gateway, cron and model
calls). 'hermesctl plan' reports such a tenant as awaiting-auth until both are there.

Examples:
  hermesctl auth status --repo tenants.example
  hermesctl auth login cody1
  hermesctl auth repair cody1`,
		sub: []*command{authLoginCmd(), authRepairCmd(), authStatusCmd()},
	}
}

// authFlags are the flags of the auth commands.
type authFlags struct {
	repo   string
	sshKey string
}

func (f *authFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.repo, "repo", ".", "desired-state repository `dir`")
	fs.StringVar(&f.sshKey, "ssh-key", "", "SSH private key `file` for workers (default $HERMES_SSH_KEY_FILE; the ssh-agent at $SSH_AUTH_SOCK is always tried); an encrypted key's passphrase comes from $HERMES_SSH_KEY_PASSPHRASE")
}

// load reads the desired state; one that cannot be used at all is an error.
func (f *authFlags) load() (*schema.Repo, error) {
	repo, err := schema.Load(f.repo, schema.LoadOptions{})
	if err != nil {
		return nil, err
	}
	if err := repo.Usable(); err != nil {
		return nil, err
	}
	return repo, nil
}

func (f *authFlags) dial(env *Env, w *schema.Worker) (*worker.Conn, error) {
	return worker.Dial(w, workerOptions(env, f.sshKey, f.repo))
}

// open is the start of login and repair: one tenant argument, the repository, the
// OAuth tenant (accepted by check, if given) and a connection to its worker.
func (f *authFlags) open(env *Env, args []string, usage string, check func(*oauthTenant) error) (*schema.Repo, *oauthTenant, *worker.Conn, error) {
	if len(args) != 1 {
		return nil, nil, nil, fmt.Errorf("name one tenant\nUsage: hermesctl %s", usage)
	}
	repo, err := f.load()
	if err != nil {
		return nil, nil, nil, err
	}
	t, err := findOAuthTenant(repo, args[0])
	if err != nil {
		return nil, nil, nil, err
	}
	if check != nil {
		if err := check(t); err != nil {
			return nil, nil, nil, err
		}
	}
	conn, err := f.dial(env, t.worker)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("tenant %s: %w", t.id, err)
	}
	return repo, t, conn, nil
}

// oauthTenant is an OAuth tenant and where it lives.
type oauthTenant struct {
	id       string
	app      *schema.App
	worker   *schema.Worker
	provider schema.ProviderInfo
	home     string // hermes-home on the worker
}

// key is where the provider's credential lives in auth.json.
func (t *oauthTenant) key() string { return t.provider.AuthKey() }

// findOAuthTenant finds a tenant the auth commands can act on.
func findOAuthTenant(repo *schema.Repo, id string) (*oauthTenant, error) {
	t := repo.Tenant(id)
	if t == nil {
		return nil, fmt.Errorf("tenant %s: no tenant file with this id in %s", id, repo.Dir)
	}
	if errs := repo.TenantProblems(t).Errors(); len(errs) > 0 {
		return nil, fmt.Errorf("tenant %s: its file %s has errors; fix them first:\n%w", id, t.Source.File, errs)
	}
	app, w := repo.Apps[t.Metadata.App], repo.Workers[t.Spec.Worker]
	if app == nil || w == nil {
		return nil, fmt.Errorf("tenant %s: app %q or worker %q is not defined", id, t.Metadata.App, t.Spec.Worker)
	}
	prov, ok := schema.LookupProvider(t.Spec.Provider.ID)
	if !ok {
		return nil, fmt.Errorf("tenant %s: unknown provider %q", id, t.Spec.Provider.ID)
	}
	if !prov.OAuth {
		return nil, fmt.Errorf("tenant %s: provider %s uses an API key (%s in the tenant's secrets), not an OAuth login: there is nothing to log in or repair", id, prov.ID, prov.EnvKey)
	}
	if t.Spec.State == "deleted" {
		return nil, fmt.Errorf("tenant %s: its state is deleted", id)
	}
	return &oauthTenant{id: id, app: app, worker: w, provider: prov, home: schema.TenantHome(app, w, id)}, nil
}

// authSummary is the line that says an auth.json is complete.
func authSummary(t *oauthTenant) string {
	return fmt.Sprintf("auth complete for %s: credential in credential_pool, providers[%s] with tokens, active_provider=%s", t.id, t.key(), t.key())
}

// authNext says what to run for an incomplete auth.json.
func authNext(t *oauthTenant, status agent.AuthStatus) string {
	if (status == agent.AuthDualWriteGap || status == agent.AuthActiveWrong) && t.provider.ID == "openai-codex" {
		return "hermesctl auth repair " + t.id
	}
	return "hermesctl auth login " + t.id
}

// observeTenant observes the tenant's worker (one round trip) and returns its container and
// home (nil when absent).
func observeTenant(ctx context.Context, conn *worker.Conn, repo *schema.Repo, t *oauthTenant) (*live.Container, *live.Home, error) {
	obs, err := conn.Observe(ctx, reconcile.AppRoots(repo, t.worker), render.Scaffold)
	if err != nil {
		return nil, nil, err
	}
	return t.container(obs), obs.Home(t.app.Metadata.Name, t.id), nil
}

// container finds the tenant's managed container, by the same scope rule as the
// planner: a namesake tenant of another app or fleet on the same Docker engine is never
// the one logged in. The exact name wins over another owned container.
func (t *oauthTenant) container(obs *live.Worker) *live.Container {
	scope := live.Scope{App: t.app.Metadata.Name, Root: schema.AppRoot(t.app, t.worker), Prefix: t.app.Spec.ContainerPrefix}
	var found *live.Container
	for i := range obs.Containers {
		c := &obs.Containers[i]
		if c.Tenant() != t.id || !scope.Owns(c) {
			continue
		}
		if c.Name == t.app.Spec.ContainerPrefix+t.id {
			return c
		}
		if found == nil {
			found = c
		}
	}
	return found
}

func authLoginCmd() *command {
	var af authFlags
	return &command{
		name:  "login",
		usage: "auth login TENANT [--repo DIR] [--ssh-key FILE]",
		short: "run the provider's OAuth login inside a tenant's container",
		long: `Login runs the provider's own login inside the tenant's running container, attached to
this terminal:

  docker exec -it <container> hermes auth add <provider> --type oauth

with <provider> openai-codex for openai-codex tenants and anthropic for anthropic-oauth
tenants. On an ssh worker the command gets a pseudo-terminal sized like this terminal (24x80
when standard input is not a terminal), and this terminal is in raw mode while attached:
what you type goes to the login as typed, and the terminal is restored afterwards. On a
local worker (transport: local) there is no pseudo-terminal: the login runs with
'docker exec -i' (no -t), reading standard input and writing standard output as they are.

Afterwards login observes the worker and checks auth.json with plan's rule: a credential
in credential_pool, providers[<provider>] with tokens, and active_provider = <provider>.
Tokens are never printed. The container must be running: create it with 'hermesctl apply'.

Exit status: 0 the login completed auth.json, 1 otherwise.

Examples:
  hermesctl auth login cody1
  hermesctl auth login maya --repo ~/fleet
  echo CODE | hermesctl auth login cody1   # a device code from a pipe`,
		flags: af.register,
		run: func(ctx context.Context, env *Env, args []string) int {
			repo, t, conn, err := af.open(env, args, "auth login TENANT [--repo DIR]", nil)
			if err != nil {
				return errorf(env, "%v", err)
			}
			defer conn.Close()
			ct, _, err := observeTenant(ctx, conn, repo, t)
			if err != nil {
				return errorf(env, "tenant %s: %v", t.id, err)
			}
			if ct == nil {
				return errorf(env, "tenant %s: no container on worker %s yet; create it first with 'hermesctl apply --tenant %s'", t.id, t.worker.Metadata.Name, t.id)
			}
			if !ct.State.Running {
				return errorf(env, "tenant %s: container %s is %s, not running; start it with 'hermesctl apply --tenant %s' (its state must be active)", t.id, ct.Name, ct.State.Status, t.id)
			}

			login := []string{"hermes", "auth", "add", t.key(), "--type", "oauth"}
			fmt.Fprintf(env.Stdout, "Logging %s in to %s: hermes auth add %s inside %s on worker %s.\n", t.id, t.provider.ID, t.key(), ct.Name, t.worker.Metadata.Name)
			if err := attach(ctx, env, conn, ct.Name, login); err != nil {
				return errorf(env, "tenant %s: login: %v", t.id, err)
			}

			_, h, err := observeTenant(ctx, conn, repo, t)
			if err != nil {
				return errorf(env, "tenant %s: check auth.json after the login: %v", t.id, err)
			}
			var shape *live.AuthShape
			if h != nil {
				shape = h.Auth
			}
			fmt.Fprintln(env.Stdout)
			status, why := agent.CheckAuth(shape, t.key())
			if status != agent.AuthComplete {
				return errorf(env, "tenant %s: auth incomplete after the login (%s): %s; run '%s'", t.id, status, why, authNext(t, status))
			}
			fmt.Fprintln(env.Stdout, authSummary(t))
			if f := t.provider.AuthFile; f != "" && (h == nil || !slices.Contains(h.AuthFiles, f)) {
				fmt.Fprintf(env.Stdout, "note: %s is not in %s's hermes-home; Hermes reads the %s OAuth tokens from it too.\n", f, t.id, t.provider.ID)
			}
			return ExitOK
		},
	}
}

// attach runs the login in the container, attached to the person's terminal. Over ssh it
// runs docker exec -it on a pseudo-terminal sized like the local one, with the local
// terminal in raw mode (the remote pseudo-terminal echoes and edits lines). Locally there
// is no pseudo-terminal, so it runs docker exec -i and leaves the terminal as it is (its
// own echo and line editing are what the person sees).
func attach(ctx context.Context, env *Env, conn *worker.Conn, container string, cmd []string) error {
	termName := env.Getenv("TERM")
	if conn.Local() {
		argv := runtime.ExecStdin(container, cmd...)
		return conn.Interactive(ctx, argv, env.Stdin, env.Stdout, termName, 0, 0)
	}
	rows, cols := 24, 80
	if f, ok := env.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fd := int(f.Fd())
		if w, h, err := term.GetSize(fd); err == nil && w > 0 && h > 0 {
			rows, cols = h, w
		}
		old, err := term.MakeRaw(fd)
		if err != nil {
			return fmt.Errorf("put the terminal in raw mode: %w", err)
		}
		defer term.Restore(fd, old)
	}
	return conn.Interactive(ctx, runtime.ExecInteractive(container, cmd...), env.Stdin, env.Stdout, termName, rows, cols)
}

func authRepairCmd() *command {
	var af authFlags
	return &command{
		name:  "repair",
		usage: "auth repair TENANT [--repo DIR] [--ssh-key FILE]",
		short: "complete a Codex tenant's runtime auth shape from its credential_pool entry",
		long: `Repair fixes the dual-write gap of an openai-codex tenant: a login that reached
credential_pool but not the runtime shape, so that 'hermes auth list' shows the credential
while the tenant answers "No Codex credentials stored".

On the worker, the agent backs auth.json up first (auth.json.bak-<UTC timestamp>, 0600, same
owner), then sets providers["openai-codex"] = {tokens: {access_token, refresh_token} from the
credential_pool entry (the one of lowest priority number), last_refresh, auth_mode:
"chatgpt"} keeping the entry's other fields, active_provider = "openai-codex" and
updated_at, and writes the file atomically, 0600, same owner. Every other key of auth.json
is kept as it is. When providers["openai-codex"] already holds tokens and only
active_provider is wrong, only active_provider (and updated_at) change. It holds Hermes'
own lock (auth.lock) while it works, when the file exists.

A complete auth.json is left untouched (no backup). Repair refuses, leaving the file as it
is, when auth.json is not valid JSON or credential_pool has no entry with an access token
(log in again with 'hermesctl auth login'). Tokens are never printed.

Exit status: 0 auth.json is complete, 1 otherwise.

Examples:
  hermesctl auth repair cody1
  hermesctl auth repair cody1 --repo ~/fleet`,
		flags: af.register,
		run: func(ctx context.Context, env *Env, args []string) int {
			_, t, conn, err := af.open(env, args, "auth repair TENANT [--repo DIR]", func(t *oauthTenant) error {
				if t.provider.ID != "openai-codex" {
					return fmt.Errorf("tenant %s: auth repair completes the openai-codex runtime shape only; for %s, log in again with 'hermesctl auth login %s'", t.id, t.provider.ID, t.id)
				}
				return nil
			})
			if err != nil {
				return errorf(env, "%v", err)
			}
			defer conn.Close()
			file := path.Join(t.home, live.AuthFile)
			results, err := conn.Steps(ctx, []agent.Step{{Op: agent.OpAuthRepair, Path: file, Provider: t.key()}})
			if err != nil {
				return errorf(env, "tenant %s: %v", t.id, err)
			}
			r := results[0]
			if r.Status != agent.StatusOK {
				msg := fmt.Sprintf("tenant %s: worker %s: %s", t.id, t.worker.Metadata.Name, r.Error)
				if r.State == agent.AuthNoCredential || r.State == agent.AuthInvalid {
					msg += fmt.Sprintf("\nnothing was changed; log in (again) with 'hermesctl auth login %s'", t.id)
				}
				return errorf(env, "%s", msg)
			}
			switch r.State {
			case agent.AuthAlreadyComplete:
				fmt.Fprintf(env.Stdout, "tenant %s: auth.json already complete; nothing changed, no backup written.\n", t.id)
			default:
				fmt.Fprintf(env.Stdout, "tenant %s: auth.json repaired on worker %s; the original is kept as %s.\n", t.id, t.worker.Metadata.Name, filepath.Base(r.Backup))
			}
			if status, why := agent.CheckAuth(r.Auth, t.key()); status != agent.AuthComplete {
				return errorf(env, "tenant %s: auth still incomplete (%s): %s", t.id, status, why)
			}
			fmt.Fprintln(env.Stdout, authSummary(t))
			return ExitOK
		},
	}
}

func authStatusCmd() *command {
	var af authFlags
	var only listFlag
	return &command{
		name:  "status",
		usage: "auth status [--repo DIR] [--tenant ID] [--ssh-key FILE]",
		short: "show the auth.json shape of every OAuth tenant",
		long: `Status observes the workers (one round trip each) and shows, for every OAuth tenant
(openai-codex, anthropic-oauth) whose state is not deleted, the shape of its auth.json:

  POOL     entries in credential_pool[<provider>] ('-': no auth.json)
  RUNTIME  providers[<provider>]: tokens, no-tokens, or missing
  ACTIVE   active_provider
  VERDICT  complete
           awaiting login         (no credential: hermesctl auth login)
           dual-write gap         (credential_pool only: hermesctl auth repair)
           active provider wrong  (hermesctl auth repair)

The rule is plan's awaiting-auth rule. Tokens are never read back from the workers.

Exit status: 0 the table is complete (whatever the verdicts), 1 a worker could not be
observed or a tenant was not found.

Examples:
  hermesctl auth status
  hermesctl auth status --repo tenants.example --tenant cody1`,
		flags: func(fs *flag.FlagSet) {
			af.register(fs)
			fs.Var(&only, "tenant", "only this tenant id (repeatable, or comma-separated)")
		},
		run: func(ctx context.Context, env *Env, args []string) int {
			if !argsAtMost(env, args, 0, "auth status [--repo DIR] [--tenant ID]") {
				return ExitFailure
			}
			repo, err := af.load()
			if err != nil {
				return errorf(env, "%v", err)
			}
			code := ExitOK
			var tenants []*oauthTenant
			if len(only) > 0 {
				for _, id := range only {
					t, err := findOAuthTenant(repo, id)
					if err != nil {
						fmt.Fprintf(env.Stderr, "error: %v\n", err)
						code = ExitFailure
						continue
					}
					tenants = append(tenants, t)
				}
			} else {
				for _, st := range repo.Tenants {
					prov, ok := schema.LookupProvider(st.Spec.Provider.ID)
					if !ok || !prov.OAuth || st.Spec.State == "deleted" {
						continue
					}
					t, err := findOAuthTenant(repo, st.Metadata.Name)
					if err != nil {
						fmt.Fprintf(env.Stderr, "warning: %v\n", err)
						continue
					}
					tenants = append(tenants, t)
				}
			}
			if len(tenants) == 0 {
				if code == ExitOK {
					fmt.Fprintf(env.Stdout, "No OAuth tenants (openai-codex, anthropic-oauth) in %s.\n", repo.Dir)
				}
				return code
			}
			sort.Slice(tenants, func(i, j int) bool {
				if a, b := tenants[i].worker.Metadata.Name, tenants[j].worker.Metadata.Name; a != b {
					return a < b
				}
				return tenants[i].id < tenants[j].id
			})

			var names []string
			for _, t := range tenants {
				if n := t.worker.Metadata.Name; !slices.Contains(names, n) {
					names = append(names, n)
				}
			}
			pool := reconcile.NewPool(workerOptions(env, af.sshKey, af.repo))
			defer pool.Close()
			o := reconcile.ObserveWorkers(ctx, repo, names, pool, nil)
			observed, errs := o.Workers, o.Errors
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TENANT\tWORKER\tPROVIDER\tPOOL\tRUNTIME\tACTIVE\tVERDICT")
			counts := map[agent.AuthStatus]int{}
			for _, t := range tenants {
				wn := t.worker.Metadata.Name
				obs := observed[wn]
				if obs == nil {
					fmt.Fprintf(tw, "%s\t%s\t%s\t?\t?\t?\tunknown: worker unreachable\n", t.id, wn, t.provider.ID)
					continue
				}
				var shape *live.AuthShape
				if h := obs.Home(t.app.Metadata.Name, t.id); h != nil {
					shape = h.Auth
				}
				status, _ := agent.CheckAuth(shape, t.key())
				counts[status]++
				pool, rt, active := "-", "-", "-"
				if shape != nil && shape.Valid {
					pool = strconv.Itoa(shape.Pool[t.key()])
					switch {
					case slices.Contains(shape.Providers, t.key()):
						rt = "tokens"
					case slices.Contains(shape.ProvidersWithoutTokens, t.key()):
						rt = "no-tokens"
					default:
						rt = "missing"
					}
					if shape.ActiveProvider != "" {
						active = shape.ActiveProvider
					}
				} else if shape != nil {
					pool, rt, active = "?", "?", "?" // not valid JSON
				}
				verdict := string(status)
				if status != agent.AuthComplete {
					verdict += " → " + authNext(t, status)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.id, wn, t.provider.ID, pool, rt, active, verdict)
			}
			tw.Flush()
			n := counts[agent.AuthAwaitingLogin] + counts[agent.AuthDualWriteGap] + counts[agent.AuthActiveWrong]
			fmt.Fprintf(env.Stdout, "\n%s: %d complete, %d awaiting login, %d to repair.\n", plural(len(tenants), "OAuth tenant"),
				counts[agent.AuthComplete], counts[agent.AuthAwaitingLogin], n-counts[agent.AuthAwaitingLogin])
			for _, wn := range slices.Sorted(maps.Keys(errs)) {
				fmt.Fprintf(env.Stderr, "error: %v\n", errs[wn])
				code = ExitFailure
			}
			return code
		},
	}
}
