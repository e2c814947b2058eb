// Package daemon is `hermesctl daemon`: it keeps every worker equal to git, all the time.
// It takes the desired state from a git remote (go-git, fetched on an interval and on
// push webhooks) or a local directory (fsnotify), reconciles on every new revision and on
// a resync interval, self-heals what apply fixes without deleting, and says what it is
// doing: a status per tenant (JSON and Go), Prometheus metrics, a status page and one log
// line per reconcile. docs/daemon.md is the operator's guide.
//
// The files follow the jobs: source*.go (git and directory sources), loop.go (the
// reconcile loop, backoff), status.go (tenant phases), http.go (the listener and
// webhooks), metrics.go, page.go (the status page), lock.go (one daemon per cache dir).
package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/firemountain/hermes-gitops/reconcile"
	"github.com/firemountain/hermes-gitops/reconcile/apply"
	"github.com/firemountain/hermes-gitops/reconcile/worker"
	"github.com/firemountain/hermes-gitops/schema"
)

// Defaults of Config.
const (
	DefaultInterval        = time.Minute
	DefaultResync          = 10 * time.Minute
	DefaultDebounce        = 300 * time.Millisecond
	DefaultShutdownTimeout = 60 * time.Second
	DefaultBackoffBase     = 15 * time.Second
	DefaultBackoffMax      = 15 * time.Minute
	DefaultLockRetry       = 5 * time.Second
	DefaultBranch          = "main"
	// MaxWebhookBody is the largest webhook body accepted (413 beyond).
	MaxWebhookBody = 1 << 20
	// historySize is how many reconciles the status page keeps.
	historySize = 20
)

// Config is everything a daemon needs. Exactly one of GitURL and Dir is set.
type Config struct {
	// GitURL is the desired-state remote (ssh://, git@host:path, https://, file:// or a
	// path). Branch (default main) or Tag selects what is applied.
	GitURL string
	Branch string
	Tag    string
	Auth   GitAuth
	// Dir is a local desired-state directory, watched for changes.
	Dir string
	// CacheDir holds the clone, the exported trees and the daemon lock.
	CacheDir string

	// Interval is how often the source is fetched (git) or rescanned (dir), ±10%.
	Interval time.Duration
	// Resync is how often the workers are reconciled without a new revision.
	Resync time.Duration
	// Debounce is how long a directory must be quiet before it is reloaded.
	Debounce time.Duration

	// Prune allows removals: tenants with state deleted and orphans (data archived).
	Prune bool
	// Force lifts the deletion limit (max(1, 10%) of a worker's tenants per pass).
	Force bool
	// DryRun observes and plans, and never applies.
	DryRun bool
	// Apply tunes the applier (Concurrency: tenants at once per worker). LockOwner
	// is set by the daemon when empty.
	Apply apply.Options
	// ShutdownTimeout bounds how long in-flight tenant operations may run after SIGTERM.
	ShutdownTimeout time.Duration
	// BackoffBase and BackoffMax bound the per-tenant retry delay after a failed apply.
	BackoffBase, BackoffMax time.Duration
	// LockRetry is how soon a pass retries when another applier holds a worker.
	LockRetry time.Duration

	// Identities decrypt tenant secrets (nil: tenants with secrets are held).
	Identities *schema.Identities
	// Worker configures the connections to workers (RepoDir is set by the daemon).
	Worker worker.Options

	// Listen is the HTTP address ("" for none; "127.0.0.1:0" picks a port).
	Listen string
	// WebhookSecret verifies push webhooks; empty disables POST /hooks/git.
	WebhookSecret []byte
	// Logger receives the daemon's log (default: JSON on stderr).
	Logger *slog.Logger
}

// GitAuth authenticates to the git remote: an ssh key checked against known_hosts, or an
// HTTPS token. Nothing is needed for file remotes.
type GitAuth struct {
	SSHKeyFile       string
	SSHKeyPassphrase string
	// KnownHostsFile verifies the remote's host key (default ~/.ssh/known_hosts).
	KnownHostsFile string
	// Username and Token are HTTPS basic auth (Username default "x-access-token").
	Username string
	Token    string
}

