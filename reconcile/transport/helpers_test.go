package transport

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/firemountain/hermes-gitops/internal/testenv"
)

// sshConfig is the configuration of a transport to s (or to addr, a proxy in front of
// it), pinned to s's host key and logging in with s's user key.
func sshConfig(s *testenv.SSHD, addr string) SSHConfig {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		panic(err)
	}
	p, _ := strconv.Atoi(port)
	return SSHConfig{
		Name:              "edge-1",
		Host:              host,
		Port:              p,
		User:              s.User,
		HostKey:           string(ssh.MarshalAuthorizedKey(s.HostPublicKey)),
		KeyFile:           s.UserKeyFile,
		KeepAliveInterval: -1,
	}
}

// newSSH returns an SSH transport closed at the end of the test.
func newSSH(t *testing.T, cfg SSHConfig) Transport {
	t.Helper()
	tr, err := NewSSH(cfg)
	if err != nil {
		t.Fatalf("NewSSH: %v", err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// transports runs f against the local transport and an SSH transport to a private sshd
// on this machine: the two must behave the same.
func transports(t *testing.T, f func(t *testing.T, tr Transport)) {
	t.Run("local", func(t *testing.T) { f(t, NewLocal("edge-1")) })
	t.Run("ssh", func(t *testing.T) {
		s := testenv.StartSSHD(t)
		f(t, newSSH(t, sshConfig(s, s.Addr())))
	})
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func run(t *testing.T, tr Transport, argv ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := tr.Run(ctxT(t), argv, nil, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func mustRun(t *testing.T, tr Transport, argv ...string) string {
	t.Helper()
	out, errOut, err := run(t, tr, argv...)
	if err != nil {
		t.Fatalf("run %q: %v (stderr %q)", argv, err, errOut)
	}
	return out
}

// newKey generates an ed25519 key and returns it with its signer.
func newKey(t *testing.T) (ed25519.PrivateKey, ssh.Signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return priv, signer
}

// encryptedKey returns the path of a new private key file encrypted with passphrase,
// and the key's public half. It uses ssh-keygen when installed (the files people
// actually have, and a cheap KDF: -a 2), else x/crypto (16 bcrypt rounds, slow under
// the race detector).
func encryptedKey(t *testing.T, passphrase string) (string, ssh.PublicKey) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "id_encrypted")
	if keygen, err := exec.LookPath("ssh-keygen"); err == nil {
		out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-a", "2", "-N", passphrase, "-C", "encrypted test key", "-f", path).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
		pub, _, _, _, err := ssh.ParseAuthorizedKey(mustRead(t, path+".pub"))
		if err != nil {
			t.Fatal(err)
		}
		return path, pub
	}
	priv, signer := newKey(t)
	block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "encrypted test key", []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, signer.PublicKey()
}

// startAgent serves an in-process ssh-agent holding keys on a unix socket and returns
// the socket's path.
func startAgent(t *testing.T, keys ...any) string {
	t.Helper()
	keyring := agent.NewKeyring()
	for _, k := range keys {
		if err := keyring.Add(agent.AddedKey{PrivateKey: k}); err != nil {
			t.Fatal(err)
		}
	}
	dir, err := os.MkdirTemp("", "agent") // short: unix socket paths are limited to ~100 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				agent.ServeAgent(keyring, c)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	return sock
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func exitCode(t *testing.T, err error) *ExitError {
	t.Helper()
	var ee *ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("err = %v (%T), want an *ExitError", err, err)
	}
	return ee
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// listenSilent accepts TCP connections and never answers; it returns its address.
func listenSilent(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return l.Addr().String()
}
