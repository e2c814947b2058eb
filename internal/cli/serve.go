package cli

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"

	"github.com/firemountain/hermes-gitops/internal/logging"
	"github.com/firemountain/hermes-gitops/internal/wizard"
)

func serveCmd() *command {
	var (
		listen, mode, secretsFile, statusURL, logFormat, logLevel string
		githubToken, githubRepo, githubAPI                        string
		gitKey, knownHosts, gitUser, gitTokenFile                 string
		allowed                                                   listFlag
		cfg                                                       wizard.Config
	)
	return &command{
		name:  "serve",
		usage: "serve --repo-url URL --default-worker NAME [--mode direct|review] [--listen ADDR] [FLAGS]",
		short: "the wizard webhook server: signed sign-ups become tenant commits in git",
		long: `Serve runs the webhook server the control planes' sign-up wizards call. A wizard POSTs a
signed JSON submission (agent name, app, owner, provider, API key, bundles, skills,
Telegram, storage) to /v1/submissions; the server builds the tenant file, validates it
with the same rules as 'hermesctl validate' in the context of the repository, encrypts
its secrets with sops for the recipients in the repository's .sops.yaml (it holds only
public keys; the plaintext never touches disk), commits it with go-git and pushes:

  --mode direct   to --branch, which the daemon applies
  --mode review   to a branch wizard/<id>, for a person to merge; with a GitHub token
                  and a github.com remote (or --github-repo) it also opens the pull request

Answers: 202 {tenantId, commit, branch, statusUrl}; 400 field errors; 401 bad signature;
409 id taken (with suggestedTenantId); 413 body over 64 KiB; 429 rate limited; 503 the
repository cannot be written (nothing half-done). GET /v1/submissions/{id}/status says
committed, applied or ready (reading the daemon at --status-url); GET /healthz.

Requests are signed: X-Hermes-Timestamp (unix seconds, at most 5 minutes old) and
X-Hermes-Signature: sha256=HMAC-SHA256(secret, timestamp + "." + body). Shared secrets
come from --secrets-file (one per line; several may be valid at once, for rotation;
SIGHUP re-reads the file) or $HERMES_WIZARD_SECRETS (comma-separated). The API, with a
Node.js signing snippet, is in docs/wizard-api.md.

Git credentials, as for 'hermesctl daemon': --git-ssh-key (or the ssh-agent) with
--git-known-hosts for ssh remotes; for HTTPS the token in $HERMES_GIT_TOKEN or
--git-token-file (else the GitHub token, for a github.com remote).

Examples:
  # production: GitHub over ssh, commits straight to main
  HERMES_WIZARD_SECRETS=$(cat /etc/hermes/wizard-secret) hermesctl serve \
      --repo-url git@github.com:acme/tenants.git --git-ssh-key /etc/hermes/deploy_key \
      --default-worker edge-1 --status-url http://127.0.0.1:8080 --listen 127.0.0.1:8090

  # review mode: branches and pull requests, the token from the environment
  HERMES_GITHUB_TOKEN=... hermesctl serve --mode review \
      --repo-url https://github.com/acme/tenants.git --secrets-file /etc/hermes/wizard-secrets \
      --default-worker edge-1 --allowed-workers edge-2,edge-3

  # try it locally against a bare repository
  git init --bare /tmp/tenants.git   # then push a desired-state repository to it
  HERMES_WIZARD_SECRETS=$(openssl rand -hex 32) hermesctl serve --repo-url /tmp/tenants.git \
      --default-worker local --log-format text`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&listen, "listen", "127.0.0.1:8090", "HTTP `address` to listen on")
			fs.StringVar(&cfg.RepoURL, "repo-url", "", "desired-state git remote `url`: ssh, https, file:// or a local path (required)")
			fs.StringVar(&cfg.Branch, "branch", "main", "the `branch` tenants are added to (direct) or review branches start from (review)")
			fs.StringVar(&cfg.CloneDir, "clone-dir", "", "`dir` of the server's own bare clone (default $XDG_CACHE_HOME/hermes-gitops/wizard-<hash of url and branch>)")
			fs.StringVar(&mode, "mode", "direct", "`mode`: direct (push to --branch) or review (push wizard/<id> for a pull request)")
			fs.StringVar(&secretsFile, "secrets-file", "", "`file` of shared HMAC secrets, one per line, # comments (default $HERMES_WIZARD_SECRETS, comma-separated); SIGHUP re-reads it")
			fs.StringVar(&cfg.AuthorName, "author-name", "hermes-gitops wizard", "commit author `name`")
			fs.StringVar(&cfg.AuthorEmail, "author-email", "wizard@hermes-gitops.invalid", "commit author `email`")
			fs.StringVar(&cfg.DefaultWorker, "default-worker", "", "the worker of every submission that names none (required)")
			fs.Var(&allowed, "allowed-workers", "other workers a submission may name (repeatable, or comma-separated)")
			fs.StringVar(&statusURL, "status-url", "", "the daemon's base `url`, for GET {url}/v1/tenants/{id} (optional; without it the status stops at committed)")
			fs.StringVar(&githubToken, "github-token", "", "GitHub `token` to open pull requests in review mode (prefer $HERMES_GITHUB_TOKEN: a flag shows in ps)")
			fs.StringVar(&githubRepo, "github-repo", "", "GitHub `owner/name` for pull requests (default: from a github.com --repo-url)")
			fs.StringVar(&githubAPI, "github-api-url", "https://api.github.com", "GitHub API base `url` (GitHub Enterprise: https://HOST/api/v3)")
			fs.StringVar(&gitKey, "git-ssh-key", "", "ssh private key `file` for the git remote (default $HERMES_GIT_SSH_KEY_FILE, else the ssh-agent); passphrase in $HERMES_GIT_SSH_KEY_PASSPHRASE")
			fs.StringVar(&knownHosts, "git-known-hosts", "", "known_hosts `file` verifying the git remote's host key (default $HERMES_GIT_KNOWN_HOSTS, else ~/.ssh/known_hosts)")
			fs.StringVar(&gitUser, "git-user", "x-access-token", "HTTPS user `name` sent with the token")
			fs.StringVar(&gitTokenFile, "git-token-file", "", "`file` holding the HTTPS token (default $HERMES_GIT_TOKEN)")
			fs.Float64Var(&cfg.RateLimit, "rate-limit", 5, "requests per second per client IP on /v1 (token bucket); 0 disables")
			fs.IntVar(&cfg.RateBurst, "rate-burst", 20, "requests a client may make at once before --rate-limit applies")
			fs.DurationVar(&cfg.FetchInterval, "fetch-interval", 15*time.Second, "fetch before a submission when the clone is older than this (a push is a compare-and-swap either way); 0: always")
			fs.IntVar(&cfg.PushAttempts, "push-attempts", 5, "fetch-rebuild-push attempts of one submission before 503")
			fs.DurationVar(&cfg.IdempotencyTTL, "idempotency-ttl", 24*time.Hour, "how long an accepted submission's answer is replayed for a retry")
			fs.StringVar(&logFormat, "log-format", "auto", "log `format`: auto (text on a terminal, JSON otherwise), text or json")
			fs.StringVar(&logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
		},
		run: func(ctx context.Context, env *Env, args []string) int {
			if !argsAtMost(env, args, 0, "serve [FLAGS]") {
				return ExitFailure
			}
			if cfg.RepoURL == "" {
				return errorf(env, "--repo-url is required\nUsage: hermesctl serve --repo-url URL --default-worker NAME")
			}
			if cfg.DefaultWorker == "" {
				return errorf(env, "--default-worker is required: the worker new tenants run on")
			}
			cfg.Mode = wizard.Mode(mode)
			if cfg.Mode != wizard.ModeDirect && cfg.Mode != wizard.ModeReview {
				return errorf(env, "--mode must be direct or review, not %q", mode)
			}
			cfg.AllowedWorkers = allowed
			log, err := logging.New(env.Stderr, logFormat, logLevel)
			if err != nil {
				return errorf(env, "%v", err)
			}
			cfg.Logger = log
			secrets, err := loadWizardSecrets(env, secretsFile, log)
			if err != nil {
				return errorf(env, "%v", err)
			}
			cfg.Secrets = secrets

			// Credentials: every value is also registered to be scrubbed from logs.
			ghToken := cmp.Or(githubToken, env.Getenv("HERMES_GITHUB_TOKEN"))
			gitToken := env.Getenv("HERMES_GIT_TOKEN")
			if gitTokenFile != "" {
				b, err := os.ReadFile(gitTokenFile)
				if err != nil {
					return errorf(env, "--git-token-file: %v", err)
				}
				gitToken = strings.TrimSpace(string(b))
			}
			if gitToken == "" && wizard.GitHubRepoFromURL(cfg.RepoURL) != "" {
				gitToken = ghToken
			}
			cfg.Redact = []string{ghToken, gitToken}
			cfg.GitAuth, err = gitAuth(cfg.RepoURL, gitUser, gitToken,
				cmp.Or(gitKey, env.Getenv("HERMES_GIT_SSH_KEY_FILE")), env.Getenv("HERMES_GIT_SSH_KEY_PASSPHRASE"),
				cmp.Or(knownHosts, env.Getenv("HERMES_GIT_KNOWN_HOSTS")))
			if err != nil {
				return errorf(env, "%v", err)
			}
			if ghToken != "" && cfg.Mode == wizard.ModeReview {
				repo := cmp.Or(githubRepo, wizard.GitHubRepoFromURL(cfg.RepoURL))
				if repo == "" {
					log.Warn("a GitHub token is set but the remote is not on github.com and --github-repo is not set: pull requests are not opened")
				} else {
					cfg.GitHub = &wizard.GitHub{Token: ghToken, Repo: repo, APIURL: githubAPI}
				}
			}
			if statusURL != "" {
				u, err := url.Parse(statusURL)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return errorf(env, "--status-url must be an http(s) URL, not %q", statusURL)
				}
				cfg.Status = wizard.HTTPStatus{BaseURL: statusURL}
			}
			if cfg.CloneDir == "" {
				dir, err := os.UserCacheDir()
				if err != nil {
					return errorf(env, "no --clone-dir and no cache directory: %v", err)
				}
				sum := sha256.Sum256([]byte(cfg.RepoURL + "\x00" + cfg.Branch))
				cfg.CloneDir = filepath.Join(dir, "hermes-gitops", "wizard-"+hex.EncodeToString(sum[:6]))
			}

			srv, err := wizard.New(ctx, cfg)
			if err != nil {
				return errorf(env, "%v", err)
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return errorf(env, "--listen: %v", err)
			}
			hs := &http.Server{
				Handler:           srv.Handler(),
				ReadHeaderTimeout: 5 * time.Second,
				ReadTimeout:       30 * time.Second,
				WriteTimeout:      3 * time.Minute, // a submission may wait for the ones before it
				IdleTimeout:       2 * time.Minute,
				MaxHeaderBytes:    16 << 10,
				ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
			}
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for range hup {
					s, err := loadWizardSecrets(env, secretsFile, log)
					if err != nil {
						log.Error("SIGHUP: secrets not reloaded; the old ones stay valid", "err", err.Error())
						continue
					}
					srv.SetSecrets(s)
					log.Info("SIGHUP: shared secrets reloaded", "count", len(s))
				}
			}()
			errc := make(chan error, 1)
			go func() { errc <- hs.Serve(ln) }()
			log.Info("listening", "addr", ln.Addr().String(), "mode", mode, "rate_limit", cfg.RateLimit)
			select {
			case err := <-errc:
				return errorf(env, "serve: %v", err)
			case <-ctx.Done():
			}
			log.Info("shutting down: finishing the submissions in flight")
			sctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if err := hs.Shutdown(sctx); err != nil {
				return errorf(env, "shutdown: %v", err)
			}
			return ExitOK
		},
	}
}

