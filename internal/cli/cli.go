// Package cli implements hermesctl's commands: each file parses one command's flags,
// calls the packages that do the work and prints the result. Exit codes: 0 success,
// 1 failure or invalid input (usage errors too, so that 2 and 3 stay free for
// --detailed-exitcode "changes" and drift "found").
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitChanges = 2 // plan --detailed-exitcode: the plan has changes
	ExitDrift   = 3 // drift: drift found
)

// Env is what a command may touch of the process: streams and environment. Tests (and
// testscript) give each run its own.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
}

// command is one hermesctl command.
type command struct {
	name    string
	usage   string // after "hermesctl "
	short   string // one line for the command list
	long    string // what it does, then examples
	flags   func(fs *flag.FlagSet)
	run     func(ctx context.Context, env *Env, args []string) int
	sub     []*command
	hidden  bool
	noFlags bool // pass every argument through untouched
}

func commands() []*command {
	return []*command{
		validateCmd(),
		planCmd(),
		applyCmd(),
		authCmd(),
		driftCmd(),
		verifyCmd(),
		daemonCmd(),
		serveCmd(),
		secretsCmd(),
		bundleCmd(),
		schemaCmd(),
		versionCmd(),
		agentCmd(),
	}
}

// Main runs hermesctl with args (without the program name) and returns the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := &Env{Stdin: stdin, Stdout: stdout, Stderr: stderr, Getenv: os.Getenv}
	return run(ctx, env, args)
}

func run(ctx context.Context, env *Env, args []string) int {
	root := &command{name: "hermesctl", usage: "hermesctl COMMAND [FLAGS] [ARGS]", sub: commands(),
		long: `hermesctl keeps a fleet of Hermes agent tenants equal to a git repository of tenant files.

Each tenant is one YAML file (tenants/<app>/<id>.yaml) with its provider, pinned skill
bundles and sops-encrypted secrets. 'hermesctl plan' compares that desired state with what
runs on the workers; 'hermesctl apply' makes the workers match.

Quick start:
  hermesctl validate tenants.example
  hermesctl plan --repo tenants.example
  hermesctl apply --repo tenants.example`}
	return dispatch(ctx, env, root, args, "hermesctl")
}

func dispatch(ctx context.Context, env *Env, c *command, args []string, path string) int {
	if len(c.sub) > 0 {
		if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			if len(args) > 1 && args[0] == "help" {
				if sub := find(c.sub, args[1]); sub != nil {
					printHelp(env.Stdout, sub, path+" "+sub.name)
					return ExitOK
				}
			}
			printHelp(env.Stdout, c, path)
			if len(args) == 0 {
				return ExitFailure
			}
			return ExitOK
		}
		sub := find(c.sub, args[0])
		if sub == nil {
			fmt.Fprintf(env.Stderr, "%s: unknown command %q\nRun '%s --help' for the list of commands.\n", path, args[0], path)
			return ExitFailure
		}
		return dispatch(ctx, env, sub, args[1:], path+" "+sub.name)
	}
	if c.noFlags {
		return c.run(ctx, env, args)
	}
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if c.flags != nil {
		c.flags(fs)
	}
	if err := fs.Parse(interleave(fs, args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(env.Stdout, c, path)
			return ExitOK
		}
		fmt.Fprintf(env.Stderr, "%s: %v\nUsage: %s\nRun '%s --help' for details.\n", path, err, c.usage, path)
		return ExitFailure
	}
	return c.run(ctx, env, fs.Args())
}

// interleave lets flags follow positional arguments ("validate DIR --output json"), as
// people type them; "--" still ends flag parsing.
func interleave(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := fs.Lookup(name); f != nil {
			if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
				continue
			}
			if i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
		}
	}
	return append(flags, append([]string{"--"}, pos...)...)
}

func find(cs []*command, name string) *command {
	for _, c := range cs {
		if c.name == name {
			return c
		}
	}
	return nil
}

func printHelp(w io.Writer, c *command, path string) {
	fmt.Fprintf(w, "Usage: %s\n\n", strings.TrimSpace(c.usage))
	if c.long != "" {
		fmt.Fprintf(w, "%s\n", strings.TrimSpace(c.long))
	} else {
		fmt.Fprintf(w, "%s\n", c.short)
	}
	if len(c.sub) > 0 {
		fmt.Fprintf(w, "\nCommands:\n")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, s := range c.sub {
			if !s.hidden {
				fmt.Fprintf(tw, "  %s\t%s\n", s.name, s.short)
			}
		}
		tw.Flush()
		fmt.Fprintf(w, "\nRun '%s COMMAND --help' for the flags and examples of a command.\n", path)
		return
	}
	if c.flags != nil {
		fs := flag.NewFlagSet(path, flag.ContinueOnError)
		c.flags(fs)
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		if len(names) > 0 {
			sort.Strings(names)
			fmt.Fprintf(w, "\nFlags:\n")
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			for _, n := range names {
				f := fs.Lookup(n)
				arg, usage := flag.UnquoteUsage(f)
				def := ""
				if f.DefValue != "" && f.DefValue != "false" {
					def = fmt.Sprintf(" (default %s)", f.DefValue)
				}
				fmt.Fprintf(tw, "  --%s %s\t%s%s\n", n, arg, usage, def)
			}
			tw.Flush()
		}
	}
}

// argsAtMost checks the count of positional arguments.
func argsAtMost(env *Env, args []string, n int, usage string) bool {
	if len(args) > n {
		fmt.Fprintf(env.Stderr, "too many arguments: %s\nUsage: hermesctl %s\n", strings.Join(args[n:], " "), usage)
		return false
	}
	return true
}

// errorf prints an error for the user and returns the failure exit code.
func errorf(env *Env, format string, args ...any) int {
	fmt.Fprintf(env.Stderr, "error: "+format+"\n", args...)
	return ExitFailure
}
