// Command hermesctl keeps a fleet of Hermes agent tenants equal to a git repository of
// tenant files. All of its work is in internal/cli and the packages it calls.
package main

import (
	"os"

	"github.com/firemountain/hermes-gitops/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
