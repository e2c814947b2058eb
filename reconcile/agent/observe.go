package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/firemountain/hermes-gitops/reconcile/live"
)

// homeScanners bounds the goroutines reading tenant homes at once.
const homeScanners = 8

// Observe collects the live state of every tenant of the worker: containers from Docker
// and homes from disk, concurrently.
func Observe(ctx context.Context, req *ObserveRequest) (*live.Worker, []byte, error) {
	key, err := loadOrCreateKey(req.StateDir)
	if err != nil {
		return nil, nil, fmt.Errorf("fingerprint key: %w", err)
	}
	w := &live.Worker{Worker: req.Worker, Containers: []live.Container{}, Unmanaged: []live.Container{}, Homes: []live.Home{}}
	var dockerErr error
	var wg sync.WaitGroup
	if !req.SkipDocker {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.Containers, w.Unmanaged, dockerErr = observeContainers(ctx, req.Apps, key)
		}()
	}
	w.Homes = observeHomes(req.Apps, req.Scaffold, key)
	w.Lock = readLock(filepath.Join(req.StateDir, applyLockName))
	wg.Wait()
	if dockerErr != nil {
		return nil, nil, dockerErr
	}
	return w, key, nil
}

// observeHomes lists <root>/<id>/hermes-home of every app and reads them in parallel.
func observeHomes(apps []AppRoot, scaffold []string, key []byte) []live.Home {
	type job struct {
		app, id, path string
	}
	var jobs []job
	for _, a := range apps {
		entries, err := os.ReadDir(a.Root)
		if err != nil {
			continue // no tenants of this app here yet
		}
		for _, e := range entries {
			if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			home := filepath.Join(a.Root, e.Name(), "hermes-home")
			if info, err := os.Stat(home); err == nil && info.IsDir() {
				jobs = append(jobs, job{a.App, e.Name(), home})
			}
		}
	}
	homes := make([]live.Home, len(jobs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(homeScanners, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				homes[i] = observeHome(jobs[i].app, jobs[i].id, jobs[i].path, scaffold, key)
			}
		}()
	}
	for i := range jobs {
		next <- i
	}
	close(next)
	wg.Wait()
	sort.Slice(homes, func(i, j int) bool {
		if homes[i].App != homes[j].App {
			return homes[i].App < homes[j].App
		}
		return homes[i].ID < homes[j].ID
	})
	return homes
}

// observeHome reads one tenant's managed files.
func observeHome(app, id, home string, scaffold []string, key []byte) live.Home {
	h := live.Home{App: app, ID: id, Path: home, Files: map[string]string{}}
	fail := func(format string, args ...any) { h.Errors = append(h.Errors, fmt.Sprintf(format, args...)) }

	if d, err := digestFile(filepath.Join(home, live.ConfigFile)); err == nil {
		h.Files[live.ConfigFile] = d
	} else if !errors.Is(err, fs.ErrNotExist) {
		fail("%s: %v", live.ConfigFile, err)
	}

	if data, info, err := readWithInfo(filepath.Join(home, live.EnvFile)); err == nil {
		values, order, dups := envValues(parseEnv(data))
		env := &live.EnvShape{Keys: map[string]string{}, Order: order, Duplicates: dups, Mode: uint32(info.Mode().Perm())}
		if env.Order == nil {
			env.Order = []string{}
		}
		for k, v := range values {
			env.Keys[k] = Fingerprint(key, v)
		}
		h.Env = env
	} else if !errors.Is(err, fs.ErrNotExist) {
		fail("%s: %v", live.EnvFile, err)
	}

	if data, info, err := readWithInfo(filepath.Join(home, live.AuthFile)); err == nil {
		h.Auth = authShape(data)
		h.Auth.Mode = uint32(info.Mode().Perm())
	} else if !errors.Is(err, fs.ErrNotExist) {
		fail("%s: %v", live.AuthFile, err)
	}
	for _, f := range []string{".anthropic_oauth.json"} {
		if _, err := os.Stat(filepath.Join(home, f)); err == nil {
			h.AuthFiles = append(h.AuthFiles, f)
		}
	}

	if data, err := os.ReadFile(filepath.Join(home, live.LockFile)); err == nil {
		var lock live.InstallLock
		if err := json.Unmarshal(data, &lock); err != nil {
			fail("%s: %v", live.LockFile, err)
		} else {
			h.Lock = &lock
			h.Files[live.LockFile] = Digest(data)
			for _, f := range lock.Files {
				if !safeRel(f.Path) {
					fail("%s: unsafe path %q", live.LockFile, f.Path)
					continue
				}
				if d, err := digestFile(filepath.Join(home, filepath.FromSlash(f.Path))); err == nil {
					h.Files[f.Path] = d
				}
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		fail("%s: %v", live.LockFile, err)
	}

	for _, d := range scaffold {
		if info, err := os.Stat(filepath.Join(home, filepath.FromSlash(d))); err != nil || !info.IsDir() {
			h.MissingDirs = append(h.MissingDirs, d)
		}
	}
	return h
}

// authShape reduces auth.json to which entries exist; tokens never leave this function.
func authShape(data []byte) *live.AuthShape {
	var doc struct {
		ActiveProvider string                       `json:"active_provider"`
		Providers      map[string]json.RawMessage   `json:"providers"`
		CredentialPool map[string][]json.RawMessage `json:"credential_pool"`
	}
	shape := &live.AuthShape{}
	if err := json.Unmarshal(data, &doc); err != nil {
		return shape
	}
	shape.Valid = true
	shape.ActiveProvider = doc.ActiveProvider
	for name, raw := range doc.Providers {
		var p struct {
			Tokens struct {
				AccessToken string `json:"access_token"`
			} `json:"tokens"`
			AccessToken string `json:"access_token"`
		}
		if json.Unmarshal(raw, &p) == nil && (p.Tokens.AccessToken != "" || p.AccessToken != "") {
			shape.Providers = append(shape.Providers, name)
		} else {
			shape.ProvidersWithoutTokens = append(shape.ProvidersWithoutTokens, name)
		}
	}
	slices.Sort(shape.Providers)
	slices.Sort(shape.ProvidersWithoutTokens)
	if len(doc.CredentialPool) > 0 {
		shape.Pool = map[string]int{}
		for name, entries := range doc.CredentialPool {
			shape.Pool[name] = len(entries)
		}
	}
	return shape
}

func digestFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return Digest(data), nil
}

func readWithInfo(path string) ([]byte, fs.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("not a regular file")
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, err
	}
	return data, info, nil
}

// safeRel reports whether a lock path stays inside hermes-home.
func safeRel(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") {
		return false
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." || part == "" || part == "." {
			return false
		}
	}
	return true
}
