//go:build unix

package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// lockFile is the daemon lock in the cache dir: one daemon per cache dir (and so per
// clone). Across hosts, the workers' apply lock keeps two daemons from applying at once.
const lockFile = "daemon.lock"

// lockCacheDir takes an exclusive flock on the cache dir's lock file, waiting (and saying
// so in the log and the status) while another daemon holds it. It returns a nil unlock
// when ctx ends first. The kernel releases the lock if the process dies.
func (d *Daemon) lockCacheDir(ctx context.Context) (func(), error) {
	if err := os.MkdirAll(d.cfg.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("daemon: cache dir: %w", err)
	}
	path := filepath.Join(d.cfg.CacheDir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("daemon: lock: %w", err)
	}
	fd := int(f.Fd())
	logged := false
	for {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("daemon: lock %s: %w", path, err)
		}
		holder, _ := os.ReadFile(path)
		msg := fmt.Sprintf("waiting for the daemon lock %s, held by %s", path, orUnknown(strings.TrimSpace(string(holder))))
		d.setWaiting(msg)
		if !logged {
			d.log.Warn("another daemon holds the cache dir; waiting", "lock", path, "holder", orUnknown(strings.TrimSpace(string(holder))))
			logged = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, nil
		case <-time.After(500 * time.Millisecond):
		}
	}
	if logged {
		d.log.Info("daemon lock acquired", "lock", path)
	}
	d.setWaiting("")
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(d.cfg.Apply.LockOwner+"\n"), 0)
	return func() {
		_ = f.Truncate(0)
		_ = syscall.Flock(fd, syscall.LOCK_UN)
		f.Close()
	}, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown process"
	}
	return s
}
