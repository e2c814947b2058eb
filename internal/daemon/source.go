package daemon

import (
	"context"
	"io/fs"
	"path"
	"strings"
	"time"
)

// Snapshot is one complete, immutable revision of the desired state. A source returns a
// snapshot only when it could read all of it: a partial tree is an error, never a
// snapshot.
type Snapshot struct {
	// Revision is the git commit id, or "dir:<digest>" of a directory's content.
	Revision string
	// Dir is where the revision lies on disk (for messages and relative paths such as a
	// worker's knownHostsFile).
	Dir string
	// FS is what is loaded: the exported commit tree, or an in-memory copy of the
	// directory taken in one pass.
	FS fs.FS
	// Subject, Author and Time describe the commit (dir: Time is when it was read).
	Subject string
	Author  string
	Time    time.Time
}

// Short is the revision for people: 12 hex digits of a commit, the whole dir digest.
func (s *Snapshot) Short() string { return shortRev(s.Revision) }

func shortRev(rev string) string {
	if !strings.HasPrefix(rev, "dir:") && len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// source is where desired state comes from: a git remote or a local directory.
type source interface {
	kind() string     // "git" or "dir"
	location() string // the remote (credentials removed) or the directory
	ref() string      // "branch main", "tag v1.2.0", "" for a directory
	// open prepares the source (clone dir, watcher).
	open(ctx context.Context) error
	// fetch brings the newest revision and returns its complete snapshot.
	fetch(ctx context.Context) (*Snapshot, error)
	// changes signals a change of the source between fetches (directory watch; nil for
	// git, whose changes come from the interval and webhooks).
	changes() <-chan struct{}
	// activate records that snap is now the revision in force.
	activate(snap *Snapshot)
	close()
}

// desiredDirs are the directories of a desired-state repository the loader reads.
var desiredDirs = []string{"apps", "workers", "tenants", "bundles"}

// editorTemp reports whether a file name is an editor's temporary or backup file, which
// never triggers a reload: vim's .swp/.swx/4913 and ~ backups, emacs' .#lock and #auto#,
// and the hidden temp files of atomic writers.
func editorTemp(name string) bool {
	base := path.Base(strings.ReplaceAll(name, "\\", "/"))
	switch {
	case base == "4913",
		strings.HasSuffix(base, "~"),
		strings.HasSuffix(base, ".swp"), strings.HasSuffix(base, ".swx"), strings.HasSuffix(base, ".swo"),
		strings.HasPrefix(base, ".#"),
		strings.HasPrefix(base, "#") && strings.HasSuffix(base, "#"),
		strings.HasSuffix(base, ".tmp"),
		strings.HasPrefix(base, ".") && base != ".sops.yaml":
		return true
	}
	return false
}
