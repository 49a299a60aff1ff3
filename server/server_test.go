package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/clock"
	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/sqlite"
)

// harness is a server on a SQLite journal behind httptest, with its
// dispatcher running.
type harness struct {
	t      *testing.T
	srv    *Server
	http   *httptest.Server
	clock  *clock.Fake
	j      journal.Journal
	dbPath string     // the SQLite file of j
	polled chan int64 // the number of each dispatcher pass that ended
	// listening gets a value each time the server listens for hints.
	listening chan struct{}
	gauged    chan struct{} // a read of the gauges, once the next one's timer is set
	records   chan string   // what the record task saw, in order
	blocked   chan string   // block task started
	undone    chan string   // undo task started; it ends when the test sends to undo
	undo      chan struct{}
	auth      []string // headers settle and eventData send (a token)
}

type harnessOpt func(*Config)

func newHarness(t *testing.T, opts ...harnessOpt) *harness {
	t.Helper()
	h := &harness{t: t, clock: clock.NewFake(time.Now().UTC()), polled: make(chan int64, 100), gauged: make(chan struct{}, 100), listening: make(chan struct{}, 10),
		records: make(chan string, 100), blocked: make(chan string, 10),
		undone: make(chan string, 10), undo: make(chan struct{})}
	reg := interpreter.NewRegistry(builtins.Standard())
	interpreter.Register(reg, "record", func(ctx context.Context, in string) (string, error) {
		h.records <- in
		return in, nil
	})
	interpreter.Register(reg, "undo", func(ctx context.Context, in string) (string, error) {
		h.undone <- in
		select {
		case <-h.undo:
			return in, nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	})
	// fails_once fails each step's first attempt (its idempotency key
	// has no @N attempt suffix) and no other.
	interpreter.Register(reg, "fails_once", func(ctx context.Context, in any) (string, error) {
		if !strings.Contains(interpreter.IdempotencyKey(ctx), "@") {
			return "", interpreter.Errorf("NotYet", "the first attempt fails")
		}
		return "ok", nil
	})
	interpreter.Register(reg, "block", func(ctx context.Context, in string) (string, error) {
		h.blocked <- in
		<-ctx.Done()
		return "", ctx.Err()
	})
	cat, err := definition.Load("testdata/catalog.yaml", definition.WithTasks(reg))
	if err != nil {
		t.Fatal(err)
	}
	h.dbPath = filepath.Join(t.TempDir(), "loom.db")
	j, err := sqlite.Open(h.dbPath, sqlite.WithClock(func() time.Time { return h.clock.Now() }))
	if err != nil {
		t.Fatal(err)
	}
	h.j = j
	// No rate limit unless a test sets one: the fake clock never refills
	// a bucket, so a test that polls (GET until a condition holds) would
	// spend the default burst and get 429 on a slow machine.
	cfg := Config{Catalog: cat, Tasks: reg, Journal: j, Clock: h.clock, Concurrency: 4, Rate: -1}
	for _, o := range opts {
		o(&cfg)
	}
	if f, ok := cfg.Clock.(*clock.Fake); ok {
		h.clock = f // an option may start the time elsewhere
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.testPolled = func(pass int64) {
		select {
		case h.polled <- pass:
		default:
		}
	}
	srv.testGauged = func() {
		select {
		case h.gauged <- struct{}{}:
		default:
		}
	}
	srv.testListening = func() {
		select {
		case h.listening <- struct{}{}:
		default:
		}
	}
	h.srv = srv
	h.http = httptest.NewServer(srv.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		h.http.Close()
		srv.Close()
		j.Close()
	})
	return h
}

// do sends a request and returns the status, headers and decoded body.
func (h *harness) do(method, path, body string, hdr ...string) (int, http.Header, map[string]any) {
	h.t.Helper()
	st, header, raw := h.raw(method, path, body, hdr...)
	var out map[string]any
	if len(raw) > 0 && strings.HasPrefix(header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out); err != nil {
			h.t.Fatalf("%s %s: body is not JSON: %s", method, path, raw)
		}
	}
	return st, header, out
}

