package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/firemountain/hermes-gitops/internal/atomicfile"
	"github.com/firemountain/hermes-gitops/reconcile/live"
)

// applyLockName is the worker lock file in the agent's state directory.
const applyLockName = "apply.lock"

// LockPath is the apply lock of a worker whose agent state lives in stateDir.
func LockPath(stateDir string) string { return filepath.Join(stateDir, applyLockName) }

// LockHeldError means another applier holds the worker.
type LockHeldError struct {
	Owner   string
	Expires time.Time
}

func (e *LockHeldError) Error() string {
	return fmt.Sprintf("worker is locked by %s until %s", e.Owner, e.Expires.UTC().Format(time.RFC3339))
}

// acquireLock takes the lock file for owner until now+ttl. A lock held by the same owner
// is renewed; an expired lock (its holder crashed) is taken over.
func acquireLock(path, owner string, ttl time.Duration) error {
	if owner == "" || ttl <= 0 {
		return errors.New("lock: owner and ttl are required")
	}
	if _, err := MkdirAllOwned(filepath.Dir(path), 0o700, nil); err != nil {
		return err
	}
	data, _ := json.Marshal(live.Lock{Owner: owner, Expires: time.Now().Add(ttl).UTC().Format(time.RFC3339Nano)})
	for attempt := 0; attempt < 3; attempt++ {
		// Create-if-absent is atomic with link(2): write the content to a temp file, then
		// link it to the lock path, which fails if someone holds it.
		tmp, err := os.CreateTemp(filepath.Dir(path), atomicfile.TempPattern(applyLockName))
		if err != nil {
			return err
		}
		_, werr := tmp.Write(data)
		tmp.Close()
		if werr != nil {
			os.Remove(tmp.Name())
			return werr
		}
		err = os.Link(tmp.Name(), path)
		os.Remove(tmp.Name())
		if err == nil {
			return nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return err
		}
		cur := readLock(path)
		if cur == nil {
			continue // released meanwhile
		}
		exp, _ := time.Parse(time.RFC3339Nano, cur.Expires)
		if cur.Owner != owner && time.Now().Before(exp) {
			return &LockHeldError{Owner: cur.Owner, Expires: exp}
		}
		// Ours (renew) or expired (take over): replace it atomically.
		if err := WriteFileAtomic(path, data, 0o600, nil); err != nil {
			return err
		}
		if got := readLock(path); got != nil && got.Owner == owner {
			return nil
		}
	}
	return errors.New("lock: contended, try again")
}

// releaseLock removes the lock if owner holds it.
func releaseLock(path, owner string) error {
	cur := readLock(path)
	if cur == nil {
		return nil
	}
	if cur.Owner != owner {
		return fmt.Errorf("lock is held by %s, not %s", cur.Owner, owner)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func readLock(path string) *live.Lock {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var l live.Lock
	if json.Unmarshal(data, &l) != nil {
		return nil
	}
	return &l
}
