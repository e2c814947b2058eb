package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"sort"

	"github.com/firemountain/hermes-gitops/internal/report"
	"github.com/firemountain/hermes-gitops/reconcile/verify"
)

func verifyCmd() *command {
	var ff fleetFlags
	var all bool
	return &command{
		name:  "verify",
		usage: "verify [TENANT...|--all] [--repo DIR] [--worker NAME] [--output text|json]",
		short: "smoke-test live tenants: knowledge base, isolation, capabilities, env",
		long: `Verify runs the post-provision smoke loop inside each tenant's running container:

  kb.host-to-container   a probe written on the host into knowledge/raw is listed in the container
  kb.container-to-host   a file written in the container appears on the host
  isolation.probe        no other tenant's probe is visible from this container
  isolation.mounts       no other host path (another tenant's hermes-home) is mounted
  capabilities           the container's effective capabilities (CapEff) are zero
  process-env            the variables skills need (baked env) are in the process environment
                         (names only; values are never read back)

Each check prints pass or fail with its evidence. Probes are removed afterwards.

Exit status: 0 every check passed, 1 a check failed or a tenant is not running.

Examples:
  hermesctl verify --all --repo tenants.example
  hermesctl verify mayaastral vega`,
		flags: func(fs *flag.FlagSet) {
			ff.register(fs, "text or json")
			fs.BoolVar(&all, "all", false, "verify every active tenant")
		},
		run: func(ctx context.Context, env *Env, args []string) int {
			if !validOutput(env, ff.output, "text", "json") {
				return ExitFailure
			}
			if len(args) == 0 && !all {
				return errorf(env, "name tenants to verify, or pass --all\nUsage: hermesctl verify [TENANT...|--all]")
			}
			ff.tenants = append(ff.tenants, args...)
			s, err := ff.session(ctx, env, false, nil)
			if err != nil {
				return errorf(env, "%v", err)
			}
			defer s.Close()
			targets := verify.Targets(s.Plan, args)
			if len(targets) == 0 {
				return errorf(env, "no active tenant matches")
			}
			byWorker := map[string][]verify.Target{}
			for _, t := range targets {
				byWorker[t.Tenant.Worker] = append(byWorker[t.Tenant.Worker], t)
			}
			var checks []verify.Check
			for w, ts := range byWorker {
				conn := s.Conns[w]
				if conn == nil {
					for _, t := range ts {
						checks = append(checks, verify.Check{Worker: w, Tenant: t.Tenant.ID, Name: verify.Running, Evidence: "worker unreachable: " + s.Plan.Unreachable[w]})
					}
					continue
				}
				checks = append(checks, verify.Run(ctx, conn, ts)...)
			}
			sort.SliceStable(checks, func(i, j int) bool {
				if checks[i].Worker != checks[j].Worker {
					return checks[i].Worker < checks[j].Worker
				}
				return checks[i].Tenant < checks[j].Tenant
			})
			failed := 0
			for _, c := range checks {
				if !c.Pass {
					failed++
				}
			}
			if ff.output == "json" {
				enc := json.NewEncoder(env.Stdout)
				enc.SetIndent("", "  ")
				_ = enc.Encode(map[string]any{"version": 1, "passed": failed == 0, "checks": checks})
			} else {
				c := report.NewColors(colorOK(env))
				for _, ch := range checks {
					mark, col := "PASS", c.Green
					if !ch.Pass {
						mark, col = "FAIL", c.Red
					}
					fmt.Fprintf(env.Stdout, "%s%s%s %s/%s %s: %s\n", col, mark, c.Reset, ch.Worker, ch.Tenant, ch.Name, ch.Evidence)
				}
				fmt.Fprintf(env.Stdout, "\n%d checks, %d failed.\n", len(checks), failed)
			}
			if failed > 0 {
				return ExitFailure
			}
			return ExitOK
		},
	}
}
