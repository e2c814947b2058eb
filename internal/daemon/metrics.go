package daemon

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the daemon's Prometheus series, in a registry of its own (two daemons in
// one process, as in tests, do not collide; nothing registers globally).
type metrics struct {
	reg           *prometheus.Registry
	duration      prometheus.Histogram
	reconciles    *prometheus.CounterVec
	tenants       *prometheus.GaugeVec
	findings      *prometheus.GaugeVec
	applyErrors   *prometheus.CounterVec
	applied       *prometheus.CounterVec
	revision      *prometheus.GaugeVec
	roundTrips    *prometheus.CounterVec
	fetchFailures prometheus.Counter
	loadFailures  prometheus.Counter
	workerUp      *prometheus.GaugeVec
	lastReconcile prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hermes_reconcile_duration_seconds", Help: "Duration of a reconcile pass: observe, plan and apply.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hermes_reconciles_total", Help: "Reconcile passes by trigger (start, interval, webhook, watch, resync, retry).",
		}, []string{"trigger"}),
		tenants: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hermes_tenants", Help: "Tenants by phase.",
		}, []string{"phase"}),
		findings: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hermes_drift_findings", Help: "Drift findings of the last reconcile by code.",
		}, []string{"code"}),
		applyErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hermes_apply_errors_total", Help: "Tenant changes whose apply failed, by worker.",
		}, []string{"worker"}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hermes_applied_changes_total", Help: "Tenant changes applied successfully, by action.",
		}, []string{"action"}),
		revision: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hermes_applied_revision_info", Help: "The desired-state revision of the last reconcile (value 1).",
		}, []string{"revision", "source"}),
		roundTrips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hermes_ssh_round_trips_total", Help: "Round trips to workers (ssh commands and connection setups; agent calls for local workers).",
		}, []string{"worker"}),
		fetchFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hermes_git_fetch_failures_total", Help: "Failed fetches of the git source.",
		}),
		loadFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hermes_desired_state_rejected_total", Help: "Revisions that failed to load and were not applied.",
		}),
		workerUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hermes_worker_up", Help: "1 if the worker was observed in the last reconcile, 0 if unreachable.",
		}, []string{"worker"}),
		lastReconcile: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hermes_last_reconcile_timestamp_seconds", Help: "When the last reconcile finished (unix time).",
		}),
	}
	m.reg.MustRegister(m.duration, m.reconciles, m.tenants, m.findings, m.applyErrors, m.applied, m.revision,
		m.roundTrips, m.fetchFailures, m.loadFailures, m.workerUp, m.lastReconcile,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, p := range Phases {
		m.tenants.WithLabelValues(p).Set(0)
	}
	m.fetchFailures.Add(0)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
