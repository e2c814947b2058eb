package testenv

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHD is a private OpenSSH server on 127.0.0.1, started by StartSSHD for one test and
// stopped when the test ends. It lets the current user log in with a generated key.
type SSHD struct {
	Host string // always 127.0.0.1
	Port int
	User string // the current user; the only one allowed to log in

	HostKeyLine   string        // known_hosts line for Host:Port ("[127.0.0.1]:port ssh-ed25519 AAAA…")
	HostPublicKey ssh.PublicKey // the server's ed25519 host key
	UserKeyFile   string        // unencrypted OpenSSH private key of the user, authorised
	UserSigner    ssh.Signer    // the same key as a signer
	Dir           string        // the server's private directory (config, keys, pid file)

	authorizedKeys string
	logFile        string
	mu             sync.Mutex // guards writes to authorizedKeys
}

// Addr returns "127.0.0.1:port".
func (s *SSHD) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// AddAuthorizedKey lets pub log in too. sshd reads the file at every login, so it takes
// effect for the next connection.
func (s *SSHD) AddAuthorizedKey(pub ssh.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(s.authorizedKeys, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		panic(fmt.Sprintf("testenv: sshd: add authorized key: %v", err))
	}
	defer f.Close()
	if _, err := f.Write(ssh.MarshalAuthorizedKey(pub)); err != nil {
		panic(fmt.Sprintf("testenv: sshd: add authorized key: %v", err))
	}
}

// Log returns what sshd has written to its standard error so far (LogLevel ERROR).
func (s *SSHD) Log() string {
	b, _ := os.ReadFile(s.logFile)
	return string(b)
}

// sshdPath finds the sshd binary: on PATH, else in /usr/sbin (often not on a user's
// PATH). sshd must be started by absolute path to re-execute itself.
func sshdPath(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("sshd"); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
	}
	if _, err := os.Stat("/usr/sbin/sshd"); err == nil {
		return "/usr/sbin/sshd"
	}
	p := LookPath(t, "sshd") // skips or fails
	abs, _ := filepath.Abs(p)
	return abs
}

// StartSSHD starts a private sshd for the test (skip on a laptop without OpenSSH, fail
// in CI). The server listens on a free port of 127.0.0.1, accepts public-key logins of
// the current user with UserKeyFile (and any key added with AddAuthorizedKey), serves
// sftp in-process (internal-sftp), and is stopped in t.Cleanup.
func StartSSHD(t testing.TB) *SSHD {
	t.Helper()
	bin := sshdPath(t)
	u, err := user.Current()
	if err != nil {
		t.Fatalf("testenv: sshd: current user: %v", err)
	}
	if os.Geteuid() == 0 {
		// sshd running as root needs its privilege-separation directory, which the
		// Debian service unit creates at boot (RuntimeDirectory=sshd); containers and
		// CI runners often lack it.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			Missing(t, "sshd", "cannot create /run/sshd: "+err.Error())
		}
	}

	dir := t.TempDir()
	s := &SSHD{Host: "127.0.0.1", User: u.Username, Dir: dir, logFile: filepath.Join(dir, "sshd.log")}

	hostSigner := writeKey(t, filepath.Join(dir, "ssh_host_ed25519_key"))
	s.HostPublicKey = hostSigner.PublicKey()
	s.UserKeyFile = filepath.Join(dir, "id_ed25519")
	s.UserSigner = writeKey(t, s.UserKeyFile)
	s.authorizedKeys = filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(s.authorizedKeys, ssh.MarshalAuthorizedKey(s.UserSigner.PublicKey()), 0o600); err != nil {
		t.Fatalf("testenv: sshd: %v", err)
	}

	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("testenv: sshd: free port: %v", err)
		}
		s.Port = port
		cfg := filepath.Join(dir, "sshd_config")
		if err := os.WriteFile(cfg, []byte(s.config(bin)), 0o600); err != nil {
			t.Fatalf("testenv: sshd: %v", err)
		}
		// The log is a file, not a pipe: sshd's per-connection children inherit it, and
		// a pipe would keep cmd.Wait waiting for them.
		logf, err := os.Create(s.logFile)
		if err != nil {
			t.Fatalf("testenv: sshd: %v", err)
		}
		cmd := exec.Command(bin, "-D", "-e", "-f", cfg)
		cmd.Stdout, cmd.Stderr = logf, logf
		err = cmd.Start()
		logf.Close()
		if err != nil {
			Missing(t, "sshd", "start "+bin+": "+err.Error())
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		stop := func() {
			// sshd -D exits on SIGTERM; connections already open end with their clients.
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
		}
		if lastErr = waitBanner(s.Addr(), exited, 15*time.Second); lastErr == nil {
			t.Cleanup(func() {
				stop()
				if log := s.Log(); t.Failed() && log != "" {
					t.Logf("sshd log:\n%s", log)
				}
			})
			s.HostKeyLine = knownhosts.Line([]string{s.Addr()}, s.HostPublicKey)
			return s
		}
		stop()
		if !strings.Contains(s.Log(), "Address already in use") {
			break // not a port race: retrying will not help
		}
	}
	if InCI() {
		t.Fatalf("testenv: sshd did not start: %v\nsshd output:\n%s", lastErr, s.Log())
	}
	Missing(t, "sshd", fmt.Sprintf("did not start: %v; output: %s", lastErr, s.Log()))
	return nil
}

