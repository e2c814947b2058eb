// Command runner is the stand-in for the private Hermes runner image, used by tests and
// the demo. It is a multi-call binary: invoked as `runner` (or `runner serve`) it is the
// container's main process; invoked under another name (a link in /bin) or as
// `runner <applet> args...` it runs that applet:
//
//	serve    read $HERMES_HOME (config.yaml, .env) and serve /health and /loaded on 127.0.0.1:8642
//	health   exit 0 when /health answers 200 (the image's HEALTHCHECK)
//	loaded   print what the server loaded at start (fingerprints, never values)
//	hermes   a tiny fake of the Hermes CLI: `auth add <provider> --type oauth`, `auth list`
//	ls, cat, touch, rm, env, id   just enough of the usual tools for isolation checks
//
// It mimics only what the reconciler's tests need and is not Hermes. There is no shell,
// on purpose: a check that needs one would not work against a minimal real image either.
// Standard library only; built with CGO_ENABLED=0 into a FROM scratch image.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// defaultHome is HERMES_HOME inside the runner images of the seed's control planes.
const defaultHome = "/data/hermes"

// listenAddr is where Hermes' API server listens (GET /health → {"status":"ok"}).
const listenAddr = "127.0.0.1:8642"

type applet func(args []string, stdin io.Reader, stdout, stderr io.Writer) int

func applets() map[string]applet {
	return map[string]applet{
		"serve":  func(args []string, _ io.Reader, stdout, stderr io.Writer) int { return serve(args, stdout, stderr) },
		"health": func(args []string, _ io.Reader, stdout, stderr io.Writer) int { return health(args, stdout, stderr) },
		"loaded": func(args []string, _ io.Reader, stdout, stderr io.Writer) int { return loaded(args, stdout, stderr) },
		"hermes": hermes,
		"ls":     func(args []string, _ io.Reader, stdout, stderr io.Writer) int { return ls(args, stdout, stderr) },
		"cat":    cat,
		"touch":  func(args []string, _ io.Reader, stdout, stderr io.Writer) int { return touch(args, stdout, stderr) },
		"rm":     func(args []string, _ io.Reader, stdout, stderr io.Writer) int { return rm(args, stdout, stderr) },
		"env":    func(args []string, _ io.Reader, stdout, stderr io.Writer) int { return env(args, stdout, stderr) },
		"id":     func(args []string, _ io.Reader, stdout, stderr io.Writer) int { return id(args, stdout, stderr) },
	}
}

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

// run dispatches on the program name, then on the first argument.
func run(argv []string, stdin io.Reader, stdout, stderr io.Writer) int {
	all := applets()
	name, args := "runner", []string(nil)
	if len(argv) > 0 {
		name, args = filepath.Base(argv[0]), argv[1:]
	}
	if a, ok := all[name]; ok {
		return a(args, stdin, stdout, stderr)
	}
	if len(args) == 0 {
		return all["serve"](nil, stdin, stdout, stderr)
	}
	if a, ok := all[args[0]]; ok {
		return a(args[1:], stdin, stdout, stderr)
	}
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(stderr, "runner: unknown applet %q\nusage: runner [%s] [args...]\n", args[0], strings.Join(names, "|"))
	return 2
}

// hermesHome is $HERMES_HOME, or the runner images' default.
func hermesHome() string {
	if h := os.Getenv("HERMES_HOME"); h != "" {
		return h
	}
	return defaultHome
}
