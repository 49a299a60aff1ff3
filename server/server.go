package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/loomwork/loom/console"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/clock"
	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
)

// Config is what a Server runs on. Catalog, Tasks and Journal are required;
// the rest have SPEC §6's defaults.
type Config struct {
	// Catalog is the checked catalog starts use (executions already
	// started run their pinned definition).
	Catalog *definition.Catalog
	Tasks   interpreter.Tasks
	Journal journal.Journal

	// Concurrency caps the execution trees this process drives at once
	// (default 64).
	Concurrency int
	// Tokens authenticates requests; nil serves without authentication
	// (loopback only: requests must name a loopback Host).
	Tokens *Tokens
	// MaxBody caps a request body (default 4 MiB); MaxWait caps a long
	// poll (default 60 s).
	MaxBody int64
	MaxWait time.Duration
	// MaxInput caps an input or resume payload, in bytes of its JSON
	// text (SPEC §5's input limit; default 2 MiB, as the CLI's): a larger
	// one is refused with 413 limit_exceeded and nothing is written.
	MaxInput int
	// LeaseTTL is how long a lease lasts unless renewed (default 30 s).
	LeaseTTL time.Duration
	// Clock is the service's clock: the dispatcher's polls, long polls,
	// and the engines' timers (default: the system's). Tests move a
	// clock.Fake by hand.
	Clock clock.Clock
	// PollInterval is how often the dispatcher looks for work (default
	// 1 s, each wait jittered by ±20 %).
	PollInterval time.Duration
	// Logger receives the service's log lines (default: discarded).
	Logger *slog.Logger
	// Mount serves every path outside /v1, /healthz and /readyz: the web
	// console hooks in here. Its pages hold no data (the console reads
	// everything through /v1), so they answer without a token: that is
	// where a person signs in.
	Mount http.Handler
	// Sessions authenticates /v1 requests that carry no Authorization
	// header by the console's session cookie (*console.Console, whose
	// failed sign-ins then count with the bad tokens: LimitWith).
	Sessions Sessions
	// EngineOptions are added to the engines' options (a clock, a random
	// source for tests).
	EngineOptions []interpreter.Option
	// Version is reported in /v1/workers and build info.
	Version string
	// Rate is the requests per second each token, or each client address
	// without tokens, may make, with bursts of twice it (default
	// DefaultRate; negative: no limit). Beyond it the answer is 429.
	Rate float64
	// MaxStreams caps the long polls and event streams open at once
	// (default DefaultMaxStreams); beyond it the answer is 503.
	MaxStreams int
	// MaxBacklog refuses starts (503 backlog_full) while more root
	// executions than it wait for a worker, by the last read of the
	// gauges (default DefaultMaxBacklog).
	MaxBacklog int
	// CORSOrigins are the origins that get CORS headers (none by default).
	CORSOrigins []string
	// Proxies are the addresses of reverse proxies whose X-Forwarded-For
	// names the client (for the per-client limits).
	Proxies []*net.IPNet
	// Retention deletes a finished root execution, its children and their
	// events this long after it finished, in small batches (0: keep
	// forever).
	Retention time.Duration
	// SpanExporter, when set, receives the service's OpenTelemetry traces
	// (SPEC §6): a span per HTTP request, per drive and per step that
	// runs. It never delays an execution: spans are batched, and dropped
	// (counted in loom_trace_spans_dropped_total) when too many wait or an
	// export fails. NewOTLPExporter is the one loom serve uses.
	SpanExporter sdktrace.SpanExporter
}

// Sessions finds the console session of a request: ok false when it has
// none; an error when a state-changing request fails the CSRF check.
type Sessions interface {
	Session(r *http.Request) (console.Identity, bool, error)
}

