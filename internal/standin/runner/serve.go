package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// state is what the server loaded from hermes-home at start. Like Hermes, the runner
// reads config.yaml and .env once; a change needs a restart, which is what the
// reconciler's "patch + restart" relies on.
type state struct {
	Provider string `json:"provider"`
	// Env maps each .env key to a fingerprint of its value. A plain sha256 is fine for
	// this test stand-in (the values are fake and the endpoint is loopback-only inside the
	// container); it lets a test check which value was loaded without the value ever
	// leaving the container. The reconciler's own observation uses keyed fingerprints.
	Env map[string]string `json:"env"`
	// ProcessEnv lists the names (never values) of the process environment: the
	// container's own env. .env values are deliberately not copied into it, so a test can
	// check that no tenant secret was passed on the container's command line or env.
	ProcessEnv []string `json:"processEnv"`
	StartedAt  string   `json:"startedAt"`
}

// load reads config.yaml and .env of a hermes-home. A missing .env means no keys; a
// missing or unreadable config.yaml is an error.
func load(home string, now time.Time) (*state, error) {
	cfg, err := os.ReadFile(filepath.Join(home, "config.yaml"))
	if err != nil {
		return nil, fmt.Errorf("read config.yaml: %w", err)
	}
	provider, err := parseConfig(cfg)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	data, err := os.ReadFile(filepath.Join(home, ".env"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read .env: %w", err)
	default:
		if env, err = parseDotenv(data); err != nil {
			return nil, err
		}
	}
	st := &state{Provider: provider, Env: map[string]string{}, StartedAt: now.UTC().Format(time.RFC3339Nano)}
	for k, v := range env {
		st.Env[k] = fingerprint(v)
	}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		st.ProcessEnv = append(st.ProcessEnv, name)
	}
	sort.Strings(st.ProcessEnv)
	return st, nil
}

func fingerprint(v string) string {
	sum := sha256.Sum256([]byte(v))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func (st *state) keys() []string {
	keys := make([]string, 0, len(st.Env))
	for k := range st.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (st *state) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`+"\n")
	})
	mux.HandleFunc("GET /loaded", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(st)
	})
	return mux
}

// serve is the container's main process.
func serve(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "usage: runner [serve]")
		return 2
	}
	home := hermesHome()
	st, err := load(home, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "runner: hermes-home %s: %v\n", home, err)
		return 1
	}
	if code := crashOnPurpose(home, stderr); code != 0 {
		return code
	}
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		fmt.Fprintf(stderr, "runner: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "runner: provider=%s keys=%s\n", st.Provider, strings.Join(st.keys(), ","))

	// PID 1 in a container gets no default signal handling: without this, docker stop
	// would wait its full timeout and then kill.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	srv := &http.Server{Handler: st.handler(), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-sigs:
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		return 0
	case err := <-errc:
		fmt.Fprintf(stderr, "runner: serve: %v\n", err)
		return 1
	}
}

// client talks to the server in the same network namespace; never through a proxy.
var client = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}

func get(path string) (int, []byte, error) {
	resp, err := client.Get("http://" + listenAddr + path)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// health is the image's HEALTHCHECK: exit 0 when /health answers 200.
func health(args []string, stdout, stderr io.Writer) int {
	code, body, err := get("/health")
	if err != nil {
		fmt.Fprintf(stderr, "health: %v\n", err)
		return 1
	}
	if code != http.StatusOK {
		fmt.Fprintf(stderr, "health: status %d\n", code)
		return 1
	}
	stdout.Write(body)
	return 0
}

// loaded prints the server's /loaded document.
func loaded(args []string, stdout, stderr io.Writer) int {
	code, body, err := get("/loaded")
	if err != nil {
		fmt.Fprintf(stderr, "loaded: %v\n", err)
		return 1
	}
	if code != http.StatusOK {
		fmt.Fprintf(stderr, "loaded: status %d\n", code)
		return 1
	}
	stdout.Write(body)
	return 0
}

// crashOnPurpose lets tests make a tenant crash-loop the way a careless runner does: a
// top-level `standin_crash: KEY` in config.yaml makes it print the value of KEY from
// .env (as a real runner might log a rejected API key) and exit 1. The reconciler must
// report the crash with these log lines, the secret redacted.
func crashOnPurpose(home string, stderr io.Writer) int {
	cfg, err := os.ReadFile(filepath.Join(home, "config.yaml"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(cfg), "\n") {
		key, ok := strings.CutPrefix(line, "standin_crash: ")
		if !ok {
			continue
		}
		env, _ := os.ReadFile(filepath.Join(home, ".env"))
		vals, _ := parseDotenv(env)
		fmt.Fprintf(stderr, "runner: fatal: the provider rejected the key in %s: %s\n", strings.TrimSpace(key), vals[strings.TrimSpace(key)])
		return 1
	}
	return 0
}
