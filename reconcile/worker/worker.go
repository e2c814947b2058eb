// Package worker connects to a worker and talks to its agent: one JSON request per round
// trip, over the worker's transport (ssh), or in-process when hermesctl runs on the worker
// itself (transport local). On first contact over ssh it uploads the agent binary, cached
// on the worker by digest.
package worker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/firemountain/hermes-gitops/reconcile/agent"
	"github.com/firemountain/hermes-gitops/reconcile/live"
	"github.com/firemountain/hermes-gitops/reconcile/transport"
	"github.com/firemountain/hermes-gitops/schema"
)

// Options configure connections to workers. Zero values take the defaults.
type Options struct {
	// KeyFile and KeyPassphrase are the SSH private key (HERMES_SSH_KEY_FILE,
	// HERMES_SSH_KEY_PASSPHRASE); the ssh-agent at $SSH_AUTH_SOCK is always offered too.
	KeyFile       string
	KeyPassphrase []byte
	AgentSocket   string
	// RepoDir resolves a worker's relative knownHostsFile.
	RepoDir string
	// Agent is the agent binary uploaded to ssh workers (default: FindAgentBinary).
	Agent *AgentBinary
	// MaxSessions bounds concurrent operations on one worker (default 8).
	MaxSessions int
}

// Conn is a connection to one worker's agent.
type Conn struct {
	Name      string
	Spec      *schema.Worker
	Transport transport.Transport
	local     bool
	agentBin  *AgentBinary
	opts      Options

	installMu sync.Mutex
	installed bool
	calls     atomic.Int64 // in-process round trips
}

// Dial prepares a connection (ssh connects lazily on first use).
func Dial(w *schema.Worker, opts Options) (*Conn, error) {
	c := &Conn{Name: w.Metadata.Name, Spec: w, opts: opts}
	switch w.Spec.Transport {
	case schema.TransportLocal:
		c.local = true
		c.Transport = transport.NewLocal(w.Metadata.Name)
		return c, nil
	case schema.TransportSSH, "":
		known := w.Spec.KnownHostsFile
		if known != "" && !filepath.IsAbs(known) && opts.RepoDir != "" {
			known = filepath.Join(opts.RepoDir, known)
		}
		t, err := transport.NewSSH(transport.SSHConfig{
			Name: w.Metadata.Name, Host: w.Spec.Host, Port: w.Spec.Port, User: w.Spec.User,
			HostKey: w.Spec.HostKey, KnownHostsFile: known,
			KeyFile: opts.KeyFile, KeyPassphrase: opts.KeyPassphrase,
			UseAgent: true, AgentSocket: opts.AgentSocket, MaxSessions: opts.MaxSessions,
		})
		if err != nil {
			return nil, err
		}
		c.Transport = t
		c.agentBin = opts.Agent
		return c, nil
	}
	return nil, fmt.Errorf("worker %s: unknown transport %q", w.Metadata.Name, w.Spec.Transport)
}

// StateDir is where the agent keeps its state on the worker.
func (c *Conn) StateDir() string { return path.Join(c.Spec.Spec.TenantRoot, ".hermes-gitops") }

// LockStep takes or renews the worker's apply lock for owner until ttl from now.
func (c *Conn) LockStep(owner string, ttl time.Duration) agent.Step {
	return agent.Step{Op: agent.OpLock, Path: agent.LockPath(c.StateDir()), LockOwner: owner, LockTTLSecs: int(ttl.Seconds())}
}

// UnlockStep releases the worker's apply lock if owner holds it.
func (c *Conn) UnlockStep(owner string) agent.Step {
	return agent.Step{Op: agent.OpUnlock, Path: agent.LockPath(c.StateDir()), LockOwner: owner}
}

// RoundTrips counts round trips so far: transport calls and connection setups over ssh,
// agent calls in-process.
func (c *Conn) RoundTrips() int64 {
	if c.local {
		return c.calls.Load()
	}
	return c.Transport.Stats().RoundTrips
}

// Close closes the transport.
func (c *Conn) Close() error { return c.Transport.Close() }

// Call sends one request to the agent and returns its response.
func (c *Conn) Call(ctx context.Context, req *agent.Request) (*agent.Response, error) {
	req.Protocol = agent.ProtocolVersion
	var resp *agent.Response
	if c.local {
		c.calls.Add(1)
		// Round-trip through JSON as the remote path does, so that both behave alike
		// (and nothing that does not serialise slips through).
		data, err := json.Marshal(req)
		if err != nil {
			return nil, err
		}
		var r agent.Request
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, err
		}
		resp = agent.Handle(ctx, &r)
	} else {
		var err error
		if resp, err = c.remoteCall(ctx, req); err != nil {
			return nil, err
		}
	}
	if resp.Error != "" {
		return resp, fmt.Errorf("worker %s: agent: %s", c.Name, resp.Error)
	}
	return resp, nil
}

