package standin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDockerfile(t *testing.T) {
	for _, want := range []string{
		"FROM scratch\n",
		"ENV HERMES_HOME=/data/hermes PATH=/bin\n",
		"USER 10000:10000\n",
		`HEALTHCHECK --interval=1s --timeout=5s --start-period=1s --retries=10 CMD ["/runner","health"]` + "\n",
		`ENTRYPOINT ["/runner"]` + "\n",
	} {
		if !strings.Contains(Dockerfile, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}

func TestContextDigest(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	digest := func() string {
		t.Helper()
		d, err := contextDigest(dir)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	write("Dockerfile", "FROM scratch\n")
	write("rootfs/runner", "binary")
	d1 := digest()
	if d1 != digest() || len(d1) != 64 {
		t.Fatalf("digest unstable or malformed: %s", d1)
	}
	if err := os.Symlink("/runner", filepath.Join(dir, "rootfs", "ls")); err != nil {
		t.Fatal(err)
	}
	d2 := digest()
	if d2 == d1 {
		t.Error("a new link did not change the digest")
	}
	write("rootfs/runner", "binary2")
	if digest() == d2 {
		t.Error("new binary content did not change the digest")
	}
	if err := os.Chmod(filepath.Join(dir, "rootfs", "runner"), 0o755); err != nil {
		t.Fatal(err)
	}
	d3 := digest()
	write("Dockerfile", "FROM scratch\nUSER 1\n")
	if digest() == d3 {
		t.Error("a Dockerfile change did not change the digest")
	}
}
