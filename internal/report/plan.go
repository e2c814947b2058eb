// Package report renders plans, apply results and drift reports for people (text,
// coloured on a terminal), for machines (JSON, versioned) and for pull requests
// (markdown). Renderers only format: they never decide anything and never see a secret
// value (plans carry fingerprints).
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/firemountain/hermes-gitops/reconcile/plan"
)

// Colors are ANSI escapes, empty when colour is off.
type Colors struct{ Green, Yellow, Red, Cyan, Bold, Dim, Reset string }

// NewColors returns ANSI colours when on is true.
func NewColors(on bool) Colors {
	if !on {
		return Colors{}
	}
	return Colors{Green: "\x1b[32m", Yellow: "\x1b[33m", Red: "\x1b[31m", Cyan: "\x1b[36m", Bold: "\x1b[1m", Dim: "\x1b[2m", Reset: "\x1b[0m"}
}

func (c Colors) action(a plan.Action) string {
	switch a {
	case plan.Create:
		return c.Green
	case plan.Recreate, plan.Delete, plan.Prune:
		return c.Red
	case plan.Patch, plan.Start, plan.Stop:
		return c.Yellow
	case plan.Hold:
		return c.Red + c.Bold
	case plan.Orphan, plan.AwaitingAuth:
		return c.Cyan
	}
	return ""
}

// SummaryLine is Terraform's last line: "Plan: 2 to create, 1 to recreate, 3 to patch,
// 0 to delete." followed by the other actions when there are any.
func SummaryLine(p *plan.Plan) string {
	s := p.Summarize()
	line := fmt.Sprintf("Plan: %d to create, %d to recreate, %d to patch, %d to delete", s.Create, s.Recreate, s.Patch, s.Delete+s.Prune)
	var extra []string
	add := func(n int, what string) {
		if n > 0 {
			extra = append(extra, fmt.Sprintf("%d %s", n, what))
		}
	}
	add(s.Start, "to start")
	add(s.Stop, "to stop")
	add(s.Hold, "held")
	add(s.Orphan, "orphaned")
	add(s.AwaitingAuth, "awaiting auth")
	if len(extra) > 0 {
		line += "; " + strings.Join(extra, ", ")
	}
	return line + "."
}

// PlanText renders a plan for a terminal. Unchanged tenants are listed only in verbose
// mode.
func PlanText(w io.Writer, p *plan.Plan, c Colors, verbose bool) {
	workers := workersOf(p)
	shown := 0
	for _, wk := range workers {
		var lines []string
		for _, ch := range p.Changes {
			if ch.Worker != wk || (ch.Action == plan.Noop && !verbose) {
				continue
			}
			col := c.action(ch.Action)
			head := fmt.Sprintf("  %s%-3s %s/%s%s  %s", col, ch.Action.Symbol(), ch.App, ch.Tenant, c.Reset, ch.Action)
			lines = append(lines, head)
			for _, r := range ch.Reasons {
				lines = append(lines, "        "+c.Dim+r+c.Reset)
			}
		}
		if msg, ok := p.Unreachable[wk]; ok {
			lines = append(lines, "  "+c.Red+"! worker unreachable: "+msg+c.Reset)
		}
		if len(lines) == 0 {
			continue
		}
		shown++
		fmt.Fprintf(w, "%sworker %s%s\n", c.Bold, wk, c.Reset)
		for _, l := range lines {
			fmt.Fprintln(w, l)
		}
		fmt.Fprintln(w)
	}
	if shown == 0 {
		fmt.Fprintln(w, "No changes. The workers match the desired state.")
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, c.Bold+SummaryLine(p)+c.Reset)
}

