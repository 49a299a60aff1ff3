package server

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/loomwork/loom/journal"
)

// listChange is one message of a list stream: a matching record that
// changed (SPEC §6).
type listChange struct {
	ID        string        `json:"id"`
	Workflow  string        `json:"workflow"`
	State     journal.State `json:"state"`
	UpdatedAt time.Time     `json:"updated_at"`
}

// streamList is GET /v1/executions with Accept: text/event-stream: a
// message {id, workflow, state, updated_at} for each record the filter
// selects that changes after the stream opens (a new one included), and
// for a record the stream has told of, or that was on the list's first
// page, that changes so that it no longer matches (the client drops it).
// There is no replay: a client lists, then streams, and lists again after
// a reconnect.
//
// A record the journal cannot read is never skipped silently: once the
// stream finds it damaged (on the first page, or a record it told of), it
// sends an `event: damaged` message {id, problem}, as a list names it in
// its damaged (the first page's, the client has from its list already).
//
// This process's commits are seen at once, whatever record they touch.
// Other processes' commits are seen by re-reading the list's first page
// (its limit) every watchPoll: what a person looking at the list sees.
// A change to a record further down, made by another process, is not
// told; a client paging deep lists again.
func (s *Server) streamList(w http.ResponseWriter, r *http.Request, ls *listSpec) error {
	ctx := r.Context()
	ls.from = nil // a stream follows the head of the list
	sub, unsub := s.hub.subscribeAll()
	defer unsub()
	// told is the (state, updated_at) last told of each record, starting
	// with the first page the client has listed.
	told := map[string]string{}
	key := func(rec *journal.Execution) string {
		return string(rec.State) + "|" + rec.UpdatedAt.UTC().Format(time.RFC3339Nano)
	}
	damagedKey := func(d *journal.DamagedError) string { return "damaged|" + d.Problem }
	head, _, damaged, err := s.page(ctx, ls)
	if err != nil {
		return err
	}
	for _, rec := range head {
		told[rec.ID] = key(rec)
	}
	for _, d := range damaged {
		told[d.ID] = damagedKey(d)
	}
	s.metrics.streams.Inc()
	defer s.metrics.streams.Dec()
	rc := startEventStream(w)
	if err := rc.Flush(); err != nil {
		return nil
	}
	tell := func(rec *journal.Execution) {
		k := key(rec)
		if old, ok := told[rec.ID]; (ok && old == k) || (!ok && !ls.matches(rec)) {
			return
		}
		if len(told) >= maxPending {
			clear(told) // a long stream forgets; at worst it tells a record again
		}
		told[rec.ID] = k
		b, _ := json.Marshal(listChange{ID: rec.ID, Workflow: rec.Workflow, State: rec.State, UpdatedAt: rec.UpdatedAt.UTC()})
		fmt.Fprintf(w, "data: %s\n\n", b)
	}
	tellDamaged := func(d *journal.DamagedError) {
		k := damagedKey(d)
		if told[d.ID] == k {
			return
		}
		if len(told) >= maxPending {
			clear(told)
		}
		told[d.ID] = k
		b, _ := json.Marshal(DamagedRow{ID: d.ID, Problem: d.Problem})
		fmt.Fprintf(w, "event: damaged\ndata: %s\n\n", b)
	}
	// tellHead re-reads the first page, oldest first so that a client
	// inserting each new record at the top keeps the list's order.
	tellHead := func(ctx context.Context) error {
		recs, _, damaged, err := s.page(ctx, ls)
		if err != nil {
			return err
		}
		for _, rec := range slices.Backward(recs) {
			tell(rec)
		}
		for _, d := range damaged {
			tellDamaged(d)
		}
		return nil
	}
	// The keep-alive is wall-clock time: it is for proxies, not for the
	// workflow's clock.
	keep := time.NewTicker(keepAlive)
	defer keep.Stop()
	for {
		tc, stop := s.timer(watchPoll)
		select {
		case <-ctx.Done():
			stop()
			return nil
		case <-s.workCtx.Done():
			stop()
			return nil // draining: clients reconnect elsewhere and list again
		case <-sub.C:
			ids, lost := s.hub.take(sub)
			if lost {
				if tellHead(ctx) != nil {
					stop()
					return nil
				}
				break
			}
			var recs []*journal.Execution
			for _, id := range ids {
				rec, err := s.j.Get(ctx, id)
				var d *journal.DamagedError
				if errors.As(err, &d) && told[id] != "" {
					tellDamaged(d) // one the client has; another is told if the head shows it
				}
				if err != nil {
					continue // pruned since, or the journal failed: the poll retries
				}
				recs = append(recs, rec)
			}
			// Oldest created first, as tellHead tells them.
			slices.SortFunc(recs, func(a, b *journal.Execution) int {
				return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
			})
			for _, rec := range recs {
				tell(rec)
			}
		case <-tc:
			if tellHead(ctx) != nil {
				stop()
				return nil
			}
		case <-keep.C:
			fmt.Fprint(w, ": keep-alive\n\n")
		}
		stop()
		if err := rc.Flush(); err != nil {
			return nil
		}
	}
}
