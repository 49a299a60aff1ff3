package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the service's Prometheus metrics (SPEC §6), on a registry of
// the server's own, never the global one: an embedding program keeps its
// own. Label values come from closed sets only (catalog workflow names,
// claim reasons, states, route templates, status codes), never from what a
// client or a task sends.
type metrics struct {
	reg *prometheus.Registry

	started      *prometheus.CounterVec
	finished     *prometheus.CounterVec
	claims       *prometheus.CounterVec
	leasesLost   prometheus.Counter
	timerLag     prometheus.Histogram
	journalErrs  prometheus.Counter
	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	streams      prometheus.Gauge
}

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.started = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "loom_executions_started_total",
		Help: "Executions started through this process's API."}, []string{"workflow"})
	m.finished = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "loom_executions_finished_total",
		Help: "Executions this process drove to a final state."}, []string{"workflow", "state"})
	m.claims = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "loom_claims_total",
		Help: "Executions this process claimed, by why."}, []string{"reason"})
	m.leasesLost = prometheus.NewCounter(prometheus.CounterOpts{Name: "loom_leases_lost_total",
		Help: "Drives stopped because another process took the lease (fencing)."})
	m.timerLag = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "loom_timer_lag_seconds",
		Help: "From a timer's due time to its claim.", Buckets: []float64{.01, .05, .1, .25, .5, 1, 2, 5, 10, 30}})
	m.journalErrs = prometheus.NewCounter(prometheus.CounterOpts{Name: "loom_journal_errors_total",
		Help: "Journal calls that failed (outage, damage)."})
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "loom_http_requests_total",
		Help: "HTTP requests by route template and status code."}, []string{"route", "code"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "loom_http_request_duration_seconds",
		Help: "HTTP request durations by route template (long polls included).", Buckets: prometheus.DefBuckets}, []string{"route"})
	m.streams = prometheus.NewGauge(prometheus.GaugeOpts{Name: "loom_streams_open",
		Help: "Long polls and event streams open on this process."})
	driving := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "loom_executions_driving",
		Help: "Execution trees this process drives now."}, func() float64 { return float64(len(s.slots)) })
	limit := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "loom_concurrency_limit",
		Help: "The most execution trees this process drives at once (--concurrency)."}, func() float64 { return float64(cap(s.slots)) })
	version := s.cfg.Version
	if version == "" {
		version = "devel"
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "loom_build_info", Help: "Always 1; the version is a label.",
		ConstLabels: prometheus.Labels{"version": version}})
	build.Set(1)
	m.reg.MustRegister(m.started, m.finished, m.claims, m.leasesLost, m.timerLag, m.journalErrs,
		m.httpRequests, m.httpDuration, m.streams, driving, limit, build)
	// Every workflow and claim reason is known up front: show them at 0.
	for _, n := range s.cfg.Catalog.Names() {
		m.started.WithLabelValues(n)
	}
	for _, r := range []string{"start", "timer", "resume", "cancel", "takeover"} {
		m.claims.WithLabelValues(r)
	}
	return m
}

// MetricsHandler serves the metrics in the Prometheus text format, with no
// authentication (for --metrics-listen, an address kept private). Handler
// serves the same at /metrics behind a read token.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
}

// observeHTTP counts one answered request.
func (m *metrics) observeHTTP(route string, status int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	m.httpRequests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(route).Observe(d.Seconds())
}