func (s *SSHD) config(bin string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ListenAddress %s:%d\n", s.Host, s.Port)
	fmt.Fprintf(&b, "HostKey %s\n", filepath.Join(s.Dir, "ssh_host_ed25519_key"))
	fmt.Fprintf(&b, "AuthorizedKeysFile %s\n", s.authorizedKeys)
	fmt.Fprintf(&b, "PidFile %s\n", filepath.Join(s.Dir, "sshd.pid"))
	fmt.Fprintf(&b, "AllowUsers %s\n", s.User)
	b.WriteString(`UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
HostbasedAuthentication no
MaxSessions 64
MaxStartups 100:30:200
LogLevel ERROR
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
PermitTTY yes
Subsystem sftp internal-sftp
`)
	if penaltiesSupported(bin) {
		// OpenSSH ≥ 9.8 would otherwise lock 127.0.0.1 out after the tests' deliberate
		// authentication failures.
		b.WriteString("PerSourcePenalties no\n")
	}
	return b.String()
}

var penalties struct {
	sync.Once
	ok bool
}

// penaltiesSupported reports whether this sshd knows the PerSourcePenalties option
// (added in OpenSSH 9.8); an unknown option makes sshd refuse to start.
func penaltiesSupported(bin string) bool {
	penalties.Do(func() {
		// -G prints the effective configuration; a bad option is an error.
		out, err := exec.Command(bin, "-G", "-f", "/dev/null", "-o", "PerSourcePenalties=no").CombinedOutput()
		penalties.ok = err == nil && bytes.Contains(bytes.ToLower(out), []byte("persourcepenalties"))
	})
	return penalties.ok
}

// writeKey generates an ed25519 key, writes it as an unencrypted OpenSSH private key
// file (0600, as ssh and sshd demand) and returns its signer.
func writeKey(t testing.TB, path string) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("testenv: generate key: %v", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "hermes-gitops test key")
	if err != nil {
		t.Fatalf("testenv: marshal key: %v", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatalf("testenv: write key: %v", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatalf("testenv: signer: %v", err)
	}
	return signer
}

// freePort asks the kernel for a free port on 127.0.0.1. Another process may take it
// before sshd binds it; StartSSHD retries when that happens.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitBanner polls addr until it accepts a connection and sends an SSH banner, the
// process exits, or the deadline passes.
func waitBanner(addr string, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	delay := 5 * time.Millisecond
	var lastErr error
	for {
		select {
		case <-exited:
			return errors.New("sshd exited")
		default:
		}
		if lastErr = readBanner(addr); lastErr == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no SSH banner on %s after %v: %w", addr, timeout, lastErr)
		}
		select {
		case <-exited:
			return errors.New("sshd exited")
		case <-time.After(delay):
		}
		if delay < 100*time.Millisecond {
			delay *= 2
		}
	}
}

func readBanner(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "SSH-2.0-") {
		return fmt.Errorf("unexpected banner %q", line)
	}
	return nil
}