func (c *Config) defaults() error {
	if (c.GitURL == "") == (c.Dir == "") {
		return errors.New("daemon: set exactly one source: a git remote (--git-url) or a local directory (--dir)")
	}
	if c.Tag != "" && c.Branch != "" {
		return errors.New("daemon: --branch and --tag are exclusive")
	}
	if c.GitURL != "" && c.Tag == "" && c.Branch == "" {
		c.Branch = DefaultBranch
	}
	if c.CacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return fmt.Errorf("daemon: no cache dir: %w; set --cache-dir", err)
		}
		c.CacheDir = filepath.Join(dir, "hermes-gitops", "daemon")
	}
	abs, err := filepath.Abs(c.CacheDir)
	if err != nil {
		return err
	}
	c.CacheDir = abs
	if c.Dir != "" {
		if c.Dir, err = filepath.Abs(c.Dir); err != nil {
			return err
		}
	}
	setDefault(&c.Interval, DefaultInterval)
	setDefault(&c.Resync, DefaultResync)
	setDefault(&c.Debounce, DefaultDebounce)
	setDefault(&c.ShutdownTimeout, DefaultShutdownTimeout)
	setDefault(&c.BackoffBase, DefaultBackoffBase)
	setDefault(&c.BackoffMax, DefaultBackoffMax)
	setDefault(&c.LockRetry, DefaultLockRetry)
	if c.BackoffMax < c.BackoffBase {
		c.BackoffMax = c.BackoffBase
	}
	if c.Apply.Concurrency <= 0 {
		c.Apply.Concurrency = 4
	}
	if c.Apply.LockOwner == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		// Unique per daemon: two daemons in one process must not share a lock owner (the
		// agent renews a lock for its owner instead of refusing it).
		c.Apply.LockOwner = fmt.Sprintf("hermesctl daemon %s pid %d #%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	return nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// Daemon is one running reconciler. Create it with New, run it with Run; the status
// methods (Tenants, TenantStatus, Status) are safe to call from any goroutine.
type Daemon struct {
	cfg     Config
	log     *slog.Logger
	src     source
	pool    *reconcile.Pool
	metrics *metrics
	ln      net.Listener
	srv     *http.Server
	kick    chan string // a fetch+reconcile request (webhook); buffered, coalescing
	started time.Time

	loop loopState // owned by the Run goroutine

	mu sync.RWMutex
	st state // what the status API and page show
}

// New checks the configuration, prepares the source and binds the HTTP listener (so
// that Addr is known at once). Nothing is fetched or observed until Run.
func New(cfg Config) (*Daemon, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, log: cfg.Logger, kick: make(chan string, 1), started: time.Now()}
	d.loop.init()
	d.st.tenants = map[string]TenantStatus{}
	d.metrics = newMetrics()
	var repoDir string
	if cfg.GitURL != "" {
		d.src = newGitSource(cfg, d.log)
		repoDir = filepath.Join(cfg.CacheDir, currentLink)
	} else {
		d.src = newDirSource(cfg, d.log)
		repoDir = cfg.Dir
	}
	d.st.source = SourceInfo{Kind: d.src.kind(), Location: d.src.location(), Ref: d.src.ref()}
	wopts := cfg.Worker
	wopts.RepoDir = repoDir
	d.pool = reconcile.NewPool(wopts)
	if cfg.Listen != "" {
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("daemon: listen on %s: %w", cfg.Listen, err)
		}
		d.ln = ln
		d.srv = &http.Server{
			Handler:           d.Handler(),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelWarn),
		}
	}
	return d, nil
}

// Addr is the address the HTTP listener is bound to ("" without one).
func (d *Daemon) Addr() string {
	if d.ln == nil {
		return ""
	}
	return d.ln.Addr().String()
}

// Trigger asks for an immediate fetch and reconcile, as a push webhook does. Requests
// made while one is pending are coalesced.
func (d *Daemon) Trigger(reason string) {
	select {
	case d.kick <- reason:
	default:
	}
}

// Run serves HTTP, takes the daemon lock, and reconciles until ctx is cancelled (SIGTERM
// or SIGINT in hermesctl). Then it stops taking work, lets the tenant operations in flight
// finish for at most ShutdownTimeout, and returns nil. An error means the daemon could
// not start.
func (d *Daemon) Run(ctx context.Context) error {
	if d.srv != nil {
		go func() {
			if err := d.srv.Serve(d.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.log.Error("http server stopped", "err", err)
			}
		}()
		d.log.Info("listening", "addr", d.Addr())
	}
	defer d.stopHTTP()
	defer d.pool.Close()

	unlock, err := d.lockCacheDir(ctx)
	if err != nil {
		return err
	}
	if unlock == nil {
		return nil // cancelled while waiting for the lock
	}
	defer unlock()
	defer d.src.close()
	if err := d.src.open(ctx); err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	return d.runLoop(ctx)
}

func (d *Daemon) stopHTTP() {
	if d.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = d.srv.Shutdown(ctx)
}
