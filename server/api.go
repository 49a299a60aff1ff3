package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/loomwork/loom/definition"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
)

// Handler is the HTTP API (SPEC §6) with health checks, and Config.Mount
// for every other path.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.route(mux, "POST /v1/executions", roleStart, s.startExecution)
	s.route(mux, "GET /v1/executions", roleRead, s.listExecutions)
	s.route(mux, "GET /v1/executions/{id}", roleRead, s.getExecution)
	s.route(mux, "GET /v1/executions/{id}/events", roleRead, s.events)
	s.route(mux, "GET /v1/executions/{id}/definition", roleRead, s.definition)
	s.route(mux, "POST /v1/executions/{id}/resume", roleOperate, s.resumeExecution)
	s.route(mux, "POST /v1/executions/{id}/cancel", roleOperate, s.cancelExecution)
	s.route(mux, "POST /v1/executions/{id}/rerun", roleOperate, s.rerunExecution)
	s.route(mux, "GET /v1/pauses", roleRead, s.listPauses)
	s.route(mux, "GET /v1/workflows", roleRead, s.listWorkflows)
	s.route(mux, "GET /v1/workflows/{name}", roleRead, s.getWorkflow)
	s.route(mux, "GET /v1/schedules", roleRead, s.listSchedules)
	s.route(mux, "GET /v1/workers", roleRead, s.listWorkers)
	s.route(mux, "GET /v1/openapi.json", roleRead, s.openAPIDoc)
	s.route(mux, "/v1/", roleRead, func(w http.ResponseWriter, r *http.Request) error {
		return apiErr(http.StatusNotFound, "not_found", "no API route "+r.Method+" "+r.URL.Path)
	})
	s.route(mux, "GET /healthz", roleNone, func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
		return nil
	})
	s.route(mux, "GET /readyz", roleNone, func(w http.ResponseWriter, r *http.Request) error {
		ok, reason := s.readiness()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		io.WriteString(w, reason+"\n")
		return nil
	})
	mux.Handle("GET /metrics", s.guard(roleRead, s.MetricsHandler()))
	if s.cfg.Mount != nil {
		mux.Handle("/", s.cfg.Mount)
	}
	return s.logged(s.cors(mux))
}

// handlerFunc is a handler whose error is written as SPEC §6's JSON error.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) route(mux *http.ServeMux, pattern string, role role, h handlerFunc) {
	s.patterns = append(s.patterns, pattern)
	mux.Handle(pattern, s.guard(role, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
		}
		if err := h(w, r); err != nil {
			writeError(w, r, err)
		}
	})))
}

func badRequest(format string, args ...any) *Error {
	return apiErr(http.StatusBadRequest, "bad_request", fmt.Sprintf(format, args...))
}

// query checks that r has no query parameter outside allowed (a typo must
// never widen a filter) and returns them.
func query(r *http.Request, allowed ...string) (map[string][]string, error) {
	q := r.URL.Query()
	for k := range q {
		if !slices.Contains(allowed, k) {
			if len(allowed) == 0 {
				return nil, badRequest("unknown query parameter %q: this route takes none", k)
			}
			return nil, badRequest("unknown query parameter %q (this route takes %s)", k, strings.Join(allowed, ", "))
		}
	}
	return q, nil
}

// decodeBody reads a JSON request body into v, refusing unknown fields and
// anything after the value.
func decodeBody(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return apiErr(http.StatusUnsupportedMediaType, "unsupported_media_type", "the body must be JSON (Content-Type: application/json)")
		}
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return badRequest("the body is not the JSON this route takes: %v", err)
	}
	if dec.More() {
		return badRequest("the body has more after its JSON value")
	}
	return nil
}

func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// value decodes a request's JSON value into Loom's value model.
func value(raw json.RawMessage) (any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	v, err := decodeJSON(raw)
	if err != nil {
		return nil, badRequest("not JSON: %v", err)
	}
	return interpreter.Normalize(v)
}

// DefaultMaxInput is Config.MaxInput's default: 2 MiB, the CLI's.
const DefaultMaxInput = 2 << 20

