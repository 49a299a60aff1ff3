package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
)

// Record is the API's execution record: SPEC §5's --json record plus the
// service's fields (SPEC §6).
type Record struct {
	ID              string              `json:"id"`
	Workflow        string              `json:"workflow"`
	Version         int                 `json:"version"`
	State           journal.State       `json:"state"`
	Input           json.RawMessage     `json:"input"`
	Output          json.RawMessage     `json:"output"`
	Error           *interpreter.Error  `json:"error"`
	Pauses          []interpreter.Pause `json:"pauses"`
	ParentID        *string             `json:"parent_id"`
	CreatedAt       time.Time           `json:"created_at"`
	UpdatedAt       time.Time           `json:"updated_at"`
	RootID          string              `json:"root_id"`
	Labels          map[string]string   `json:"labels"`
	StartedBy       string              `json:"started_by"`
	LastSeq         int64               `json:"last_seq"`
	WakeAt          *time.Time          `json:"wake_at"`
	CancelRequested bool                `json:"cancel_requested"`
	Takeovers       int                 `json:"takeovers"`
	WaitingOn       []WaitingOn         `json:"waiting_on"`
	// Holder is the process that holds an unfinished execution's root
	// lease, live or expired (null when none does, and once finished).
	Holder *Holder `json:"holder"`
}

// Holder is the process holding an execution's lease, as `loom status`
// shows it.
type Holder struct {
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Expires time.Time `json:"lease_expires"`
	// Gone: the holder was a process of the host (and PID namespace) that
	// reads the lease, and it no longer exists (interpreter.HolderGone,
	// asked by the server for an API record, so a client on another host
	// is told what the server's host knows).
	Gone bool `json:"gone"`
	// Worker: the holder is a loom serve process (LiveWorkers lists it),
	// which carries out a cancel request within 1 s; a runner at a
	// terminal (loom run, loom resume) does not look for one.
	Worker bool `json:"worker"`
}

// HolderOf is the holder of lease l (nil when l has none); workers are the
// live serve processes (LiveWorkers).
func HolderOf(l journal.Lease, workers []journal.Worker) *Holder {
	if l.Holder.Host == "" && l.Holder.PID == 0 {
		return nil
	}
	h := &Holder{Host: l.Holder.Host, PID: l.Holder.PID, Expires: l.Expires.UTC(), Gone: interpreter.HolderGone(l.Holder)}
	for _, w := range workers {
		h.Worker = h.Worker || w.ID == l.Holder.ID
	}
	return h
}

