package transport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/firemountain/hermes-gitops/internal/testenv"
)

func TestSSHHostKeyMismatch(t *testing.T) {
	s := testenv.StartSSHD(t)
	_, other := newKey(t)
	cfg := sshConfig(s, s.Addr())
	cfg.HostKey = string(ssh.MarshalAuthorizedKey(other.PublicKey()))
	tr := newSSH(t, cfg)
	_, _, err := run(t, tr, "true")
	var mm *HostKeyMismatchError
	if !errors.As(err, &mm) {
		t.Fatalf("err = %v, want a *HostKeyMismatchError", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"worker edge-1: run true: host key mismatch at " + s.Addr(),
		ssh.FingerprintSHA256(s.HostPublicKey),   // presented
		ssh.FingerprintSHA256(other.PublicKey()), // expected
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if mm.Worker != "edge-1" || mm.Addr != s.Addr() || mm.Presented != ssh.FingerprintSHA256(s.HostPublicKey) {
		t.Errorf("mismatch error fields: %+v", mm)
	}
	if st := tr.Stats(); st.RoundTrips != 2 {
		t.Errorf("RoundTrips = %d, want 2 (the call and the refused connection)", st.RoundTrips)
	}
}

func TestSSHNoHostKey(t *testing.T) {
	_, err := NewSSH(SSHConfig{Name: "edge-1", Host: "127.0.0.1", User: "root", KeyFile: "/nonexistent"})
	if !errors.Is(err, ErrNoHostKey) || !strings.HasPrefix(err.Error(), "worker edge-1: no host key configured") {
		t.Errorf("err = %v, want ErrNoHostKey", err)
	}
}

func TestSSHConfigErrors(t *testing.T) {
	s := testenv.StartSSHD(t)
	for name, mutate := range map[string]func(*SSHConfig){
		"no host":        func(c *SSHConfig) { c.Host = "" },
		"no user":        func(c *SSHConfig) { c.User = "" },
		"bad host key":   func(c *SSHConfig) { c.HostKey = "ssh-ed25519 notbase64!" },
		"no auth":        func(c *SSHConfig) { c.KeyFile = "" },
		"no key file":    func(c *SSHConfig) { c.KeyFile = "/nonexistent/key" },
		"no known_hosts": func(c *SSHConfig) { c.HostKey = ""; c.KnownHostsFile = "/nonexistent/known_hosts" },
		"revoked marker": func(c *SSHConfig) { c.HostKey = "@revoked " + s.HostKeyLine },
	} {
		cfg := sshConfig(s, s.Addr())
		mutate(&cfg)
		if _, err := NewSSH(cfg); err == nil || !strings.HasPrefix(err.Error(), "worker edge-1: ") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestSSHHostKeyForms(t *testing.T) {
	s := testenv.StartSSHD(t)
	_, other := newKey(t)
	knownHosts := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(knownHosts, []byte("# comment\n"+s.HostKeyLine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*SSHConfig){
		"authorized_keys line": func(c *SSHConfig) {
			c.HostKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.HostPublicKey))) + " root@worker"
		},
		"known_hosts line":    func(c *SSHConfig) { c.HostKey = s.HostKeyLine },
		"several pinned keys": func(c *SSHConfig) { c.HostKey = string(ssh.MarshalAuthorizedKey(other.PublicKey())) + s.HostKeyLine },
		"known_hosts file":    func(c *SSHConfig) { c.HostKey = ""; c.KnownHostsFile = knownHosts },
		"pinned key and file": func(c *SSHConfig) {
			c.HostKey = string(ssh.MarshalAuthorizedKey(other.PublicKey()))
			c.KnownHostsFile = knownHosts
		},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := sshConfig(s, s.Addr())
			mutate(&cfg)
			if out := mustRun(t, newSSH(t, cfg), "echo", "ok"); out != "ok\n" {
				t.Errorf("echo ok = %q", out)
			}
		})
	}
}

