package server

import (
	"context"
	"sync"
	"time"

	"github.com/loomwork/loom/journal"
)

// hub tells waiters in this process that an execution's record or journal
// changed: long polls, event streams and resumes wake on it at once. Other
// processes' commits are seen by polling (watchPoll).
type hub struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
	all  map[*changes]struct{}
}

func newHub() *hub {
	return &hub{subs: map[string]map[chan struct{}]struct{}{}, all: map[*changes]struct{}{}}
}

// changes is a subscription to every execution's changes (a list stream):
// the ids changed since the last take, and a channel that receives
// (coalesced) when there are some.
type changes struct {
	C    chan struct{}
	ids  map[string]struct{}
	lost bool
}

// maxPending bounds the ids a changes subscription keeps between two
// takes; past it the subscriber is told it lost some, and re-reads.
const maxPending = 10000

// subscribeAll returns a subscription to every change, and the function
// that ends it.
func (h *hub) subscribeAll() (*changes, func()) {
	c := &changes{C: make(chan struct{}, 1), ids: map[string]struct{}{}}
	h.mu.Lock()
	h.all[c] = struct{}{}
	h.mu.Unlock()
	return c, func() {
		h.mu.Lock()
		delete(h.all, c)
		h.mu.Unlock()
	}
}

// take returns the ids c saw change since the last take, and whether more
// changed than it kept.
func (h *hub) take(c *changes) (ids []string, lost bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id := range c.ids {
		ids = append(ids, id)
	}
	clear(c.ids)
	lost, c.lost = c.lost, false
	return ids, lost
}

// subscribe returns a channel that receives (coalesced) after any change to
// one of ids, and the function that ends the subscription.
func (h *hub) subscribe(ids ...string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	for _, id := range ids {
		if h.subs[id] == nil {
			h.subs[id] = map[chan struct{}]struct{}{}
		}
		h.subs[id][ch] = struct{}{}
	}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		for _, id := range ids {
			delete(h.subs[id], ch)
			if len(h.subs[id]) == 0 {
				delete(h.subs, id)
			}
		}
		h.mu.Unlock()
	}
}

func (h *hub) publish(id string) {
	h.mu.Lock()
	for ch := range h.subs[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	for c := range h.all {
		if len(c.ids) < maxPending {
			c.ids[id] = struct{}{}
		} else {
			c.lost = true
		}
		select {
		case c.C <- struct{}{}:
		default:
		}
	}
	h.mu.Unlock()
}

// watchPoll is how often a waiter re-reads the journal for commits made by
// other processes (SPEC: any process answers within 1 s of the commit).
const watchPoll = 500 * time.Millisecond

// observed is the journal the server's engines write through: each
// committed write is published to the hub, and each answer from the
// journal counts for /readyz.
type observed struct {
	journal.Journal
	hub *hub
	ok  func()
}

func (o *observed) note(err error, ids ...string) {
	if err == nil {
		o.ok()
		for _, id := range ids {
			o.hub.publish(id)
		}
	}
}

func (o *observed) Create(ctx context.Context, e *journal.Execution) error {
	err := o.Journal.Create(ctx, e)
	o.note(err, e.ID)
	return err
}

func (o *observed) CreateHeld(ctx context.Context, e *journal.Execution, h journal.Holder, ttl time.Duration) (journal.Lease, error) {
	l, err := o.Journal.CreateHeld(ctx, e, h, ttl)
	o.note(err, e.ID)
	return l, err
}

func (o *observed) Append(ctx context.Context, a journal.Append) (int64, error) {
	seq, err := o.Journal.Append(ctx, a)
	o.note(err, a.ExecutionID)
	return seq, err
}

func (o *observed) RequestCancel(ctx context.Context, id, by string) (*journal.Execution, error) {
	rec, err := o.Journal.RequestCancel(ctx, id, by)
	o.note(err, id)
	return rec, err
}

func (o *observed) Claim(ctx context.Context, r journal.ClaimRequest) (journal.ClaimResult, error) {
	res, err := o.Journal.Claim(ctx, r)
	o.note(err)
	return res, err
}
