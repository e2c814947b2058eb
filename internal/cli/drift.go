package cli

import (
	"context"
	"flag"
	"fmt"

	"github.com/firemountain/hermes-gitops/internal/report"
	"github.com/firemountain/hermes-gitops/reconcile/drift"
)

func driftCmd() *command {
	var ff fleetFlags
	return &command{
		name:  "drift",
		usage: "drift [--repo DIR] [--worker NAME] [--tenant ID] [--output text|json|markdown]",
		short: "report where live state left git, without changing anything",
		long: `Drift observes the workers (read-only) and lists every place where a tenant differs
from git, one finding each with a stable code, what git says, what the worker has, and
what apply would do about it. It catches the control planes' classic pitfalls:

  container.missing / .stopped / .crash-loop / .unhealthy   the container is not up
  container.env-missing     created without a baked variable (ASTRAL_KB_ROOT): recreate
  container.hardening       --cap-drop=ALL, no-new-privileges or the memory limit missing
  container.image           running another image than the pinned one
  env.changed / .missing / .unmanaged   .env edited by hand (fingerprints, never values)
  config.changed            config.yaml edited by hand, with a field-level diff
  skills.version / .missing / .modified / .extra   skills off their pins
  kb.missing                knowledge-base scaffold missing
  auth.dual-write-gap       credential_pool without providers[...] (run auth repair)
  auth.awaiting-login       OAuth tenant not logged in yet (information)
  tenant.orphan, container.unmanaged   managed but not in git; look-alikes

A fleet summary follows: findings by code, the version skew of every bundle (what git
pins against what runs) and tenants per provider. --output json is a versioned schema
(docs/drift.md); --output markdown suits an issue or a pull-request comment.

Exit status: 0 no drift, 3 drift found, 1 error.

Examples:
  hermesctl drift --repo tenants.example
  hermesctl drift --output markdown > drift.md`,
		flags: func(fs *flag.FlagSet) { ff.register(fs, "text, json or markdown") },
		run: func(ctx context.Context, env *Env, args []string) int {
			if !argsAtMost(env, args, 0, "drift [FLAGS]") || !validOutput(env, ff.output, "text", "json", "markdown") {
				return ExitFailure
			}
			s, err := ff.session(ctx, env, false, nil)
			if err != nil {
				return errorf(env, "%v", err)
			}
			defer s.Close()
			findings := drift.Compute(drift.Input{Plan: s.Plan, Observed: s.Observed, LiveConfs: s.LiveConfigs(ctx)})
			rep := report.NewDriftReport(findings, drift.Summarize(s.Desired.Tenants, s.Observed, findings))
			switch ff.output {
			case "json":
				_ = report.DriftJSON(env.Stdout, rep)
			case "markdown":
				report.DriftMarkdown(env.Stdout, rep)
			default:
				report.DriftText(env.Stdout, rep, report.NewColors(colorOK(env)))
			}
			if len(s.Plan.Unreachable) > 0 && len(s.Observed) == 0 {
				fmt.Fprintln(env.Stderr, "error: no worker could be observed")
				return ExitFailure
			}
			if rep.Drift {
				return ExitDrift
			}
			return ExitOK
		},
	}
}
