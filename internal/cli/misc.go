package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"text/tabwriter"

	"github.com/firemountain/hermes-gitops/bundles"
	"github.com/firemountain/hermes-gitops/reconcile/agent"
	"github.com/firemountain/hermes-gitops/schema"
)

func secretsCmd() *command {
	var repoDir string
	encrypt := &command{
		name:  "encrypt",
		usage: "secrets encrypt FILE... [--repo DIR]",
		short: "encrypt a tenant file's secrets in place with sops",
		long: `Encrypt encrypts the secrets: map of tenant files in place, for the age recipients of
the matching creation rule in the repository's .sops.yaml. Only public keys are needed.
The result is a normal sops file: 'sops -d FILE' decrypts it and 'sops edit FILE' edits it.
Everything outside secrets: stays readable, so reviewers see what changes.

A file that is already encrypted is left alone. To change secrets of an encrypted file,
use 'sops edit FILE' (that needs the private key).

Example:
  hermesctl secrets encrypt tenants/spawn/cody1.yaml`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&repoDir, "repo", "", "repository root that bounds the search for .sops.yaml (default: the git top level or the file's directory)")
		},
		run: func(ctx context.Context, env *Env, args []string) int {
			if len(args) == 0 {
				return errorf(env, "name at least one tenant file\nUsage: hermesctl secrets encrypt FILE...")
			}
			code := ExitOK
			for _, f := range args {
				root := repoDir
				if root == "" {
					root = repoRootOf(f)
				}
				err := schema.EncryptFile(f, root)
				switch {
				case errors.Is(err, schema.ErrAlreadyEncrypted):
					fmt.Fprintf(env.Stdout, "%s: already encrypted, left unchanged\n", f)
				case errors.Is(err, schema.ErrNoSecrets):
					fmt.Fprintf(env.Stdout, "%s: no secrets to encrypt, left unchanged\n", f)
				case err != nil:
					fmt.Fprintf(env.Stderr, "error: %v\n", err)
					code = ExitFailure
				default:
					fmt.Fprintf(env.Stdout, "%s: secrets encrypted\n", f)
				}
			}
			return code
		},
	}
	return &command{name: "secrets", usage: "secrets COMMAND", short: "manage sops-encrypted tenant secrets", sub: []*command{encrypt}}
}

// repoRootOf guesses a file's repository root: the nearest parent with .git or .sops.yaml
// above tenants/, else the file's directory.
func repoRootOf(file string) string {
	abs, err := filepath.Abs(file)
	if err != nil {
		return filepath.Dir(file)
	}
	for dir := filepath.Dir(abs); dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
		for _, marker := range []string{".git", schema.TenantsDir} {
			if _, err := os.Stat(filepath.Join(dir, marker)); err == nil {
				return dir
			}
		}
	}
	return filepath.Dir(abs)
}

