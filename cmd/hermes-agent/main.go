// Command hermes-agent is the worker side of hermes-gitops. hermesctl uploads it to each
// worker (cached by digest) and runs `hermes-agent run` with one JSON request on stdin per
// round trip. It uses only the standard library so it stays small and static.
package main

import (
	"os"

	"github.com/firemountain/hermes-gitops/reconcile/agent"
)

func main() {
	os.Exit(agent.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
