package transport

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/firemountain/hermes-gitops/internal/shellquote"
)

// SSHConfig describes how to reach one worker over SSH.
type SSHConfig struct {
	Name string // the worker's name, for errors
	Host string
	Port int // default 22
	User string

	// HostKey pins the worker's host key: an authorized_keys-style key
	// ("ssh-ed25519 AAAA… comment") or a known_hosts line ("host ssh-ed25519 AAAA…",
	// whose host patterns are not matched: configuration binds the key to this worker).
	// Several lines pin several keys. HostKey, KnownHostsFile or both must be set; a
	// key matching either is accepted. Host keys are always verified.
	HostKey string
	// KnownHostsFile is an OpenSSH known_hosts file looked up for Host:Port.
	KnownHostsFile string

	// KeyFile is an OpenSSH (or PEM) private key; KeyPassphrase decrypts it if it is
	// encrypted.
	KeyFile       string
	KeyPassphrase []byte
	// UseAgent offers the keys of the ssh-agent at AgentSocket, or at $SSH_AUTH_SOCK
	// when AgentSocket is empty. A non-empty AgentSocket implies UseAgent. Key file
	// keys are offered first.
	UseAgent    bool
	AgentSocket string

	DialTimeout       time.Duration // TCP connect plus SSH handshake; default 10s
	KeepAliveInterval time.Duration // keepalive@openssh.com interval; default 30s, negative disables
	MaxSessions       int           // concurrent sessions on the connection; default 8 (sshd allows 10)
}

const (
	defaultDialTimeout = 10 * time.Second
	defaultKeepAlive   = 30 * time.Second
	defaultMaxSessions = 8
)

// sshTransport keeps one SSH connection to the worker, dialled on first use and shared
// by every operation (one session each, at most MaxSessions at once).
type sshTransport struct {
	cfg       SSHConfig
	name      string
	addr      string
	pinned    []ssh.PublicKey
	signers   []ssh.Signer // from KeyFile
	agentSock string

	st  counters
	sem chan struct{} // one token per open session

	dialLock chan struct{} // serialises dialling; a channel so waiting honours ctx
	mu       sync.Mutex    // guards cur and closed
	cur      *sshConn      // the connection, live or dead; nil before the first
	closed   bool

	inFlight, maxInFlight atomic.Int64 // sessions open now / at most so far (tests)
}

// sshConn is one established connection.
type sshConn struct {
	client *ssh.Client
	done   chan struct{} // closed when the connection has ended
	mu     sync.Mutex
	reason error // why we closed it ourselves (keepalive), if we did
}

func (c *sshConn) alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// kill closes the connection, recording why, and waits until it is down.
func (c *sshConn) kill(reason error) {
	c.mu.Lock()
	if c.reason == nil {
		c.reason = reason
	}
	c.mu.Unlock()
	c.client.Close()
	<-c.done
}

func (c *sshConn) why() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

// NewSSH returns a Transport for the worker described by cfg. It checks the
// configuration and reads the key file, but does not connect: the connection is made on
// first use.
func NewSSH(cfg SSHConfig) (Transport, error) {
	name := cfg.Name
	if name == "" {
		name = cfg.Host
	}
	fail := func(format string, args ...any) (Transport, error) {
		return nil, fmt.Errorf("worker %s: "+format, append([]any{name}, args...)...)
	}
	if cfg.Host == "" {
		return fail("no host configured")
	}
	if cfg.User == "" {
		return fail("no user configured")
	}
	if cfg.Port == 0 {
		cfg.Port = 22
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return fail("port %d out of range", cfg.Port)
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = defaultDialTimeout
	}
	if cfg.KeepAliveInterval == 0 {
		cfg.KeepAliveInterval = defaultKeepAlive
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = defaultMaxSessions
	}
	t := &sshTransport{
		cfg:      cfg,
		name:     name,
		addr:     net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)),
		sem:      make(chan struct{}, cfg.MaxSessions),
		dialLock: make(chan struct{}, 1),
	}
	if cfg.HostKey == "" && cfg.KnownHostsFile == "" {
		return fail("%w: set HostKey (a pinned key or known_hosts line) or KnownHostsFile; host keys are never accepted unverified", ErrNoHostKey)
	}
	if cfg.HostKey != "" {
		keys, err := parseHostKeys(cfg.HostKey)
		if err != nil {
			return fail("%w", err)
		}
		t.pinned = keys
	}
	if cfg.KnownHostsFile != "" {
		if _, err := os.Stat(cfg.KnownHostsFile); err != nil {
			return fail("known_hosts file: %w", err)
		}
	}
	if cfg.KeyFile != "" {
		signer, err := loadKey(cfg.KeyFile, cfg.KeyPassphrase)
		if err != nil {
			return fail("%w", err)
		}
		t.signers = []ssh.Signer{signer}
		t.cfg.KeyPassphrase = nil // not kept around once the key is decrypted
	}
	if cfg.UseAgent || cfg.AgentSocket != "" {
		t.agentSock = cfg.AgentSocket
		if t.agentSock == "" {
			t.agentSock = os.Getenv("SSH_AUTH_SOCK")
		}
		if t.agentSock == "" && len(t.signers) == 0 {
			return fail("UseAgent is set but SSH_AUTH_SOCK is empty and no AgentSocket is configured")
		}
	}
	if len(t.signers) == 0 && t.agentSock == "" {
		return fail("no authentication configured: set KeyFile or UseAgent")
	}
	return t, nil
}

