package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/firemountain/hermes-gitops/internal/cli"
	"github.com/firemountain/hermes-gitops/internal/testenv"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"hermesctl": func() { os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the CLI end to end from testdata/script/*.txtar. Every script starts
// with $WORK/repo holding a minimal desired-state repository (testdata/fixture) and
// $EXAMPLE pointing at tenants.example.
func TestScripts(t *testing.T) {
	example, _ := filepath.Abs("../../tenants.example")
	fixture, _ := filepath.Abs("testdata/fixture")
	sops, _ := exec.LookPath("sops")
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(e *testscript.Env) error {
			e.Setenv("EXAMPLE", example)
			e.Setenv("DEMO_KEY", filepath.Join(example, "demo.agekey"))
			e.Setenv("NO_COLOR", "1")
			return os.CopyFS(filepath.Join(e.WorkDir, "repo"), os.DirFS(fixture))
		},
		Condition: func(cond string) (bool, error) {
			if cond == "sops" {
				if sops == "" {
					testenv.Missing(t, "sops", "not on PATH")
				}
				return sops != "", nil
			}
			return false, nil
		},
	})
}
