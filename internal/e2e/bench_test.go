package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	applypkg "github.com/firemountain/hermes-gitops/reconcile/apply"
	"github.com/firemountain/hermes-gitops/reconcile/render"
)

// The scale harness. Each benchmark prints its figures (round trips are the cost, so
// they come first) and reports them as metrics for benchstat. Run with `make bench`.

// BenchmarkObserve500 observes one worker over sshd with 500 tenant homes and 100
// running containers. Target: 1 round trip, ≤ 1 s.
func BenchmarkObserve500(b *testing.B) {
	f := New(b, Options{SSH: true, NoHealthcheck: true})
	ids := seedHomes(b, f, 500)
	startContainers(b, f, ids[:100])
	conn, apps := observeConn(b, f)
	ctx := context.Background()
	if _, err := conn.Observe(ctx, apps, render.Scaffold); err != nil { // connect, install the agent
		b.Fatal(err)
	}
	rt0, st0 := conn.RoundTrips(), conn.Transport.Stats()
	b.ResetTimer()
	for b.Loop() {
		w, err := conn.Observe(ctx, apps, render.Scaffold)
		if err != nil {
			b.Fatal(err)
		}
		if len(w.Homes) != 500 {
			b.Fatalf("observed %d homes", len(w.Homes))
		}
	}
	b.StopTimer()
	st := conn.Transport.Stats()
	n := float64(b.N)
	rt := float64(conn.RoundTrips()-rt0) / n
	recv := float64(st.BytesReceived-st0.BytesReceived) / n
	sent := float64(st.BytesSent-st0.BytesSent) / n
	ms := float64(b.Elapsed().Milliseconds()) / n
	b.ReportMetric(rt, "roundtrips/op")
	b.ReportMetric(recv, "bytes-received/op")
	b.ReportMetric(ms, "ms/op")
	fmt.Printf("observe 500 tenants (100 running) over ssh: %.0f round trip(s), %.0f bytes received, %.0f bytes sent, %.0f ms wall\n", rt, recv, sent, ms)
}

// BenchmarkApply50 creates 50 tenants serially, then 50 others with concurrency 8, and
// prints both wall times and their ratio (target ≥ 3×), then times a no-op reconcile of
// the 100 (target ≤ 2 round trips). The image has no health check: apply then waits for
// each container to keep running for StableFor, and the figures measure the reconciler,
// not a hundred health probes a second.
func BenchmarkApply50(b *testing.B) {
	for b.Loop() {
		f := New(b, Options{SSH: true, NoHealthcheck: true})
		ctx := context.Background()
		run := func(first, concurrency int) (time.Duration, int64) {
			for i := first; i < first+50; i++ {
				f.WriteTenant("spawn", fmt.Sprintf("b%03d", i), "  provider: {id: openai-codex}", nil)
			}
			s := f.Session(ctx, false)
			start := time.Now()
			rs := applypkg.Apply(ctx, s.Plan, s.Conns, applypkg.Options{Concurrency: concurrency, StableFor: 500 * time.Millisecond})
			took := time.Since(start)
			for _, r := range rs {
				if r.Status != applypkg.OK {
					b.Fatalf("%s: %s", r.Tenant, r.Error)
				}
			}
			if len(rs) != 50 {
				b.Fatalf("%d results", len(rs))
			}
			return took, s.RoundTrips()
		}
		serial, _ := run(0, 1)
		concurrent, rts := run(50, 8)
		s := f.Session(ctx, false)
		if s.Plan.HasChanges() {
			b.Fatal("the fleet is not converged")
		}
		start := time.Now()
		s = f.Session(ctx, false)
		noop := time.Since(start)
		ratio := float64(serial) / float64(concurrent)
		b.ReportMetric(serial.Seconds(), "s-serial-50")
		b.ReportMetric(concurrent.Seconds(), "s-concurrent-50")
		b.ReportMetric(ratio, "speedup")
		b.ReportMetric(float64(s.RoundTrips()), "roundtrips-noop")
		fmt.Printf("apply 50 new tenants over ssh: serial %.1fs, concurrency 8 %.1fs (%.1fx faster), %d round trips for the concurrent pass\n",
			serial.Seconds(), concurrent.Seconds(), ratio, rts)
		fmt.Printf("no-op reconcile of 100 running tenants: %d round trips (connect + observe), %d ms wall\n", s.RoundTrips(), noop.Milliseconds())
	}
}

// BenchmarkNoopReconcile1000 reconciles 1,000 tenants that are already as desired (state
// suspended: their homes are complete and nothing runs, so no 1,000 containers are
// needed) over sshd. Target: ≤ 2 round trips, ≤ 1 s.
func BenchmarkNoopReconcile1000(b *testing.B) {
	f := New(b, Options{SSH: true})
	for i := range 1000 {
		f.WriteTenant("spawn", fmt.Sprintf("n%04d", i), "  provider: {id: openai-codex}\n  skills: [daily-brief]\n  state: suspended", nil)
	}
	ctx := context.Background()
	s := f.Session(ctx, false)
	rs := applypkg.Apply(ctx, s.Plan, s.Conns, applypkg.Options{Concurrency: 8})
	for _, r := range rs {
		if r.Status != applypkg.OK {
			b.Fatalf("%s: %s", r.Tenant, r.Error)
		}
	}
	var rt int64
	b.ResetTimer()
	for b.Loop() {
		s := f.Session(ctx, false)
		if s.Plan.HasChanges() {
			b.Fatal("not a no-op")
		}
		rt = s.RoundTrips()
	}
	b.StopTimer()
	ms := float64(b.Elapsed().Milliseconds()) / float64(b.N)
	b.ReportMetric(float64(rt), "roundtrips/op")
	b.ReportMetric(ms, "ms/op")
	homes, _ := filepath.Glob(filepath.Join(f.Root, "spawn", "tenants", "*"))
	fmt.Printf("no-op reconcile of %d tenants over ssh (load, decrypt, connect, observe, render, plan): %d round trips, %.0f ms wall\n", len(homes), rt, ms)
	_ = os.Getpid
}
