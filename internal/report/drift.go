package report

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/firemountain/hermes-gitops/reconcile/drift"
)

// DriftJSONVersion is the version of the JSON drift report (docs/drift.md).
const DriftJSONVersion = 1

// DriftReport is the machine form of a drift report.
type DriftReport struct {
	Version  int             `json:"version"`
	Drift    bool            `json:"drift"`
	Summary  drift.Summary   `json:"summary"`
	Findings []drift.Finding `json:"findings"`
}

// NewDriftReport assembles the report.
func NewDriftReport(findings []drift.Finding, summary drift.Summary) DriftReport {
	if findings == nil {
		findings = []drift.Finding{}
	}
	return DriftReport{Version: DriftJSONVersion, Drift: drift.HasDrift(findings), Summary: summary, Findings: findings}
}

// DriftJSON writes the JSON form.
func DriftJSON(w io.Writer, r DriftReport) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// DriftText renders findings grouped by tenant, then the fleet summary.
func DriftText(w io.Writer, r DriftReport, c Colors) {
	groups, order := group(r.Findings)
	if len(order) == 0 {
		fmt.Fprintln(w, "No drift: every worker matches git.")
		fmt.Fprintln(w)
	}
	for _, key := range order {
		fs := groups[key]
		fmt.Fprintf(w, "%s%s%s\n", c.Bold, key, c.Reset)
		for _, f := range fs {
			col := c.Yellow
			if f.Severity == drift.Info {
				col = c.Cyan
			}
			fmt.Fprintf(w, "  %s%-22s%s %s\n", col, f.Code, c.Reset, f.Message)
			fmt.Fprintf(w, "  %-22s %sgit: %s | live: %s | apply: %s%s\n", "", c.Dim, f.Git, f.Live, f.Action, c.Reset)
		}
		fmt.Fprintln(w)
	}
	summaryText(w, r, c)
}

func group(fs []drift.Finding) (map[string][]drift.Finding, []string) {
	groups := map[string][]drift.Finding{}
	var order []string
	for _, f := range fs {
		key := "worker " + f.Worker
		if f.Tenant != "" {
			key = f.Worker + "/" + f.App + "/" + f.Tenant
		}
		if _, ok := groups[key]; !ok {
			order = append(order, key)
		}
		groups[key] = append(groups[key], f)
	}
	return groups, order
}

func summaryText(w io.Writer, r DriftReport, c Colors) {
	s := r.Summary
	fmt.Fprintf(w, "%sFleet: %d tenants, %d drifted, %d findings.%s\n", c.Bold, s.Tenants, s.Drifted, len(r.Findings), c.Reset)
	if len(s.ByCode) > 0 {
		var parts []string
		for _, code := range slices.Sorted(maps.Keys(s.ByCode)) {
			parts = append(parts, fmt.Sprintf("%s %d", code, s.ByCode[code]))
		}
		fmt.Fprintf(w, "  findings: %s\n", strings.Join(parts, ", "))
	}
	for _, name := range slices.Sorted(maps.Keys(s.Bundles)) {
		fmt.Fprintf(w, "  bundle %s: %s\n", name, skew(s.Bundles[name]))
	}
	if len(s.Providers) > 0 {
		var parts []string
		for _, p := range slices.Sorted(maps.Keys(s.Providers)) {
			parts = append(parts, fmt.Sprintf("%s %d", p, s.Providers[p]))
		}
		fmt.Fprintf(w, "  providers: %s\n", strings.Join(parts, ", "))
	}
}

// skew renders "git pins 0.2.0×3, 0.1.0×1; running 0.2.0×2, 0.1.0×2".
func skew(b drift.BundleVersions) string {
	render := func(m map[string]int) string {
		if len(m) == 0 {
			return "none"
		}
		var parts []string
		for _, v := range slices.Sorted(maps.Keys(m)) {
			parts = append(parts, fmt.Sprintf("%s×%d", v, m[v]))
		}
		return strings.Join(parts, ", ")
	}
	return "git pins " + render(b.Pinned) + "; running " + render(b.Installed)
}

// DriftMarkdown renders a drift report for an issue or a pull-request comment.
func DriftMarkdown(w io.Writer, r DriftReport) {
	fmt.Fprintf(w, "### hermes-gitops drift report\n\n")
	if len(r.Findings) == 0 {
		fmt.Fprintf(w, "No drift: every worker matches git.\n\n")
	} else {
		fmt.Fprintf(w, "| Tenant | Code | Finding | Git | Live | Apply |\n|---|---|---|---|---|---|\n")
		for _, f := range r.Findings {
			who := "worker " + f.Worker
			if f.Tenant != "" {
				who = f.Worker + "/" + f.Tenant
			}
			fmt.Fprintf(w, "| %s | `%s` | %s | %s | %s | %s |\n", mdEscape(who), f.Code, mdEscape(f.Message), mdEscape(f.Git), mdEscape(f.Live), mdEscape(f.Action))
		}
		fmt.Fprintln(w)
	}
	s := r.Summary
	fmt.Fprintf(w, "**Fleet:** %d tenants, %d drifted, %d findings.\n\n", s.Tenants, s.Drifted, len(r.Findings))
	if len(s.Bundles) > 0 {
		fmt.Fprintf(w, "| Bundle | Pinned in git | Running |\n|---|---|---|\n")
		for _, name := range slices.Sorted(maps.Keys(s.Bundles)) {
			b := s.Bundles[name]
			parts := strings.SplitN(skew(b), "; running ", 2)
			fmt.Fprintf(w, "| %s | %s | %s |\n", name, strings.TrimPrefix(parts[0], "git pins "), parts[1])
		}
		fmt.Fprintln(w)
	}
	if len(s.Providers) > 0 {
		var parts []string
		for _, p := range slices.Sorted(maps.Keys(s.Providers)) {
			parts = append(parts, fmt.Sprintf("%s: %d", p, s.Providers[p]))
		}
		fmt.Fprintf(w, "**Providers:** %s\n", strings.Join(parts, ", "))
	}
}