// loadKey reads a private key file, decrypting it with passphrase if it is encrypted.
func loadKey(path string, passphrase []byte) (ssh.Signer, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	var missing *ssh.PassphraseMissingError
	switch {
	case err == nil:
		return signer, nil
	case errors.As(err, &missing):
		if len(passphrase) == 0 {
			return nil, fmt.Errorf("key file %s is encrypted and no passphrase is configured", path)
		}
		signer, err = ssh.ParsePrivateKeyWithPassphrase(pem, passphrase)
		if errors.Is(err, x509.IncorrectPasswordError) {
			return nil, fmt.Errorf("key file %s: wrong passphrase: %w", path, err)
		}
		if err != nil {
			return nil, fmt.Errorf("key file %s: %w", path, err)
		}
		return signer, nil
	default:
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
}

func (t *sshTransport) Name() string { return t.name }
func (t *sshTransport) Stats() Stats { return t.st.snapshot() }

func (t *sshTransport) errorf(op string, err error) error {
	return fmt.Errorf("worker %s: %s: %w", t.name, op, err)
}

func (t *sshTransport) Close() error {
	t.mu.Lock()
	t.closed = true
	c := t.cur
	t.mu.Unlock()
	if c != nil && c.alive() {
		c.kill(ErrClosed)
	}
	return nil
}

func (t *sshTransport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// conn returns the live connection, dialling one if there is none (the first use, or
// after a drop, counted in Stats.Reconnects).
func (t *sshTransport) conn(ctx context.Context) (*sshConn, error) {
	t.mu.Lock()
	c, closed := t.cur, t.closed
	t.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if c != nil && c.alive() {
		return c, nil
	}
	select {
	case t.dialLock <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-t.dialLock }()
	t.mu.Lock()
	c = t.cur
	t.mu.Unlock()
	if c != nil && c.alive() {
		return c, nil // another operation dialled while we waited
	}
	nc, err := t.dial(ctx)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		go nc.kill(ErrClosed)
		return nil, ErrClosed
	}
	if t.cur != nil {
		t.st.reconnects.Add(1)
	}
	t.cur = nc
	return nc, nil
}

// dial makes a new connection: TCP, handshake with host key verification, public key
// authentication. It counts one round trip whatever the outcome.
func (t *sshTransport) dial(ctx context.Context) (*sshConn, error) {
	t.st.roundTrips.Add(1)
	verifier, err := newHostKeyVerifier(t.name, t.addr, t.pinned, t.cfg.KnownHostsFile)
	if err != nil {
		return nil, err
	}
	signers := t.signers
	if t.agentSock != "" {
		ac, err := net.DialTimeout("unix", t.agentSock, t.cfg.DialTimeout)
		if err != nil {
			if len(signers) == 0 {
				return nil, fmt.Errorf("ssh-agent at %s: %w", t.agentSock, err)
			}
		} else {
			defer ac.Close()
			agentSigners, err := agent.NewClient(ac).Signers()
			if err != nil && len(signers) == 0 {
				return nil, fmt.Errorf("ssh-agent at %s: %w", t.agentSock, err)
			}
			signers = append(signers[:len(signers):len(signers)], agentSigners...)
		}
	}
	config := &ssh.ClientConfig{
		User: t.cfg.User,
		// One publickey method offering every key: x/crypto tries each method name once.
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signers...)},
		HostKeyCallback:   verifier.check,
		HostKeyAlgorithms: verifier.algorithms(),
		Timeout:           t.cfg.DialTimeout,
	}

	d := net.Dialer{Timeout: t.cfg.DialTimeout}
	raw, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	deadline := time.Now().Add(t.cfg.DialTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	raw.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	cc, chans, reqs, err := ssh.NewClientConn(&countingConn{Conn: raw, st: &t.st}, t.addr, config)
	if !stop() {
		if cc != nil {
			cc.Close()
		}
		raw.Close()
		return nil, ctx.Err()
	}
	if err != nil {
		raw.Close()
		if verifier.refused != nil {
			return nil, verifier.refused
		}
		return nil, fmt.Errorf("connect %s@%s: %w", t.cfg.User, t.addr, err)
	}
	raw.SetDeadline(time.Time{})
	c := &sshConn{client: ssh.NewClient(cc, chans, reqs), done: make(chan struct{})}
	go func() {
		c.client.Wait()
		close(c.done)
	}()
	if t.cfg.KeepAliveInterval > 0 {
		go keepalive(c, t.cfg.KeepAliveInterval)
	}
	return c, nil
}

