package server

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
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

	stepDuration  *prometheus.HistogramVec
	taskAttempts  *prometheus.CounterVec
	taskDuration  *prometheus.HistogramVec
	commitTime    prometheus.Histogram
	commitBatch   prometheus.Histogram
	crashLoops    prometheus.Counter
	backlog       prometheus.Gauge
	backlogOldest prometheus.Gauge
	pausesOpen    *prometheus.GaugeVec
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
	m.stepDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "loom_step_duration_seconds",
		Help:    "Steps this process ran to an end (ok or error), by workflow and step kind; replayed steps are not counted.",
		Buckets: prometheus.DefBuckets}, []string{"workflow", "kind"})
	m.taskAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "loom_task_attempts_total",
		Help: "Task attempts this process ran, by task and outcome (ok, error, cancelled)."}, []string{"task", "outcome"})
	m.taskDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "loom_task_duration_seconds",
		Help: "Task attempt durations, by task and outcome.", Buckets: prometheus.DefBuckets}, []string{"task", "outcome"})
	m.commitTime = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "loom_journal_commit_duration_seconds",
		Help:    "Journal commits of this process: the writer's time per transaction.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}})
	m.commitBatch = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "loom_journal_commit_batch_size",
		Help: "Writes grouped into one journal commit.", Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}})
	m.crashLoops = prometheus.NewCounter(prometheus.CounterOpts{Name: "loom_crash_loops_total",
		Help: "Executions found crash-looping (taken over 3 times without a new event) and held back."})
	m.backlog = prometheus.NewGauge(prometheus.GaugeOpts{Name: "loom_backlog",
		Help: "Root executions waiting for a worker, across the journal (read every 15 s; aggregate with max)."})
	m.backlogOldest = prometheus.NewGauge(prometheus.GaugeOpts{Name: "loom_backlog_oldest_seconds",
		Help: "How long the longest-waiting of them has waited (0 when none; aggregate with max)."})
	m.pausesOpen = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "loom_pauses_open",
		Help: "Open pauses by workflow, across the journal (read every 15 s; aggregate with max)."}, []string{"workflow"})
	m.reg.MustRegister(m.started, m.finished, m.claims, m.leasesLost, m.timerLag, m.journalErrs,
		m.httpRequests, m.httpDuration, m.streams, driving, limit, build,
		m.stepDuration, m.taskAttempts, m.taskDuration, m.commitTime, m.commitBatch, m.crashLoops,
		m.backlog, m.backlogOldest, m.pausesOpen)
	// Every workflow and claim reason is known up front: show them at 0.
	for _, n := range s.cfg.Catalog.Names() {
		m.started.WithLabelValues(n)
		m.pausesOpen.WithLabelValues(n)
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

// CountCrashLoop counts an execution the dispatcher found crash-looping
// (SPEC §6 Takeover): loom_crash_loops_total.
func (s *Server) CountCrashLoop() { s.metrics.crashLoops.Inc() }

// observeCommit counts one commit of the journal's writer.
func (m *metrics) observeCommit(c journal.Commit) {
	m.commitTime.Observe(c.Duration.Seconds())
	m.commitBatch.Observe(float64(c.Writes))
}

// Begin implements interpreter.Telemetry: the step and task metrics of
// what this process runs (replayed steps never reach it). A step counts
// once it ends ok or with an error; a task attempt with any outcome.
func (m *metrics) Begin(ctx context.Context, sp interpreter.Span) (context.Context, func(interpreter.End)) {
	return ctx, func(e interpreter.End) {
		switch {
		case e.Outcome == "":
		case sp.Attempt == 0 && e.Outcome != interpreter.OutcomeCancelled:
			m.stepDuration.WithLabelValues(sp.Workflow, string(sp.Kind)).Observe(e.Duration.Seconds())
		case sp.Attempt > 0 && sp.Kind == definition.KindTask:
			m.taskAttempts.WithLabelValues(sp.Name, e.Outcome).Inc()
			m.taskDuration.WithLabelValues(sp.Name, e.Outcome).Observe(e.Duration.Seconds())
		}
	}
}

// gaugeEvery is how often every process reads the cluster-wide gauges
// from the journal (SPEC §6).
const gaugeEvery = 15 * time.Second

// runGauges reads the cluster-wide gauges (loom_backlog,
// loom_backlog_oldest_seconds, loom_pauses_open) now and every gaugeEvery
// on the server's clock, until ctx is done.
func (s *Server) runGauges(ctx context.Context) {
	for {
		s.readGauges(ctx)
		tc, stop := s.timer(gaugeEvery)
		if s.testGauged != nil {
			s.testGauged() // after the timer is set: a test may move the clock now
		}
		select {
		case <-ctx.Done():
			stop()
			return
		case <-tc:
		}
	}
}

// readGauges reads the gauges once; a failed read keeps the last values.
func (s *Server) readGauges(ctx context.Context) {
	g, err := s.j.Gauges(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.metrics.journalErrs.Inc()
			s.log.Error("cannot read the backlog and open pauses", "error", err)
		}
		return
	}
	s.j.ok()
	s.backlog.Store(int64(g.Backlog))
	m := s.metrics
	m.backlog.Set(float64(g.Backlog))
	oldest := 0.0
	if !g.BacklogSince.IsZero() {
		oldest = max(s.clock.Now().Sub(g.BacklogSince).Seconds(), 0)
	}
	m.backlogOldest.Set(oldest)
	// Only catalog names become label values.
	for _, n := range s.cfg.Catalog.Names() {
		m.pausesOpen.WithLabelValues(n).Set(float64(g.PausesOpen[n]))
	}
}
