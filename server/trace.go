package server

import (
	"context"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
)

// NewOTLPExporter is the span exporter loom serve uses when
// $OTEL_EXPORTER_OTLP_ENDPOINT (or the traces one) is set: OTLP over HTTP,
// configured by the standard OTEL_EXPORTER_OTLP_* variables. It never
// retries: a span that cannot be sent at once is dropped (and counted), so
// a collector that is down costs nothing but the spans.
func NewOTLPExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	return otlptracehttp.New(ctx, otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}),
		otlptracehttp.WithTimeout(10*time.Second))
}

// TracesConfigured reports whether the environment asks for traces.
func TracesConfigured() bool {
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// The span attributes of SPEC §6: ids, names and paths, never values.
const (
	attrExecution = attribute.Key("loom.execution.id")
	attrRoot      = attribute.Key("loom.root.id")
	attrWorkflow  = attribute.Key("loom.workflow")
	attrPath      = attribute.Key("loom.step.path")
	attrAttempt   = attribute.Key("loom.step.attempt")
	attrErrorType = attribute.Key("loom.error.type")
)

// spanQueue is how many finished spans wait for the exporter at most;
// more are dropped (and counted) rather than held.
const spanQueue = 4096

// tracing is the service's OpenTelemetry traces: a span per HTTP request,
// per drive and per step that runs. Without an exporter its tracer is a
// no-op.
type tracing struct {
	tr   trace.Tracer
	tp   *sdktrace.TracerProvider // nil without an exporter
	prop propagation.TraceContext

	// pending counts the spans handed to the batch processor and not yet
	// through an export: at spanQueue a span is dropped here, counted,
	// rather than silently by the processor.
	pending atomic.Int64
	dropped prometheus.Counter
}

func newTracing(exp sdktrace.SpanExporter, reg *prometheus.Registry) *tracing {
	t := &tracing{tr: noop.NewTracerProvider().Tracer("loom")}
	t.dropped = prometheus.NewCounter(prometheus.CounterOpts{Name: "loom_trace_spans_dropped_total",
		Help: "Trace spans dropped because the exporter's queue was full or an export failed."})
	reg.MustRegister(t.dropped)
	if exp == nil {
		return t
	}
	name := os.Getenv("OTEL_SERVICE_NAME")
	if name == "" {
		name = "loom"
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", name)))
	if err != nil {
		res = resource.Default()
	}
	bsp := sdktrace.NewBatchSpanProcessor(&countingExporter{SpanExporter: exp, t: t}, sdktrace.WithMaxQueueSize(spanQueue))
	t.tp = sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSpanProcessor(&droppingProcessor{SpanProcessor: bsp, t: t}))
	t.tr = t.tp.Tracer("github.com/loomwork/loom/server")
	return t
}

// droppingProcessor drops a span, and counts it, when spanQueue spans
// already wait for the exporter: ending a span never waits.
type droppingProcessor struct {
	sdktrace.SpanProcessor
	t *tracing
}

func (p *droppingProcessor) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return
	}
	if p.t.pending.Add(1) > spanQueue {
		p.t.pending.Add(-1)
		p.t.dropped.Inc()
		return
	}
	p.SpanProcessor.OnEnd(s)
}

// countingExporter counts the spans of a failed export as dropped.
type countingExporter struct {
	sdktrace.SpanExporter
	t *tracing
}

func (e *countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	e.t.pending.Add(-int64(len(spans)))
	if err != nil {
		e.t.dropped.Add(float64(len(spans)))
	}
	return err
}

// shutdown exports what is queued (within ctx) and stops.
func (t *tracing) shutdown(ctx context.Context) {
	if t.tp != nil {
		_ = t.tp.Shutdown(ctx)
	}
}