// Server is one service process: the HTTP API and the dispatcher.
type Server struct {
	cfg    Config
	j      *observed
	hub    *hub
	clock  clock.Clock
	log    *slog.Logger
	holder journal.Holder
	// drive drives what this process claimed or started; resume serves
	// HTTP resumes under its own holder, so that the lease keeps the two
	// apart like any two runners.
	drive, resume *interpreter.Engine

	slots chan struct{}
	poke  chan struct{}

	workCtx  context.Context
	stopWork context.CancelFunc
	draining atomic.Bool
	// registered: this process's first heartbeat is journaled (/readyz waits
	// for it, so a ready process is listed by GET /v1/workers).
	registered atomic.Bool
	lastOK     atomic.Int64 // unix nanos of the journal's last answer
	// claimErr is why the dispatcher's claims have failed, failures times
	// in a row (nil once one succeeds): /readyz answers 503 meanwhile.
	claimErr   atomic.Pointer[claimFailure]
	driveGroup sync.WaitGroup

	metrics *metrics
	tracing *tracing

	rates       *limiter // requests per token or client address
	badAuth     *limiter // failed authentications per client address
	streamsOpen atomic.Int64
	// backlog is the roots waiting for a worker at the last gauge read.
	backlog atomic.Int64

	mu       sync.Mutex
	drives   map[*driveState]struct{}
	exclude  map[string]time.Time // root → no claim before
	missing  map[string]string    // definition hash → missing tasks ("" none)
	missFrom map[string]string    // root → the missing-task sentence for waiting_on
	used     map[string][]string  // definition hash → the tasks it uses

	// started is when New built the process (its heartbeat's started_at);
	// beat asks for a heartbeat now (draining began).
	started time.Time
	beat    chan struct{}
	// hints carries hints between processes (nil: the journal has none);
	// hintOut asks sendHints for one.
	hints   journal.Hints
	hintOut chan struct{}
	// inFlight counts the tasks running, parked the steps a drain holds
	// back (taskGate); gateMoved wakes Drain when either changes.
	inFlight, parked atomic.Int64
	gateMoved        chan struct{}
	// fleetWorkers are the live serve processes as read at fleetAt.
	fleetWorkers []journal.Worker
	fleetAt      time.Time

	// testPolled, when set, is called after each dispatcher pass (a test
	// signal: "the dispatcher looked for work").
	testPolled func(pass int64)
	// passes counts the dispatcher passes begun, so a test can wait for
	// one that began after it moved the clock.
	passes atomic.Int64
	// testListening, when set, is called each time the process listens
	// for other processes' hints.
	testListening func()
	// testStreamClosed, when set, is called as a long poll or stream ends.
	testStreamClosed func()
	// patterns are the routes Handler registered, in order (the OpenAPI
	// test checks the description against them).
	patterns []string
	// testScheduled, when set, is called after each scheduler pass with
	// the time the pass began, once the wait for the next one is set.
	testScheduled func(at time.Time)
	// testRetained, when set, is called after each retention pass with
	// its start and what it deleted, once the wait for the next is set.
	testRetained func(at time.Time, res journal.PruneResult)
	// testGauged, when set, is called after each read of the gauges, once
	// the wait for the next one is set.
	testGauged func()
}

// driveState is one drive in progress in this process.
type driveState struct {
	root       string
	cancel     context.CancelFunc
	cancelled  atomic.Bool // stopped for a cancel request
	cancelling atomic.Bool // carrying a cancel out
}

