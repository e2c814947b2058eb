package cli

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/firemountain/hermes-gitops/internal/report"
	"github.com/firemountain/hermes-gitops/reconcile"
	"github.com/firemountain/hermes-gitops/reconcile/apply"
	"github.com/firemountain/hermes-gitops/reconcile/plan"
	"github.com/firemountain/hermes-gitops/reconcile/worker"
	"github.com/firemountain/hermes-gitops/schema"
)

// fleetFlags are the flags of every command that reads the desired state and the workers.
type fleetFlags struct {
	repo    string
	workers listFlag
	tenants listFlag
	sshKey  string
	output  string
}

func (f *fleetFlags) register(fs *flag.FlagSet, outputs string) {
	fs.StringVar(&f.repo, "repo", ".", "desired-state repository `dir`")
	fs.Var(&f.workers, "worker", "only this worker (repeatable, or comma-separated)")
	fs.Var(&f.tenants, "tenant", "only this tenant id (repeatable, or comma-separated)")
	fs.StringVar(&f.sshKey, "ssh-key", "", "SSH private key `file` for workers (default $HERMES_SSH_KEY_FILE; the ssh-agent at $SSH_AUTH_SOCK is always tried); an encrypted key's passphrase comes from $HERMES_SSH_KEY_PASSPHRASE")
	if outputs != "" {
		fs.StringVar(&f.output, "output", "text", "output `format`: "+outputs)
	}
}

// listFlag collects repeatable, comma-separated values.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// session loads the repository and observes and plans. Problems in the desired state are
// printed; a repository that cannot be applied at all is an error.
// With lock set, every worker's apply lock is taken in the observation's round trip.
func (f *fleetFlags) session(ctx context.Context, env *Env, prune bool, lock *reconcile.Lock) (*reconcile.Session, error) {
	repo, err := schema.Load(f.repo, schema.LoadOptions{})
	if err != nil {
		return nil, err
	}
	for _, p := range repo.Problems {
		if p.Severity != schema.Note {
			fmt.Fprintln(env.Stderr, p.String())
		}
	}
	ids, err := schema.IdentitiesFromEnv()
	if err != nil {
		return nil, err
	}
	cfg := reconcile.Config{
		Identities: ids,
		Worker:     workerOptions(env, f.sshKey, f.repo),
		Filter:     reconcile.Filter{Workers: f.workers, Tenants: f.tenants},
		Prune:      prune,
		Lock:       lock,
	}
	if ids == nil && hasSecrets(repo) {
		fmt.Fprintf(env.Stderr, "warning: %v; tenants with secrets are held\n", schema.ErrNoIdentities)
	}
	return reconcile.NewSession(ctx, repo, cfg)
}

// workerOptions are the connection options every command uses: the SSH key from the
// flag or HERMES_SSH_KEY_FILE (passphrase HERMES_SSH_KEY_PASSPHRASE), the ssh-agent, and
// the repository for relative known_hosts files.
func workerOptions(env *Env, sshKey, repo string) worker.Options {
	if sshKey == "" {
		sshKey = env.Getenv("HERMES_SSH_KEY_FILE")
	}
	return worker.Options{KeyFile: sshKey, KeyPassphrase: []byte(env.Getenv("HERMES_SSH_KEY_PASSPHRASE")), RepoDir: repo}
}

func hasSecrets(repo *schema.Repo) bool {
	for _, t := range repo.Tenants {
		if len(t.Secrets) > 0 {
			return true
		}
	}
	return false
}

func printPlan(env *Env, p *plan.Plan, output string) {
	switch output {
	case "json":
		_ = report.PlanJSON(env.Stdout, p)
	case "markdown":
		report.PlanMarkdown(env.Stdout, p)
	default:
		report.PlanText(env.Stdout, p, report.NewColors(colorOK(env)), false)
	}
}