func (c *Conn) remoteCall(ctx context.Context, req *agent.Request) (*agent.Response, error) {
	bin := c.agentBin
	if bin == nil {
		var err error
		if bin, err = FindAgentBinary(); err != nil {
			return nil, fmt.Errorf("worker %s: %w", c.Name, err)
		}
		c.agentBin = bin
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	remote := path.Join(c.Spec.Spec.AgentDir, "hermes-agent-"+bin.Digest[:16])
	argv := append([]string{remote}, bin.Args...)
	for attempt := 0; ; attempt++ {
		var stdout, stderr bytes.Buffer
		err := c.Transport.Run(ctx, argv, bytes.NewReader(body), &stdout, &stderr)
		var exit *transport.ExitError
		if errors.As(err, &exit) && (exit.Code == 127 || exit.Code == 126) && attempt == 0 {
			if err := c.install(ctx, bin, remote); err != nil {
				return nil, fmt.Errorf("worker %s: %w", c.Name, err)
			}
			continue
		}
		if err != nil {
			return nil, err // the transport's errors name the worker already
		}
		var resp agent.Response
		if err := json.Unmarshal(stdout.Bytes(), &resp); err != nil {
			return nil, fmt.Errorf("worker %s: the agent answered something that is not a response (%v): %.200s", c.Name, err, stderr.String())
		}
		return &resp, nil
	}
}

// install uploads the agent binary once per connection.
func (c *Conn) install(ctx context.Context, bin *AgentBinary, remote string) error {
	c.installMu.Lock()
	defer c.installMu.Unlock()
	if c.installed {
		return nil
	}
	f, err := os.Open(bin.Path)
	if err != nil {
		return fmt.Errorf("agent binary: %w", err)
	}
	defer f.Close()
	if err := c.Transport.Upload(ctx, remote, f, 0o755, -1, -1); err != nil {
		return fmt.Errorf("install agent: %w", err)
	}
	c.installed = true
	return nil
}

// Observe collects the worker's live state in one round trip.
func (c *Conn) Observe(ctx context.Context, apps []agent.AppRoot, scaffold []string) (*live.Worker, error) {
	w, _, err := c.ObserveAfter(ctx, nil, apps, scaffold)
	return w, err
}

// ObserveAfter runs steps (a lock, typically) and then observes, in the same round trip.
// A failed step does not prevent the observation; its result says what happened.
func (c *Conn) ObserveAfter(ctx context.Context, steps []agent.Step, apps []agent.AppRoot, scaffold []string) (*live.Worker, []agent.StepResult, error) {
	resp, err := c.Call(ctx, &agent.Request{Steps: steps, Observe: &agent.ObserveRequest{
		Worker: c.Name, StateDir: c.StateDir(), Apps: apps, Scaffold: scaffold,
	}})
	if err != nil {
		return nil, nil, err
	}
	if resp.Observed == nil || len(resp.Steps) != len(steps) {
		return nil, nil, fmt.Errorf("worker %s: agent returned no observation", c.Name)
	}
	resp.Observed.FingerprintKey = resp.FingerprintKey
	return resp.Observed, resp.Steps, nil
}

// Steps runs a batch of steps in one round trip.
func (c *Conn) Steps(ctx context.Context, steps []agent.Step) ([]agent.StepResult, error) {
	resp, err := c.Call(ctx, &agent.Request{Steps: steps})
	if err != nil {
		return nil, err
	}
	if len(resp.Steps) != len(steps) {
		return nil, fmt.Errorf("worker %s: agent answered %d results for %d steps", c.Name, len(resp.Steps), len(steps))
	}
	return resp.Steps, nil
}

// Interactive runs argv on the worker attached to in and out, for a command that talks to
// a person (hermesctl auth login): over ssh with a pseudo-terminal of type term and size
// rows×cols, locally without one (see transport.Transport.Interactive). It counts one
// round trip.
func (c *Conn) Interactive(ctx context.Context, argv []string, in io.Reader, out io.Writer, term string, rows, cols int) error {
	if c.local {
		c.calls.Add(1)
	}
	return c.Transport.Interactive(ctx, argv, in, out, term, rows, cols)
}

// Local reports whether the worker is this machine (transport local): no
// pseudo-terminal is available for Interactive there.
func (c *Conn) Local() bool { return c.local }

// AgentBinary is the program uploaded to ssh workers.
type AgentBinary struct {
	Path   string
	Digest string   // hex sha256 of the file
	Args   []string // arguments that make it serve one request ("run" or "agent run")
}

// NewAgentBinary describes an agent binary file; args make it serve one request.
func NewAgentBinary(p string, args ...string) (*AgentBinary, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return &AgentBinary{Path: p, Digest: hex.EncodeToString(h.Sum(nil)), Args: args}, nil
}

var (
	findOnce sync.Once
	found    *AgentBinary
	findErr  error
)

// FindAgentBinary locates the agent for linux workers: $HERMES_AGENT_BINARY, then
// hermes-agent-linux-<arch> or hermes-agent next to hermesctl (make build puts them
// there), then hermesctl itself when it is a linux binary (it serves as the agent with
// "agent run").
func FindAgentBinary() (*AgentBinary, error) {
	findOnce.Do(func() {
		if p := os.Getenv("HERMES_AGENT_BINARY"); p != "" {
			found, findErr = NewAgentBinary(p, "run")
			return
		}
		self, err := os.Executable()
		if err != nil {
			findErr = err
			return
		}
		dir := filepath.Dir(self)
		for _, name := range []string{"hermes-agent-linux-" + runtime.GOARCH, "hermes-agent"} {
			if p := filepath.Join(dir, name); fileExists(p) {
				found, findErr = NewAgentBinary(p, "run")
				return
			}
		}
		if runtime.GOOS == "linux" {
			found, findErr = NewAgentBinary(self, "agent", "run")
			return
		}
		findErr = fmt.Errorf("no agent binary for linux workers: build it with 'make build' (bin/hermes-agent-linux-amd64) or set HERMES_AGENT_BINARY")
	})
	return found, findErr
}

func fileExists(p string) bool {
	info, err := os.Stat(p)
	return err == nil && info.Mode().IsRegular()
}
