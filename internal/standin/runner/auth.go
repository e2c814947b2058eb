package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

const hermesUsage = `usage: hermes auth add <provider> --type oauth
       hermes auth list
(stand-in for the Hermes CLI: nothing else is implemented)
`

// hermes is a tiny fake of the Hermes CLI, enough for the reconciler's device-auth test.
// The device flow is simulated: the "authorization code" read from stdin becomes the
// tokens, and no network is used.
func hermes(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) >= 2 && args[0] == "auth" && args[1] == "add" {
		return authAdd(args[2:], stdin, stdout, stderr)
	}
	if len(args) == 2 && args[0] == "auth" && args[1] == "list" {
		return authList(stdout, stderr)
	}
	io.WriteString(stderr, hermesUsage)
	return 2
}

func authAdd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var provider, typ string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--type" && i+1 < len(args):
			i++
			typ = args[i]
		case strings.HasPrefix(a, "--type="):
			typ = strings.TrimPrefix(a, "--type=")
		case strings.HasPrefix(a, "-"), provider != "":
			io.WriteString(stderr, hermesUsage)
			return 2
		default:
			provider = a
		}
	}
	if provider == "" || typ != "oauth" || !validProvider(provider) {
		io.WriteString(stderr, hermesUsage)
		return 2
	}
	fmt.Fprintln(stdout, "Open https://auth.example.invalid/device and enter code ABCD-1234")
	fmt.Fprint(stdout, "Paste the authorization code: ")
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintf(stderr, "\nhermes: read authorization code: %v\n", err)
		return 1
	}
	code := strings.TrimSpace(line)
	if code == "" {
		fmt.Fprintln(stderr, "\nhermes: no authorization code entered")
		return 1
	}
	path := filepath.Join(hermesHome(), "auth.json")
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stderr, "\nhermes: read auth.json: %v\n", err)
		return 1
	}
	data, err := addOAuth(old, provider, code, time.Now(), newID())
	if err != nil {
		fmt.Fprintf(stderr, "\nhermes: auth.json: %v\n", err)
		return 1
	}
	if err := writeFileAtomic(path, data, 0o600); err != nil {
		fmt.Fprintf(stderr, "\nhermes: write auth.json: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "\nLogged in to %s.\n", provider)
	return 0
}

func validProvider(p string) bool {
	for _, c := range p {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return p != ""
}

func newID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// addOAuth returns auth.json with an OAuth login for provider recorded in both places
// Hermes reads: providers.<p> (the runtime shape: gateway, cron, model calls) and
// credential_pool.<p> (`hermes auth list`, status probes). Everything else in the file,
// other providers and pool entries included, is kept. A previous device-code entry of the
// same provider is replaced, as a fresh login replaces the old one.
func addOAuth(old []byte, provider, code string, now time.Time, id string) ([]byte, error) {
	store := map[string]any{}
	if len(strings.TrimSpace(string(old))) > 0 {
		if err := json.Unmarshal(old, &store); err != nil {
			return nil, fmt.Errorf("existing file is not a JSON object: %w", err)
		}
	}
	ts := now.UTC().Format(time.RFC3339)
	if _, ok := store["version"]; !ok {
		store["version"] = 1
	}
	store["active_provider"] = provider

	providers, err := object(store, "providers")
	if err != nil {
		return nil, err
	}
	entry, ok := providers[provider].(map[string]any)
	if !ok {
		entry = map[string]any{}
	}
	entry["tokens"] = map[string]any{"access_token": "at-" + code, "refresh_token": "rt-" + code}
	entry["last_refresh"] = ts
	entry["auth_mode"] = "chatgpt"
	providers[provider] = entry

	pool, err := object(store, "credential_pool")
	if err != nil {
		return nil, err
	}
	var kept []any
	if list, ok := pool[provider]; ok {
		l, ok := list.([]any)
		if !ok {
			return nil, fmt.Errorf("credential_pool.%s is not a list", provider)
		}
		for _, e := range l {
			if m, ok := e.(map[string]any); ok && m["auth_type"] == "oauth" && m["source"] == "device_code" {
				continue
			}
			kept = append(kept, e)
		}
	}
	pool[provider] = append(kept, map[string]any{
		"id":           id,
		"label":        "oauth",
		"auth_type":    "oauth",
		"priority":     0,
		"source":       "device_code",
		"access_token": "at-" + code,
	})
	store["updated_at"] = ts
	out, err := json.MarshalIndent(store, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// object returns store[key] as a JSON object, creating it when absent.
func object(store map[string]any, key string) (map[string]any, error) {
	v, ok := store[key]
	if !ok || v == nil {
		m := map[string]any{}
		store[key] = m
		return m, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s is not an object", key)
	}
	return m, nil
}

// writeFileAtomic writes data to path via a temporary file in the same directory:
// write, fsync, chmod, rename, then fsync the directory.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// authList prints the providers that have credentials in the pool, one per line.
func authList(stdout, stderr io.Writer) int {
	data, err := os.ReadFile(filepath.Join(hermesHome(), "auth.json"))
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintln(stderr, "hermes: no credentials stored")
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "hermes: read auth.json: %v\n", err)
		return 1
	}
	var store struct {
		Pool map[string][]json.RawMessage `json:"credential_pool"`
	}
	if err := json.Unmarshal(data, &store); err != nil {
		fmt.Fprintf(stderr, "hermes: auth.json: %v\n", err)
		return 1
	}
	var names []string
	for p, entries := range store.Pool {
		if len(entries) > 0 {
			names = append(names, p)
		}
	}
	sort.Strings(names)
	for _, p := range names {
		fmt.Fprintln(stdout, p)
	}
	return 0
}