// httpSpan starts the span of one request, the child of the traceparent it
// carries; end names it by its route template, once routed.
func (t *tracing) httpSpan(r *http.Request) (context.Context, func(r *http.Request, status int)) {
	ctx := t.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := t.tr.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.scheme", scheme(r))))
	return ctx, func(r *http.Request, status int) {
		if r.Pattern != "" {
			route := r.Pattern
			if _, path, ok := strings.Cut(route, " "); ok {
				route = path
			}
			span.SetName(r.Method + " " + route)
			span.SetAttributes(attribute.String("http.route", route))
		}
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, "")
		}
		span.End()
	}
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// startTrace is the W3C traceparent of ctx's span, the request that
// starts an execution ("" if it has none): the start stores it with the
// record (journal.Execution.TraceParent), so that whichever process
// drives the execution, whenever, finds it.
func (t *tracing) startTrace(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	t.prop.Inject(ctx, c)
	return c.Get("traceparent")
}

// driveSpan starts the span of one drive of rec, whose root is root. The
// first drive (nothing journaled yet) is a child of the start request's
// span (root's stored TraceParent); a later one (after a pause, a timer,
// a takeover) starts a new trace linked to it and to the request that
// caused it, if any (ctx's span).
func (t *tracing) driveSpan(ctx context.Context, rec, root *journal.Execution) (context.Context, func(error)) {
	if t.tp == nil {
		return ctx, func(error) {}
	}
	start := trace.SpanContextFromContext(t.prop.Extract(context.Background(), propagation.MapCarrier{"traceparent": root.TraceParent}))
	known := start.IsValid()
	opts := []trace.SpanStartOption{trace.WithAttributes(attrExecution.String(rec.ID), attrRoot.String(rec.RootID), attrWorkflow.String(rec.Workflow))}
	parent := context.WithoutCancel(ctx)
	if root.LastSeq == 0 && known {
		parent = trace.ContextWithSpanContext(parent, start)
	} else {
		opts = append(opts, trace.WithNewRoot())
		if known {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: start}))
		}
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() && !sc.Equal(start) {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
		}
	}
	_, span := t.tr.Start(parent, "drive "+rec.Workflow, opts...)
	return trace.ContextWithSpan(ctx, span), func(err error) {
		if err != nil {
			span.SetStatus(codes.Error, "the drive failed")
		}
		span.End()
	}
}

// Begin implements interpreter.Telemetry: a span `KIND NAME` for each step
// that runs, and for each attempt of a task or call (the attempt's span
// stands for the step: it carries loom.step.attempt). A task attempt's
// http requests carry its traceparent.
func (t *tracing) Begin(ctx context.Context, sp interpreter.Span) (context.Context, func(interpreter.End)) {
	whole := sp.Kind == definition.KindTask || sp.Kind == definition.KindCall
	if t.tp == nil || sp.Attempt == 0 && whole {
		return ctx, func(interpreter.End) {}
	}
	attrs := []attribute.KeyValue{attrExecution.String(sp.ExecutionID), attrRoot.String(sp.RootID),
		attrWorkflow.String(sp.Workflow), attrPath.String(sp.Path)}
	if sp.Attempt > 0 {
		attrs = append(attrs, attrAttempt.Int(sp.Attempt))
	}
	ctx, span := t.tr.Start(ctx, string(sp.Kind)+" "+sp.Name, trace.WithAttributes(attrs...))
	if sp.Kind == definition.KindTask {
		sctx := ctx
		ctx = builtins.WithOutgoingHeaders(ctx, func(h http.Header) { t.prop.Inject(sctx, propagation.HeaderCarrier(h)) })
	}
	return ctx, func(e interpreter.End) {
		if e.Outcome == interpreter.OutcomeError {
			if e.ErrorType != "" {
				span.SetAttributes(attrErrorType.String(e.ErrorType))
			}
			span.SetStatus(codes.Error, e.ErrorType)
		}
		span.End()
	}
}

// telemetries shows the engine's steps to several Telemetry at once.
type telemetries []interpreter.Telemetry

func (ts telemetries) Begin(ctx context.Context, sp interpreter.Span) (context.Context, func(interpreter.End)) {
	ends := make([]func(interpreter.End), len(ts))
	for i, t := range ts {
		ctx, ends[i] = t.Begin(ctx, sp)
	}
	return ctx, func(e interpreter.End) {
		for i := len(ends) - 1; i >= 0; i-- {
			ends[i](e)
		}
	}
}
