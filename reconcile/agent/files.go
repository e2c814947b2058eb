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
	"strings"
)

// tempMarker names the temporary files of atomic writes; a crash can leave one behind, and
// the next write into the same directory removes it.
const tempMarker = ".hermes-tmp-"

// faultAfterTempWrite is set by tests (HERMES_AGENT_FAULT=after-temp-write) to kill the
// agent between writing a temp file and renaming it, to prove writes are atomic.
var faultAfterTempWrite = os.Getenv("HERMES_AGENT_FAULT") == "after-temp-write"

// WriteFileAtomic writes data to path so that a reader, or a crash at any moment, sees
// either the old file or the new one: temp file in the same directory, write, fsync,
// chmod, chown, rename, fsync the directory. owner may be nil to keep the default.
func WriteFileAtomic(path string, data []byte, mode fs.FileMode, owner *Owner) error {
	dir := filepath.Dir(path)
	cleanStaleTemps(dir, filepath.Base(path))
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+tempMarker+"*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if owner != nil {
		if err := tmp.Chown(owner.UID, owner.GID); err != nil {
			return err
		}
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if faultAfterTempWrite {
		os.Exit(137)
	}
	if err := os.Rename(tmpName, path); err != nil {
		return err
	}
	ok = true
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// cleanStaleTemps removes temp files a crashed write of the same file left behind.
func cleanStaleTemps(dir, base string) {
	matches, _ := filepath.Glob(filepath.Join(dir, "."+globEscape(base)+tempMarker+"*"))
	for _, m := range matches {
		os.Remove(m)
	}
}

func globEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)
	return r.Replace(s)
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
	tmp, err := os.CreateTemp(stateDir, ".fingerprint.key"+tempMarker+"*")
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