func TestSSHKnownHostsFileRefusals(t *testing.T) {
	s := testenv.StartSSHD(t)
	_, other := newKey(t)
	dir := t.TempDir()

	// The file has another key for this host: a mismatch naming the file and line.
	wrong := filepath.Join(dir, "wrong")
	line := strings.Replace(s.HostKeyLine, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.HostPublicKey))),
		strings.TrimSpace(string(ssh.MarshalAuthorizedKey(other.PublicKey()))), 1)
	os.WriteFile(wrong, []byte(line+"\n"), 0o600)
	cfg := sshConfig(s, s.Addr())
	cfg.HostKey, cfg.KnownHostsFile = "", wrong
	_, _, err := run(t, newSSH(t, cfg), "true")
	var mm *HostKeyMismatchError
	if !errors.As(err, &mm) || !strings.Contains(err.Error(), ssh.FingerprintSHA256(other.PublicKey())+" ("+wrong+":1)") ||
		!strings.Contains(err.Error(), ssh.FingerprintSHA256(s.HostPublicKey)) {
		t.Errorf("err = %v, want a mismatch with both fingerprints", err)
	}

	// The file knows other hosts only: unknown host.
	unknown := filepath.Join(dir, "unknown")
	os.WriteFile(unknown, []byte("[10.9.9.9]:22 "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.HostPublicKey)))+"\n"), 0o600)
	cfg.KnownHostsFile = unknown
	_, _, err = run(t, newSSH(t, cfg), "true")
	if !errors.Is(err, ErrHostKeyUnknown) || !strings.Contains(err.Error(), s.Addr()) {
		t.Errorf("err = %v, want ErrHostKeyUnknown naming %s", err, s.Addr())
	}
}