// raw sends a request (a POST as JSON; hdr holds header, value pairs) and
// returns the status, headers and body as sent.
func (h *harness) raw(method, path, body string, hdr ...string) (int, http.Header, []byte) {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.http.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, raw
}

// wantError checks an error answer's status and code.
func wantError(t *testing.T, what string, status int, body map[string]any, wantStatus int, wantCode string) {
	t.Helper()
	e, _ := body["error"].(map[string]any)
	if status != wantStatus || e == nil || e["code"] != wantCode || e["message"] == "" || e["request_id"] == "" {
		t.Errorf("%s: got %d %v, want %d %s", what, status, body, wantStatus, wantCode)
	}
}

// settle waits (long poll) until execution id is not RUNNING.
func (h *harness) settle(id string) map[string]any {
	h.t.Helper()
	for range 50 {
		st, _, rec := h.do("GET", "/v1/executions/"+id+"?wait=60s&until=settled", "", h.auth...)
		if st != 200 {
			h.t.Fatalf("GET %s: %d %v", id, st, rec)
		}
		if rec["state"] != "RUNNING" {
			return rec
		}
	}
	h.t.Fatalf("execution %s never settled", id)
	return nil
}

func TestStartIdempotentAndGet(t *testing.T) {
	h := newHarness(t)
	st, hdr, rec := h.do("POST", "/v1/executions?wait=60s", `{"workflow": "hello", "input": {"name": "Ada"}, "id": "h1", "labels": {"customer": "acme"}}`)
	if st != 201 || hdr.Get("Location") != "/v1/executions/h1" {
		t.Fatalf("start: %d %v %v", st, hdr, rec)
	}
	if rec["state"] != "COMPLETED" || rec["output"] != "hello Ada" || rec["started_by"] != "local" || rec["root_id"] != "h1" {
		t.Errorf("record after ?wait: %v", rec)
	}
	if l, _ := rec["labels"].(map[string]any); l["customer"] != "acme" {
		t.Errorf("labels: %v", rec["labels"])
	}
	// The same start again (other spelling of the same input) is 200.
	st, _, rec = h.do("POST", "/v1/executions", `{"id": "h1", "workflow": "hello", "input": {"name":"Ada"}}`)
	if st != 200 || rec["state"] != "COMPLETED" {
		t.Errorf("repeated start: %d %v", st, rec)
	}
	st, _, rec = h.do("POST", "/v1/executions", `{"id": "h1", "workflow": "hello", "input": {"name": "Bob"}}`)
	wantError(t, "start with another input", st, rec, 409, "execution_exists")
	st, _, rec = h.do("GET", "/v1/executions/h1", "")
	if st != 200 || rec["id"] != "h1" || rec["last_seq"].(float64) < 2 {
		t.Errorf("get: %d %v", st, rec)
	}
	st, _, rec = h.do("GET", "/v1/executions/h1/events", "")
	evs, _ := rec["events"].([]any)
	if st != 200 || len(evs) < 2 || rec["has_more"] != false {
		t.Errorf("events: %d %v", st, rec)
	}
	st, _, rec = h.do("GET", "/v1/executions/h1/events?after=1&limit=1", "")
	evs, _ = rec["events"].([]any)
	if st != 200 || len(evs) != 1 || evs[0].(map[string]any)["seq"].(float64) != 2 {
		t.Errorf("events after 1 limit 1: %d %v", st, rec)
	}
	st, _, rec = h.do("GET", "/v1/executions/h1/definition", "")
	if st != 200 || rec["hash"] == "" || !strings.Contains(rec["yaml"].(string), "hello") {
		t.Errorf("definition: %d %v", st, rec)
	}
}