// input decodes an input or resume payload (what names it in a refusal),
// refusing one past the input limit with 413 limit_exceeded.
func (s *Server) input(raw json.RawMessage, what string) (any, error) {
	if len(raw) > s.cfg.MaxInput {
		return nil, apiErr(http.StatusRequestEntityTooLarge, "limit_exceeded",
			fmt.Sprintf("the %s is larger than this server's input limit of %s; nothing was done", what, definition.FormatSize(s.cfg.MaxInput)))
	}
	return value(raw)
}

// sameJSON reports JSON equality: key order, whitespace and number
// spelling do not matter.
func sameJSON(a, b json.RawMessage) bool {
	va, err1 := value(a)
	vb, err2 := value(b)
	if err1 != nil || err2 != nil {
		return false
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return bytes.Equal(ja, jb)
}

func (s *Server) writeRecord(w http.ResponseWriter, r *http.Request, status int, rec *journal.Execution) error {
	out, err := s.record(r.Context(), rec)
	if err != nil {
		return err
	}
	writeJSON(w, status, out)
	return nil
}

var (
	labelKey = regexp.MustCompile(`^[a-z0-9_.-]{1,63}$`)
)

// checkID refuses an id the journal would refuse, with the journal's reason:
// the API and the CLI accept the same ids (journal.CheckID is the one rule).
func checkID(id string) error {
	if err := journal.CheckID(id); err != nil {
		return badRequest("id %q is not usable: %s", id, strings.TrimPrefix(err.Error(), journal.ErrInvalidID.Error()+": "))
	}
	return nil
}

type startRequest struct {
	Workflow string            `json:"workflow"`
	Input    json.RawMessage   `json:"input"`
	ID       string            `json:"id"`
	Labels   map[string]string `json:"labels"`
}

func (s *Server) startExecution(w http.ResponseWriter, r *http.Request) error {
	if _, err := query(r, "wait", "until"); err != nil {
		return err
	}
	wait, until, err := s.waitParams(r)
	if err != nil {
		return err
	}
	var req startRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.Workflow == "" {
		return badRequest("the body names no workflow (\"workflow\": NAME)")
	}
	wf := s.cfg.Catalog.Workflow(req.Workflow)
	if wf == nil {
		return apiErr(http.StatusNotFound, "not_found", fmt.Sprintf("no workflow named %q in this server's catalog", req.Workflow))
	}
	if err := checkLabels(req.Labels); err != nil {
		return err
	}
	if req.ID != "" {
		if err := checkID(req.ID); err != nil {
			return err
		}
	}
	in, err := s.input(req.Input, "input")
	if err != nil {
		return err
	}
	in, err = interpreter.CheckInput(wf, in)
	if err != nil {
		return err
	}
	if err := s.drive.RefuseWriteOnly(wf); err != nil {
		return err
	}
	ctx := r.Context()
	if req.ID != "" {
		rec, err := s.get(ctx, req.ID)
		if err == nil {
			return s.existing(w, r, rec, req, wait, until)
		}
		if !errors.Is(err, interpreter.ErrNotFound) {
			return err
		}
	} else {
		req.ID = builtins.UUID4(builtins.CryptoRandom{})
	}
	// A retried start of an existing id is answered above: only a new
	// execution waits on the backlog.
	if err := s.backlogFull(); err != nil {
		return err
	}
	rec, err := s.newRecord(wf, req.ID, in, req.Labels, actor(r))
	if err != nil {
		return err
	}
	rec.TraceParent = s.tracing.startTrace(ctx)
	// The process that accepts a start drives it if it has a free slot
	// (created and leased in one commit); otherwise any process claims it.
	select {
	case s.slots <- struct{}{}:
		if s.draining.Load() {
			<-s.slots
			if err = s.j.Create(ctx, rec); err == nil {
				s.hint() // for another process
			}
			break
		}
		var l journal.Lease
		l, err = s.j.CreateHeld(ctx, rec, s.holder, s.cfg.LeaseTTL)
		if err != nil {
			<-s.slots
			break
		}
		s.metrics.claims.WithLabelValues(string(journal.ClaimStart)).Inc()
		s.startDrive(journal.Claim{Lease: l, Reason: journal.ClaimStart})
	default:
		if err = s.j.Create(ctx, rec); err == nil {
			s.hint()
		}
	}
	if errors.Is(err, journal.ErrExists) {
		got, gerr := s.get(ctx, req.ID)
		if gerr != nil {
			return gerr
		}
		return s.existing(w, r, got, req, wait, until)
	}
	if err != nil {
		return err
	}
	s.metrics.started.WithLabelValues(req.Workflow).Inc()
	w.Header().Set("Location", "/v1/executions/"+req.ID)
	got, err := s.await(r, req.ID, wait, until)
	if err != nil {
		return err
	}
	return s.writeRecord(w, r, http.StatusCreated, got)
}

// newRecord is the record of a new root execution of wf, pinned to this
// process's catalog; in is a checked input (interpreter.CheckInput).
func (s *Server) newRecord(wf *definition.Workflow, id string, in any, labels map[string]string, startedBy string) (*journal.Execution, error) {
	src, hash, err := s.cfg.Catalog.Pin(wf.Name)
	if err != nil {
		return nil, err
	}
	input, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	return &journal.Execution{ID: id, RootID: id, Workflow: wf.Name, Version: wf.Version,
		State: journal.Running, Input: input, Definition: src, DefinitionHash: hash,
		Labels: labels, StartedBy: startedBy}, nil
}

// existing answers a start whose id is taken: 200 with the record if it is
// the same start, else 409.
func (s *Server) existing(w http.ResponseWriter, r *http.Request, rec *journal.Execution, req startRequest, wait time.Duration, until string) error {
	in := req.Input
	if len(in) == 0 {
		in = json.RawMessage("null")
	}
	if rec.Workflow != req.Workflow || rec.ParentID != "" || !sameJSON(jsonOrNull(rec.Input), in) {
		return apiErr(http.StatusConflict, "execution_exists",
			fmt.Sprintf("execution %s exists with another workflow or input; nothing was written", rec.ID))
	}
	got, err := s.await(r, rec.ID, wait, until)
	if err != nil {
		return err
	}
	return s.writeRecord(w, r, http.StatusOK, got)
}

func checkLabels(l map[string]string) error {
	if len(l) > 16 {
		return apiErr(http.StatusRequestEntityTooLarge, "limit_exceeded", fmt.Sprintf("%d labels: at most 16", len(l)))
	}
	for k, v := range l {
		if !labelKey.MatchString(k) {
			return badRequest("label key %q is not usable: 1 to 63 of a-z, 0-9, _ . -", k)
		}
		if len([]rune(v)) > 256 {
			return apiErr(http.StatusRequestEntityTooLarge, "limit_exceeded", fmt.Sprintf("label %s: the value has %d characters, at most 256", k, len([]rune(v))))
		}
	}
	return nil
}

// waitParams reads ?wait=D&until=settled|finished; D is clamped to MaxWait.
func (s *Server) waitParams(r *http.Request) (time.Duration, string, error) {
	q := r.URL.Query()
	until := q.Get("until")
	switch until {
	case "", "settled", "finished":
	default:
		return 0, "", badRequest("until=%q: use settled or finished", until)
	}
	if until == "" {
		until = "settled"
	}
	ws := q.Get("wait")
	if ws == "" {
		return 0, until, nil
	}
	d, err := time.ParseDuration(ws)
	if err != nil || d < 0 {
		return 0, "", badRequest("wait=%q is not a Go duration such as 30s", ws)
	}
	return min(d, s.cfg.MaxWait), until, nil
}

// await reads execution id, waiting up to wait for until to hold. It wakes
// on this process's commits at once and polls for other processes'.
func (s *Server) await(r *http.Request, id string, wait time.Duration, until string) (*journal.Execution, error) {
	ctx := r.Context()
	holds := func(rec *journal.Execution) bool {
		if until == "finished" {
			return rec.State.Finished()
		}
		return rec.State != journal.Running
	}
	var sub <-chan struct{}
	if wait > 0 {
		s.metrics.streams.Inc()
		defer s.metrics.streams.Dec()
		var done func()
		sub, done = s.hub.subscribe(id)
		defer done()
	}
	deadline := s.clock.Now().Add(wait)
	for {
		rec, err := s.get(ctx, id)
		if err != nil {
			return nil, err
		}
		left := deadline.Sub(s.clock.Now())
		if wait <= 0 || holds(rec) || left <= 0 {
			return rec, nil
		}
		tc, stop := s.timer(min(left, watchPoll))
		select {
		case <-sub:
		case <-tc:
		case <-ctx.Done():
			stop()
			return rec, nil
		}
		stop()
	}
}

func (s *Server) getExecution(w http.ResponseWriter, r *http.Request) error {
	if _, err := query(r, "wait", "until"); err != nil {
		return err
	}
	wait, until, err := s.waitParams(r)
	if err != nil {
		return err
	}
	rec, err := s.await(r, r.PathValue("id"), wait, until)
	if err != nil {
		return err
	}
	return s.writeRecord(w, r, http.StatusOK, rec)
}

// cursor is the opaque position of a list page: the last row's
// (created_at, id) and a digest of the filter it belongs to.
type cursor struct {
	CreatedAt time.Time `json:"c"`
	ID        string    `json:"i"`
	Filter    string    `json:"f"`
}

// listSpec is a parsed GET /v1/executions: the journal's filter, the
// filters the journal does not know (id prefix, created range), the page
// size and the cursor.
type listSpec struct {
	f             journal.Filter
	prefix        string
	after, before time.Time
	limit         int
	digest        string
	from          *cursor
}

func parseList(r *http.Request) (*listSpec, error) {
	q, err := query(r, "state", "workflow", "parent_id", "roots", "id_prefix", "label", "created_after", "created_before", "limit", "cursor")
	if err != nil {
		return nil, err
	}
	ls := &listSpec{f: journal.Filter{Workflow: first(q["workflow"]), ParentID: first(q["parent_id"])}, limit: 50,
		prefix: first(q["id_prefix"]), digest: filterDigest(q)}
	f := &ls.f
	if st := first(q["state"]); st != "" {
		f.State = journal.State(strings.ToUpper(st))
		if !slices.Contains([]journal.State{journal.Running, journal.Paused, journal.Waiting, journal.Completed, journal.Failed, journal.Cancelled}, f.State) {
			return nil, badRequest("state=%q: use RUNNING, PAUSED, WAITING, COMPLETED, FAILED or CANCELLED", st)
		}
	}
	switch rs := first(q["roots"]); rs {
	case "", "false":
	case "true":
		f.RootsOnly = true
	default:
		return nil, badRequest("roots=%q: use true or false", rs)
	}
	for _, l := range q["label"] {
		k, v, ok := strings.Cut(l, ":")
		if !ok || !labelKey.MatchString(k) {
			return nil, badRequest("label=%q: use KEY:VALUE", l)
		}
		if f.Labels == nil {
			f.Labels = map[string]string{}
		}
		f.Labels[k] = v
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"created_after", &ls.after}, {"created_before", &ls.before}} {
		if v := first(q[p.name]); v != "" {
			if *p.dst, err = time.Parse(time.RFC3339Nano, v); err != nil {
				return nil, badRequest("%s=%q is not an RFC 3339 time", p.name, v)
			}
		}
	}
	if v := first(q["limit"]); v != "" {
		if ls.limit, err = strconv.Atoi(v); err != nil || ls.limit < 1 {
			return nil, badRequest("limit=%q: use a number from 1 to 500", v)
		}
		ls.limit = min(ls.limit, 500)
	}
	if c := first(q["cursor"]); c != "" {
		ls.from = &cursor{}
		raw, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil || json.Unmarshal(raw, ls.from) != nil {
			return nil, apiErr(http.StatusBadRequest, "bad_cursor", "the cursor is not one this server made")
		}
		if ls.from.Filter != ls.digest {
			return nil, apiErr(http.StatusBadRequest, "bad_cursor", "the cursor belongs to another filter; list again from the first page")
		}
	}
	return ls, nil
}