// colorOK: colour only on a terminal, and never with NO_COLOR set.
func colorOK(env *Env) bool {
	if env.Getenv("NO_COLOR") != "" {
		return false
	}
	f, ok := env.Stdout.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func planCmd() *command {
	var ff fleetFlags
	var detailed, prune bool
	return &command{
		name:  "plan",
		usage: "plan [--repo DIR] [--worker NAME] [--tenant ID] [--output text|json|markdown] [--detailed-exitcode] [--prune]",
		short: "show what apply would change on the workers",
		long: `Plan loads the desired state, observes every worker in one round trip each, and shows
what apply would do to each tenant, with reasons:

  +    create     no container yet: write hermes-home, start the container
  -/+  recreate   container spec changed (image, env, mounts, flags): recreate, data kept
  ~    patch      managed files changed (config.yaml, .env, skills): write, restart
  ~    start/stop state active or suspended
  -    delete     state deleted (or --prune): remove container, archive data
  !    hold       tenant file broken or secrets undecryptable: nothing is done
  ?    orphan     managed on the worker, absent from git: reported, untouched

Secret values never appear: changed secrets show as '(secret changed)' with keyed
fingerprints. Secrets are decrypted with the age key in SOPS_AGE_KEY_FILE or
SOPS_AGE_KEY.

Exit status: 0 success; with --detailed-exitcode 0 no changes, 2 changes, 1 error.

Examples:
  hermesctl plan --repo tenants.example
  hermesctl plan --tenant cody1 --output json
  hermesctl plan --output markdown --detailed-exitcode > plan.md  # CI on a pull request`,
		flags: func(fs *flag.FlagSet) {
			ff.register(fs, "text, json or markdown")
			fs.BoolVar(&detailed, "detailed-exitcode", false, "exit 0 when there are no changes, 2 when there are, 1 on error")
			fs.BoolVar(&prune, "prune", false, "plan to remove orphans (managed tenants absent from git)")
		},
		run: func(ctx context.Context, env *Env, args []string) int {
			if !argsAtMost(env, args, 0, "plan [FLAGS]") || !validOutput(env, ff.output, "text", "json", "markdown") {
				return ExitFailure
			}
			s, err := ff.session(ctx, env, prune, nil)
			if err != nil {
				return errorf(env, "%v", err)
			}
			defer s.Close()
			printPlan(env, s.Plan, ff.output)
			if err := reconcile.DeletionLimit(s.Plan); err != nil && ff.output == "text" {
				fmt.Fprintf(env.Stderr, "\nwarning: apply would refuse this plan without --force:\n%v\n", err)
			}
			if len(s.Plan.Unreachable) > 0 {
				return ExitFailure
			}
			if detailed && s.Plan.HasChanges() {
				return ExitChanges
			}
			return ExitOK
		},
	}
}

func validOutput(env *Env, got string, allowed ...string) bool {
	for _, a := range allowed {
		if got == a {
			return true
		}
	}
	fmt.Fprintf(env.Stderr, "error: --output must be %s, not %q\n", strings.Join(allowed, " or "), got)
	return false
}

func applyCmd() *command {
	var ff fleetFlags
	var prune, force, yes bool
	var concurrency int
	var timeout time.Duration
	return &command{
		name:  "apply",
		usage: "apply [--repo DIR] [--worker NAME] [--tenant ID] [--prune] [--force] [--yes]",
		short: "make the workers match the desired state",
		long: `Apply computes the plan (see 'hermesctl plan --help'), shows it, asks for confirmation
on a terminal unless --yes, and carries it out: files first, then containers; each created
or restarted container must be running (healthy, when its image has a health check)
within --timeout. One tenant's failure never stops the others. A lock on each worker keeps
two appliers apart; a crashed applier's lock expires.

Safety: a broken tenant file is held, never deleted; an empty or unloadable desired state
deletes nothing; one pass refuses to delete or prune more than max(1, 10%) of a worker's
tenants unless --force; deleted tenants' data is archived on the worker, never erased.

Exit status: 0 every change applied, 1 a tenant failed or the plan was refused.

Examples:
  hermesctl apply --repo tenants.example --yes
  hermesctl apply --tenant cody1
  hermesctl apply --prune --force --yes   # remove orphans, more than 10% allowed`,
		flags: func(fs *flag.FlagSet) {
			ff.register(fs, "")
			fs.BoolVar(&prune, "prune", false, "remove orphans: managed containers and homes absent from git (data archived)")
			fs.BoolVar(&force, "force", false, "allow deleting or pruning more than max(1, 10%) of a worker's tenants")
			fs.BoolVar(&yes, "yes", false, "apply without asking for confirmation")
			fs.IntVar(&concurrency, "concurrency", 4, "tenants changed at once per worker")
			fs.DurationVar(&timeout, "timeout", 60*time.Second, "how long a container may take to be up")
		},
		run: func(ctx context.Context, env *Env, args []string) int {
			if !argsAtMost(env, args, 0, "apply [FLAGS]") {
				return ExitFailure
			}
			lock := &reconcile.Lock{Owner: apply.DefaultLockOwner(), TTL: 10 * time.Minute}
			s, err := ff.session(ctx, env, prune, lock)
			if err != nil {
				return errorf(env, "%v", err)
			}
			defer s.Close()
			printPlan(env, s.Plan, "text")
			if !s.Plan.HasChanges() {
				if len(s.Plan.Unreachable) > 0 {
					return ExitFailure
				}
				return ExitOK
			}
			if err := reconcile.DeletionLimit(s.Plan); err != nil && !force {
				return errorf(env, "apply refused:\n%v", err)
			}
			if !yes {
				if !isTerminal(env.Stdin) {
					return errorf(env, "not on a terminal: pass --yes to apply without confirmation")
				}
				fmt.Fprint(env.Stdout, "\nApply these changes? Only 'yes' is accepted: ")
				answer, _ := bufio.NewReader(env.Stdin).ReadString('\n')
				if strings.TrimSpace(answer) != "yes" {
					fmt.Fprintln(env.Stdout, "Apply cancelled.")
					return ExitFailure
				}
			}
			fmt.Fprintln(env.Stdout)
			if len(s.LockErrors) > 0 {
				for _, w := range slices.Sorted(maps.Keys(s.LockErrors)) {
					fmt.Fprintf(env.Stderr, "error: %s\n", s.LockErrors[w])
				}
				return errorf(env, "another applier holds a worker of this plan: nothing applied; try again when it is done")
			}
			results := apply.Apply(ctx, s.Plan, s.Conns, apply.Options{
				Concurrency: concurrency, WaitTimeout: timeout, LockOwner: lock.Owner, LockTTL: lock.TTL, LockHeld: true,
				Progress: func(r apply.Result) { printResult(env, r) },
			})
			return summarizeApply(env, results, s.Plan)
		},
	}
}

func printResult(env *Env, r apply.Result) {
	c := report.NewColors(colorOK(env))
	col := c.Green
	if r.Status != apply.OK {
		col = c.Red
	}
	fmt.Fprintf(env.Stdout, "%s/%s: %s %s%s%s (%s)\n", r.Worker, r.Tenant, r.Action, col, r.Status, c.Reset, r.Duration.Round(100*time.Millisecond))
	if r.Error != "" {
		fmt.Fprintf(env.Stdout, "    %s\n", r.Error)
	}
	for _, l := range r.Logs {
		fmt.Fprintf(env.Stdout, "    | %s\n", l)
	}
}

func summarizeApply(env *Env, results []apply.Result, p *plan.Plan) int {
	counts := map[string]int{}
	for _, r := range results {
		counts[r.Status]++
	}
	fmt.Fprintf(env.Stdout, "\nApply complete: %d ok, %d failed, %d skipped.\n", counts[apply.OK], counts[apply.Failed], counts[apply.Skipped])
	if counts[apply.Failed] > 0 || counts[apply.Skipped] > 0 || len(p.Unreachable) > 0 {
		return ExitFailure
	}
	return ExitOK
}