func TestErrors(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		method, path, body string
		hdr                []string
		status             int
		code               string
	}{
		{"GET", "/v1/executions/nope", "", nil, 404, "not_found"},
		{"GET", "/v1/nothing-here", "", nil, 404, "not_found"},
		{"GET", "/v1/executions?stat=RUNNING", "", nil, 400, "bad_request"},
		{"GET", "/v1/executions?cursor=zzz", "", nil, 400, "bad_cursor"},
		{"GET", "/v1/executions/x?wait=soon", "", nil, 400, "bad_request"},
		{"POST", "/v1/executions", `{"workflow": "nope"}`, nil, 404, "not_found"},
		{"POST", "/v1/executions", `{"workflow": "hello", "input": {}}`, nil, 400, "invalid_input"},
		{"POST", "/v1/executions", `{"workflow": "hello", "input": {"name": "x"}, "extra": 1}`, nil, 400, "bad_request"},
		{"POST", "/v1/executions", `{"workflow": `, nil, 400, "bad_request"},
		// An id the CLI and the journal refuse is refused here too.
		{"POST", "/v1/executions", `{"workflow": "hello", "input": {"name": "x"}, "id": "a@b"}`, nil, 400, "bad_request"},
		{"POST", "/v1/executions", `{"workflow": "hello", "input": {"name": "x"}, "labels": {"Bad Key": "v"}}`, nil, 400, "bad_request"},
		{"POST", "/v1/executions", `{"workflow": "hello", "input": {"name": "` + strings.Repeat("x", 5<<20) + `"}}`, nil, 413, "limit_exceeded"},
		{"POST", "/v1/executions", `{"workflow": "hello"}`, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type"},
		{"POST", "/v1/executions", `{"workflow": "hello"}`, []string{"Origin", "http://evil.example"}, 403, "csrf"},
		{"GET", "/v1/executions", "", []string{"Host", "evil.example"}, 403, "forbidden"},
		{"POST", "/v1/executions/nope/resume", `{}`, nil, 404, "not_found"},
		{"POST", "/v1/executions/nope/cancel", ``, nil, 404, "not_found"},
		{"GET", "/v1/workflows/nope", "", nil, 404, "not_found"},
	} {
		st, _, body := h.do(tc.method, tc.path, tc.body, tc.hdr...)
		wantError(t, tc.method+" "+tc.path+" "+strings.Join(tc.hdr, " "), st, body, tc.status, tc.code)
	}
}

func TestPauseResumeOverHTTP(t *testing.T) {
	h := newHarness(t)
	st, _, rec := h.do("POST", "/v1/executions?wait=60s", `{"workflow": "approval", "id": "p1"}`)
	if st != 201 || rec["state"] != "PAUSED" {
		t.Fatalf("start: %d %v", st, rec)
	}
	if w, _ := rec["waiting_on"].([]any); len(w) != 1 || w[0].(map[string]any)["kind"] != "pause" {
		t.Errorf("waiting_on: %v", rec["waiting_on"])
	}
	st, _, rec = h.do("POST", "/v1/executions/p1/resume", `{"payload": {"approved": "yes"}}`)
	wantError(t, "bad payload", st, rec, 400, "invalid_payload")
	st, _, rec = h.do("POST", "/v1/executions/p1/resume", `{"payload": {"approved": true}}`)
	if ps, _ := rec["pauses"].([]any); st != 200 || rec["state"] == "PAUSED" || len(ps) != 0 {
		t.Errorf("resume answer: %d %v", st, rec)
	}
	st, _, rec = h.do("GET", "/v1/executions/p1?wait=60s&until=finished", "")
	if st != 200 || rec["state"] != "COMPLETED" {
		t.Fatalf("resume: %d %v", st, rec)
	}
	if out, _ := rec["output"].(map[string]any); out["approved"] != true {
		t.Errorf("output: %v", rec["output"])
	}
	st, _, rec = h.do("POST", "/v1/executions/p1/resume", `{"payload": {"approved": true}}`)
	wantError(t, "resume a finished execution", st, rec, 409, "not_paused")
	st, _, rec = h.do("POST", "/v1/executions/p1/resume", `{}`)
	if st != 200 || rec["state"] != "COMPLETED" {
		t.Errorf("resume without payload of a finished one: %d %v", st, rec)
	}
	st, _, rec = h.do("POST", "/v1/executions/p1/cancel", ``)
	wantError(t, "cancel a finished execution", st, rec, 409, "finished")
}

