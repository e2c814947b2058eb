// Package atomicfile writes files so that a reader, or a crash at any moment, sees either
// the old content or the new one, never a mix. It is the one implementation the agent
// (on workers), sops encryption in place and the bundle sum file use. Standard library
// only: the agent binary depends on it.
package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// TempMarker is in the name of every temporary file, followed by the writer's process
// id: a crash can leave one behind, and the next write of the same file removes it once
// its writer is gone (a live writer's temp file is never touched: several processes may
// write the same file at once, the last rename wins).
const TempMarker = ".hermes-tmp-"

// TempPattern is the os.CreateTemp pattern of a temporary file for base, for code that
// stages a file next to its target itself (lock files created with link(2)).
func TempPattern(base string) string {
	return "." + base + TempMarker + strconv.Itoa(os.Getpid()) + "-*"
}

// BeforeRename, when set, runs between writing the temporary file and renaming it over
// the target. Crash tests set it to kill the process at the worst moment.
var BeforeRename func()

// Write writes data to path: a temporary file in the same directory, written, synced,
// given mode and (unless uid is -1) uid:gid, renamed over path, then the directory
// synced.
func Write(path string, data []byte, mode fs.FileMode, uid, gid int) error {
	dir, base := filepath.Dir(path), filepath.Base(path)
	cleanStale(dir, base)
	tmp, err := os.CreateTemp(dir, TempPattern(base))
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if uid != -1 {
		if err := tmp.Chown(uid, gid); err != nil {
			return err
		}
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if BeforeRename != nil {
		BeforeRename()
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	done = true
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

// cleanStale removes temporary files that crashed writes of the same file left behind:
// those whose writer process no longer exists.
func cleanStale(dir, base string) {
	escape := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)
	matches, _ := filepath.Glob(filepath.Join(dir, "."+escape.Replace(base)+TempMarker+"*"))
	for _, m := range matches {
		rest := m[strings.LastIndex(m, TempMarker)+len(TempMarker):]
		pid, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
		if err == nil && (pid == os.Getpid() || alive(pid)) {
			continue
		}
		os.Remove(m)
	}
}

// alive reports whether a process exists (signal 0 checks without sending).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
