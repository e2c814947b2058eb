package wizard

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"

	"github.com/firemountain/hermes-gitops/schema"
)

// candidateFS is the repository as schema.LoadFS sees it when validating one
// new tenant file: everything of the repository (apps, workers, bundles) from the head
// commit, and under tenants/ only the new file, held in memory.
//
// The other tenants are left out on purpose: loading and validating 1,000 tenant files
// takes longer than a submission may (about 130 ms), and nothing in them changes whether
// the new file is valid except a duplicate id, which the server checks itself against
// the git tree (and answers with 409 and a free id rather than a validation error).
type candidateFS struct {
	base fs.FS
	file string // tenants/<app>/<id>.yaml
	data []byte
}

func (o candidateFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if name != schema.TenantsDir && !strings.HasPrefix(name, schema.TenantsDir+"/") {
		return o.base.Open(name)
	}
	if name == o.file {
		return &memFile{name: path.Base(name), r: bytes.NewReader(o.data), size: int64(len(o.data))}, nil
	}
	// A directory on the way to the file holds the next step only.
	if rest, ok := strings.CutPrefix(o.file, name+"/"); ok {
		child, _, isDir := strings.Cut(rest, "/")
		e := memEntry{name: child, dir: isDir}
		if !isDir {
			e.size = int64(len(o.data))
		}
		return &memDir{name: path.Base(name), entries: []fs.DirEntry{e}}, nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

type memFile struct {
	name string
	r    *bytes.Reader
	size int64
}

func (f *memFile) Stat() (fs.FileInfo, error) { return memEntry{name: f.name, size: f.size}, nil }
func (f *memFile) Read(b []byte) (int, error) { return f.r.Read(b) }
func (f *memFile) Close() error               { return nil }

type memDir struct {
	name    string
	entries []fs.DirEntry
	off     int
}

func (d *memDir) Stat() (fs.FileInfo, error) { return memEntry{name: d.name, dir: true}, nil }
func (d *memDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.name, Err: fs.ErrInvalid}
}
func (d *memDir) Close() error { return nil }
func (d *memDir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.entries[d.off:]
	if n <= 0 {
		d.off = len(d.entries)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	rest = rest[:min(n, len(rest))]
	d.off += len(rest)
	return rest, nil
}

// memEntry is both the fs.DirEntry and the fs.FileInfo of an in-memory file or dir.
type memEntry struct {
	name string
	dir  bool
	size int64
}

func (e memEntry) Name() string { return e.name }
func (e memEntry) IsDir() bool  { return e.dir }
func (e memEntry) Type() fs.FileMode {
	return e.Mode().Type()
}
func (e memEntry) Info() (fs.FileInfo, error) { return e, nil }
func (e memEntry) Size() int64                { return e.size }

// Mode is read-only: nothing is ever written through these file systems.
func (e memEntry) Mode() fs.FileMode {
	if e.dir {
		return fs.ModeDir | 0o555
	}
	return 0o444
}
func (e memEntry) ModTime() time.Time { return time.Time{} }
func (e memEntry) Sys() any           { return nil }

// treeFS is a git tree as an fs.FS: a commit of the bare clone, read without a checkout.
type treeFS struct {
	root *object.Tree
	s    storer.EncodedObjectStorer
}

// maxTreeFile bounds what treeFS reads of one file; desired-state files are small.
const maxTreeFile = 4 << 20

func (t treeFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	tree := t.root
	if name != "." {
		e, err := t.root.FindEntry(name)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		if e.Mode != filemode.Dir {
			if !e.Mode.IsFile() {
				return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("not a regular file")}
			}
			f, err := t.root.TreeEntryFile(e)
			if err != nil {
				return nil, &fs.PathError{Op: "open", Path: name, Err: err}
			}
			rd, err := f.Reader()
			if err != nil {
				return nil, &fs.PathError{Op: "open", Path: name, Err: err}
			}
			defer rd.Close()
			data, err := io.ReadAll(io.LimitReader(rd, maxTreeFile))
			if err != nil {
				return nil, &fs.PathError{Op: "read", Path: name, Err: err}
			}
			return &memFile{name: path.Base(name), r: bytes.NewReader(data), size: int64(len(data))}, nil
		}
		if tree, err = t.root.Tree(name); err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
	}
	entries := make([]fs.DirEntry, 0, len(tree.Entries))
	for _, e := range tree.Entries {
		if e.Mode == filemode.Submodule {
			continue
		}
		entries = append(entries, treeEntry{e: e, s: t.s})
	}
	return &memDir{name: path.Base(name), entries: entries}, nil
}

// treeEntry is a directory entry of a treeFS; its size is read only when asked for.
type treeEntry struct {
	e object.TreeEntry
	s storer.EncodedObjectStorer
}

func (e treeEntry) Name() string      { return e.e.Name }
func (e treeEntry) IsDir() bool       { return e.e.Mode == filemode.Dir }
func (e treeEntry) Type() fs.FileMode { return e.info().Mode().Type() }
func (e treeEntry) Info() (fs.FileInfo, error) {
	info := e.info()
	if !info.dir {
		size, err := e.s.EncodedObjectSize(e.e.Hash)
		if err != nil {
			return nil, err
		}
		info.size = size
	}
	return info, nil
}
func (e treeEntry) info() memEntry { return memEntry{name: e.e.Name, dir: e.IsDir()} }