func TestTimerFiresWithNoClientCall(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		workflow string
		sleep    time.Duration
	}{
		// Waited out in place by the drive that set it (≤ 5 s).
		{"nap", 2 * time.Second},
		// WAITING with its slot freed; the dispatcher claims it when due.
		{"longnap", 30 * time.Second},
	} {
		id := tc.workflow + "-1"
		sub, done := h.srv.hub.subscribe(id)
		st, _, rec := h.do("POST", "/v1/executions", `{"workflow": "`+tc.workflow+`", "id": "`+id+`"}`)
		if st != 201 {
			t.Fatalf("%s: %d %v", id, st, rec)
		}
		for !h.hasEvent(id, journal.TimerSet) {
			<-sub
		}
		done()
		if tc.sleep > 5*time.Second {
			if rec := h.settle(id); rec["state"] != "WAITING" {
				t.Fatalf("%s before its time: %v", id, rec)
			}
		}
		h.clock.Advance(tc.sleep + time.Second)
		st, _, rec = h.do("GET", "/v1/executions/"+id+"?wait=60s&until=finished", "")
		if st != 200 || rec["state"] != "COMPLETED" {
			t.Fatalf("%s after its time: %d %v", id, st, rec)
		}
	}
}

// hasEvent reports whether execution id has journaled an event of kind.
func (h *harness) hasEvent(id string, kind journal.EventKind) bool {
	evs, err := h.j.Events(context.Background(), id, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Kind == kind {
			return true
		}
	}
	return false
}

func TestCancelRunningRunsCompensations(t *testing.T) {
	h := newHarness(t)
	st, _, rec := h.do("POST", "/v1/executions", `{"workflow": "saga", "id": "s1"}`)
	if st != 201 {
		t.Fatalf("start: %d %v", st, rec)
	}
	if got := <-h.records; got != "a" {
		t.Fatalf("record saw %q", got)
	}
	<-h.blocked // b is in flight
	st, _, rec = h.do("POST", "/v1/executions/s1/cancel", ``)
	if st != 202 || rec["cancel_requested"] != true {
		t.Fatalf("cancel: %d %v", st, rec)
	}
	// The compensation holds the execution in its cancel until the test
	// lets it end.
	if got := <-h.undone; got != "undo-a" {
		t.Fatalf("compensation: undo saw %q", got)
	}
	st, _, rec = h.do("POST", "/v1/executions/s1/resume", `{"payload": 1}`)
	wantError(t, "resume while cancelling", st, rec, 409, "cancelling")
	close(h.undo)
	rec = h.settle("s1")
	if rec["state"] != "CANCELLED" {
		t.Fatalf("after cancel: %v", rec)
	}
	st, _, rec = h.do("POST", "/v1/executions/s1/cancel", ``)
	if st != 200 || rec["state"] != "CANCELLED" {
		t.Errorf("repeated cancel: %d %v", st, rec)
	}
}

