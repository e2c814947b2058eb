package bundles

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// builtinMap copies the embedded catalogue into a MapFS a test may change.
func builtinMap(t *testing.T) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	err := fs.WalkDir(builtinFS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(builtinFS, p)
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		if strings.Contains(p, "/scripts/") {
			mode = 0o755
		}
		m[p] = &fstest.MapFile{Data: data, Mode: mode}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// writeDir writes a MapFS into a new temporary directory and returns its path.
func writeDir(t *testing.T, m fstest.MapFS) string {
	t.Helper()
	dir := t.TempDir()
	for p, f := range m {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// edit replaces old with new (exactly once) in file p of m.
func edit(t *testing.T, m fstest.MapFS, p, old, new string) {
	t.Helper()
	f, ok := m[p]
	if !ok {
		t.Fatalf("no file %s", p)
	}
	if n := strings.Count(string(f.Data), old); n != 1 {
		t.Fatalf("%s holds %q %d times, want once", p, old, n)
	}
	m[p] = &fstest.MapFile{Data: []byte(strings.Replace(string(f.Data), old, new, 1)), Mode: f.Mode}
}

// removeTree deletes every file of m below dir.
func removeTree(m fstest.MapFS, dir string) {
	for p := range m {
		if strings.HasPrefix(p, dir+"/") {
			delete(m, p)
		}
	}
}

// copyTree copies every file below from to the same relative path below to.
func copyTree(m fstest.MapFS, from, to string) {
	for p, f := range m {
		if rest, ok := strings.CutPrefix(p, from+"/"); ok {
			m[to+"/"+rest] = &fstest.MapFile{Data: f.Data, Mode: f.Mode}
		}
	}
}

func errorStrings(errs []error) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

func mustLoad(t *testing.T, fsys fs.FS) *Catalogue {
	t.Helper()
	c, err := Load(fsys)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func sha256hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
