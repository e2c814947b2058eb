package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing/fstest"
	"time"

	"github.com/fsnotify/fsnotify"
)

// dirSource reads a local desired-state directory. Each fetch copies apps/, workers/,
// tenants/ and bundles/ into memory in one pass and loads that copy, so a reload sees one
// consistent set of files; the revision is a digest of exactly what was read. fsnotify
// watches those directories (recursively, new ones included) and signals a change once
// the directory has been quiet for Debounce, so that a burst of writes (a git checkout,
// an editor's save) is one reconcile. Editor temp files are ignored.
type dirSource struct {
	cfg  Config
	log  *slog.Logger
	w    *fsnotify.Watcher
	ch   chan struct{}
	done chan struct{}
}

func newDirSource(cfg Config, log *slog.Logger) *dirSource {
	return &dirSource{cfg: cfg, log: log, ch: make(chan struct{}, 1), done: make(chan struct{})}
}

func (s *dirSource) kind() string             { return "dir" }
func (s *dirSource) location() string         { return s.cfg.Dir }
func (s *dirSource) ref() string              { return "" }
func (s *dirSource) changes() <-chan struct{} { return s.ch }
func (s *dirSource) activate(*Snapshot)       {}

func (s *dirSource) open(ctx context.Context) error {
	info, err := os.Stat(s.cfg.Dir)
	if err != nil {
		return fmt.Errorf("desired-state directory: %w", err)
	}
	if !info.IsDir() {
		return fmt.Errorf("desired-state directory %s: not a directory", s.cfg.Dir)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", s.cfg.Dir, err)
	}
	if err := w.Add(s.cfg.Dir); err != nil {
		w.Close()
		return fmt.Errorf("watch %s: %w", s.cfg.Dir, err)
	}
	s.w = w
	for _, d := range desiredDirs {
		s.addTree(filepath.Join(s.cfg.Dir, d))
	}
	go s.watch()
	return nil
}

func (s *dirSource) close() {
	if s.w != nil {
		close(s.done)
		s.w.Close()
	}
}

// addTree watches dir and every directory below it (fsnotify is not recursive).
func (s *dirSource) addTree(dir string) {
	_ = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.IsDir() {
			return nil
		}
		if p != dir && strings.HasPrefix(e.Name(), ".") {
			return filepath.SkipDir
		}
		if err := s.w.Add(p); err != nil {
			s.log.Warn("cannot watch a directory", "dir", p, "err", err)
		}
		return nil
	})
}

// relevant reports whether an event's path belongs to the desired state.
func (s *dirSource) relevant(name string) bool {
	rel, err := filepath.Rel(s.cfg.Dir, name)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return false
	}
	top, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
	return slices.Contains(desiredDirs, top) && !editorTemp(name)
}

func (s *dirSource) watch() {
	var fire <-chan time.Time
	var first time.Time
	maxDelay := 10 * s.cfg.Debounce
	for {
		select {
		case <-s.done:
			return
		case ev, ok := <-s.w.Events:
			if !ok {
				return
			}
			if !s.relevant(ev.Name) {
				continue
			}
			if ev.Has(fsnotify.Create) {
				if info, err := os.Stat(ev.Name); err == nil && info.IsDir() {
					s.addTree(ev.Name)
				}
			}
			now := time.Now()
			if fire == nil {
				first = now
			}
			// Wait until quiet for Debounce, but never more than maxDelay after the first
			// event of a burst.
			delay := min(s.cfg.Debounce, max(0, first.Add(maxDelay).Sub(now)))
			fire = time.After(delay)
		case err, ok := <-s.w.Errors:
			if !ok {
				return
			}
			s.log.Warn("directory watch error; the next rescan catches up", "err", err)
		case <-fire:
			fire = nil
			select {
			case s.ch <- struct{}{}:
			default:
			}
		}
	}
}

// fetch reads the desired-state directories into memory.
func (s *dirSource) fetch(ctx context.Context) (*Snapshot, error) {
	snap, err := readDirSnapshot(ctx, s.cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.cfg.Dir, err)
	}
	return snap, nil
}

func readDirSnapshot(ctx context.Context, root string) (*Snapshot, error) {
	mfs := fstest.MapFS{}
	h := sha256.New()
	for _, top := range desiredDirs {
		dir := filepath.Join(root, top)
		err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) && p == dir {
					return nil
				}
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			rel = filepath.ToSlash(rel)
			if e.IsDir() {
				if p != dir && strings.HasPrefix(e.Name(), ".") {
					return filepath.SkipDir
				}
				mfs[rel] = &fstest.MapFile{Mode: fs.ModeDir | 0o755}
				return nil
			}
			if editorTemp(e.Name()) || !e.Type().IsRegular() {
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			mfs[rel] = &fstest.MapFile{Data: data, Mode: 0o644}
			fmt.Fprintf(h, "%s\x00%d\x00", rel, len(data))
			h.Write(data)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sum := h.Sum(nil)
	return &Snapshot{Revision: "dir:" + hex.EncodeToString(sum[:6]), Dir: root, FS: mfs, Time: time.Now()}, nil
}
