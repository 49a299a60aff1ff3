package memory

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loomwork/loom/journal"
)

// Option configures a Journal.
type Option func(*Journal)

// WithClock replaces time.Now: it stamps records, events and lease expiries,
// and decides whether a lease has expired.
func WithClock(now func() time.Time) Option {
	return func(j *Journal) { j.now = now }
}

// Journal is an in-memory journal. Values are copied on the way in and out,
// so callers never share memory with it. The zero value is not usable; call New.
type Journal struct {
	now func() time.Time

	mu        sync.RWMutex
	closed    bool
	execs     map[string]*record
	leases    map[string]journal.Lease        // by root ID
	lastToken int64                           // tokens are never reused, across roots
	slots     map[string]journal.ScheduleSlot // by workflow: the latest
	watch     atomic.Pointer[func(journal.Commit)]
	workers   map[string]journal.Worker // by ID
}

type record struct {
	exec   journal.Execution
	events []journal.Event
	keys   map[eventKey]struct{}
	// stallMark is a root's treeSeq at its last takeover: a takeover that
	// finds it unchanged found no progress.
	stallMark int64
}

type eventKey struct {
	path    string
	kind    journal.EventKind
	ordinal int
}

var _ journal.Journal = (*Journal)(nil)

// New returns an empty journal.
func New(opts ...Option) *Journal {
	j := &Journal{
		now:     time.Now,
		execs:   make(map[string]*record),
		leases:  make(map[string]journal.Lease),
		slots:   make(map[string]journal.ScheduleSlot),
		workers: make(map[string]journal.Worker),
	}
	for _, o := range opts {
		o(j)
	}
	return j
}

func (j *Journal) clock() time.Time { return j.now().UTC() }

// write locks the journal for one write, which is its own commit, and
// returns the unlock, which reports the commit to the watcher.
func (j *Journal) write() func() {
	j.mu.Lock()
	start := time.Now()
	return func() {
		d := time.Since(start)
		j.mu.Unlock()
		if fn := j.watch.Load(); fn != nil {
			(*fn)(journal.Commit{Writes: 1, Duration: d})
		}
	}
}

// WatchCommits implements journal.Journal.
func (j *Journal) WatchCommits(fn func(journal.Commit)) {
	if fn == nil {
		j.watch.Store(nil)
		return
	}
	j.watch.Store(&fn)
}

// Gauges implements journal.Journal.
func (j *Journal) Gauges(ctx context.Context) (journal.Gauges, error) {
	g := journal.Gauges{PausesOpen: map[string]int{}}
	if err := ctx.Err(); err != nil {
		return g, err
	}
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.closed {
		return g, journal.ErrClosed
	}
	now := j.clock()
	for _, r := range j.execs {
		e := &r.exec
		if e.ParentID != "" {
			continue
		}
		switch e.State {
		case journal.Running:
			if l, ok := j.leases[e.ID]; ok && l.Expires.After(now) {
				continue
			}
			g.Backlog++
			if g.BacklogSince.IsZero() || e.UpdatedAt.Before(g.BacklogSince) {
				g.BacklogSince = e.UpdatedAt
			}
		case journal.Paused:
			var ps []json.RawMessage
			if json.Unmarshal(e.Pauses, &ps) == nil && len(ps) > 0 {
				g.PausesOpen[e.Workflow] += len(ps)
			}
		}
	}
	return g, nil
}

// Create implements journal.Journal.
func (j *Journal) Create(ctx context.Context, e *journal.Execution) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := e.Validate(); err != nil {
		return err
	}
	defer j.write()()
	return j.createLocked(e)
}

func (j *Journal) createLocked(e *journal.Execution) error {
	c := copyExecution(e)
	if c.RootID == "" {
		c.RootID = c.ID
	}
	if j.closed {
		return journal.ErrClosed
	}
	if _, ok := j.execs[c.ID]; ok {
		return fmt.Errorf("journal: create %s: %w", c.ID, journal.ErrExists)
	}
	c.Takeovers, c.LastSeq, c.StalledTakeovers, c.CrashLoopUntil = 0, 0, 0, time.Time{}
	now := j.clock()
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = now
	}
	j.execs[c.ID] = &record{exec: *c, keys: make(map[eventKey]struct{})}
	return nil
}