// New checks cfg and builds a server. Call Run to start the dispatcher and
// serve Handler over HTTP.
func New(cfg Config) (*Server, error) {
	if cfg.Catalog == nil || cfg.Journal == nil {
		return nil, errors.New("server: a catalog and a journal are required")
	}
	if cfg.Tasks == nil {
		cfg.Tasks = interpreter.NewRegistry()
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 64
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 4 << 20
	}
	if cfg.MaxInput <= 0 {
		cfg.MaxInput = DefaultMaxInput
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 60 * time.Second
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = journal.DefaultLeaseTTL
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Rate == 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = DefaultMaxStreams
	}
	if cfg.MaxBacklog <= 0 {
		cfg.MaxBacklog = DefaultMaxBacklog
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{cfg: cfg, hub: newHub(), clock: cfg.Clock, log: cfg.Logger,
		slots: make(chan struct{}, cfg.Concurrency), poke: make(chan struct{}, 1),
		drives: map[*driveState]struct{}{}, exclude: map[string]time.Time{},
		missing: map[string]string{}, missFrom: map[string]string{}, used: map[string][]string{},
		started: cfg.Clock.Now(), beat: make(chan struct{}, 1),
		hints: hintsOf(cfg.Journal), hintOut: make(chan struct{}, 1), gateMoved: make(chan struct{}, 1)}
	s.metrics = newMetrics(s)
	s.tracing = newTracing(cfg.SpanExporter, s.metrics.reg)
	if cfg.Rate > 0 {
		s.rates = newLimiter(cfg.Clock, cfg.Rate, int(math.Ceil(2*cfg.Rate)))
	}
	s.badAuth = newLimiter(cfg.Clock, badAuthRate, badAuthRate)
	// The console's sign-in form counts its failures where bad tokens do.
	if c, ok := cfg.Sessions.(interface{ LimitWith(console.Limiter) }); ok {
		c.LimitWith(authLimiter{s})
	}
	s.j = &observed{Journal: cfg.Journal, hub: s.hub, ok: func() { s.lastOK.Store(s.clock.Now().UnixNano()) }}
	rnd := builtins.CryptoRandom{}
	s.holder = interpreter.LocalHolder("serve-" + builtins.UUID4(rnd))
	resumer := interpreter.LocalHolder("serve-resume-" + builtins.UUID4(rnd))
	opts := func(h journal.Holder) []interpreter.Option {
		// Timers due within 5 s are waited out in place; a longer one frees
		// the slot (the execution becomes WAITING) and a claim fires it.
		o := []interpreter.Option{interpreter.WithHolder(h), interpreter.WithLeaseTTL(cfg.LeaseTTL), interpreter.WithClock(cfg.Clock),
			interpreter.WithTimerWait(true, 5*time.Second), interpreter.WithTelemetry(telemetries{s.metrics, s.tracing}),
			interpreter.WithTaskGate(s.taskGate)}
		return append(o, cfg.EngineOptions...)
	}
	s.drive = interpreter.New(cfg.Catalog, cfg.Tasks, s.j, opts(s.holder)...)
	s.resume = interpreter.New(cfg.Catalog, cfg.Tasks, s.j, opts(resumer)...)
	cfg.Journal.WatchCommits(s.metrics.observeCommit)
	s.workCtx, s.stopWork = context.WithCancel(context.Background())
	s.lastOK.Store(s.clock.Now().UnixNano())
	return s, nil
}

// timer fires once d has passed on the server's clock; stop releases it.
func (s *Server) timer(d time.Duration) (<-chan time.Time, func() bool) {
	t := s.clock.NewTimer(d)
	return t.C(), t.Stop
}

// Holder is the identity this process claims executions under.
func (s *Server) Holder() journal.Holder { return s.holder }

// wake asks the dispatcher to look for work now (a start, a cancel, a
// freed slot).
func (s *Server) wake() {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

// Drain stops claiming work and makes /readyz answer 503; the API keeps
// answering. The drives in flight start no new task (taskGate); their
// tasks in flight get until ctx is done to finish and be committed. Then,
// or as soon as no task is in flight and every drive waits at the gate,
// their contexts are cancelled and their leases released, and the other
// processes are hinted to take them over. It returns once every drive has
// returned.
func (s *Server) Drain(ctx context.Context) error {
	s.draining.Store(true)
	select {
	case s.beat <- struct{}{}: // the fleet sees it draining at once
	default:
	}
	done := make(chan struct{})
	go func() {
		s.driveGroup.Wait()
		close(done)
	}()
	for !s.onlyParked() {
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			s.log.Info("drain time is up: cancelling the drives in flight")
		case <-s.gateMoved:
			continue
		}
		break
	}
	s.stopWork()
	<-done
	// Their leases are released: the other processes take them over now.
	if s.hints != nil {
		hctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.hints.Hint(hctx)
	}
	return nil
}

// taskGate is the engines' interpreter.TaskGate: once the process drains,
// a drive starts no new task; the step waits, parked, until the drive is
// cut short (nothing is journaled for it, and the process that takes the
// execution over runs it). It counts the tasks in flight, so Drain need
// not wait out --drain once none is left.
func (s *Server) taskGate(ctx context.Context) (func(), error) {
	if s.draining.Load() {
		s.parked.Add(1)
		s.moved()
		<-ctx.Done()
		s.parked.Add(-1)
		return nil, ctx.Err()
	}
	s.inFlight.Add(1)
	return func() {
		s.inFlight.Add(-1)
		s.moved()
	}, nil
}

// moved tells Drain that a task ended or parked.
func (s *Server) moved() {
	select {
	case s.gateMoved <- struct{}{}:
	default:
	}
}

// onlyParked reports whether no task is in flight and every drive waits
// at the gate: a drain has nothing left to wait for.
func (s *Server) onlyParked() bool {
	s.mu.Lock()
	n := len(s.drives)
	s.mu.Unlock()
	return n > 0 && s.inFlight.Load() == 0 && s.parked.Load() >= int64(n)
}

// Close cancels every drive at once (their leases are released) and
// waits for them.
func (s *Server) Close() error {
	s.cfg.Journal.WatchCommits(nil)
	s.draining.Store(true)
	s.stopWork()
	s.driveGroup.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.tracing.shutdown(ctx)
	return nil
}

func (s *Server) journalAge() time.Duration {
	return s.clock.Now().Sub(time.Unix(0, s.lastOK.Load()))
}

func (s *Server) readiness() (bool, string) {
	switch {
	case s.draining.Load():
		return false, "draining: this process claims no new work"
	case s.claimErr.Load() != nil:
		f := s.claimErr.Load()
		return false, fmt.Sprintf("the dispatcher cannot claim work: %v (%d failures in a row; retrying in %s)", f.err, f.failures, f.retry)
	case s.journalAge() > 5*time.Second:
		return false, fmt.Sprintf("the journal has not answered for %s", s.journalAge().Round(time.Second))
	case !s.registered.Load():
		// GET /v1/workers lists a ready process, in this process and in
		// any other on the journal.
		return false, "starting: this process's first heartbeat is not yet in the journal"
	}
	return true, "ready"
}