// matches reports whether rec is one the list selects, wherever it sits
// in the list's order.
func (ls *listSpec) matches(rec *journal.Execution) bool {
	f := &ls.f
	switch {
	case f.State != "" && rec.State != f.State,
		f.Workflow != "" && rec.Workflow != f.Workflow,
		f.ParentID != "" && rec.ParentID != f.ParentID,
		f.RootsOnly && rec.ParentID != "",
		!strings.HasPrefix(rec.ID, ls.prefix),
		!ls.after.IsZero() && !rec.CreatedAt.After(ls.after),
		!ls.before.IsZero() && !rec.CreatedAt.Before(ls.before):
		return false
	}
	for k, v := range f.Labels {
		if got, ok := rec.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// page reads one page of the list: its records and the cursor of the
// next page (nil on the last). The journal pages (Filter.Limit and
// After), so a page reads about limit records whatever the journal's
// size; the filters the journal does not know (id prefix, created range)
// are applied here, reading further batches only while they leave the
// page short.
// page reads one page of the list. Records the journal cannot read are
// left out and returned in damaged (as loom list shows the readable ones
// and then names the damaged), not a refusal of the whole page.
func (s *Server) page(ctx context.Context, ls *listSpec) (out []*journal.Execution, next *string, damaged []*journal.DamagedError, err error) {
	f := ls.f
	f.Limit = ls.limit + 1
	if ls.prefix != "" || !ls.after.IsZero() || !ls.before.IsZero() {
		f.Limit = max(f.Limit, 500)
	}
	if ls.from != nil {
		f.After = journal.CursorAt(&journal.Execution{CreatedAt: ls.from.CreatedAt, ID: ls.from.ID})
	}
	seen := map[string]bool{}
	for {
		recs, err := s.j.List(ctx, f)
		var rows *journal.DamagedRowsError
		if errors.As(err, &rows) {
			for _, d := range rows.Rows {
				if !seen[d.ID] { // a later page may read it again
					seen[d.ID] = true
					damaged = append(damaged, d)
				}
			}
		} else if err != nil {
			return nil, nil, nil, err
		}
		for _, rec := range recs {
			if !ls.after.IsZero() && !rec.CreatedAt.After(ls.after) {
				return out, nil, damaged, nil // newest first: every later record is older still
			}
			if !ls.matches(rec) {
				continue
			}
			if len(out) == ls.limit {
				last := out[len(out)-1]
				b, _ := json.Marshal(cursor{CreatedAt: last.CreatedAt, ID: last.ID, Filter: ls.digest})
				c := base64.RawURLEncoding.EncodeToString(b)
				return out, &c, damaged, nil
			}
			out = append(out, rec)
		}
		if (rows != nil && len(recs) == 0) || len(recs)+rowsOf(rows) < f.Limit {
			return out, nil, damaged, nil
		}
		f.After = journal.CursorAt(recs[len(recs)-1])
	}
}

// rowsOf counts the rows a List skipped as damaged.
func rowsOf(e *journal.DamagedRowsError) int {
	if e == nil {
		return 0
	}
	return len(e.Rows)
}

// DamagedRow is a record the journal could not read, in a list's damaged.
type DamagedRow struct {
	ID      string `json:"id"`
	Problem string `json:"problem"`
}

func (s *Server) listExecutions(w http.ResponseWriter, r *http.Request) error {
	ls, err := parseList(r)
	if err != nil {
		return err
	}
	if wantsStream(r) {
		return s.streamList(w, r, ls)
	}
	recs, next, damaged, err := s.page(r.Context(), ls)
	if err != nil {
		return err
	}
	out := []*Record{}
	for _, rec := range recs {
		rr, err := s.record(r.Context(), rec)
		if err != nil {
			return err
		}
		out = append(out, rr)
	}
	dr := []DamagedRow{}
	for _, d := range damaged {
		dr = append(dr, DamagedRow{ID: d.ID, Problem: d.Problem})
	}
	writeJSON(w, http.StatusOK, map[string]any{"executions": out, "next_cursor": next, "damaged": dr})
	return nil
}

func filterDigest(q map[string][]string) string {
	h := sha256.New()
	for _, k := range []string{"state", "workflow", "parent_id", "roots", "id_prefix", "label", "created_after", "created_before"} {
		vs := slices.Clone(q[k])
		slices.Sort(vs)
		fmt.Fprintf(h, "%s=%q;", k, vs)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r, "after", "limit")
	if err != nil {
		return err
	}
	var after int64
	if v := first(q["after"]); v != "" {
		if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			return badRequest("after=%q: use an event seq", v)
		}
	}
	limit := 1000
	if v := first(q["limit"]); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 {
			return badRequest("limit=%q: use a number from 1 to 10000", v)
		}
		limit = min(limit, 10000)
	}
	id := r.PathValue("id")
	if wantsStream(r) {
		return s.streamEvents(w, r, id, after)
	}
	evs, err := s.j.Events(r.Context(), id, after)
	if err != nil {
		return err
	}
	more := len(evs) > limit
	if more {
		evs = evs[:limit]
	}
	if evs == nil {
		evs = []journal.Event{} // "events": [], not null
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": evs, "has_more": more})
	return nil
}

type resumeRequest struct {
	Pause   string          `json:"pause"`
	Payload json.RawMessage `json:"payload"`
}

// resumeBusyWait is how long a resume waits for a held execution's lease
// before it answers 409 busy.
const resumeBusyWait = 5 * time.Second

func (s *Server) resumeExecution(w http.ResponseWriter, r *http.Request) error {
	if _, err := query(r, "wait", "until"); err != nil {
		return err
	}
	wait, until, err := s.waitParams(r)
	if err != nil {
		return err
	}
	var req resumeRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	id := r.PathValue("id")
	ctx := r.Context()
	key, err := idempotencyKey(r)
	if err != nil {
		return err
	}
	rec, err := s.get(ctx, id)
	if err != nil {
		return err
	}
	payload, err := s.input(req.Payload, "payload")
	if err != nil {
		return err
	}
	deliver := len(req.Payload) > 0 || req.Pause != ""
	if deliver && key != "" {
		// A repeat of the resume that won: the current record, not 409.
		if won, err := s.resumedWith(ctx, id, key); err != nil || won {
			return s.repeatedResume(w, r, id, wait, until, err)
		}
	}
	root := rec
	if rec.RootID != rec.ID {
		if root, err = s.get(ctx, rec.RootID); err != nil {
			return err
		}
	}
	switch {
	case root.CancelRequested && !root.State.Finished():
		return apiErr(http.StatusConflict, "cancelling", fmt.Sprintf("execution %s is being cancelled; nothing was delivered", id))
	case rec.State.Finished() && deliver:
		return fmt.Errorf("%w: execution %s is %s", interpreter.ErrNotPaused, id, rec.State) // the engine's words
	case !deliver && rec.State != journal.Paused:
		// The service drives it already, or it is finished: report it.
		got, err := s.await(r, id, wait, until)
		if err != nil {
			return err
		}
		return s.writeRecord(w, r, http.StatusOK, got)
	}
	// The resume runs on its own goroutine under the process's work
	// context: the answer comes once the payload is committed, and the
	// drive goes on after it.
	targets := []string{id}
	var ps []interpreter.Pause
	_ = json.Unmarshal(rec.Pauses, &ps)
	for _, p := range ps {
		if p.ExecutionID != "" {
			targets = append(targets, p.ExecutionID)
		}
	}
	sub, unsub := s.hub.subscribe(targets...)
	defer unsub()
	type result struct{ err error }
	done := make(chan result, 1)
	dctx, cancel := context.WithCancel(s.workCtx)
	d := &driveState{root: rec.RootID, cancel: cancel}
	s.mu.Lock()
	s.drives[d] = struct{}{}
	s.mu.Unlock()
	s.driveGroup.Add(1)
	go func() {
		defer func() {
			cancel()
			s.mu.Lock()
			delete(s.drives, d)
			s.mu.Unlock()
			s.driveGroup.Done()
			s.wake()
		}()
		give := s.clock.Now().Add(resumeBusyWait)
		dctx, endSpan := s.tracing.driveSpan(trace.ContextWithSpanContext(dctx, trace.SpanContextFromContext(ctx)), rec, root)
		var err error
		defer func() { endSpan(err) }()
		for {
			_, err = s.resume.ResumePause(dctx, id, req.Pause, payload, interpreter.By(actor(r)), interpreter.WithResumeKey(key))
			if errors.Is(err, journal.ErrBusy) && s.clock.Now().Before(give) {
				tc, stop := s.timer(100 * time.Millisecond)
				select {
				case <-tc:
					continue
				case <-dctx.Done():
					stop()
				}
			}
			done <- result{err}
			return
		}
	}()
	select {
	case res := <-done:
		if res.err != nil && key != "" && errors.Is(res.err, interpreter.ErrNotPaused) {
			// The same resume, sent twice at once: the other one won.
			if won, err := s.resumedWith(ctx, id, key); err != nil || won {
				return s.repeatedResume(w, r, id, wait, until, err)
			}
		}
		if res.err != nil {
			if errors.Is(res.err, interpreter.ErrInvalidInput) {
				return &payloadError{res.err}
			}
			return res.err
		}
	case <-sub:
	case <-ctx.Done():
		return ctx.Err()
	}
	got, err := s.await(r, id, wait, until)
	if err != nil {
		return err
	}
	return s.writeRecord(w, r, http.StatusOK, got)
}

func (s *Server) cancelExecution(w http.ResponseWriter, r *http.Request) error {
	if _, err := query(r); err != nil {
		return err
	}
	if err := decodeBody(r, &struct{}{}); err != nil {
		return err
	}
	id := r.PathValue("id")
	ctx := r.Context()
	rec, err := s.get(ctx, id)
	if err != nil {
		return err
	}
	if rec.RootID != rec.ID {
		return &journal.NotRootError{ID: id, RootID: rec.RootID}
	}
	switch rec.State {
	case journal.Cancelled:
		return s.writeRecord(w, r, http.StatusOK, rec)
	case journal.Completed, journal.Failed:
		return fmt.Errorf("%w: execution %s is already %s", interpreter.ErrFinished, id, rec.State)
	}
	if rec, err = s.j.RequestCancel(ctx, id, actor(r)); err != nil {
		return err
	}
	s.stopDrives(id)
	s.hint() // the holder, or the next claimer, carries it out
	status := http.StatusAccepted
	if rec.State == journal.Cancelled {
		status = http.StatusOK
	}
	return s.writeRecord(w, r, status, rec)
}

func (s *Server) definition(w http.ResponseWriter, r *http.Request) error {
	if _, err := query(r); err != nil {
		return err
	}
	rec, err := s.get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	root := rec
	if rec.RootID != rec.ID {
		if root, err = s.get(r.Context(), rec.RootID); err != nil {
			return err
		}
	}
	out := map[string]any{"workflow": rec.Workflow, "hash": root.DefinitionHash, "yaml": string(root.Definition)}
	// The graph of the pinned definition, not the catalog's current one.
	if cat, err := definition.Parse("pinned.yaml", root.Definition); err == nil && cat.Workflow(rec.Workflow) != nil {
		out["graph"] = cat.Workflow(rec.Workflow).Graph()
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// workflowJSON describes one workflow of the catalog.
func (s *Server) workflowJSON(name string, full bool) map[string]any {
	wf := s.cfg.Catalog.Workflow(name)
	out := map[string]any{"name": wf.Name, "version": wf.Version, "description": wf.Description, "input_schema": wf.Input}
	if full {
		out["graph"] = wf.Graph()
		if src, hash, err := s.cfg.Catalog.Pin(name); err == nil {
			out["yaml"], out["hash"] = string(src), hash
		}
	}
	return out
}

func (s *Server) listWorkflows(w http.ResponseWriter, r *http.Request) error {
	if _, err := query(r); err != nil {
		return err
	}
	out := []map[string]any{}
	for _, n := range s.cfg.Catalog.Names() {
		out = append(out, s.workflowJSON(n, false))
	}
	writeJSON(w, http.StatusOK, map[string]any{"workflows": out})
	return nil
}

func (s *Server) getWorkflow(w http.ResponseWriter, r *http.Request) error {
	if _, err := query(r); err != nil {
		return err
	}
	name := r.PathValue("name")
	if s.cfg.Catalog.Workflow(name) == nil {
		return apiErr(http.StatusNotFound, "not_found", fmt.Sprintf("no workflow named %q in this server's catalog", name))
	}
	writeJSON(w, http.StatusOK, s.workflowJSON(name, true))
	return nil
}

// get reads an execution's record; an unknown id is refused as the engine
// refuses it, so the API and the CLI say the same.
func (s *Server) get(ctx context.Context, id string) (*journal.Execution, error) {
	rec, err := s.j.Get(ctx, id)
	if errors.Is(err, journal.ErrNotFound) {
		return nil, fmt.Errorf("%w: no execution with id %q", interpreter.ErrNotFound, id)
	}
	return rec, err
}
