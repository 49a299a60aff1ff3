package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// keepAlive is how often a quiet stream sends a comment line, so proxies
// do not close it.
const keepAlive = 15 * time.Second

func wantsStream(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// streamEvents sends an execution's committed events after `after` (or
// Last-Event-ID, which wins) as server-sent events, then each new one as it
// is committed, in seq order with no gaps; once the execution is finished
// and its last event sent, an `end` event with the record, and it closes.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request, id string, after int64) error {
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return badRequest("Last-Event-ID %q is not an event seq", v)
		}
		after = n
	}
	ctx := r.Context()
	if _, err := s.get(ctx, id); err != nil {
		return err
	}
	sub, unsub := s.hub.subscribe(id)
	defer unsub()
	s.metrics.streams.Inc()
	defer s.metrics.streams.Dec()
	rc := startEventStream(w)
	// The keep-alive is wall-clock time: it is for proxies, not for the
	// workflow's clock.
	keep := time.NewTicker(keepAlive)
	defer keep.Stop()
	for {
		// The record first: if it is finished, the events read after it
		// hold every event it will ever have.
		rec, err := s.get(ctx, id)
		if err != nil {
			return nil
		}
		evs, err := s.j.Events(ctx, id, after)
		if err != nil {
			return nil
		}
		for _, ev := range evs {
			b, _ := json.Marshal(ev)
			fmt.Fprintf(w, "id: %d\ndata: %s\n\n", ev.Seq, b)
			after = ev.Seq
		}
		if rec.State.Finished() && after >= rec.LastSeq {
			out, err := s.record(ctx, rec)
			if err == nil {
				b, _ := json.Marshal(out)
				fmt.Fprintf(w, "event: end\ndata: %s\n\n", b)
			}
			_ = rc.Flush()
			return nil
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
		tc, stop := s.timer(watchPoll)
		select {
		case <-ctx.Done():
			stop()
			return nil
		case <-s.workCtx.Done():
			stop()
			return nil // draining: clients reconnect elsewhere with Last-Event-ID
		case <-sub:
		case <-tc:
		case <-keep.C:
			fmt.Fprint(w, ": keep-alive\n\n")
		}
		stop()
	}
}

// startEventStream starts an event stream's answer (SPEC §6): its headers, the
// client's reconnect delay, and no write deadline, which a stream outlives.
// It flushes them and returns the controller for the flushes to come.
func startEventStream(w http.ResponseWriter) *http.ResponseController {
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	_ = rc.Flush()
	return rc
}
