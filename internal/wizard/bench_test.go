package wizard

import (
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// bulkTenants adds n plain tenants to the remote's main branch, one commit each (the
// history the wizard itself would leave), with git fast-import.
func bulkTenants(b *testing.B, rm *remote, n int) {
	b.Helper()
	var in strings.Builder
	for i := range n {
		id := fmt.Sprintf("bulk-%04d", i)
		content := plainTenant(id, []string{"spawn", "astral"}[i%2])
		fmt.Fprintf(&in, "commit refs/heads/main\ncommitter Bulk <bulk@example.com> %d +0000\ndata 9\nadd %s\n", 1700000000+i, id[5:])
		if i == 0 {
			in.WriteString("from refs/heads/main^0\n")
		}
		fmt.Fprintf(&in, "M 100644 inline tenants/%s/%s.yaml\ndata %d\n%s\n", []string{"spawn", "astral"}[i%2], id, len(content), content)
	}
	cmd := exec.Command("git", "--git-dir", rm.bare, "fast-import", "--quiet")
	cmd.Stdin = strings.NewReader(in.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("fast-import: %v\n%s", err, out)
	}
}

// BenchmarkSubmission measures a signed submission (with an API key to encrypt) from
// the HTTP request to the 202 that follows the pushed commit, on a repository that
// already holds 1,000 tenants added by 1,000 commits. One op is a batch of 50
// submissions one after the other, so that even 'make bench' (-benchtime=1x) has enough
// samples for a p99; it reports the median and p99 latency, the throughput, and the
// split between the server's own work (up to sending the pack) and the remote's
// git-receive-pack (from sending the pack to the answer).
func BenchmarkSubmission(b *testing.B) {
	const batch = 50
	for _, c := range []struct {
		name     string
		interval time.Duration
	}{
		{"fetch-interval=15s", 15 * time.Second},
		{"fetch-every-time", 0},
	} {
		b.Run(c.name, func(b *testing.B) {
			rm := newRemote(b)
			setup := time.Now()
			bulkTenants(b, rm, 1000)
			f := startServer(b, rm, func(cfg *Config) { cfg.FetchInterval = c.interval })
			b.Logf("setup: 1,000 tenants in 1,000 commits and the server's clone in %v", time.Since(setup).Round(time.Millisecond))
			var sent time.Time
			f.srv.repo.beforePush = func(plumbing.ReferenceName, plumbing.Hash) { sent = time.Now() }
			var lat, remote, local []time.Duration
			b.ResetTimer()
			start := time.Now()
			for i := range b.N * batch {
				t0 := time.Now()
				code, out := f.submit(b, sub(fmt.Sprintf("Bench %s %d", c.name, i), "spawn", "anthropic", canary("sk-bench-")), nil)
				end := time.Now()
				if code != http.StatusAccepted {
					b.Fatalf("%d %v", code, out)
				}
				lat = append(lat, end.Sub(t0))
				remote = append(remote, end.Sub(sent))
				local = append(local, sent.Sub(t0))
			}
			elapsed := time.Since(start)
			b.StopTimer()
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			pct := func(ds []time.Duration, p int) time.Duration {
				ds = slices.Clone(ds)
				slices.Sort(ds)
				return ds[min(len(ds)-1, len(ds)*p/100)]
			}
			median, p99, rate := pct(lat, 50), pct(lat, 99), float64(len(lat))/elapsed.Seconds()
			b.ReportMetric(ms(median), "median-ms")
			b.ReportMetric(ms(p99), "p99-ms")
			b.ReportMetric(rate, "submissions/s")
			b.ReportMetric(ms(pct(remote, 50)), "remote-median-ms")
			b.ReportMetric(ms(pct(local, 50)), "server-median-ms")
			b.ReportMetric(ms(pct(local, 99)), "server-p99-ms")
			b.Logf("%d submissions → pushed commits, 1,000 tenants in the repository: median %.1f ms, p99 %.1f ms, max %.1f ms; "+
				"%.1f submissions/s sequentially. Until the pack is sent (HTTP, checks, sops, validation, commit, ref advertisement): "+
				"median %.1f ms, p99 %.1f ms; from then to the answer (the remote's receive-pack): median %.1f ms, p99 %.1f ms",
				len(lat), ms(median), ms(p99), ms(pct(lat, 100)), rate, ms(pct(local, 50)), ms(pct(local, 99)), ms(pct(remote, 50)), ms(pct(remote, 99)))
		})
	}
}