func TestSSEStreamsLive(t *testing.T) {
	h := newHarness(t)
	st, _, _ := h.do("POST", "/v1/executions?wait=60s", `{"workflow": "approval", "id": "e1"}`)
	if st != 201 {
		t.Fatal(st)
	}
	req, _ := http.NewRequest("GET", h.http.URL+"/v1/executions/e1/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("X-Accel-Buffering") != "no" {
		t.Errorf("headers: %v", resp.Header)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var lines []string
	next := func() string {
		for sc.Scan() {
			if l := sc.Text(); l != "" {
				lines = append(lines, l)
				return l
			}
		}
		t.Fatalf("stream ended: %v", lines)
		return ""
	}
	if l := next(); l != "retry: 2000" {
		t.Fatalf("first line %q", l)
	}
	if l := next(); l != "id: 1" {
		t.Fatalf("want id: 1, got %q", l)
	}
	next() // data of the pause.opened
	// Resume: the stream sends the new events live, then end.
	go h.do("POST", "/v1/executions/e1/resume", `{"payload": {"approved": true}}`)
	var seen []string
	for {
		l := next()
		seen = append(seen, l)
		if l == "event: end" {
			data := next()
			if !strings.Contains(data, `"state":"COMPLETED"`) {
				t.Errorf("end event: %s", data)
			}
			break
		}
	}
	if !strings.Contains(strings.Join(seen, "\n"), "id: 2") {
		t.Errorf("stream: %v", seen)
	}
}

func TestListPagination(t *testing.T) {
	h := newHarness(t)
	for _, id := range []string{"a1", "a2", "a3", "b1"} {
		h.clock.Advance(time.Millisecond) // distinct created_at
		st, _, rec := h.do("POST", "/v1/executions?wait=60s", `{"workflow": "hello", "input": {"name": "x"}, "id": "`+id+`", "labels": {"k": "`+id[:1]+`"}}`)
		if st != 201 {
			t.Fatalf("start %s: %d %v", id, st, rec)
		}
	}
	var got []string
	path := "/v1/executions?label=k:a&limit=2"
	for page := 0; ; page++ {
		st, _, body := h.do("GET", path, "")
		if st != 200 {
			t.Fatalf("list: %d %v", st, body)
		}
		for _, e := range body["executions"].([]any) {
			got = append(got, e.(map[string]any)["id"].(string))
		}
		c, ok := body["next_cursor"].(string)
		if !ok {
			break
		}
		if page > 3 {
			t.Fatal("too many pages")
		}
		path = "/v1/executions?label=k:a&limit=2&cursor=" + c
		// A cursor with another filter is refused.
		st, _, body = h.do("GET", "/v1/executions?limit=2&cursor="+c, "")
		wantError(t, "cursor of another filter", st, body, 400, "bad_cursor")
	}
	if strings.Join(got, ",") != "a3,a2,a1" {
		t.Errorf("pages = %v", got)
	}
}

func TestTokens(t *testing.T) {
	dir := t.TempDir()
	readTok, readLine, _ := NewToken("viewer", "read")
	opTok, opLine, _ := NewToken("ops", "operate")
	path := filepath.Join(dir, "tokens")
	if err := writeFile(path, "# tokens\n"+readLine+"\n"+opLine+"\n"); err != nil {
		t.Fatal(err)
	}
	toks, err := LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *Config) { c.Tokens = toks })
	st, _, body := h.do("GET", "/v1/executions", "")
	wantError(t, "no token", st, body, 401, "unauthenticated")
	st, _, body = h.do("GET", "/v1/executions", "", "Authorization", "Bearer nope")
	wantError(t, "bad token", st, body, 401, "unauthenticated")
	st, _, body = h.do("POST", "/v1/executions?wait=60s", `{"workflow": "approval", "id": "t1"}`, "Authorization", "Bearer "+readTok)
	wantError(t, "read token starts", st, body, 403, "forbidden")
	st, _, body = h.do("POST", "/v1/executions?wait=60s", `{"workflow": "approval", "id": "t1"}`, "Authorization", "Bearer "+opTok)
	if st != 201 || body["started_by"] != "ops" {
		t.Fatalf("operate token starts: %d %v", st, body)
	}
	st, _, body = h.do("POST", "/v1/executions/t1/resume", `{"payload": {"approved": true}}`, "Authorization", "Bearer "+readTok)
	wantError(t, "read token resumes", st, body, 403, "forbidden")
	if st, _, body = h.do("GET", "/v1/executions/t1", "", "Authorization", "Bearer "+readTok); st != 200 {
		t.Errorf("read token reads: %d %v", st, body)
	}
	st, _, body = h.do("GET", "/metrics", "")
	wantError(t, "/metrics without a token", st, body, 401, "unauthenticated")
	if st, _, _ = h.do("GET", "/healthz", ""); st != 200 {
		t.Errorf("healthz needs no token: %d", st)
	}
	// A token removed from the file stops working after a reload.
	if err := writeFile(path, opLine+"\n"); err != nil {
		t.Fatal(err)
	}
	if err := toks.Reload(); err != nil {
		t.Fatal(err)
	}
	st, _, body = h.do("GET", "/v1/executions", "", "Authorization", "Bearer "+readTok)
	wantError(t, "removed token", st, body, 401, "unauthenticated")
}

