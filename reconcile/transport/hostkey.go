package transport

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyMismatchError is the error (wrapped) of a connection refused because the
// worker presented a host key other than the one configured for it: a
// man-in-the-middle, or a reinstalled worker whose new key nobody recorded yet.
type HostKeyMismatchError struct {
	Worker    string   // the worker's name
	Addr      string   // host:port dialled
	Presented string   // fingerprint of the key the server presented ("SHA256:…")
	KeyType   string   // its type ("ssh-ed25519")
	Expected  []string // fingerprints of the keys configured for the worker, with their source
}

func (e *HostKeyMismatchError) Error() string {
	return fmt.Sprintf("host key mismatch at %s: presented %s %s, expected %s; refusing to connect (a man-in-the-middle, or a reinstalled worker: verify the new key out of band before updating the worker's host key)",
		e.Addr, e.KeyType, e.Presented, strings.Join(e.Expected, " or "))
}

// ErrHostKeyUnknown is wrapped by the error of a connection refused because the
// known_hosts file has no key at all for the worker's address.
var ErrHostKeyUnknown = errors.New("host key unknown")

// ErrNoHostKey is wrapped by NewSSH's error when neither HostKey nor KnownHostsFile is
// configured: host keys are always verified, never accepted blindly.
var ErrNoHostKey = errors.New("no host key configured")

// parseHostKeys reads SSHConfig.HostKey: one or more lines, each an authorized_keys-style
// key ("ssh-ed25519 AAAA… comment") or a known_hosts line ("host ssh-ed25519 AAAA…").
// The host patterns of a known_hosts line are not matched: the key is pinned to this
// worker by configuration.
func parseHostKeys(text string) ([]ssh.PublicKey, error) {
	var keys []ssh.PublicKey
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, err := parseHostKeyLine(line)
		if err != nil {
			return nil, fmt.Errorf("HostKey line %d: %w", i+1, err)
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, errors.New("HostKey has no key")
	}
	return keys, nil
}

func parseHostKeyLine(line string) (ssh.PublicKey, error) {
	first, _, _ := strings.Cut(line, " ")
	if isKeyType(first) {
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		return key, err
	}
	marker, _, key, _, _, err := ssh.ParseKnownHosts([]byte(line))
	if err != nil {
		return nil, err
	}
	if marker != "" {
		return nil, fmt.Errorf("known_hosts marker @%s is not supported in HostKey", marker)
	}
	return key, nil
}

func isKeyType(s string) bool {
	switch s {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoRSA, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384,
		ssh.KeyAlgoECDSA521, ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256:
		return true
	}
	return false
}

// algorithmsFor lists the host key algorithms that let the server prove key: the
// client offers only these, so the server presents the configured key and not another
// of its keys.
func algorithmsFor(key ssh.PublicKey) []string {
	if key.Type() == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{key.Type()}
}

// hostKeyVerifier checks the server's host key against the worker's pinned keys and its
// known_hosts file. It is built for one connection attempt and records why it refused.
type hostKeyVerifier struct {
	worker, addr string
	pinned       []ssh.PublicKey
	knownHosts   ssh.HostKeyCallback // nil without a known_hosts file
	file         string
	fileKeys     []knownhosts.KnownKey // keys the file has for addr
	refused      error                 // why the last check failed
}

func newHostKeyVerifier(worker, addr string, pinned []ssh.PublicKey, file string) (*hostKeyVerifier, error) {
	v := &hostKeyVerifier{worker: worker, addr: addr, pinned: pinned, file: file}
	if file == "" {
		return v, nil
	}
	cb, err := knownhosts.New(file)
	if err != nil {
		return nil, fmt.Errorf("known_hosts file: %w", err)
	}
	v.knownHosts = cb
	// Ask the file which keys it holds for addr by presenting a key it cannot hold: the
	// KeyError lists them. Their types become the algorithms the client offers.
	_, probe, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(probe)
	if err != nil {
		return nil, err
	}
	var ke *knownhosts.KeyError
	if err := cb(addr, fakeAddr(addr), signer.PublicKey()); errors.As(err, &ke) {
		v.fileKeys = ke.Want
	}
	return v, nil
}

// algorithms returns the host key algorithms to offer, or nil (library default) when no
// key is known, in which case the check fails anyway.
func (v *hostKeyVerifier) algorithms() []string {
	var out []string
	seen := map[string]bool{}
	add := func(k ssh.PublicKey) {
		for _, a := range algorithmsFor(k) {
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	for _, k := range v.pinned {
		add(k)
	}
	for _, k := range v.fileKeys {
		add(k.Key)
	}
	return out
}

func (v *hostKeyVerifier) check(hostname string, remote net.Addr, key ssh.PublicKey) error {
	for _, p := range v.pinned {
		if bytes.Equal(p.Marshal(), key.Marshal()) {
			return nil
		}
	}
	var expected []string
	for _, p := range v.pinned {
		expected = append(expected, ssh.FingerprintSHA256(p)+" (HostKey)")
	}
	if v.knownHosts != nil {
		err := v.knownHosts(v.addr, remote, key)
		if err == nil {
			return nil
		}
		var ke *knownhosts.KeyError
		var re *knownhosts.RevokedError
		switch {
		case errors.As(err, &re):
			v.refused = fmt.Errorf("host key %s %s at %s is marked @revoked in %s", key.Type(), ssh.FingerprintSHA256(key), v.addr, v.file)
			return v.refused
		case errors.As(err, &ke):
			for _, k := range ke.Want {
				expected = append(expected, fmt.Sprintf("%s (%s:%d)", ssh.FingerprintSHA256(k.Key), k.Filename, k.Line))
			}
		default:
			v.refused = fmt.Errorf("known_hosts file %s: %w", v.file, err)
			return v.refused
		}
	}
	if len(expected) == 0 {
		v.refused = fmt.Errorf("%w: %s is not in known_hosts file %s (the server presented %s %s)",
			ErrHostKeyUnknown, v.addr, v.file, key.Type(), ssh.FingerprintSHA256(key))
		return v.refused
	}
	v.refused = &HostKeyMismatchError{
		Worker:    v.worker,
		Addr:      v.addr,
		Presented: ssh.FingerprintSHA256(key),
		KeyType:   key.Type(),
		Expected:  expected,
	}
	return v.refused
}

// fakeAddr is the net.Addr handed to a known_hosts callback outside a handshake.
type fakeAddr string

func (a fakeAddr) Network() string { return "tcp" }
func (a fakeAddr) String() string  { return string(a) }
