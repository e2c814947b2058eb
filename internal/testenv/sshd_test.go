package testenv

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func dialSSHD(t *testing.T, s *SSHD, addr string, signer ssh.Signer) (*ssh.Client, error) {
	t.Helper()
	return ssh.Dial("tcp", addr, &ssh.ClientConfig{
		User:              s.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   ssh.FixedHostKey(s.HostPublicKey),
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
		Timeout:           10 * time.Second,
	})
}

func runOn(t *testing.T, c *ssh.Client, cmd string) string {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	defer sess.Close()
	out, err := sess.CombinedOutput(cmd)
	if err != nil {
		t.Fatalf("%s: %v: %s", cmd, err, out)
	}
	return string(out)
}

func TestSSHD(t *testing.T) {
	s := StartSSHD(t)
	if s.Host != "127.0.0.1" || s.Port == 0 || s.User == "" {
		t.Fatalf("incomplete SSHD: %+v", s)
	}
	c, err := dialSSHD(t, s, s.Addr(), s.UserSigner)
	if err != nil {
		t.Fatalf("dial: %v\nsshd log:\n%s", err, s.Log())
	}
	defer c.Close()
	if got := runOn(t, c, "echo hello"); got != "hello\n" {
		t.Errorf("echo hello = %q", got)
	}

	// HostKeyLine is a known_hosts line for Host:Port.
	marker, hosts, key, _, _, err := ssh.ParseKnownHosts([]byte(s.HostKeyLine))
	if err != nil || marker != "" {
		t.Fatalf("HostKeyLine %q: marker %q, err %v", s.HostKeyLine, marker, err)
	}
	if !bytes.Equal(key.Marshal(), s.HostPublicKey.Marshal()) {
		t.Error("HostKeyLine holds another key than HostPublicKey")
	}
	if len(hosts) != 1 || hosts[0] != knownhosts.Normalize(s.Addr()) {
		t.Errorf("HostKeyLine hosts = %q, want [%s]", hosts, knownhosts.Normalize(s.Addr()))
	}
	// UserKeyFile holds UserSigner's key.
	pem := readFile(t, s.UserKeyFile)
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatalf("UserKeyFile: %v", err)
	}
	if !bytes.Equal(signer.PublicKey().Marshal(), s.UserSigner.PublicKey().Marshal()) {
		t.Error("UserKeyFile holds another key than UserSigner")
	}
}

func TestSSHDAddAuthorizedKey(t *testing.T) {
	s := StartSSHD(t)
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := dialSSHD(t, s, s.Addr(), other); err == nil {
		c.Close()
		t.Fatal("an unknown key logged in")
	}
	s.AddAuthorizedKey(other.PublicKey())
	c, err := dialSSHD(t, s, s.Addr(), other)
	if err != nil {
		t.Fatalf("dial with added key: %v", err)
	}
	c.Close()
}

func TestProxy(t *testing.T) {
	s := StartSSHD(t)
	p := StartProxy(t, s.Addr())
	if p.Addr() != net.JoinHostPort("127.0.0.1", itoa(p.Port())) {
		t.Errorf("Addr %s and Port %d disagree", p.Addr(), p.Port())
	}
	c, err := dialSSHD(t, s, p.Addr(), s.UserSigner)
	if err != nil {
		t.Fatalf("dial through proxy: %v", err)
	}
	defer c.Close()
	if got := runOn(t, c, "echo through"); got != "through\n" {
		t.Errorf("echo through = %q", got)
	}
	if p.Conns() != 1 || p.Live() != 1 {
		t.Errorf("Conns %d, Live %d; want 1, 1", p.Conns(), p.Live())
	}
	p.CutAll()
	waitErr := make(chan error, 1)
	go func() { waitErr <- c.Wait() }()
	select {
	case <-waitErr:
	case <-time.After(10 * time.Second):
		t.Fatal("the client did not notice the cut connection")
	}
	if p.Live() != 0 {
		t.Errorf("Live = %d after CutAll", p.Live())
	}
	c2, err := dialSSHD(t, s, p.Addr(), s.UserSigner)
	if err != nil {
		t.Fatalf("dial after CutAll: %v", err)
	}
	defer c2.Close()
	if got := runOn(t, c2, "echo again"); got != "again\n" {
		t.Errorf("echo again = %q", got)
	}
	if p.Conns() != 2 {
		t.Errorf("Conns = %d, want 2", p.Conns())
	}
}

// TestProxyHalfClose checks that EOF crosses the proxy in each direction.
func TestProxyHalfClose(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c) // until the client's half-close
		c.Write([]byte(strings.ToUpper(string(b))))
	}()
	p := StartProxy(t, l.Addr().String())
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("echo"))
	c.(*net.TCPConn).CloseWrite()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "ECHO" {
		t.Fatalf("got %q, %v; want ECHO", got, err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestProxyStall(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c) // echo
	}()
	p := StartProxy(t, l.Addr().String())
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 16)
	c.Write([]byte("one"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := io.ReadFull(c, buf[:3]); err != nil || string(buf[:n]) != "one" {
		t.Fatalf("echo one: %q, %v", buf[:n], err)
	}
	p.Stall()
	c.Write([]byte("two"))
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := c.Read(buf); err == nil {
		t.Fatalf("read %q through a stalled proxy", buf[:n])
	}
	p.Resume()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := io.ReadFull(c, buf[:3]); err != nil || string(buf[:n]) != "two" {
		t.Fatalf("echo two after Resume: %q, %v", buf[:n], err)
	}
}
