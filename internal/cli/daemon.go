package cli

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/firemountain/hermes-gitops/internal/daemon"
	"github.com/firemountain/hermes-gitops/internal/logging"
	"github.com/firemountain/hermes-gitops/reconcile/apply"
	"github.com/firemountain/hermes-gitops/schema"
)

func daemonCmd() *command {
	var (
		cfg                                  daemon.Config
		sshKey, tokenFile, secretFile        string
		webhookSecret, logFormat, logLevel   string
		concurrency                          int
		timeout                              time.Duration
		gitKeyFile, knownHosts, gitUser, dir string
	)
	return &command{
		name:  "daemon",
		usage: "daemon (--git-url URL [--branch B | --tag T] | --dir DIR) [--listen ADDR] [--prune] [--dry-run] [FLAGS]",
		short: "keep the workers equal to git continuously, with status, metrics and webhooks",
		long: `Daemon runs hermes-gitops in production: it keeps every worker equal to the desired
state, all the time, and tells people what it is doing.

Source: a git remote (cloned once into --cache-dir, fetched every --interval with ±10%
jitter and on each push webhook), or a local directory (--dir, watched; a burst of writes
is one reconcile). A fetch failure or a revision that does not load keeps the revision in
force: nothing from it is applied, nothing deleted. Git credentials: --git-ssh-key (or
the ssh-agent) with --git-known-hosts for ssh remotes; for HTTPS the token in
$HERMES_GIT_TOKEN or --git-token-file.

Loop: a reconcile on every new revision, on a webhook and every --resync (drift made on
the workers is healed). It applies what apply fixes without removing anything; removals
(state: deleted, orphans) only with --prune, within apply's deletion limit unless
--force. A tenant whose apply fails is retried with exponential backoff while the others
proceed; an unreachable worker is reported and retried. The workers' apply lock keeps two
daemons from applying at once: the second waits and says so (as does a second daemon on
the same --cache-dir). SIGTERM/SIGINT: no new work, the tenant operations in flight finish
(at most --shutdown-timeout), exit 0.

HTTP (--listen): GET / status page, GET /v1/tenants[/ID] tenant status (phase pending,
provisioning, awaiting-auth, ready, drifted, held, error or suspended), GET /metrics,
/healthz, /readyz, and POST /hooks/git for GitHub, Gitea and GitLab push webhooks signed
with $HERMES_WEBHOOK_SECRET (or --webhook-secret-file). See docs/daemon.md.

Examples:
  # production: a GitHub repository over ssh, webhooks on :8080
  HERMES_WEBHOOK_SECRET=... hermesctl daemon --git-url git@github.com:acme/tenants.git \
      --git-ssh-key /etc/hermes/deploy_key --git-known-hosts /etc/hermes/known_hosts \
      --listen :8080 --prune

  # next to a checkout: reconcile whenever a file changes, plan only
  hermesctl daemon --dir tenants.example --dry-run --log-format text

  # HTTPS with a token, a release tag, a faster loop
  HERMES_GIT_TOKEN=... hermesctl daemon --git-url https://git.example.com/ops/tenants.git \
      --tag v42 --interval 30s --resync 5m`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&cfg.GitURL, "git-url", "", "desired-state git remote `url` (ssh, https, file or a path)")
			fs.StringVar(&cfg.Branch, "branch", "", "branch to apply (default main)")
			fs.StringVar(&cfg.Tag, "tag", "", "tag to apply instead of a branch")
			fs.StringVar(&dir, "dir", "", "local desired-state `dir` to watch instead of a git remote")
			fs.StringVar(&cfg.CacheDir, "cache-dir", "", "where the clone, exported trees and the daemon lock live (default $XDG_CACHE_HOME/hermes-gitops/daemon)")
			fs.StringVar(&gitKeyFile, "git-ssh-key", "", "ssh private key `file` for the git remote (default $HERMES_GIT_SSH_KEY_FILE, else the ssh-agent); passphrase in $HERMES_GIT_SSH_KEY_PASSPHRASE")
			fs.StringVar(&knownHosts, "git-known-hosts", "", "known_hosts `file` verifying the git remote's host key (default $HERMES_GIT_KNOWN_HOSTS, else ~/.ssh/known_hosts)")
			fs.StringVar(&gitUser, "git-user", "", "HTTPS user name sent with the token (default x-access-token)")
			fs.StringVar(&tokenFile, "git-token-file", "", "`file` holding the HTTPS token (default: $HERMES_GIT_TOKEN)")
			fs.DurationVar(&cfg.Interval, "interval", daemon.DefaultInterval, "how often to fetch the remote (or rescan --dir), ±10% jitter")
			fs.DurationVar(&cfg.Resync, "resync", daemon.DefaultResync, "how often to reconcile without a new revision, healing drift on the workers")
			fs.BoolVar(&cfg.Prune, "prune", false, "allow removals: tenants with state deleted and orphans (data archived)")
			fs.BoolVar(&cfg.Force, "force", false, "with --prune: allow removing more than max(1, 10%) of a worker's tenants in one pass")
			fs.BoolVar(&cfg.DryRun, "dry-run", false, "observe and plan, report the status, never apply")
			fs.IntVar(&concurrency, "concurrency", 4, "tenants changed at once per worker")
			fs.DurationVar(&timeout, "timeout", 60*time.Second, "how long a container may take to be up")
			fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", daemon.DefaultShutdownTimeout, "on SIGTERM, how long tenant operations in flight may take to finish")
			fs.DurationVar(&cfg.BackoffBase, "backoff", daemon.DefaultBackoffBase, "first retry delay of a failed tenant, doubled per failure")
			fs.DurationVar(&cfg.BackoffMax, "backoff-max", daemon.DefaultBackoffMax, "longest retry delay of a failed tenant")
			fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:8080", "HTTP `address` (status page, API, metrics, webhooks); empty for none")
			fs.StringVar(&webhookSecret, "webhook-secret", "", "webhook `secret` (prefer $HERMES_WEBHOOK_SECRET or --webhook-secret-file: a flag shows in ps)")
			fs.StringVar(&secretFile, "webhook-secret-file", "", "`file` holding the webhook secret")
			fs.StringVar(&sshKey, "ssh-key", "", "SSH private key `file` for workers (default $HERMES_SSH_KEY_FILE; the ssh-agent is always tried); passphrase in $HERMES_SSH_KEY_PASSPHRASE")
			fs.StringVar(&logFormat, "log-format", "auto", "log `format`: auto (text on a terminal, JSON otherwise), text or json")
			fs.StringVar(&logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
		},
		run: func(ctx context.Context, env *Env, args []string) int {
			if !argsAtMost(env, args, 0, "daemon [FLAGS]") {
				return ExitFailure
			}
			log, err := logging.New(env.Stderr, logFormat, logLevel)
			if err != nil {
				return errorf(env, "%v", err)
			}
			cfg.Dir = dir
			cfg.Logger = log
			cfg.Auth = daemon.GitAuth{
				SSHKeyFile:       cmp.Or(gitKeyFile, env.Getenv("HERMES_GIT_SSH_KEY_FILE")),
				SSHKeyPassphrase: env.Getenv("HERMES_GIT_SSH_KEY_PASSPHRASE"),
				KnownHostsFile:   cmp.Or(knownHosts, env.Getenv("HERMES_GIT_KNOWN_HOSTS")),
				Username:         gitUser,
				Token:            env.Getenv("HERMES_GIT_TOKEN"),
			}
			if tokenFile != "" {
				b, err := os.ReadFile(tokenFile)
				if err != nil {
					return errorf(env, "--git-token-file: %v", err)
				}
				cfg.Auth.Token = strings.TrimSpace(string(b))
			}
			secret := cmp.Or(webhookSecret, env.Getenv("HERMES_WEBHOOK_SECRET"))
			if secretFile != "" {
				b, err := os.ReadFile(secretFile)
				if err != nil {
					return errorf(env, "--webhook-secret-file: %v", err)
				}
				secret = strings.TrimSpace(string(b))
			}
			cfg.WebhookSecret = []byte(secret)
			ids, err := schema.IdentitiesFromEnv()
			if err != nil {
				return errorf(env, "%v", err)
			}
			if ids == nil {
				log.Warn("no age private key configured (SOPS_AGE_KEY_FILE or SOPS_AGE_KEY): tenants with secrets are held")
			}
			cfg.Identities = ids
			cfg.Worker = workerOptions(env, sshKey, "")
			cfg.Apply = apply.Options{Concurrency: concurrency, WaitTimeout: timeout}
			if cfg.Listen != "" && secret == "" {
				log.Info("no webhook secret: POST /hooks/git is disabled (set HERMES_WEBHOOK_SECRET)")
			}
			d, err := daemon.New(cfg)
			if err != nil {
				return errorf(env, "%v", err)
			}
			if err := d.Run(ctx); err != nil {
				log.Error("daemon stopped", "err", err.Error())
				fmt.Fprintf(env.Stderr, "error: %v\n", err)
				return ExitFailure
			}
			return ExitOK
		},
	}
}