func workersOf(p *plan.Plan) []string {
	seen := map[string]bool{}
	var out []string
	for _, ch := range p.Changes {
		if !seen[ch.Worker] {
			seen[ch.Worker] = true
			out = append(out, ch.Worker)
		}
	}
	for w := range p.Unreachable {
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	sort.Strings(out)
	return out
}

// PlanJSONVersion is the version of the JSON plan format.
const PlanJSONVersion = 1

// JSONPlan is the machine form of a plan (documented in docs/cli.md).
type JSONPlan struct {
	Version     int               `json:"version"`
	HasChanges  bool              `json:"hasChanges"`
	Summary     plan.Summary      `json:"summary"`
	Changes     []JSONChange      `json:"changes"`
	Unreachable map[string]string `json:"unreachable"`
}

// JSONChange is one tenant's change.
type JSONChange struct {
	Worker       string           `json:"worker"`
	App          string           `json:"app"`
	Tenant       string           `json:"tenant"`
	Action       plan.Action      `json:"action"`
	Reasons      []string         `json:"reasons"`
	AwaitingAuth bool             `json:"awaitingAuth,omitempty"`
	WriteFiles   []string         `json:"writeFiles,omitempty"`
	RemoveFiles  []string         `json:"removeFiles,omitempty"`
	MakeDirs     []string         `json:"makeDirs,omitempty"`
	Env          []plan.EnvChange `json:"env,omitempty"`
	Restart      bool             `json:"restart,omitempty"`
	SpecHash     string           `json:"specHash,omitempty"`
}

// ToJSON converts a plan to its machine form.
func ToJSON(p *plan.Plan) JSONPlan {
	out := JSONPlan{Version: PlanJSONVersion, HasChanges: p.HasChanges(), Summary: p.Summarize(), Changes: []JSONChange{}, Unreachable: p.Unreachable}
	if out.Unreachable == nil {
		out.Unreachable = map[string]string{}
	}
	for _, ch := range p.Changes {
		j := JSONChange{Worker: ch.Worker, App: ch.App, Tenant: ch.Tenant, Action: ch.Action, Reasons: ch.Reasons,
			AwaitingAuth: ch.AwaitingAuth, RemoveFiles: ch.RemoveFiles, MakeDirs: ch.MakeDirs, Env: ch.EnvChanges, Restart: ch.Restart}
		if j.Reasons == nil {
			j.Reasons = []string{}
		}
		for _, f := range ch.WriteFiles {
			j.WriteFiles = append(j.WriteFiles, f.Path)
		}
		if ch.Desired != nil && ch.Action != plan.Hold {
			j.SpecHash = ch.Desired.Container.Hash
		}
		out.Changes = append(out.Changes, j)
	}
	return out
}

// PlanJSON writes the JSON form.
func PlanJSON(w io.Writer, p *plan.Plan) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(ToJSON(p))
}

// PlanMarkdown renders a plan for a pull-request comment.
func PlanMarkdown(w io.Writer, p *plan.Plan) {
	fmt.Fprintf(w, "### hermes-gitops plan\n\n")
	if !p.HasChanges() && p.Summarize().Hold == 0 && len(p.Unreachable) == 0 {
		fmt.Fprintf(w, "No changes. The workers match the desired state.\n\n")
	}
	var rows []plan.Change
	for _, ch := range p.Changes {
		if ch.Action != plan.Noop {
			rows = append(rows, ch)
		}
	}
	if len(rows) > 0 {
		fmt.Fprintf(w, "| | Worker | Tenant | Action | Why |\n|---|---|---|---|---|\n")
		for _, ch := range rows {
			fmt.Fprintf(w, "| `%s` | %s | %s/%s | **%s** | %s |\n", ch.Action.Symbol(), ch.Worker, ch.App, ch.Tenant, ch.Action, mdEscape(strings.Join(ch.Reasons, "; ")))
		}
		fmt.Fprintln(w)
	}
	for _, wk := range slices.Sorted(maps.Keys(p.Unreachable)) {
		fmt.Fprintf(w, "> **Worker %s unreachable:** %s\n\n", wk, mdEscape(p.Unreachable[wk]))
	}
	fmt.Fprintf(w, "**%s**\n", SummaryLine(p))
}

func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\n", " ")
	return s
}
