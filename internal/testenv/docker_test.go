package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// dockerFakeTB records a Fatalf and stops the goroutine as testing.T would. Anything else it
// is not expected to receive panics through the embedded nil testing.TB.
type dockerFakeTB struct {
	testing.TB
	mu     sync.Mutex
	fatals []string
}

func (f *dockerFakeTB) Helper() {}

func (f *dockerFakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatals = append(f.fatals, fmt.Sprintf(format, args...))
	f.mu.Unlock()
	runtime.Goexit()
}

// runDockerFakeTB runs fn with a dockerFakeTB on its own goroutine (Fatalf ends it) and returns the
// fatal messages.
func runDockerFakeTB(fn func(tb testing.TB)) []string {
	f := &dockerFakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f.fatals
}

func TestWaitForSucceeds(t *testing.T) {
	n := 0
	WaitFor(t, 5*time.Second, "the third poll", func() (bool, error) {
		n++
		if n == 1 {
			return false, errors.New("not yet")
		}
		return n == 3, nil
	})
	if n != 3 {
		t.Errorf("polled %d times, want 3", n)
	}
}

func TestWaitForTimesOut(t *testing.T) {
	fatals := runDockerFakeTB(func(tb testing.TB) {
		WaitFor(tb, 120*time.Millisecond, "the impossible", func() (bool, error) {
			return false, errors.New("still broken")
		})
	})
	if len(fatals) != 1 || !strings.Contains(fatals[0], "waiting for the impossible") || !strings.Contains(fatals[0], "still broken") {
		t.Errorf("fatals = %q", fatals)
	}
	fatals = runDockerFakeTB(func(tb testing.TB) {
		WaitFor(tb, 0, "nothing", func() (bool, error) { return false, nil })
	})
	if len(fatals) != 1 || strings.Contains(fatals[0], "last error") {
		t.Errorf("fatals = %q", fatals)
	}
}

func TestCleanupContainersRefusesEmptyLabel(t *testing.T) {
	for _, label := range []string{"", "=x", " =x"} {
		fatals := runDockerFakeTB(func(tb testing.TB) { CleanupContainers(tb, label) })
		if len(fatals) != 1 {
			t.Errorf("label %q: fatals = %q", label, fatals)
		}
	}
}

func dockerTestID(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func labelledContainers(t *testing.T, label string) []string {
	t.Helper()
	out, err := exec.Command("docker", "ps", "-aq", "--filter", "label="+label).Output()
	if err != nil {
		t.Fatalf("docker ps: %v", err)
	}
	return strings.Fields(string(out))
}

func TestCleanupContainersRemovesOnlyLabelled(t *testing.T) {
	image := RunnerImage(t)
	run := dockerTestID(t)
	label := "hermes-gitops.test.testenv=" + run
	bystander := "hermes-gitops.test.testenv=" + run + "-bystander"
	CleanupContainers(t, bystander) // runs last: removes the bystander after the checks

	create := func(label string) {
		t.Helper()
		if out, err := exec.Command("docker", "create", "--label", label, image).CombinedOutput(); err != nil {
			t.Fatalf("docker create: %v: %s", err, out)
		}
	}
	t.Run("sub", func(t *testing.T) {
		CleanupContainers(t, label)
		create(label)
		create(label)
		create(bystander)
		if n := len(labelledContainers(t, label)); n != 2 {
			t.Fatalf("%d labelled containers, want 2", n)
		}
	})
	if ids := labelledContainers(t, label); len(ids) != 0 {
		t.Errorf("containers left after cleanup: %v", ids)
	}
	if n := len(labelledContainers(t, bystander)); n != 1 {
		t.Errorf("%d bystander containers, want 1 (cleanup must not touch other labels)", n)
	}
}