// WaitingOn is one thing an unfinished execution waits for: a kind
// (worker, running, timer, pause, child, …) and a sentence.
type WaitingOn struct {
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

// Execution converts the record to the engine's view of an execution, as
// a client (the CLI's --server mode) prints it.
func (r *Record) Execution() (*interpreter.Execution, error) {
	ex := &interpreter.Execution{ID: r.ID, Workflow: r.Workflow, Version: r.Version, State: r.State,
		Error: r.Error, Pauses: r.Pauses, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	if r.ParentID != nil {
		ex.ParentID = *r.ParentID
	}
	if r.WakeAt != nil {
		ex.WakeAt = *r.WakeAt
	}
	var err error
	if ex.Input, err = decodeValue(r.Input); err != nil {
		return nil, fmt.Errorf("execution %s: bad input: %w", r.ID, err)
	}
	if ex.Output, err = decodeValue(r.Output); err != nil {
		return nil, fmt.Errorf("execution %s: bad output: %w", r.ID, err)
	}
	for i := range ex.Pauses {
		ex.Pauses[i].Schema, _ = interpreter.Normalize(ex.Pauses[i].Schema)
	}
	if ex.Error != nil {
		ex.Error.Data, _ = interpreter.Normalize(ex.Error.Data)
	}
	return ex, nil
}

// decodeValue decodes JSON into Loom's value model (nil for absent).
func decodeValue(raw json.RawMessage) (any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	v, err := decodeJSON(raw)
	if err != nil {
		return nil, err
	}
	return interpreter.Normalize(v)
}

// record builds the API record of rec, with what it waits on.
func (s *Server) record(ctx context.Context, rec *journal.Execution) (*Record, error) {
	r := &Record{ID: rec.ID, Workflow: rec.Workflow, Version: rec.Version, State: rec.State,
		Input: jsonOrNull(rec.Input), Output: jsonOrNull(rec.Output), Pauses: []interpreter.Pause{},
		CreatedAt: rec.CreatedAt.UTC(), UpdatedAt: rec.UpdatedAt.UTC(), RootID: rec.RootID,
		Labels: rec.Labels, StartedBy: rec.StartedBy, LastSeq: rec.LastSeq,
		CancelRequested: rec.CancelRequested && !rec.State.Finished(), Takeovers: rec.Takeovers, WaitingOn: []WaitingOn{}}
	if r.Labels == nil {
		r.Labels = map[string]string{}
	}
	if bytes.Contains(rec.Definition, []byte("writeOnly")) || len(rec.Definition) == 0 && rec.Input != nil {
		// Write-only input fields are masked, as the CLI shows them.
		if in, err := decodeValue(rec.Input); err == nil && in != nil {
			if m := s.drive.MaskedInput(ctx, rec, in); !reflect.DeepEqual(m, in) {
				if b, err := json.Marshal(m); err == nil {
					r.Input = b
				}
			}
		}
	}
	if rec.ParentID != "" {
		p := rec.ParentID
		r.ParentID = &p
	}
	if len(rec.Error) > 0 && string(rec.Error) != "null" {
		r.Error = &interpreter.Error{}
		if err := json.Unmarshal(rec.Error, r.Error); err != nil {
			return nil, fmt.Errorf("execution %s: bad error record: %w", rec.ID, err)
		}
	}
	// Pauses are open only while PAUSED: a resume's delivery makes the
	// record RUNNING before the drive rewrites its pauses.
	if rec.State == journal.Paused && len(rec.Pauses) > 0 && string(rec.Pauses) != "null" {
		if err := json.Unmarshal(rec.Pauses, &r.Pauses); err != nil {
			return nil, fmt.Errorf("execution %s: bad pauses record: %w", rec.ID, err)
		}
		for i := range r.Pauses {
			if r.Pauses[i].ExecutionID == rec.ID {
				r.Pauses[i].ExecutionID = ""
			}
		}
		sort.SliceStable(r.Pauses, func(i, j int) bool { return r.Pauses[i].Path < r.Pauses[j].Path })
	}
	if !rec.WakeAt.IsZero() && !rec.State.Finished() {
		w := rec.WakeAt.UTC()
		r.WakeAt = &w
	}
	if rec.State.Finished() {
		return r, nil
	}
	var lease journal.Lease
	if !rec.State.Finished() {
		var err error
		if lease, err = s.cfg.Journal.LeaseOf(ctx, rec.RootID); err != nil {
			return nil, err
		}
		var ws []journal.Worker
		if lease.Token != 0 {
			if ws, err = s.fleet(ctx); err != nil {
				return nil, err
			}
		}
		r.Holder = HolderOf(lease, ws)
	}
	r.WaitingOn = s.waitingOn(ctx, rec, r, lease)
	return r, nil
}

// waitingOn says why an unfinished execution is not moving, or who moves
// it; l is the lease of its root.
func (s *Server) waitingOn(ctx context.Context, rec *journal.Execution, r *Record, l journal.Lease) []WaitingOn {
	var out []WaitingOn
	add := func(kind, format string, args ...any) {
		out = append(out, WaitingOn{Kind: kind, Detail: fmt.Sprintf(format, args...)})
	}
	if rec.CancelRequested {
		add("worker", "a cancel was requested at %s; a worker carries it out", rec.UpdatedAt.UTC().Format(time.RFC3339))
	}
	switch rec.State {
	case journal.Running:
		now := s.clock.Now()
		held := l.Token != 0 && l.Expires.After(now)
		var looping *journal.Execution
		if !held && !rec.CancelRequested {
			looping = s.crashLoop(ctx, rec, now)
		}
		switch {
		case held && r.Holder != nil && r.Holder.Gone:
			add("worker", "its holder %s (pid %d) is gone; a worker of that host takes it over at once", l.Holder.Host, l.Holder.PID)
		case held:
			add("running", "driven by %s (pid %d) under a lease that expires at %s", l.Holder.Host, l.Holder.PID, l.Expires.UTC().Format(time.RFC3339))
		case looping != nil:
			add("crash_loop", "crash-looping: taken over %d times with no new journal event; claimable again at %s",
				looping.StalledTakeovers, looping.CrashLoopUntil.UTC().Format(time.RFC3339))
		default:
			add("worker", "waiting for a worker since %s", rec.UpdatedAt.UTC().Format(time.RFC3339))
			if why := s.unserved(ctx, rec); why != "" {
				add("worker", "%s", why)
			}
		}
	case journal.Waiting:
		if r.WakeAt != nil {
			if path, next, last := s.retryOf(ctx, rec); path != "" {
				add("retry", "retry of %s: attempt %d at %s; the last attempt failed: %s", path, next, r.WakeAt.Format(time.RFC3339), last)
			} else {
				add("timer", "a timer until %s", r.WakeAt.Format(time.RFC3339))
			}
		}
	case journal.Paused:
		for _, p := range r.Pauses {
			dl := "no deadline"
			if p.Deadline != nil {
				dl = "deadline " + p.Deadline.UTC().Format(time.RFC3339)
			}
			where := p.Path
			if p.ExecutionID != "" {
				where += " in child " + p.ExecutionID
			}
			add("pause", "pause %s at %s (%s)", p.Name, where, dl)
		}
	}
	s.mu.Lock()
	miss := s.missFrom[rec.RootID]
	s.mu.Unlock()
	if miss != "" {
		add("worker", "%s", miss)
	}
	return out
}

// retryOf says whether a WAITING execution waits for a retry's delay:
// its last events end with a failed attempt (and perhaps the jitter
// sample of the next one). It returns the step's path, the number of the
// next attempt and the failure ("" when it waits for something else).
func (s *Server) retryOf(ctx context.Context, rec *journal.Execution) (path string, next int, last string) {
	evs, err := s.cfg.Journal.Events(ctx, rec.ID, max(rec.LastSeq-2, 0))
	if err != nil {
		return "", 0, ""
	}
	for i := len(evs) - 1; i >= 0; i-- {
		ev := evs[i]
		switch ev.Kind {
		case journal.Builtin:
			continue
		case journal.StepFailed:
			var d struct {
				Error interpreter.Error `json:"error"`
			}
			_ = json.Unmarshal(ev.Data, &d)
			path, n := ev.Path, 1
			if i := strings.LastIndexByte(path, '@'); i > 0 {
				if k, err := strconv.Atoi(path[i+1:]); err == nil {
					path, n = path[:i], k
				}
			}
			return path, n + 1, d.Error.Type + ": " + d.Error.Message
		}
		break
	}
	return "", 0, ""
}

// crashLoop returns the root of rec if it is crash-looping at now
// (journal.CrashLoopTakeovers): no takeover claims it before its
// CrashLoopUntil. Nil otherwise.
func (s *Server) crashLoop(ctx context.Context, rec *journal.Execution, now time.Time) *journal.Execution {
	root := rec
	if rec.RootID != rec.ID {
		var err error
		if root, err = s.cfg.Journal.Get(ctx, rec.RootID); err != nil {
			return nil
		}
	}
	if root.StalledTakeovers >= journal.CrashLoopTakeovers && now.Before(root.CrashLoopUntil) {
		return root
	}
	return nil
}

func jsonOrNull(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return b
}
