package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"

	"github.com/firemountain/hermes-gitops/schema"
)

func validateCmd() *command {
	var output string
	var decrypt bool
	return &command{
		name:  "validate",
		usage: "validate [DIR] [--output text|json] [--decrypt]",
		short: "check a desired-state repository: schema, references, secrets encrypted",
		long: `Validate checks every file of a desired-state repository (default: the current
directory) without touching any worker: strict YAML (unknown keys, wrong types and
duplicate keys are errors), tenant ids, app and worker references, providers allowed for
the app and the secrets they need, bundle pins against the catalogue, and that every
secrets: map is encrypted by sops. All problems are reported together, each with
file:line:col. Secret values are never printed.

It needs no private key, so pull requests can be validated in CI. With --decrypt it also
decrypts every tenant's secrets with the age key from SOPS_AGE_KEY_FILE or SOPS_AGE_KEY.

Exit status: 0 valid (warnings and notes allowed), 1 invalid.

Examples:
  hermesctl validate tenants.example
  hermesctl validate . --output json | jq '.problems[]'`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&output, "output", "text", "output `format`: text or json")
			fs.BoolVar(&decrypt, "decrypt", false, "also decrypt every tenant's secrets (needs the age private key)")
		},
		run: func(ctx context.Context, env *Env, args []string) int {
			if !argsAtMost(env, args, 1, "validate [DIR]") {
				return ExitFailure
			}
			if output != "text" && output != "json" {
				return errorf(env, "--output must be text or json, not %q", output)
			}
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			repo, err := schema.Load(dir, schema.LoadOptions{})
			if err != nil {
				return errorf(env, "%v", err)
			}
			if decrypt {
				ids, err := schema.IdentitiesFromEnv()
				if err != nil {
					return errorf(env, "%v", err)
				}
				repo.Decrypt(ids)
			}
			return reportValidation(env, repo, output)
		},
	}
}

// validationReport is the JSON form of `validate --output json` (version 1).
type validationReport struct {
	Version  int             `json:"version"`
	Valid    bool            `json:"valid"`
	Repo     string          `json:"repo"`
	Counts   validationCount `json:"counts"`
	Problems schema.Problems `json:"problems"`
}

type validationCount struct {
	Tenants  int `json:"tenants"`
	Apps     int `json:"apps"`
	Workers  int `json:"workers"`
	Errors   int `json:"errors"`
	Warnings int `json:"warnings"`
	Notes    int `json:"notes"`
}

func reportValidation(env *Env, repo *schema.Repo, output string) int {
	rep := validationReport{Version: 1, Repo: repo.Dir, Problems: repo.Problems}
	if rep.Problems == nil {
		rep.Problems = schema.Problems{}
	}
	rep.Counts = validationCount{Tenants: len(repo.Tenants), Apps: len(repo.Apps), Workers: len(repo.Workers)}
	for _, p := range repo.Problems {
		switch p.Severity {
		case schema.Error:
			rep.Counts.Errors++
		case schema.Warning:
			rep.Counts.Warnings++
		case schema.Note:
			rep.Counts.Notes++
		}
	}
	rep.Valid = rep.Counts.Errors == 0
	if output == "json" {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		w := env.Stdout
		if !rep.Valid {
			w = env.Stderr
		}
		for _, p := range repo.Problems {
			fmt.Fprintln(w, p.String())
		}
		c := rep.Counts
		summary := fmt.Sprintf("%s: %s, %s, %s", repo.Dir, plural(c.Tenants, "tenant"), plural(c.Apps, "app"), plural(c.Workers, "worker"))
		if rep.Valid {
			fmt.Fprintf(w, "%s: valid", summary)
		} else {
			fmt.Fprintf(w, "%s: invalid, %s", summary, plural(c.Errors, "error"))
		}
		if c.Warnings > 0 {
			fmt.Fprintf(w, ", %s", plural(c.Warnings, "warning"))
		}
		fmt.Fprintln(w)
	}
	if !rep.Valid {
		return ExitFailure
	}
	return ExitOK
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
