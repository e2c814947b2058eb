package plan_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPlannerImportsNoIO guards the design rule that the planner is pure: neither it nor
// anything it imports may reach transports, the agent, the docker runtime or the worker
// connection.
func TestPlannerImportsNoIO(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/firemountain/hermes-gitops/reconcile/plan").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"/reconcile/transport", "/reconcile/agent", "/reconcile/runtime", "/reconcile/worker", "/reconcile/apply", "github.com/pkg/sftp"} {
			if strings.HasSuffix(dep, banned) || dep == banned {
				t.Errorf("the planner depends on %s", dep)
			}
		}
	}
}