func TestSSHAgentAuth(t *testing.T) {
	s := testenv.StartSSHD(t)
	priv, err := ssh.ParseRawPrivateKey(mustRead(t, s.UserKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	sock := startAgent(t, priv)

	t.Run("AgentSocket", func(t *testing.T) {
		cfg := sshConfig(s, s.Addr())
		cfg.KeyFile, cfg.UseAgent, cfg.AgentSocket = "", true, sock
		if out := mustRun(t, newSSH(t, cfg), "echo", "agent"); out != "agent\n" {
			t.Errorf("echo agent = %q", out)
		}
	})
	t.Run("SSH_AUTH_SOCK", func(t *testing.T) {
		t.Setenv("SSH_AUTH_SOCK", sock)
		cfg := sshConfig(s, s.Addr())
		cfg.KeyFile, cfg.UseAgent = "", true
		if out := mustRun(t, newSSH(t, cfg), "echo", "agent"); out != "agent\n" {
			t.Errorf("echo agent = %q", out)
		}
	})
	t.Run("agent without the key", func(t *testing.T) {
		otherPriv, _ := newKey(t)
		cfg := sshConfig(s, s.Addr())
		cfg.KeyFile, cfg.AgentSocket = "", startAgent(t, otherPriv)
		_, _, err := run(t, newSSH(t, cfg), "true")
		if err == nil || !strings.Contains(err.Error(), "unable to authenticate") || !strings.HasPrefix(err.Error(), "worker edge-1: run true: connect ") {
			t.Errorf("err = %v, want an authentication failure", err)
		}
	})
	t.Run("no agent", func(t *testing.T) {
		t.Setenv("SSH_AUTH_SOCK", "")
		cfg := sshConfig(s, s.Addr())
		cfg.KeyFile, cfg.UseAgent = "", true
		if _, err := NewSSH(cfg); err == nil || !strings.Contains(err.Error(), "SSH_AUTH_SOCK") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestSSHEncryptedKey(t *testing.T) {
	s := testenv.StartSSHD(t)
	keyFile, pub := encryptedKey(t, "correct horse")
	s.AddAuthorizedKey(pub)

	cfg := sshConfig(s, s.Addr())
	cfg.KeyFile, cfg.KeyPassphrase = keyFile, []byte("correct horse")
	if out := mustRun(t, newSSH(t, cfg), "echo", "unlocked"); out != "unlocked\n" {
		t.Errorf("echo unlocked = %q", out)
	}

	cfg.KeyPassphrase = []byte("wrong")
	if _, err := NewSSH(cfg); err == nil || !strings.Contains(err.Error(), "wrong passphrase") || !strings.Contains(err.Error(), keyFile) {
		t.Errorf("wrong passphrase: err = %v", err)
	}
	cfg.KeyPassphrase = nil
	if _, err := NewSSH(cfg); err == nil || !strings.Contains(err.Error(), "encrypted and no passphrase") {
		t.Errorf("no passphrase: err = %v", err)
	}
}

func TestSSHReconnect(t *testing.T) {
	s := testenv.StartSSHD(t)
	p := testenv.StartProxy(t, s.Addr())
	tr := newSSH(t, sshConfig(s, p.Addr()))
	if out := mustRun(t, tr, "echo", "one"); out != "one\n" {
		t.Fatalf("echo one = %q", out)
	}
	p.CutAll()
	if out := mustRun(t, tr, "echo", "two"); out != "two\n" {
		t.Fatalf("echo two = %q", out)
	}
	st := tr.Stats()
	if st.Reconnects != 1 || p.Conns() != 2 {
		t.Errorf("Reconnects = %d, proxy connections = %d; want 1 and 2", st.Reconnects, p.Conns())
	}
	if st.RoundTrips != 4 {
		t.Errorf("RoundTrips = %d, want 4 (2 runs, 2 connection setups)", st.RoundTrips)
	}
	if out := mustRun(t, tr, "echo", "three"); out != "three\n" || p.Conns() != 2 {
		t.Errorf("echo three = %q over %d connections", out, p.Conns())
	}
}

// TestSSHConnectionLostDuringRun: a link that dies while a command runs fails the call
// with ErrConnectionLost (the command may or may not have run), and the next call
// reconnects.
func TestSSHConnectionLostDuringRun(t *testing.T) {
	s := testenv.StartSSHD(t)
	p := testenv.StartProxy(t, s.Addr())
	tr := newSSH(t, sshConfig(s, p.Addr()))
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- tr.Run(ctxT(t), []string{"sh", "-c", "echo started; sleep 30"}, nil, pw, nil)
		pw.Close()
	}()
	if line, err := bufio.NewReader(pr).ReadString('\n'); err != nil || line != "started\n" {
		t.Fatalf("read %q, %v", line, err)
	}
	p.CutAll()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrConnectionLost) || !strings.HasPrefix(err.Error(), "worker edge-1: run sh: connection lost") {
			t.Errorf("err = %v, want ErrConnectionLost", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after the connection was cut")
	}
	if out := mustRun(t, tr, "echo", "back"); out != "back\n" {
		t.Errorf("echo back = %q", out)
	}
	if st := tr.Stats(); st.Reconnects != 1 {
		t.Errorf("Reconnects = %d, want 1", st.Reconnects)
	}
}

func TestSSHMultiplexing(t *testing.T) {
	s := testenv.StartSSHD(t)
	p := testenv.StartProxy(t, s.Addr())
	cfg := sshConfig(s, p.Addr())
	cfg.MaxSessions = 5
	tr := newSSH(t, cfg)
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out bytes.Buffer
			if err := tr.Run(ctxT(t), []string{"sh", "-c", "sleep 0.1; echo $1", "sh", fmt.Sprint(i)}, nil, &out, nil); err != nil {
				t.Errorf("run %d: %v", i, err)
				return
			}
			if out.String() != fmt.Sprintf("%d\n", i) {
				t.Errorf("run %d printed %q", i, out.String())
			}
		}()
	}
	wg.Wait()
	if p.Conns() != 1 {
		t.Errorf("%d TCP connections, want 1", p.Conns())
	}
	maxOpen := tr.(*sshTransport).maxInFlight.Load()
	if maxOpen > 5 || maxOpen < 2 {
		t.Errorf("at most %d sessions were open at once; want 2..5 (MaxSessions 5)", maxOpen)
	}
	t.Logf("sessions open at once: at most %d", maxOpen)
	if st := tr.Stats(); st.RoundTrips != n+1 {
		t.Errorf("RoundTrips = %d, want %d", st.RoundTrips, n+1)
	}
}

func TestSSHStats(t *testing.T) {
	s := testenv.StartSSHD(t)
	tr := newSSH(t, sshConfig(s, s.Addr()))
	if st := tr.Stats(); st != (Stats{}) {
		t.Errorf("before any call: %+v (the connection must be lazy)", st)
	}
	const n = 7
	for range n {
		mustRun(t, tr, "true")
	}
	st := tr.Stats()
	if st.RoundTrips != n+1 || st.Reconnects != 0 || st.BytesSent == 0 || st.BytesReceived == 0 {
		t.Errorf("after %d runs: %+v, want %d round trips and bytes both ways", n, st, n+1)
	}
	run(t, tr, "false") // a failing command is a round trip too
	if err := tr.Upload(ctxT(t), filepath.Join(t.TempDir(), "f"), bytes.NewReader(make([]byte, 100_000)), 0o600, -1, -1); err != nil {
		t.Fatal(err)
	}
	st2 := tr.Stats()
	if st2.RoundTrips != n+3 {
		t.Errorf("RoundTrips = %d, want %d", st2.RoundTrips, n+3)
	}
	if sent := st2.BytesSent - st.BytesSent; sent < 100_000 {
		t.Errorf("uploading 100,000 bytes sent %d", sent)
	}
	tr.Close()
	if err := tr.Run(ctxT(t), []string{"true"}, nil, nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

func TestSSHInteractive(t *testing.T) {
	s := testenv.StartSSHD(t)
	tr := newSSH(t, sshConfig(s, s.Addr()))
	var out bytes.Buffer
	err := tr.Interactive(ctxT(t), []string{"sh", "-c", `read x; echo "got:$x"; test -t 0 && echo tty; echo "$TERM"; stty size; echo err >&2`},
		strings.NewReader("hello\n"), &out, "vt100", 30, 100)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(out.String(), "\r\n", "\n")
	for _, want := range []string{"got:hello\n", "tty\n", "vt100\n", "30 100\n", "err\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("output %q lacks %q", got, want)
		}
	}
	ee := exitCode(t, tr.Interactive(ctxT(t), []string{"sh", "-c", "exit 4"}, nil, nil, "", 0, 0))
	if ee.Code != 4 {
		t.Errorf("code %d, want 4", ee.Code)
	}
}

// TestSSHKeepAlive: keepalives flow while the connection is idle and keep it usable.
func TestSSHKeepAlive(t *testing.T) {
	s := testenv.StartSSHD(t)
	cfg := sshConfig(s, s.Addr())
	cfg.KeepAliveInterval = 20 * time.Millisecond
	tr := newSSH(t, cfg)
	mustRun(t, tr, "true")
	before := tr.Stats()
	waitFor(t, "keepalives", 10*time.Second, func() bool {
		st := tr.Stats()
		return st.BytesSent > before.BytesSent+200 && st.BytesReceived > before.BytesReceived+200
	})
	mustRun(t, tr, "true")
	if st := tr.Stats(); st.RoundTrips != 3 || st.Reconnects != 0 {
		t.Errorf("Stats = %+v, want 3 round trips and no reconnect", st)
	}
}

// TestSSHDialTimeout: a server that accepts TCP but never speaks fails the call after
// DialTimeout.
func TestSSHDialTimeout(t *testing.T) {
	s := testenv.StartSSHD(t)
	l := listenSilent(t)
	cfg := sshConfig(s, l)
	cfg.DialTimeout = 200 * time.Millisecond
	tr := newSSH(t, cfg)
	start := time.Now()
	_, _, err := run(t, tr, "true")
	if err == nil || !strings.HasPrefix(err.Error(), "worker edge-1: run true: connect ") {
		t.Errorf("err = %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the dial took %v", d)
	}
}

// TestSSHCancelWhileWaitingForSlot: a call waiting for one of MaxSessions slots gives up
// when its context ends.
func TestSSHCancelWhileWaitingForSlot(t *testing.T) {
	s := testenv.StartSSHD(t)
	cfg := sshConfig(s, s.Addr())
	cfg.MaxSessions = 1
	tr := newSSH(t, cfg)

	stdinR, stdinW := io.Pipe()
	outR, outW := io.Pipe()
	first := make(chan error, 1)
	go func() {
		first <- tr.Run(ctxT(t), []string{"sh", "-c", "echo started; read x; echo read:$x"}, stdinR, outW, nil)
		outW.Close()
	}()
	out := bufio.NewReader(outR)
	if line, err := out.ReadString('\n'); err != nil || line != "started\n" {
		t.Fatalf("read %q, %v", line, err)
	}

	ctx, cancel := context.WithTimeout(ctxT(t), 100*time.Millisecond)
	defer cancel()
	if err := tr.Run(ctx, []string{"true"}, nil, nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second run with the slot taken: err = %v, want DeadlineExceeded", err)
	}

	stdinW.Write([]byte("go\n"))
	stdinW.Close()
	if line, err := out.ReadString('\n'); err != nil || line != "read:go\n" {
		t.Errorf("read %q, %v", line, err)
	}
	if err := <-first; err != nil {
		t.Errorf("first run: %v", err)
	}
	mustRun(t, tr, "true")
}

// TestSSHKeepAliveDetectsDeadLink: when the link goes silent (no reset), the unanswered
// keepalive closes the connection; the running command fails with ErrConnectionLost
// instead of hanging, and the next call reconnects.
func TestSSHKeepAliveDetectsDeadLink(t *testing.T) {
	s := testenv.StartSSHD(t)
	p := testenv.StartProxy(t, s.Addr())
	cfg := sshConfig(s, p.Addr())
	cfg.KeepAliveInterval = 100 * time.Millisecond
	tr := newSSH(t, cfg)
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- tr.Run(ctxT(t), []string{"sh", "-c", "echo started; sleep 30"}, nil, pw, nil)
		pw.Close()
	}()
	if line, err := bufio.NewReader(pr).ReadString('\n'); err != nil || line != "started\n" {
		t.Fatalf("read %q, %v", line, err)
	}
	p.Stall()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrConnectionLost) || !strings.Contains(err.Error(), "keepalive") {
			t.Errorf("err = %v, want ErrConnectionLost by keepalive", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after the link went silent")
	}
	p.Resume()
	if out := mustRun(t, tr, "echo", "back"); out != "back\n" {
		t.Errorf("echo back = %q", out)
	}
	if st := tr.Stats(); st.Reconnects != 1 || p.Conns() != 2 {
		t.Errorf("Reconnects = %d, proxy connections %d; want 1 and 2", st.Reconnects, p.Conns())
	}
}