func bundleCmd() *command {
	var repoDir string
	repoFlag := func(fs *flag.FlagSet) {
		fs.StringVar(&repoDir, "repo", "", "also include a desired-state repository's own bundles/ directory")
	}
	load := func() (*bundles.Catalogue, error) {
		cat, err := bundles.Builtin()
		if err != nil || repoDir == "" {
			return cat, err
		}
		dir := filepath.Join(repoDir, schema.BundlesDir)
		if _, err := os.Stat(dir); err != nil {
			return cat, nil
		}
		own, err := bundles.Load(os.DirFS(dir))
		if err != nil {
			return nil, err
		}
		return bundles.Layered(cat, own), nil
	}
	list := &command{
		name: "list", usage: "bundle list [--repo DIR]", short: "list the bundles and skills of the catalogue",
		long: `List shows every published bundle version and à-la-carte skill, with its digest and
what it requires of a tenant.

Example:
  hermesctl bundle list`,
		flags: repoFlag,
		run: func(ctx context.Context, env *Env, args []string) int {
			cat, err := load()
			if err != nil {
				return errorf(env, "%v", err)
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "BUNDLE\tSKILLS\tREQUIRES\tDIGEST\tDESCRIPTION")
			for _, b := range cat.Bundles() {
				fmt.Fprintf(tw, "%s@%s\t%d\t%s\t%s\t%s\n", b.Name, b.Version, len(b.Skills), requires(b.RequiresToolsets, b.RequiresEnv), short(b.Digest), b.Description)
			}
			fmt.Fprintln(tw, "\nSKILL\t\tREQUIRES\tDIGEST\tDESCRIPTION")
			for _, s := range cat.Skills() {
				fmt.Fprintf(tw, "%s@%s\t\t%s\t%s\t%s\n", s.Name, s.Version, requires(s.RequiresToolsets, nil), short(s.Digest), s.Description)
			}
			tw.Flush()
			return ExitOK
		},
	}
	verify := &command{
		name: "verify", usage: "bundle verify [--repo DIR]", short: "check that no published bundle version changed",
		long: `Verify recomputes the digest of every published bundle version and à-la-carte skill
and compares it with bundles.sum. A published version is immutable: change content by
publishing a new version.

Exit status: 0 every version matches, 1 otherwise.

Example:
  hermesctl bundle verify`,
		flags: repoFlag,
		run: func(ctx context.Context, env *Env, args []string) int {
			cat, err := load()
			if err != nil {
				return errorf(env, "%v", err)
			}
			errs := cat.Verify()
			for _, e := range errs {
				fmt.Fprintf(env.Stderr, "%v\n", e)
			}
			if len(errs) > 0 {
				return ExitFailure
			}
			fmt.Fprintf(env.Stdout, "%d bundle versions and %d skills match bundles.sum\n", len(cat.Bundles()), len(cat.Skills()))
			return ExitOK
		},
	}
	return &command{name: "bundle", usage: "bundle COMMAND", short: "list and verify the skill-bundle catalogue", sub: []*command{list, verify}}
}

func requires(toolsets, env []string) string {
	var out []string
	for _, t := range toolsets {
		out = append(out, "toolset:"+t)
	}
	for _, e := range env {
		out = append(out, "env:"+e)
	}
	if len(out) == 0 {
		return "-"
	}
	return fmt.Sprint(out)
}

func short(digest string) string {
	if len(digest) > 19 {
		return digest[:19]
	}
	return digest
}

func schemaCmd() *command {
	var kind string
	return &command{
		name: "schema", usage: "schema [--kind Tenant|App|Worker]", short: "print the JSON Schema of tenant (or app, worker) files",
		long: `Schema prints the JSON Schema of a file kind, generated from the same Go types the
loader uses. Point your editor at it for completion and inline errors; the example files
carry a '# yaml-language-server: $schema=' line that does this in VS Code and others.

Example:
  hermesctl schema > tenant.schema.json`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&kind, "kind", schema.KindTenant, "file `kind`: Tenant, App or Worker")
		},
		run: func(ctx context.Context, env *Env, args []string) int {
			out, err := schema.JSONSchema(kind)
			if err != nil {
				return errorf(env, "%v", err)
			}
			fmt.Fprintf(env.Stdout, "%s\n", out)
			return ExitOK
		},
	}
}

// Version is set at build time with -ldflags "-X .../internal/cli.Version=v1.2.3".
var Version = ""

func versionCmd() *command {
	return &command{
		name: "version", usage: "version", short: "print the version of hermesctl",
		run: func(ctx context.Context, env *Env, args []string) int {
			fmt.Fprintf(env.Stdout, "hermesctl %s\n", version())
			return ExitOK
		},
	}
}

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
		if rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if dirty {
				rev += "-dirty"
			}
			return "devel+" + rev
		}
	}
	return "devel"
}

// agentCmd lets hermesctl itself serve as the worker agent ("hermesctl agent run"), so
// that a linux hermesctl can install itself on workers when no hermes-agent binary is
// at hand.
func agentCmd() *command {
	return &command{
		name: "agent", usage: "agent run", short: "serve one worker-agent request on stdin (used by hermesctl itself)",
		hidden: true, noFlags: true,
		run: func(ctx context.Context, env *Env, args []string) int {
			return agent.Main(args, env.Stdin, env.Stdout, env.Stderr)
		},
	}
}
