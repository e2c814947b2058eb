package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/firemountain/hermes-gitops/reconcile/live"
)

// AuthStatus and CheckAuth are the one auth.json rule, kept in reconcile/live so that
// the planner (which may not import the agent) shares it.
type AuthStatus = live.AuthStatus

// Auth statuses (see live).
const (
	AuthAwaitingLogin = live.AuthAwaitingLogin
	AuthDualWriteGap  = live.AuthDualWriteGap
	AuthActiveWrong   = live.AuthActiveWrong
	AuthComplete      = live.AuthComplete
)

// CheckAuth classifies an auth.json shape for a provider key stored in both shapes
// (openai-codex); see live.CheckAuth.
func CheckAuth(a *live.AuthShape, key string) (AuthStatus, string) {
	return live.CheckAuth(a, key, nil, "")
}

// States an auth-repair step reports (StepResult.State).
const (
	AuthRepaired        = "repaired"         // the file was backed up and completed
	AuthAlreadyComplete = "already complete" // nothing to do: left untouched, no backup
	AuthNoCredential    = "no-credential"    // refused: nothing in credential_pool to complete from
	AuthInvalid         = "invalid"          // refused: missing, not a regular file, or not a JSON object
)

// authLockWait is how long auth-repair waits for Hermes' own lock on auth.json.
const authLockWait = 10 * time.Second

// authRepair completes the runtime shape of the auth.json at path for provider key from
// its credential_pool entry (see OpAuthRepair). It returns the resulting shape, never a
// token; errors name keys and byte offsets, never values.
func authRepair(path, key string, now time.Time) StepResult {
	fail := func(state, format string, args ...any) StepResult {
		r := failed("auth-repair %s: "+format, append([]any{path}, args...)...)
		r.State = state
		return r
	}
	if filepath.Base(path) != live.AuthFile {
		return fail(AuthInvalid, "refusing a file not named %s", live.AuthFile)
	}
	if key == "" {
		return fail(AuthInvalid, "no provider key given")
	}

	// Hermes writes auth.json under a flock on auth.lock next to it; hold the same lock
	// while reading and rewriting so that a token refresh inside the container is not
	// lost. The lock file is Hermes' own: it is used when present, never created.
	unlock, err := lockAuth(filepath.Join(filepath.Dir(path), "auth.lock"), authLockWait)
	if err != nil {
		return fail("", "%v", err)
	}
	defer unlock()

	// O_NOFOLLOW: the tenant's container can write into hermes-home; a symbolic link
	// there must not make the agent (often root) read or back up another file.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return fail(AuthInvalid, "no auth.json: nothing to repair (log in first)")
	}
	if err != nil {
		return fail(AuthInvalid, "%v", err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return fail(AuthInvalid, "%v", err)
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return fail(AuthInvalid, "not a regular file")
	}
	orig, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return fail(AuthInvalid, "%v", err)
	}
	owner := fileOwner(info)

	doc, err := parseObject(orig)
	if err != nil {
		return fail(AuthInvalid, "%v", err)
	}
	shape := authShape(orig)
	shape.Mode = uint32(info.Mode().Perm())
	status, _ := CheckAuth(shape, key)
	if status == AuthComplete {
		return StepResult{State: AuthAlreadyComplete, Auth: shape}
	}

	ts := now.UTC().Format(time.RFC3339)
	providers := object{}
	if raw, ok := doc.get("providers"); ok && !isNull(raw) {
		if providers, err = parseObject(raw); err != nil {
			return fail(AuthInvalid, "providers: %v", err)
		}
	}
	if status != AuthActiveWrong {
		// providers[key] has no access token: build it from the pool.
		access, refresh, err := poolCredential(doc, key)
		if err != nil {
			return fail(AuthInvalid, "%v", err)
		}
		if access == "" {
			return fail(AuthNoCredential, "no credential_pool[%q] entry holds an access token: nothing to complete the runtime shape from (log in again)", key)
		}
		entry := object{}
		if raw, ok := providers.get(key); ok {
			if existing, err := parseObject(raw); err == nil {
				entry = existing // keep its other fields (base_url, ...)
			}
		}
		tokens := map[string]string{"access_token": access}
		if refresh != "" {
			tokens["refresh_token"] = refresh
		}
		entry.set("tokens", mustJSON(tokens))
		entry.set("last_refresh", mustJSON(ts))
		entry.set("auth_mode", mustJSON("chatgpt"))
		providers.set(key, entry.marshal())
		doc.set("providers", providers.marshal())
	}
	doc.set("active_provider", mustJSON(key))
	doc.set("updated_at", mustJSON(ts))
	var out bytes.Buffer
	if err := json.Indent(&out, doc.marshal(), "", "  "); err != nil {
		return fail(AuthInvalid, "encode: %v", err)
	}
	out.WriteByte('\n')

	backup, err := backupName(path, now)
	if err != nil {
		return fail("", "backup: %v", err)
	}
	if err := WriteFileAtomic(backup, orig, 0o600, owner); err != nil {
		return fail("", "backup: %v", err)
	}
	if err := WriteFileAtomic(path, out.Bytes(), 0o600, owner); err != nil {
		return fail("", "write: %v (the original is kept, and backed up as %s)", err, filepath.Base(backup))
	}
	shape = authShape(out.Bytes())
	shape.Mode = 0o600
	return StepResult{Changed: true, State: AuthRepaired, Backup: backup, Auth: shape}
}