// keepalive sends keepalive@openssh.com every interval; a request that fails or gets no
// reply within an interval closes the connection, so that a dead link is noticed even
// when no command is running, and running commands fail instead of hanging.
func keepalive(c *sshConn, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-tick.C:
		}
		reply := make(chan error, 1)
		go func() {
			_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		timer := time.NewTimer(interval)
		select {
		case err := <-reply:
			timer.Stop()
			if err != nil {
				c.kill(fmt.Errorf("keepalive: %w", err))
				return
			}
		case <-timer.C:
			c.kill(fmt.Errorf("keepalive: no reply within %v", interval))
			return
		case <-c.done:
			timer.Stop()
			return
		}
	}
}

// countingConn counts the bytes crossing the network into the transport's Stats.
type countingConn struct {
	net.Conn
	st *counters
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.st.received.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.st.sent.Add(int64(n))
	return n, err
}

// acquire takes a session slot, waiting while MaxSessions sessions are open.
func (t *sshTransport) acquire(ctx context.Context) (release func(), err error) {
	select {
	case t.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	n := t.inFlight.Add(1)
	for {
		m := t.maxInFlight.Load()
		if n <= m || t.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			t.inFlight.Add(-1)
			<-t.sem
		})
	}, nil
}

// session opens a session on the connection. When opening fails because the connection
// has died (not because the server refused the channel), it redials and tries once more:
// nothing has run yet, so the retry is safe.
func (t *sshTransport) session(ctx context.Context) (*ssh.Session, *sshConn, error) {
	c, err := t.conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	s, err := c.client.NewSession()
	if err == nil {
		return s, c, nil
	}
	var refused *ssh.OpenChannelError
	if errors.As(err, &refused) {
		return nil, nil, fmt.Errorf("open session: %w", err)
	}
	c.kill(fmt.Errorf("open session: %w", err))
	if c, err = t.conn(ctx); err != nil {
		return nil, nil, err
	}
	if s, err = c.client.NewSession(); err != nil {
		if !errors.As(err, &refused) {
			return nil, nil, fmt.Errorf("open session: %w: %v", ErrConnectionLost, err)
		}
		return nil, nil, fmt.Errorf("open session: %w", err)
	}
	return s, c, nil
}

// lost tells whether err, from an operation on c, came from the connection dying, and
// if so returns the error to report.
func (t *sshTransport) lost(c *sshConn, err error) (error, bool) {
	var src *sourceError
	if errors.As(err, &src) {
		return nil, false // the caller's reader failed, not the connection
	}
	if c.alive() {
		// The session's channel closes a moment before the connection is marked down.
		select {
		case <-c.done:
		case <-time.After(time.Second):
			return nil, false
		}
	}
	if t.isClosed() {
		return fmt.Errorf("%w: %w", ErrClosed, ErrConnectionLost), true
	}
	if why := c.why(); why != nil {
		return fmt.Errorf("%w: %v", ErrConnectionLost, why), true
	}
	return fmt.Errorf("%w: %v", ErrConnectionLost, err), true
}