// CreateHeld implements journal.Journal.
func (j *Journal) CreateHeld(ctx context.Context, e *journal.Execution, h journal.Holder, ttl time.Duration) (journal.Lease, error) {
	if err := ctx.Err(); err != nil {
		return journal.Lease{}, err
	}
	if err := e.Validate(); err != nil {
		return journal.Lease{}, err
	}
	if e.RootID != "" && e.RootID != e.ID {
		return journal.Lease{}, fmt.Errorf("journal: create %s: only a root execution can be created held (its root is %s)", e.ID, e.RootID)
	}
	defer j.write()()
	if err := j.createLocked(e); err != nil {
		return journal.Lease{}, err
	}
	l, err := j.acquireLocked(j.execs[e.ID].exec.RootID, h, ttl, 0)
	if err != nil {
		delete(j.execs, e.ID)
	}
	return l, err
}

// Append implements journal.Journal.
func (j *Journal) Append(ctx context.Context, a journal.Append) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := a.Validate(); err != nil {
		return 0, err
	}
	defer j.write()()
	if j.closed {
		return 0, journal.ErrClosed
	}
	r, ok := j.execs[a.ExecutionID]
	if !ok {
		return 0, fmt.Errorf("journal: append to %s: %w", a.ExecutionID, journal.ErrNotFound)
	}
	if l, ok := j.leases[r.exec.RootID]; !ok || l.Token != a.Token {
		return 0, fmt.Errorf("journal: append to %s with token %d: %w", a.ExecutionID, a.Token, journal.ErrFenced)
	}
	last := int64(len(r.events))
	if a.ExpectedSeq != last {
		return 0, fmt.Errorf("journal: append to %s after seq %d, last is %d: %w", a.ExecutionID, a.ExpectedSeq, last, journal.ErrConflict)
	}
	added := make(map[eventKey]struct{}, len(a.Events))
	for _, ev := range a.Events {
		k := eventKey{ev.Path, ev.Kind, ev.Ordinal}
		_, dup := r.keys[k]
		if _, dupBatch := added[k]; dup || dupBatch {
			return 0, fmt.Errorf("journal: append to %s: event (%q, %s, %d) already recorded: %w", a.ExecutionID, ev.Path, ev.Kind, ev.Ordinal, journal.ErrConflict)
		}
		added[k] = struct{}{}
	}

	now := j.clock()
	for _, ev := range a.Events {
		last++
		c := copyEvent(ev)
		c.Seq = last
		if c.Time.IsZero() {
			c.Time = now
		}
		r.events = append(r.events, c)
	}
	for k := range added {
		r.keys[k] = struct{}{}
	}
	a.Update.ApplyTo(&r.exec)
	r.exec.UpdatedAt = now
	if a.Stamp != nil {
		*a.Stamp = now
	}
	r.exec.LastSeq = last
	if a.Release {
		delete(j.leases, r.exec.RootID)
	}
	return last, nil
}

// Events implements journal.Journal.
func (j *Journal) Events(ctx context.Context, id string, after int64) ([]journal.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.closed {
		return nil, journal.ErrClosed
	}
	r, ok := j.execs[id]
	if !ok {
		return nil, fmt.Errorf("journal: events of %s: %w", id, journal.ErrNotFound)
	}
	after = max(after, 0)
	if after >= int64(len(r.events)) {
		return nil, nil
	}
	out := make([]journal.Event, 0, int64(len(r.events))-after)
	for _, ev := range r.events[after:] {
		out = append(out, copyEvent(ev))
	}
	return out, nil
}

// Get implements journal.Journal.
func (j *Journal) Get(ctx context.Context, id string) (*journal.Execution, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.closed {
		return nil, journal.ErrClosed
	}
	r, ok := j.execs[id]
	if !ok {
		return nil, fmt.Errorf("journal: get %s: %w", id, journal.ErrNotFound)
	}
	return copyExecution(&r.exec), nil
}

// List implements journal.Journal.
func (j *Journal) List(ctx context.Context, f journal.Filter) ([]*journal.Execution, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.closed {
		return nil, journal.ErrClosed
	}
	// key is a record's position in f.Order: (time, ID), compared
	// ascending; newest-first compares it descending.
	key := func(e *journal.Execution) time.Time { return e.CreatedAt }
	dir := -1
	switch f.Order {
	case journal.NewestCreated:
	case journal.OldestUpdated:
		key, dir = func(e *journal.Execution) time.Time { return e.UpdatedAt }, 1
	default:
		return nil, fmt.Errorf("journal: list: unknown order %d", f.Order)
	}
	cmpAt := func(e *journal.Execution, at time.Time, id string) int {
		return dir * cmp.Or(key(e).Compare(at), strings.Compare(e.ID, id))
	}
	var (
		after   bool
		afterAt time.Time
		afterID string
	)
	if f.After != "" {
		var err error
		if afterAt, afterID, err = f.Order.ParseCursor(f.After); err != nil {
			return nil, fmt.Errorf("journal: list: %w", err)
		}
		after = true
	}
	var hits []*journal.Execution
	for _, r := range j.execs {
		if after && cmpAt(&r.exec, afterAt, afterID) <= 0 {
			continue
		}
		if j.matches(&r.exec, &f) {
			hits = append(hits, &r.exec)
		}
	}
	slices.SortFunc(hits, func(a, b *journal.Execution) int { return cmpAt(a, key(b), b.ID) })
	if f.Limit > 0 && len(hits) > f.Limit {
		hits = hits[:f.Limit]
	}
	out := make([]*journal.Execution, len(hits))
	for i, e := range hits {
		out[i] = copyExecution(e)
		out[i].Definition = nil
	}
	return out, nil
}

