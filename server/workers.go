package server

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
)

// heartbeatEvery is how often a serve process journals that it is alive:
// well inside workerSeen, so a late or lost heartbeat never hides a live
// process.
const heartbeatEvery = 10 * time.Second

// workerSeen is how recent a heartbeat must be for GET /v1/workers (SPEC
// §6) and waiting_on to count its process as live.
const workerSeen = 30 * time.Second

// fleetFresh is how long waiting_on reuses the list of live processes:
// a list of records asks the journal once, not once per record.
const fleetFresh = 5 * time.Second

// Worker is a serve process in GET /v1/workers.
type Worker struct {
	ID          string    `json:"id"`
	Host        string    `json:"host"`
	PID         int       `json:"pid"`
	Version     string    `json:"version"`
	StartedAt   time.Time `json:"started_at"`
	SeenAt      time.Time `json:"seen_at"`
	Draining    bool      `json:"draining"`
	Concurrency int       `json:"concurrency"`
	InUse       int       `json:"in_use"`
	Tasks       []string  `json:"tasks"`
}

// runHeartbeats journals this process's heartbeat every heartbeatEvery
// (and at once when it starts draining) until ctx is done, then deletes
// its row: a process that stopped is no longer listed.
func (s *Server) runHeartbeats(ctx context.Context) {
	// A process of this node that died (SIGKILL) left its row: it is gone,
	// so it is no longer listed.
	if ws, err := s.j.Workers(ctx, journal.WorkerForget); err == nil {
		for _, w := range ws {
			if interpreter.HolderGone(w.Holder()) {
				_ = s.j.ForgetWorker(ctx, w.ID)
			}
		}
	}
	for {
		if err := s.j.Heartbeat(ctx, s.worker()); err != nil && ctx.Err() == nil {
			s.log.Warn("heartbeat not journaled", "error", err)
		} else if err == nil {
			s.registered.Store(true)
		}
		tc, stop := s.timer(heartbeatEvery)
		select {
		case <-ctx.Done():
			stop()
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := s.j.ForgetWorker(fctx, s.holder.ID); err != nil {
				s.log.Warn("cannot delete this process's heartbeat", "error", err)
			}
			return
		case <-s.beat:
		case <-tc:
		}
		stop()
	}
}

// worker is this process as its heartbeat describes it.
func (s *Server) worker() journal.Worker {
	return journal.Worker{ID: s.holder.ID, Host: s.holder.Host, PID: s.holder.PID, Node: s.holder.Node,
		Version: s.version(), StartedAt: s.started, Draining: s.draining.Load(),
		Concurrency: cap(s.slots), InUse: len(s.slots), Tasks: s.cfg.Tasks.TaskNames()}
}

// version is the build's version ("devel" when none was given).
func (s *Server) version() string {
	if s.cfg.Version == "" {
		return "devel"
	}
	return s.cfg.Version
}

// listWorkers serves GET /v1/workers: the serve processes whose heartbeat
// is at most workerSeen old, by the journal's clock.
func (s *Server) listWorkers(w http.ResponseWriter, r *http.Request) error {
	if _, err := query(r); err != nil {
		return err
	}
	ws, err := LiveWorkers(r.Context(), s.j)
	if err != nil {
		return err
	}
	out := make([]Worker, 0, len(ws))
	for _, wk := range ws {
		out = append(out, Worker{ID: wk.ID, Host: wk.Host, PID: wk.PID, Version: wk.Version, StartedAt: wk.StartedAt.UTC(),
			SeenAt: wk.SeenAt.UTC(), Draining: wk.Draining, Concurrency: wk.Concurrency, InUse: wk.InUse,
			Tasks: journal.WorkerTasks(wk.Tasks)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"workers": out})
	return nil
}

// LiveWorkers are the serve processes j has seen a heartbeat of within the
// last 30 s: GET /v1/workers's list, and the processes that honour a
// cancel request within 1 s.
func LiveWorkers(ctx context.Context, j journal.Journal) ([]journal.Worker, error) {
	return j.Workers(ctx, workerSeen)
}

// fleet returns the live serve processes, read again from the journal at
// most every fleetFresh.
func (s *Server) fleet(ctx context.Context) ([]journal.Worker, error) {
	now := s.clock.Now()
	s.mu.Lock()
	if !s.fleetAt.IsZero() && now.Sub(s.fleetAt) < fleetFresh {
		ws := s.fleetWorkers
		s.mu.Unlock()
		return ws, nil
	}
	s.mu.Unlock()
	ws, err := LiveWorkers(ctx, s.j)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.fleetWorkers, s.fleetAt = ws, now
	s.mu.Unlock()
	return ws, nil
}

// unserved says which tasks rec's pinned definition uses that no live
// serve process registers ("" when every one is registered by some
// process), for waiting_on.
func (s *Server) unserved(ctx context.Context, rec *journal.Execution) string {
	used := s.tasksUsed(rec)
	if len(used) == 0 {
		return ""
	}
	ws, err := s.fleet(ctx)
	if err != nil {
		return ""
	}
	if len(ws) == 0 {
		return "no serve process is live (none journaled a heartbeat in the last 30s)"
	}
	var missing []string
	for _, t := range used {
		if !slices.ContainsFunc(ws, func(w journal.Worker) bool { return slices.Contains(w.Tasks, t) }) {
			missing = append(missing, t)
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return "no live serve process registers " + plural(len(missing), "task") + " " + strings.Join(missing, ", ") + " that its definition uses"
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// usedTasks records the task names a definition's parse asks about, and
// says each exists: the set of tasks the definition uses.
type usedTasks map[string]bool

func (u usedTasks) HasTask(name string) bool {
	u[name] = true
	return true
}

// tasksUsed returns the task names rec's pinned definition uses, sorted;
// the answer is kept per definition hash.
func (s *Server) tasksUsed(rec *journal.Execution) []string {
	s.mu.Lock()
	names, ok := s.used[rec.DefinitionHash]
	s.mu.Unlock()
	if ok {
		return names
	}
	def := rec.Definition
	if len(def) == 0 {
		root, err := s.j.Get(context.Background(), rec.RootID)
		if err != nil {
			return nil
		}
		def = root.Definition
	}
	u := usedTasks{}
	_, _ = definition.Parse("pinned", def, definition.WithTasks(u))
	for n := range u {
		names = append(names, n)
	}
	slices.Sort(names)
	s.mu.Lock()
	s.used[rec.DefinitionHash] = names
	s.mu.Unlock()
	return names
}
