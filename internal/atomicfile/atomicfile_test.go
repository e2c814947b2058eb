package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

// The crash between temp write and rename is tested where it matters, through the agent
// (reconcile/agent TestWriteFileAtomicSurvivesCrash); here the plain contract.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bundles.sum")
	os.WriteFile(filepath.Join(dir, ".bundles.sum"+TempMarker+"left-by-a-crash"), []byte("x"), 0o600)
	for _, content := range []string{"one\n", "two\n"} {
		if err := Write(p, []byte(content), 0o640, -1, -1); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(p); string(got) != content {
			t.Fatalf("content %q, want %q", got, content)
		}
	}
	if info, _ := os.Stat(p); info.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", info.Mode().Perm())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
	if err := Write(filepath.Join(dir, "missing-dir", "f"), nil, 0o600, -1, -1); err == nil {
		t.Fatal("a write into a missing directory succeeded")
	}
}

// Several writers of one file at once (the agent renews a worker lock from every tenant
// batch) never remove each other's temporary files: every write succeeds.
func TestConcurrentWritersOfOneFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "apply.lock")
	errs := make(chan error, 32)
	for i := range 32 {
		go func() { errs <- Write(p, []byte{byte('a' + i%26)}, 0o600, -1, -1) }()
	}
	for range 32 {
		if err := <-errs; err != nil {
			t.Fatalf("a concurrent write failed: %v", err)
		}
	}
}