func (j *Journal) matches(e *journal.Execution, f *journal.Filter) bool {
	switch {
	case f.State != "" && e.State != f.State,
		f.Workflow != "" && e.Workflow != f.Workflow,
		f.ParentID != "" && e.ParentID != f.ParentID,
		f.RootsOnly && e.ParentID != "":
		return false
	}
	for k, v := range f.Labels {
		if got, ok := e.Labels[k]; !ok || got != v {
			return false
		}
	}
	if f.Due.IsZero() {
		return true
	}
	return journal.Due(e, j.leases[e.RootID], f.Due) // no lease: the zero Lease
}

// Acquire implements journal.Journal.
func (j *Journal) Acquire(ctx context.Context, rootID string, h journal.Holder, ttl time.Duration, takeover int64) (journal.Lease, error) {
	if err := ctx.Err(); err != nil {
		return journal.Lease{}, err
	}
	defer j.write()()
	return j.acquireLocked(rootID, h, ttl, takeover)
}

func (j *Journal) acquireLocked(rootID string, h journal.Holder, ttl time.Duration, takeover int64) (journal.Lease, error) {
	if j.closed {
		return journal.Lease{}, journal.ErrClosed
	}
	r, ok := j.execs[rootID]
	if !ok {
		return journal.Lease{}, fmt.Errorf("journal: acquire %s: %w", rootID, journal.ErrNotFound)
	}
	if r.exec.RootID != rootID {
		return journal.Lease{}, fmt.Errorf("journal: acquire %s: not a root execution (its root is %s)", rootID, r.exec.RootID)
	}
	now := j.clock()
	if cur, ok := j.leases[rootID]; ok && cur.Expires.After(now) && (takeover == 0 || takeover != cur.Token) {
		return journal.Lease{}, &journal.BusyError{Lease: cur}
	}
	j.lastToken++
	l := journal.Lease{RootID: rootID, Token: j.lastToken, Holder: h, Expires: now.Add(journal.LeaseTTL(ttl))}
	j.leases[rootID] = l
	return l, nil
}

// Renew implements journal.Journal.
func (j *Journal) Renew(ctx context.Context, l journal.Lease, ttl time.Duration) (journal.Lease, error) {
	if err := ctx.Err(); err != nil {
		return journal.Lease{}, err
	}
	defer j.write()()
	if j.closed {
		return journal.Lease{}, journal.ErrClosed
	}
	cur, ok := j.leases[l.RootID]
	if !ok || cur.Token != l.Token {
		return journal.Lease{}, fmt.Errorf("journal: renew lease %d of %s: %w", l.Token, l.RootID, journal.ErrFenced)
	}
	cur.Expires = j.clock().Add(journal.LeaseTTL(ttl))
	j.leases[l.RootID] = cur
	return cur, nil
}

// Release implements journal.Journal.
func (j *Journal) Release(ctx context.Context, l journal.Lease) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	defer j.write()()
	if j.closed {
		return journal.ErrClosed
	}
	cur, ok := j.leases[l.RootID]
	if !ok || cur.Token != l.Token {
		return fmt.Errorf("journal: release lease %d of %s: %w", l.Token, l.RootID, journal.ErrFenced)
	}
	delete(j.leases, l.RootID)
	return nil
}

// LeaseOf implements journal.Journal.
func (j *Journal) LeaseOf(ctx context.Context, rootID string) (journal.Lease, error) {
	if err := ctx.Err(); err != nil {
		return journal.Lease{}, err
	}
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.closed {
		return journal.Lease{}, journal.ErrClosed
	}
	return j.leases[rootID], nil
}

// Claim implements journal.Journal.
func (j *Journal) Claim(ctx context.Context, r journal.ClaimRequest) (journal.ClaimResult, error) {
	if err := ctx.Err(); err != nil {
		return journal.ClaimResult{}, err
	}
	defer j.write()()
	if j.closed {
		return journal.ClaimResult{}, journal.ErrClosed
	}
	now := j.clock()
	skip := make(map[string]bool, len(r.Exclude))
	for _, id := range r.Exclude {
		skip[id] = true
	}
	type cand struct {
		id     string
		reason journal.ClaimReason
		key    time.Time
		token  int64 // the lease of a gone holder, taken over at once
	}
	gone := map[string]bool{} // holder ID → r.Gone's answer
	var cands []cand
	var res journal.ClaimResult
	for id, rec := range j.execs {
		e := &rec.exec
		if e.ParentID != "" || e.State.Finished() || skip[id] {
			continue
		}
		l, held := j.leases[id]
		c := cand{id: id}
		if held && l.Expires.After(now) {
			if !journal.SameNode(r.Holder, l.Holder) || r.Gone == nil {
				continue
			}
			dead, asked := gone[l.Holder.ID]
			if !asked {
				dead = r.Gone(l.Holder)
				gone[l.Holder.ID] = dead
			}
			if !dead {
				continue
			}
			c.token = l.Token
		}
		switch {
		case e.CancelRequested:
			c.reason, c.key = journal.ClaimCancel, e.UpdatedAt
		case e.State != journal.Running:
			if e.WakeAt.IsZero() {
				continue
			}
			if e.WakeAt.After(now) {
				if res.NextWake.IsZero() || e.WakeAt.Before(res.NextWake) {
					res.NextWake = e.WakeAt
				}
				continue
			}
			c.reason, c.key = journal.ClaimTimer, e.WakeAt
		case held:
			if e.StalledTakeovers >= journal.CrashLoopTakeovers && now.Before(e.CrashLoopUntil) && j.treeSeq(id) == rec.stallMark {
				continue // crash-looping: not yet
			}
			c.reason, c.key = journal.ClaimTakeover, l.Expires
		case e.LastSeq > 0:
			c.reason, c.key = journal.ClaimResume, e.UpdatedAt
		default:
			c.reason, c.key = journal.ClaimStart, e.CreatedAt
		}
		cands = append(cands, c)
	}
	slices.SortFunc(cands, func(a, b cand) int {
		if c := journal.ClaimOrder(a.reason) - journal.ClaimOrder(b.reason); c != 0 {
			return c
		}
		if c := a.key.Compare(b.key); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	for _, c := range cands[:min(len(cands), max(r.Limit, 0))] {
		l, err := j.acquireLocked(c.id, r.Holder, r.TTL, c.token)
		if err != nil {
			return res, err
		}
		cl := journal.Claim{Lease: l, Reason: c.reason}
		if c.reason == journal.ClaimTakeover {
			rec := j.execs[c.id]
			e := &rec.exec
			e.Takeovers++
			seq := j.treeSeq(c.id)
			if e.StalledTakeovers > 0 && seq == rec.stallMark {
				e.StalledTakeovers++
			} else {
				e.StalledTakeovers = 1
			}
			rec.stallMark = seq
			e.CrashLoopUntil = journal.CrashLoopUntil(e.StalledTakeovers, now)
			cl.Stalled = e.StalledTakeovers
		}
		res.Claims = append(res.Claims, cl)
	}
	return res, nil
}

// treeSeq is the sum of the last seqs of root's tree: it grows with every
// event the tree journals.
func (j *Journal) treeSeq(root string) int64 {
	var n int64
	for _, rec := range j.execs {
		if rec.exec.RootID == root {
			n += rec.exec.LastSeq
		}
	}
	return n
}

// Heartbeat implements journal.Journal.
func (j *Journal) Heartbeat(ctx context.Context, w journal.Worker) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return journal.ErrClosed
	}
	now := j.clock()
	for id, o := range j.workers {
		if now.Sub(o.SeenAt) > journal.WorkerForget {
			delete(j.workers, id)
		}
	}
	w.SeenAt, w.StartedAt = now, normTime(w.StartedAt)
	w.Tasks = journal.WorkerTasks(w.Tasks)
	j.workers[w.ID] = w
	return nil
}