// loadWizardSecrets reads the shared secrets from the file, else from the environment.
func loadWizardSecrets(env *Env, file string, log *slog.Logger) ([][]byte, error) {
	if file != "" {
		info, err := os.Stat(file)
		if err != nil {
			return nil, fmt.Errorf("--secrets-file: %w", err)
		}
		if info.Mode().Perm()&0o077 != 0 {
			log.Warn("the secrets file is readable by other users; chmod 600 it", "file", file)
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--secrets-file: %w", err)
		}
		s, err := wizard.ParseSecrets(string(data), "\n")
		if err != nil {
			return nil, fmt.Errorf("--secrets-file %s: %w", file, err)
		}
		return s, nil
	}
	v := env.Getenv("HERMES_WIZARD_SECRETS")
	if v == "" {
		return nil, errors.New("no shared secret: set --secrets-file or HERMES_WIZARD_SECRETS (generate one with 'openssl rand -hex 32')")
	}
	s, err := wizard.ParseSecrets(v, ",")
	if err != nil {
		return nil, fmt.Errorf("HERMES_WIZARD_SECRETS: %w", err)
	}
	return s, nil
}

// gitAuth picks the credentials for the remote: a token for HTTPS, a key file (or the
// ssh-agent) for ssh, verified against known_hosts.
func gitAuth(remote, user, token, keyFile, passphrase, knownHosts string) (transport.AuthMethod, error) {
	ep, err := transport.NewEndpoint(remote)
	if err != nil {
		return nil, fmt.Errorf("--repo-url: %w", err)
	}
	switch ep.Protocol {
	case "http", "https":
		if token == "" {
			return nil, nil
		}
		return &githttp.BasicAuth{Username: user, Password: token}, nil
	case "ssh":
		sshUser := cmp.Or(ep.User, "git")
		var auth transport.AuthMethod
		if keyFile != "" {
			k, err := gitssh.NewPublicKeysFromFile(sshUser, keyFile, passphrase)
			if err != nil {
				return nil, fmt.Errorf("--git-ssh-key: %w", err)
			}
			if knownHosts != "" {
				if k.HostKeyCallback, err = gitssh.NewKnownHostsCallback(knownHosts); err != nil {
					return nil, fmt.Errorf("--git-known-hosts: %w", err)
				}
			}
			auth = k
		} else {
			a, err := gitssh.NewSSHAgentAuth(sshUser)
			if err != nil {
				return nil, fmt.Errorf("no --git-ssh-key and no ssh-agent: %w", err)
			}
			if knownHosts != "" {
				if a.HostKeyCallback, err = gitssh.NewKnownHostsCallback(knownHosts); err != nil {
					return nil, fmt.Errorf("--git-known-hosts: %w", err)
				}
			}
			auth = a
		}
		return auth, nil
	}
	return nil, nil
}