func TestTokenFileErrors(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"a read\n", "tokens:1: want NAME ROLE SHA256-HEX, got 2 fields"},
		{"a admin " + strings.Repeat("a", 64) + "\n", `tokens:1: unknown role "admin" (read, start or operate)`},
		{"\n# c\na read " + strings.Repeat("A", 64) + "\n", "tokens:3: the hash must be 64 lowercase hex digits, as sha256sum prints it"},
		{"a read " + strings.Repeat("a", 64) + "\na start " + strings.Repeat("b", 64) + "\n", `tokens:2: token name "a" appears twice`},
	} {
		_, err := parseTokens(strings.NewReader(tc.file), "tokens")
		if err == nil || err.Error() != tc.want {
			t.Errorf("parseTokens(%q) = %v, want %s", tc.file, err, tc.want)
		}
	}
}

func TestHealthAndWorkflows(t *testing.T) {
	h := newHarness(t)
	// Ready once its first heartbeat is in the journal: then GET
	// /v1/workers lists it.
	untilReady(t, h)
	if st, _, body := h.do("GET", "/v1/workers", ""); st != 200 || len(body["workers"].([]any)) != 1 {
		t.Errorf("workers of a ready process: %d %v", st, body)
	}
	st, _, body := h.do("GET", "/v1/workflows", "")
	if st != 200 || len(body["workflows"].([]any)) != len(h.srv.cfg.Catalog.Names()) {
		t.Errorf("workflows: %d %v", st, body)
	}
	st, _, body = h.do("GET", "/v1/workflows/hello", "")
	if st != 200 || body["name"] != "hello" || body["yaml"] == "" {
		t.Errorf("workflow: %d %v", st, body)
	}
	h.srv.draining.Store(true)
	if st, _, _ := h.do("GET", "/readyz", ""); st != 503 {
		t.Errorf("readyz while draining: %d", st)
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }

func TestMetrics(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Version = "v9.9.9" })
	if st, _, rec := h.do("POST", "/v1/executions?wait=60s&until=finished", `{"workflow": "hello", "input": {"name": "x"}, "id": "m1"}`); st != 201 {
		t.Fatalf("start: %d %v", st, rec)
	}
	h.srv.driveGroup.Wait() // the drive counts its outcome after its last commit
	resp, err := http.Get(h.http.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(b)
	for _, want := range []string{
		`loom_executions_started_total{workflow="hello"} 1`,
		`loom_executions_started_total{workflow="saga"} 0`,
		`loom_executions_finished_total{state="COMPLETED",workflow="hello"} 1`,
		`loom_claims_total{reason="start"} 1`,
		`loom_concurrency_limit 4`,
		`loom_http_requests_total{code="201",route="POST /v1/executions"} 1`,
		`loom_build_info{version="v9.9.9"} 1`,
		`loom_streams_open 0`,
		`loom_crash_loops_total 0`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(text, "m1") {
		t.Errorf("/metrics shows an execution id")
	}
}

// metricsText reads /metrics.
func (h *harness) metricsText() string {
	h.t.Helper()
	st, _, b := h.raw("GET", "/metrics", "")
	if st != 200 {
		h.t.Fatalf("/metrics: %d %s", st, b)
	}
	return string(b)
}

// wantMetrics checks that text has each line of want (a metric and its
// value) and, for each prefix in positive, a line with a value above 0.
func wantMetrics(t *testing.T, text string, want []string, positive ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w+"\n") {
			t.Errorf("/metrics lacks %s", w)
		}
	}
	for _, p := range positive {
		found := false
		for _, line := range strings.Split(text, "\n") {
			if v, ok := strings.CutPrefix(line, p+" "); ok && v != "0" {
				found = true
			}
		}
		if !found {
			t.Errorf("/metrics has no %s above 0", p)
		}
	}
}

