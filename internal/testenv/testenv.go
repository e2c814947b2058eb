// Package testenv gives tests the real parts they need: an OpenSSH server, the Docker
// engine, the sops CLI. A test asks for a part; when the part is missing the test is
// skipped on a developer laptop and fails in CI (CI=true), so CI can never go green by
// skipping.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run in CI, where every real part must be present.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing stops the test because a real part is missing: a skip on a laptop, a failure
// in CI.
func Missing(t testing.TB, part, why string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s is required in CI but unavailable: %s", part, why)
	}
	t.Skipf("%s unavailable (%s); set CI=true to make this a failure", part, why)
}

// LookPath finds a program the test needs, or stops the test via Missing.
func LookPath(t testing.TB, program string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err != nil {
		Missing(t, program, err.Error())
	}
	return p
}