// poolCredential returns the tokens of the credential_pool[key] entry to complete the
// runtime shape from: among the entries holding an access token, the one of lowest
// priority number (Hermes tries priority 0 first), the first in the list on a tie.
func poolCredential(doc object, key string) (access, refresh string, err error) {
	raw, ok := doc.get("credential_pool")
	if !ok || isNull(raw) {
		return "", "", nil
	}
	var pool map[string]json.RawMessage
	if err := json.Unmarshal(raw, &pool); err != nil {
		return "", "", errors.New("credential_pool is not an object")
	}
	list, ok := pool[key]
	if !ok || isNull(list) {
		return "", "", nil
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(list, &entries); err != nil {
		return "", "", fmt.Errorf("credential_pool[%q] is not a list", key)
	}
	best := -1.0
	for _, e := range entries {
		var c struct {
			AccessToken  any     `json:"access_token"`
			RefreshToken any     `json:"refresh_token"`
			Priority     float64 `json:"priority"`
		}
		if json.Unmarshal(e, &c) != nil {
			continue // not an object: not a credential
		}
		at, _ := c.AccessToken.(string)
		if at == "" || (access != "" && c.Priority >= best) {
			continue
		}
		rt, _ := c.RefreshToken.(string)
		access, refresh, best = at, rt, c.Priority
	}
	return access, refresh, nil
}

// backupName is path.bak-<UTC timestamp>, with a counter when that name is taken.
func backupName(path string, now time.Time) (string, error) {
	base := path + ".bak-" + now.UTC().Format("20060102T150405Z")
	name := base
	for i := 1; ; i++ {
		if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
			return name, nil
		} else if err != nil {
			return "", err
		}
		if i > 100 {
			return "", fmt.Errorf("%s and 100 more names are taken", filepath.Base(base))
		}
		name = fmt.Sprintf("%s-%d", base, i)
	}
}

// fileOwner is the uid:gid of a file, so that rewritten files keep theirs.
func fileOwner(info fs.FileInfo) *Owner {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return &Owner{UID: int(st.Uid), GID: int(st.Gid)}
	}
	return nil
}

// lockAuth takes an exclusive flock on Hermes' auth.lock when it exists, waiting up to
// wait. The returned function releases it.
func lockAuth(path string, wait time.Duration) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return func() {}, nil // no lock file (or not one we can use): Hermes is not writing
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return func() {}, nil // a file system without flock: go on as Hermes would
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("auth.lock is held (Hermes is writing auth.json) for more than %v; try again", wait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// object is a JSON object whose members keep their order and their bytes, so that a
// rewrite changes only the members it sets.
type object []member

type member struct {
	key string
	val json.RawMessage
}

// parseObject reads a JSON object. Errors give a byte offset, never content.
func parseObject(data []byte) (object, error) {
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v)
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return nil, fmt.Errorf("not valid JSON (syntax error at byte %d)", syn.Offset)
		}
		return nil, errors.New("not valid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	obj := object{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errors.New("not valid JSON")
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, errors.New("not valid JSON")
		}
		obj = append(obj, member{key, raw})
	}
	return obj, nil
}

// get returns the value of key (the last one, as encoding/json and Python read it).
func (o object) get(key string) (json.RawMessage, bool) {
	for i := len(o) - 1; i >= 0; i-- {
		if o[i].key == key {
			return o[i].val, true
		}
	}
	return nil, false
}

// set replaces the value of key in place (dropping duplicates of it), or appends it.
func (o *object) set(key string, val json.RawMessage) {
	done := false
	out := (*o)[:0]
	for _, m := range *o {
		if m.key == key {
			if done {
				continue
			}
			m.val, done = val, true
		}
		out = append(out, m)
	}
	if !done {
		out = append(out, member{key, val})
	}
	*o = out
}

// marshal writes the object compactly: members in order, values as they were.
func (o object) marshal() json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(mustJSON(m.key))
		b.WriteByte(':')
		b.Write(m.val)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// mustJSON encodes a string or a map of strings (which cannot fail), without HTML
// escaping.
func mustJSON(v any) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }
