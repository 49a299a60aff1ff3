package groupcommit

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loomwork/loom/journal"
)

// Ticket is the caller's side of one queued write: its context, its
// outcome, and the moment that outcome is decided. Backends embed it in
// their op type.
type Ticket struct {
	Ctx context.Context
	// Err is the write's outcome, set by the writer before Done.
	Err error
	// Append and Events count the write in Stats when it succeeds.
	Append bool
	Events int

	state atomic.Int32 // queued → taken by the writer, or → abandoned by the caller
	done  chan struct{}
}

const (
	queued int32 = iota
	taken
	abandoned
)

func (t *Ticket) ticket() *Ticket { return t }

// Take claims the write for the writer; false when its caller already gave
// up (its context ended while the write was queued), and it must not run.
func (t *Ticket) Take() bool { return t.state.CompareAndSwap(queued, taken) }

// Done tells the caller its outcome (Err) is decided.
func (t *Ticket) Done() { close(t.done) }

// Op is a backend's write type: anything that embeds a Ticket.
type Op interface{ ticket() *Ticket }

// Queue carries writes from callers to the writer goroutine.
type Queue[T Op] struct {
	ch        chan T
	mu        sync.RWMutex // guards closed against sends on ch
	closed    bool
	errClosed error
	exited    chan struct{}
	watch     atomic.Pointer[func(journal.Commit)]
}

// Watch makes Run call fn after each batch it hands the writer, with the
// batch's size and the time the writer took (nil stops it): the backends'
// journal.Journal WatchCommits.
func (q *Queue[T]) Watch(fn func(journal.Commit)) {
	if fn == nil {
		q.watch.Store(nil)
		return
	}
	q.watch.Store(&fn)
}

// NewQueue makes a queue of size pending writes; Submit after Close
// returns errClosed.
func NewQueue[T Op](size int, errClosed error) *Queue[T] {
	return &Queue[T]{ch: make(chan T, size), errClosed: errClosed, exited: make(chan struct{})}
}

// Submit queues o and waits for its outcome. A caller whose context ends
// while o is still queued gets ctx.Err() and o never runs; once the writer
// has taken o, the caller waits for the outcome, so an error never hides a
// committed write.
func (q *Queue[T]) Submit(ctx context.Context, o T) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := o.ticket()
	t.Ctx, t.done = ctx, make(chan struct{})
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		return q.errClosed
	}
	select {
	case q.ch <- o:
	case <-ctx.Done():
		q.mu.RUnlock()
		return ctx.Err()
	}
	q.mu.RUnlock()
	select {
	case <-t.done:
		return t.Err
	case <-ctx.Done():
		if t.state.CompareAndSwap(queued, abandoned) {
			return ctx.Err()
		}
		<-t.done
		return t.Err
	}
}

// Run is the writer goroutine's loop: it hands commit as many queued writes
// as are waiting (up to max) — while one transaction is being made
// durable, the next batch queues. It returns when the queue is closed and
// drained.
func (q *Queue[T]) Run(max int, commit func(batch []T)) {
	defer close(q.exited)
	batch := make([]T, 0, max)
	for o := range q.ch {
		batch = append(batch[:0], o)
	fill:
		for len(batch) < max {
			select {
			case o, ok := <-q.ch:
				if !ok {
					break fill
				}
				batch = append(batch, o)
			default:
				break fill
			}
		}
		start := time.Now()
		commit(batch)
		if fn := q.watch.Load(); fn != nil {
			(*fn)(journal.Commit{Writes: len(batch), Duration: time.Since(start)})
		}
		clear(batch)
	}
}

// Close refuses new writes and waits until Run has committed the queued
// ones. It reports false when the queue was already closed.
func (q *Queue[T]) Close() bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.closed = true
	close(q.ch)
	q.mu.Unlock()
	<-q.exited
	return true
}

// Closed reports whether Close was called.
func (q *Queue[T]) Closed() bool {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return q.closed
}

// Len is the number of writes queued and not yet taken.
func (q *Queue[T]) Len() int { return len(q.ch) }

// Live returns the writes of batch the writer takes (in place).
func Live[T Op](batch []T) []T {
	live := batch[:0]
	for _, o := range batch {
		if o.ticket().Take() {
			live = append(live, o)
		}
	}
	return live
}

// Refusal is a write's error that leaves the transaction as the write
// found it (a conflict, a fenced token, a missing or existing record): the
// batch goes on without it. The writer unwraps it; callers never see it.
type Refusal struct{ Err error }

func (r Refusal) Error() string { return r.Err.Error() }

// Refuse marks err as a refusal.
func Refuse(err error) error { return Refusal{err} }

// Stats are a writer's counters.
type Stats struct {
	// Commits is the number of transactions the writer committed.
	Commits int64
	// Writes is the number of write calls (Create, Append, lease methods)
	// acknowledged after a commit, whether they succeeded or were refused.
	Writes int64
	// Appends is the number of Append calls that succeeded.
	Appends int64
	// Events is the number of events written.
	Events int64
	// LargestBatch is the most writes acknowledged by one commit.
	LargestBatch int64
}

// Counters accumulate Stats; safe for concurrent use.
type Counters struct {
	commits, writes, appends, events, largest atomic.Int64
}

// Stats returns the counters.
func (c *Counters) Stats() Stats {
	return Stats{Commits: c.commits.Load(), Writes: c.writes.Load(), Appends: c.appends.Load(), Events: c.events.Load(), LargestBatch: c.largest.Load()}
}

// Committed counts a commit of live and tells each caller its outcome.
func Committed[T Op](c *Counters, live []T) {
	c.commits.Add(1)
	c.writes.Add(int64(len(live)))
	if n := int64(len(live)); n > c.largest.Load() {
		c.largest.Store(n)
	}
	for _, o := range live {
		t := o.ticket()
		if t.Append && t.Err == nil {
			c.appends.Add(1)
			c.events.Add(int64(t.Events))
		}
		t.Done()
	}
}

// Fail tells every caller of ops that its write failed with err.
func Fail[T Op](ops []T, err error) {
	for _, o := range ops {
		t := o.ticket()
		t.Err = err
		t.Done()
	}
}
