package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
)

// rerunRequest is POST /v1/executions/{id}/rerun's body, `loom rerun`'s
// flags: the path to run live from, a new input, the new execution's id.
type rerunRequest struct {
	From  string          `json:"from"`
	Input json.RawMessage `json:"input"`
	ID    string          `json:"id"`
}

// rerunExecution starts a new execution that reruns a FAILED or CANCELLED
// root (docs/rerun.md), as `loom rerun` does; the dispatcher drives it.
func (s *Server) rerunExecution(w http.ResponseWriter, r *http.Request) error {
	if _, err := query(r, "wait", "until"); err != nil {
		return err
	}
	wait, until, err := s.waitParams(r)
	if err != nil {
		return err
	}
	var req rerunRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	opts := []interpreter.RerunOption{interpreter.RerunStartedBy(actor(r))}
	if req.From != "" {
		opts = append(opts, interpreter.RerunFrom(req.From))
	}
	if len(req.Input) > 0 {
		in, err := s.input(req.Input, "input")
		if err != nil {
			return err
		}
		opts = append(opts, interpreter.RerunInput(in))
	}
	if req.ID != "" {
		if err := checkID(req.ID); err != nil {
			return err
		}
		opts = append(opts, interpreter.RerunID(req.ID))
	}
	ctx := r.Context()
	oldID := r.PathValue("id")
	l, err := s.drive.CreateRerun(ctx, oldID, opts...)
	if errors.Is(err, journal.ErrExists) {
		// A retried request: the same rerun answers 200, as a start does.
		same, serr := s.sameRerun(ctx, req, oldID)
		if serr != nil {
			return serr
		}
		if !same {
			return err
		}
		rec, err := s.await(r, req.ID, wait, until)
		if err != nil {
			return err
		}
		return s.writeRecord(w, r, http.StatusOK, rec)
	}
	if err != nil {
		return err
	}
	s.adopt(l)
	rec, err := s.await(r, l.RootID, wait, until)
	if err != nil {
		return err
	}
	s.metrics.started.WithLabelValues(rec.Workflow).Inc()
	w.Header().Set("Location", "/v1/executions/"+rec.ID)
	return s.writeRecord(w, r, http.StatusCreated, rec)
}

// sameRerun reports whether execution req.ID is the rerun req asks for:
// its journal begins with rerun.of oldID, from req.From if given, and its
// input equals req.Input if given.
func (s *Server) sameRerun(ctx context.Context, req rerunRequest, oldID string) (bool, error) {
	rec, err := s.get(ctx, req.ID)
	if err != nil {
		return false, err
	}
	if len(req.Input) > 0 && !sameJSON(jsonOrNull(rec.Input), req.Input) {
		return false, nil
	}
	evs, err := s.j.Events(ctx, req.ID, 0)
	if err != nil || len(evs) == 0 || evs[0].Kind != journal.RerunOf {
		return false, err
	}
	link, err := journal.DecodeData[journal.RerunOfData](evs[0])
	if err != nil {
		return false, err
	}
	return link.ExecutionID == oldID && (req.From == "" || link.From == req.From), nil
}

// adopt drives a root this process just created under lease l if a slot
// is free; otherwise it gives the lease back so that any process's
// dispatcher claims the root.
func (s *Server) adopt(l journal.Lease) {
	select {
	case s.slots <- struct{}{}:
		if !s.draining.Load() {
			s.metrics.claims.WithLabelValues(string(journal.ClaimStart)).Inc()
			s.startDrive(journal.Claim{Lease: l, Reason: journal.ClaimStart})
			return
		}
		<-s.slots
	default:
	}
	if err := s.j.Release(context.WithoutCancel(s.workCtx), l); err != nil && !errors.Is(err, journal.ErrFenced) {
		s.log.Error("cannot release a new rerun's lease; it is claimed once the lease expires", "execution_id", l.RootID, "error", err)
	}
	s.hint()
}

// listSchedules answers GET /v1/schedules: every scheduled workflow of
// the catalog with its last decided slot and next fire times, as `loom
// schedules --json` prints them.
func (s *Server) listSchedules(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r, "next")
	if err != nil {
		return err
	}
	n := 1
	if v := url.Values(q).Get("next"); v != "" {
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 1000 {
			return badRequest("next=%q: a whole number from 1 to 1000", v)
		}
	}
	slots, err := s.j.ScheduleSlots(r.Context())
	if err != nil {
		return err
	}
	last := map[string]journal.ScheduleSlot{}
	for _, sl := range slots {
		last[sl.Workflow] = sl
	}
	now := s.clock.Now()
	out := []ScheduleInfo{}
	for _, wf := range s.scheduled() {
		out = append(out, DescribeSchedule(wf, last, now, n))
	}
	writeJSON(w, http.StatusOK, map[string]any{"schedules": out})
	return nil
}