// TestStepAndTaskMetrics: a workflow started over HTTP counts its steps
// and task attempts by outcome (a retried task's failure too) and the
// journal's commits; the drive after a resume counts none of the steps it
// replays.
func TestStepAndTaskMetrics(t *testing.T) {
	h := newHarness(t)
	if st, _, rec := h.do("POST", "/v1/executions?wait=60s&until=finished", `{"workflow": "flaky", "id": "f1"}`); st != 201 || rec["state"] != "COMPLETED" {
		t.Fatalf("start: %d %v", st, rec)
	}
	if st, _, rec := h.do("POST", "/v1/executions", `{"workflow": "gated", "id": "g1"}`); st != 201 {
		t.Fatalf("start: %d %v", st, rec)
	}
	h.settle("g1")
	if st, _, rec := h.do("POST", "/v1/executions/g1/resume?wait=60s&until=finished", `{"payload": 1}`); st != 200 || rec["state"] != "COMPLETED" {
		t.Fatalf("resume: %d %v", st, rec)
	}
	h.srv.driveGroup.Wait()
	wantMetrics(t, h.metricsText(), []string{
		`loom_task_attempts_total{outcome="error",task="fails_once"} 1`,
		`loom_task_attempts_total{outcome="ok",task="fails_once"} 1`,
		`loom_task_attempts_total{outcome="ok",task="echo"} 2`,
		`loom_task_duration_seconds_count{outcome="error",task="fails_once"} 1`,
		`loom_task_duration_seconds_count{outcome="ok",task="echo"} 2`,
		`loom_step_duration_seconds_count{kind="task",workflow="flaky"} 2`,
		`loom_step_duration_seconds_count{kind="set",workflow="flaky"} 1`,
		// The pause paused in the first drive and was replayed in the second.
		`loom_step_duration_seconds_count{kind="task",workflow="gated"} 1`,
		`loom_crash_loops_total 0`,
	}, "loom_journal_commit_duration_seconds_count", "loom_journal_commit_batch_size_count")
	if text := h.metricsText(); strings.Contains(text, `kind="pause"`) {
		t.Errorf("/metrics times a pause step that did not end in one drive:\n%s", text)
	}
}

// TestClusterGauges: every 15 s (on the server's clock) the process reads
// the backlog and the open pauses from the journal.
func TestClusterGauges(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Concurrency = 1 })
	<-h.gauged // the read at start-up
	if st, _, rec := h.do("POST", "/v1/executions", `{"workflow": "approval", "id": "a1"}`); st != 201 {
		t.Fatalf("start: %d %v", st, rec)
	}
	h.settle("a1")
	h.srv.driveGroup.Wait() // the slot is free again
	if st, _, rec := h.do("POST", "/v1/executions", `{"workflow": "saga", "id": "s1"}`); st != 201 {
		t.Fatalf("start: %d %v", st, rec)
	}
	<-h.blocked // saga holds the only slot
	if st, _, rec := h.do("POST", "/v1/executions", `{"workflow": "hello", "input": {"name": "x"}, "id": "waits"}`); st != 201 {
		t.Fatalf("start: %d %v", st, rec)
	}
	wantMetrics(t, h.metricsText(), []string{`loom_backlog 0`, `loom_pauses_open{workflow="approval"} 0`})
	h.clock.Advance(gaugeEvery)
	<-h.gauged
	wantMetrics(t, h.metricsText(), []string{
		`loom_backlog 1`,
		`loom_backlog_oldest_seconds 15`,
		`loom_pauses_open{workflow="approval"} 1`,
		`loom_pauses_open{workflow="hello"} 0`,
	})
}
