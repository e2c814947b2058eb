package agent

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/firemountain/hermes-gitops/internal/atomicfile"
)

// tempMarker names the temporary files of atomic writes.
const tempMarker = atomicfile.TempMarker

func init() {
	// Tests (HERMES_AGENT_FAULT=after-temp-write) kill the agent between writing a temp
	// file and renaming it, to prove writes are atomic.
	if os.Getenv("HERMES_AGENT_FAULT") == "after-temp-write" {
		atomicfile.BeforeRename = func() { os.Exit(137) }
	}
}

// WriteFileAtomic writes data to path atomically (atomicfile.Write); owner may be nil to
// keep the default.
func WriteFileAtomic(path string, data []byte, mode fs.FileMode, owner *Owner) error {
	uid, gid := -1, -1
	if owner != nil {
		uid, gid = owner.UID, owner.GID
	}
	return atomicfile.Write(path, data, mode, uid, gid)
}

// MkdirAllOwned creates dir and missing parents with mode; directories it creates get
// owner (existing ones are left as they are).
func MkdirAllOwned(dir string, mode fs.FileMode, owner *Owner) (created bool, err error) {
	if info, err := os.Stat(dir); err == nil {
		if !info.IsDir() {
			return false, fmt.Errorf("%s exists and is not a directory", dir)
		}
		return false, nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if _, err := MkdirAllOwned(parent, mode, owner); err != nil {
			return false, err
		}
	}
	if err := os.Mkdir(dir, mode); err != nil && !errors.Is(err, fs.ErrExist) {
		return false, err
	}
	if err := os.Chmod(dir, mode); err != nil {
		return false, err
	}
	if owner != nil {
		if err := os.Chown(dir, owner.UID, owner.GID); err != nil {
			return false, err
		}
	}
	return true, nil
}

// Digest is the content digest used for managed files: "sha256:<hex>".
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Fingerprint is a keyed fingerprint of a secret value: it tells whether two values are
// equal without revealing either, and without the key it cannot be brute-forced.
func Fingerprint(key []byte, value string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(value))
	return "fp:" + hex.EncodeToString(m.Sum(nil))[:16]
}

// loadOrCreateKey returns the worker's fingerprint key, creating it on first use.
func loadOrCreateKey(stateDir string) ([]byte, error) {
	path := filepath.Join(stateDir, "fingerprint.key")
	if data, err := os.ReadFile(path); err == nil && len(data) == 64 {
		if key, err := hex.DecodeString(string(data)); err == nil {
			return key, nil
		}
	}
	if _, err := MkdirAllOwned(stateDir, 0o700, nil); err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	// The key must never change once used (spec hashes and reports depend on it), so it is
	// created with link(2), which fails if another agent created it first; then everyone
	// reads back the one that won.
	tmp, err := os.CreateTemp(stateDir, atomicfile.TempPattern("fingerprint.key"))
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(hex.EncodeToString(key)); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, err
	}
	tmp.Close()
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return hex.DecodeString(string(data))
}
