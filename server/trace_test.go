package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	collector "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// spans flushes the server's spans to exp and returns them by name.
func (h *harness) spans(exp *tracetest.InMemoryExporter) map[string][]tracetest.SpanStub {
	h.t.Helper()
	h.srv.driveGroup.Wait()
	if err := h.srv.tracing.tp.ForceFlush(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	out := map[string][]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		out[s.Name] = append(out[s.Name], s)
	}
	exp.Reset()
	return out
}

func attrs(s tracetest.SpanStub) map[string]string {
	m := map[string]string{}
	for _, kv := range s.Attributes {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

// one returns the only span named name.
func one(t *testing.T, spans map[string][]tracetest.SpanStub, name string) tracetest.SpanStub {
	t.Helper()
	if len(spans[name]) != 1 {
		var names []string
		for n, l := range spans {
			names = append(names, n+"×"+string(rune('0'+len(l))))
		}
		t.Fatalf("want one span %q, have %v", name, names)
	}
	return spans[name][0]
}

// TestTraces: a start's traceparent is the parent of its HTTP span, whose
// child is the first drive, whose children are the steps that run (a
// failed attempt marked with its error type); a drive after a resume is a
// new trace linked to the start; the http task sends its traceparent.
func TestTraces(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	h := newHarness(t, func(c *Config) { c.SpanExporter = exp })
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if st, _, rec := h.do("POST", "/v1/executions?wait=60s&until=finished", `{"workflow": "flaky", "id": "f1"}`, "traceparent", parent); st != 201 || rec["state"] != "COMPLETED" {
		t.Fatalf("start: %d %v", st, rec)
	}
	spans := h.spans(exp)
	req := one(t, spans, "POST /v1/executions")
	if req.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || req.Parent.SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("the start's span is not the child of its traceparent: %v in %v", req.Parent, req.SpanContext)
	}
	if a := attrs(req); a["http.route"] != "/v1/executions" || a["http.response.status_code"] != "201" {
		t.Errorf("the start's span attributes: %v", a)
	}
	drive := one(t, spans, "drive flaky")
	if drive.Parent.SpanID() != req.SpanContext.SpanID() || drive.SpanContext.TraceID() != req.SpanContext.TraceID() {
		t.Errorf("the first drive is not the child of the start: %v", drive.Parent)
	}
	if a := attrs(drive); a["loom.execution.id"] != "f1" || a["loom.root.id"] != "f1" || a["loom.workflow"] != "flaky" {
		t.Errorf("the drive's attributes: %v", a)
	}
	attempts := spans["task fails_once"]
	if len(attempts) != 2 {
		t.Fatalf("want 2 attempt spans of fails_once, have %d", len(attempts))
	}
	for i, want := range []map[string]string{
		{"loom.step.path": "first", "loom.step.attempt": "1", "loom.error.type": "NotYet"},
		{"loom.step.path": "first@2", "loom.step.attempt": "2"},
	} {
		a := attrs(attempts[i])
		for k, v := range want {
			if a[k] != v {
				t.Errorf("attempt %d: %s = %q, want %q (%v)", i+1, k, a[k], v, a)
			}
		}
		if _, ok := a["loom.error.type"]; ok != (i == 0) {
			t.Errorf("attempt %d: loom.error.type %v", i+1, a)
		}
		if attempts[i].Parent.SpanID() != drive.SpanContext.SpanID() {
			t.Errorf("attempt %d is not the drive's child", i+1)
		}
	}
	for _, name := range []string{"set vars", "task echo"} {
		if s := one(t, spans, name); s.Parent.SpanID() != drive.SpanContext.SpanID() {
			t.Errorf("%s is not the drive's child", name)
		}
	}

	// A later drive: a new trace, linked to the start.
	if st, _, rec := h.do("POST", "/v1/executions", `{"workflow": "gated", "id": "g1"}`); st != 201 {
		t.Fatalf("start: %d %v", st, rec)
	}
	h.settle("g1")
	first := one(t, h.spans(exp), "drive gated")
	if st, _, rec := h.do("POST", "/v1/executions/g1/resume?wait=60s&until=finished", `{"payload": 1}`); st != 200 || rec["state"] != "COMPLETED" {
		t.Fatalf("resume: %d %v", st, rec)
	}
	spans = h.spans(exp)
	later := one(t, spans, "drive gated")
	if later.SpanContext.TraceID() == first.SpanContext.TraceID() || later.Parent.IsValid() {
		t.Errorf("the drive after a resume is not a new trace: parent %v", later.Parent)
	}
	linked := false
	for _, l := range later.Links {
		linked = linked || l.SpanContext.TraceID() == first.SpanContext.TraceID()
	}
	if !linked {
		t.Errorf("the drive after a resume has no link to the start's trace: %v", later.Links)
	}
	if _, ok := spans["pause go"]; ok {
		t.Errorf("the replayed pause has a span")
	}
	if s := one(t, spans, "task echo"); s.Parent.SpanID() != later.SpanContext.SpanID() {
		t.Errorf("the step after the pause is not the later drive's child")
	}

	// The http task sends the attempt's traceparent.
	var mu sync.Mutex
	var got string
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Get("traceparent")
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	defer peer.Close()
	if st, _, rec := h.do("POST", "/v1/executions?wait=60s&until=finished", `{"workflow": "callout", "id": "c1", "input": {"url": "`+peer.URL+`"}}`); st != 201 || rec["state"] != "COMPLETED" {
		t.Fatalf("start: %d %v", st, rec)
	}
	call := one(t, h.spans(exp), "task http")
	mu.Lock()
	defer mu.Unlock()
	if want := "00-" + call.SpanContext.TraceID().String() + "-" + call.SpanContext.SpanID().String() + "-01"; got != want {
		t.Errorf("the http task sent traceparent %q, want %q", got, want)
	}
}

// TestTracesOverOTLP: the real OTLP/HTTP exporter sends the spans to a
// collector (an in-process receiver decoding the protobuf export
// request); with the collector down, executions finish as ever and the
// lost spans are counted.
func TestTracesOverOTLP(t *testing.T) {
	var mu sync.Mutex
	var names []string
	collectorSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req collector.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "not an export", http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, kv := range rs.Resource.Attributes {
				if kv.Key == "service.name" {
					names = append(names, "service "+kv.Value.GetStringValue())
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					names = append(names, s.Name)
				}
			}
		}
		mu.Unlock()
		out, _ := proto.Marshal(&collector.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	defer collectorSrv.Close()
	t.Setenv("OTEL_SERVICE_NAME", "")
	run := func(endpoint string) *harness {
		exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(endpoint),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
		if err != nil {
			t.Fatal(err)
		}
		h := newHarness(t, func(c *Config) { c.SpanExporter = exp })
		if st, _, rec := h.do("POST", "/v1/executions?wait=60s&until=finished", `{"workflow": "hello", "input": {"name": "x"}}`); st != 201 || rec["state"] != "COMPLETED" {
			t.Fatalf("start: %d %v", st, rec)
		}
		h.srv.driveGroup.Wait()
		_ = h.srv.tracing.tp.ForceFlush(context.Background())
		return h
	}
	h := run(collectorSrv.URL + "/v1/traces")
	mu.Lock()
	joined := strings.Join(names, ", ")
	mu.Unlock()
	for _, want := range []string{"service loom", "POST /v1/executions", "drive hello", "task echo"} {
		if !strings.Contains(joined, want) {
			t.Errorf("the collector received %s; want %s among them", joined, want)
		}
	}
	wantMetrics(t, h.metricsText(), []string{"loom_trace_spans_dropped_total 0"})

	// A collector that is down: a port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String() + "/v1/traces"
	ln.Close()
	h = run(down)
	wantMetrics(t, h.metricsText(), nil, "loom_trace_spans_dropped_total")
}

// TestTraceLinkedAcrossProcesses: the start's trace context is journaled
// with the record, so the process that drives an execution need not be
// the one that accepted its start: here process a (draining) accepts the
// start, and b's first drive is the child of a's start span, and b's
// drive after a resume is a new trace linked to it.
func TestTraceLinkedAcrossProcesses(t *testing.T) {
	ea, eb := tracetest.NewInMemoryExporter(), tracetest.NewInMemoryExporter()
	a := newHarness(t, func(c *Config) { c.SpanExporter = ea })
	b := newHarness(t, func(c *Config) { c.SpanExporter = eb; c.Journal = a.j })
	a.srv.draining.Store(true) // a journals the start, b drives it
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if st, _, rec := a.do("POST", "/v1/executions", `{"workflow": "gated", "id": "g1"}`, "traceparent", parent); st != 201 || rec["state"] != "RUNNING" {
		t.Fatalf("start on a: %d %v", st, rec)
	}
	start := one(t, a.spans(ea), "POST /v1/executions")
	b.poll()
	if rec := b.settle("g1"); rec["state"] != "PAUSED" {
		t.Fatalf("g1 on b: %v", rec)
	}
	first := one(t, b.spans(eb), "drive gated")
	if first.Parent.SpanID() != start.SpanContext.SpanID() || first.SpanContext.TraceID() != start.SpanContext.TraceID() {
		t.Errorf("b's first drive is not the child of a's start span %v: parent %v in trace %v",
			start.SpanContext.SpanID(), first.Parent.SpanID(), first.SpanContext.TraceID())
	}
	if st, _, rec := b.do("POST", "/v1/executions/g1/resume?wait=60s&until=finished", `{"payload": 1}`); st != 200 || rec["state"] != "COMPLETED" {
		t.Fatalf("resume on b: %d %v", st, rec)
	}
	later := one(t, b.spans(eb), "drive gated")
	if later.SpanContext.TraceID() == start.SpanContext.TraceID() || later.Parent.IsValid() {
		t.Errorf("b's drive after the resume is not a new trace: parent %v", later.Parent)
	}
	linked := false
	for _, l := range later.Links {
		linked = linked || l.SpanContext.SpanID() == start.SpanContext.SpanID()
	}
	if !linked {
		t.Errorf("b's drive after the resume has no link to a's start span: %v", later.Links)
	}
}