func (t *sshTransport) Run(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) error {
	op := opName("run", argv)
	line, err := commandLine(argv)
	if err != nil {
		return t.errorf(op, err)
	}
	if t.isClosed() {
		return t.errorf(op, ErrClosed)
	}
	t.st.roundTrips.Add(1)
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	errTail := newTail(stderrTail)
	err = t.exec(ctx, line, stdin, stdout, io.MultiWriter(stderr, errTail), nil)
	return t.result(ctx, op, err, errTail)
}

func (t *sshTransport) Interactive(ctx context.Context, argv []string, in io.Reader, out io.Writer, term string, rows, cols int) error {
	op := opName("interactive", argv)
	line, err := commandLine(argv)
	if err != nil {
		return t.errorf(op, err)
	}
	if t.isClosed() {
		return t.errorf(op, ErrClosed)
	}
	t.st.roundTrips.Add(1)
	if out == nil {
		out = io.Discard
	}
	term, rows, cols = ptyDefaults(term, rows, cols)
	pty := func(s *ssh.Session) error {
		modes := ssh.TerminalModes{ssh.ECHO: 1, ssh.TTY_OP_ISPEED: 38400, ssh.TTY_OP_OSPEED: 38400}
		if err := s.RequestPty(term, rows, cols, modes); err != nil {
			return fmt.Errorf("request pty: %w", err)
		}
		return nil
	}
	// With a pseudo-terminal the remote side merges stderr into stdout.
	err = t.exec(ctx, line, in, out, out, pty)
	return t.result(ctx, op, err, nil)
}

func commandLine(argv []string) (string, error) {
	if len(argv) == 0 || argv[0] == "" {
		return "", errors.New("empty argv")
	}
	return shellquote.Join(argv)
}

// exec runs line in a new session with the given streams, prepare (if any) applied
// to the session before the command starts. On cancellation it sends KILL, closes the
// session and returns at once; the session winds down in the background and writes
// nothing more to stdout/stderr.
func (t *sshTransport) exec(ctx context.Context, line string, stdin io.Reader, stdout, stderr io.Writer, prepare func(*ssh.Session) error) error {
	release, err := t.acquire(ctx)
	if err != nil {
		return err
	}
	s, c, err := t.session(ctx)
	if err != nil {
		release()
		return err
	}
	outGate, errGate := &gate{w: stdout}, &gate{w: stderr}
	if stdin != nil {
		s.Stdin = sourceReader{stdin}
	}
	s.Stdout = outGate
	s.Stderr = errGate
	if prepare != nil {
		if err := prepare(s); err != nil {
			s.Close()
			release()
			if lerr, ok := t.lost(c, err); ok {
				return lerr
			}
			return err
		}
	}
	if err := s.Start(line); err != nil {
		s.Close()
		release()
		if lerr, ok := t.lost(c, err); ok {
			return lerr
		}
		return fmt.Errorf("start: %w", err)
	}
	done := make(chan error, 1)
	go func() {
		done <- s.Wait()
		s.Close()
		release()
	}()
	select {
	case err := <-done:
		if err == nil {
			return nil
		}
		var exit *ssh.ExitError
		if errors.As(err, &exit) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if lerr, ok := t.lost(c, err); ok {
			return lerr
		}
		return err
	case <-ctx.Done():
		// OpenSSH honours a signal request only in a privilege-separated session, which
		// a root login is not; closing the channel is what stops the command then: its
		// stdin/stdout/stderr close, so it meets EOF or SIGPIPE at its next read or
		// write. The session slot is released now rather than when sshd reports the
		// end of a command that may take its time to notice.
		s.Signal(ssh.SIGKILL)
		s.Close()
		outGate.close()
		errGate.close()
		release()
		return ctx.Err()
	}
}

// result turns the outcome of a remote command into the transport's errors.
func (t *sshTransport) result(ctx context.Context, op string, err error, stderr *tail) error {
	if err == nil {
		return nil
	}
	var exit *ssh.ExitError
	if errors.As(err, &exit) {
		x := &ExitError{Code: exit.ExitStatus(), Signal: exit.Signal()}
		if stderr != nil {
			x.Stderr = stderr.String()
		}
		return t.errorf(op, x)
	}
	if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		return t.errorf(op, ctxErr)
	}
	return t.errorf(op, err)
}