// Workers implements journal.Journal.
func (j *Journal) Workers(ctx context.Context, within time.Duration) ([]journal.Worker, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.closed {
		return nil, journal.ErrClosed
	}
	now := j.clock()
	var out []journal.Worker
	for _, w := range j.workers {
		if now.Sub(w.SeenAt) <= within {
			w.Tasks = slices.Clone(w.Tasks)
			out = append(out, w)
		}
	}
	slices.SortFunc(out, func(a, b journal.Worker) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// ForgetWorker implements journal.Journal.
func (j *Journal) ForgetWorker(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return journal.ErrClosed
	}
	delete(j.workers, id)
	return nil
}

// RequestCancel implements journal.Journal.
func (j *Journal) RequestCancel(ctx context.Context, id, by string) (*journal.Execution, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer j.write()()
	if j.closed {
		return nil, journal.ErrClosed
	}
	r, ok := j.execs[id]
	if !ok {
		return nil, fmt.Errorf("journal: cancel %s: %w", id, journal.ErrNotFound)
	}
	if r.exec.RootID != id {
		return nil, fmt.Errorf("journal: cancel %s: %w", id, &journal.NotRootError{ID: id, RootID: r.exec.RootID})
	}
	if !r.exec.State.Finished() && !r.exec.CancelRequested {
		r.exec.CancelRequested, r.exec.CancelRequestedBy = true, by
		r.exec.UpdatedAt = j.clock()
	}
	return copyExecution(&r.exec), nil
}

// Prune implements journal.Journal: the oldest finished roots first.
func (j *Journal) Prune(ctx context.Context, r journal.PruneRequest) (journal.PruneResult, error) {
	var res journal.PruneResult
	if err := ctx.Err(); err != nil {
		return res, err
	}
	defer j.write()()
	if j.closed {
		return res, journal.ErrClosed
	}
	states := r.PruneStates()
	open := map[string]bool{} // roots whose tree holds an unfinished execution
	for _, rec := range j.execs {
		if !rec.exec.State.Finished() {
			open[rec.exec.RootID] = true
		}
	}
	var roots []*journal.Execution
	for id, rec := range j.execs {
		e := &rec.exec
		if e.RootID == id && !open[id] && slices.Contains(states, e.State) && e.UpdatedAt.Before(r.FinishedBefore) {
			roots = append(roots, e)
		}
	}
	slices.SortFunc(roots, func(a, b *journal.Execution) int {
		if c := a.UpdatedAt.Compare(b.UpdatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if len(roots) > r.PruneLimit() {
		roots = roots[:r.PruneLimit()]
	}
	pruned := map[string]bool{}
	for _, e := range roots {
		pruned[e.ID] = true
	}
	for id, rec := range j.execs {
		if pruned[rec.exec.RootID] {
			res.Executions++
			res.Events += len(rec.events)
			delete(j.execs, id)
		}
	}
	for id := range pruned {
		delete(j.leases, id)
	}
	res.Roots = len(roots)
	return res, nil
}

// ClaimSlot implements journal.Journal.
func (j *Journal) ClaimSlot(ctx context.Context, s journal.ScheduleSlot, e *journal.Execution) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := s.Validate(e); err != nil {
		return false, err
	}
	defer j.write()()
	if j.closed {
		return false, journal.ErrClosed
	}
	if last, ok := j.slots[s.Workflow]; ok && !last.At.Before(s.At) {
		return false, nil
	}
	if e != nil {
		if err := j.createLocked(e); err != nil {
			return false, err
		}
	}
	s.At, s.DecidedAt = normTime(s.At), j.clock()
	j.slots[s.Workflow] = s
	return true, nil
}

// ScheduleSlots implements journal.Journal.
func (j *Journal) ScheduleSlots(ctx context.Context) ([]journal.ScheduleSlot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.closed {
		return nil, journal.ErrClosed
	}
	out := slices.Collect(maps.Values(j.slots))
	slices.SortFunc(out, func(a, b journal.ScheduleSlot) int { return strings.Compare(a.Workflow, b.Workflow) })
	return out, nil
}

// Close implements journal.Journal. It drops all data.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.closed = true
	j.execs = nil
	j.leases = nil
	return nil
}

// normTime drops the location and monotonic reading, as a round trip
// through a database would.
func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

func copyExecution(e *journal.Execution) *journal.Execution {
	c := *e
	c.Input = cloneBytes(e.Input)
	c.Output = cloneBytes(e.Output)
	c.Error = cloneBytes(e.Error)
	c.Pauses = cloneBytes(e.Pauses)
	c.Definition = cloneBytes(e.Definition)
	c.Labels = maps.Clone(e.Labels)
	if len(c.Labels) == 0 {
		c.Labels = nil
	}
	c.WakeAt = normTime(e.WakeAt)
	c.CreatedAt = normTime(e.CreatedAt)
	c.UpdatedAt = normTime(e.UpdatedAt)
	return &c
}

func copyEvent(ev journal.Event) journal.Event {
	ev.Data = cloneBytes(ev.Data)
	ev.Time = normTime(ev.Time)
	return ev
}

// cloneBytes copies b; empty becomes nil, as NULL does in a database.
func cloneBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}
