package interpreter

import (
	"context"
	"sync"
	"time"

	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/secrets"
)

// appender writes one execution's events in order under the root's lease.
// Concurrent writers of the same execution (map items, parallel branches)
// are batched leader/follower style: a writer that finds a commit in flight
// leaves its events in the queue, and the next leader writes everything
// queued in one journal.Append. Across executions the journal backend groups
// the appends into shared transactions.
type appender struct {
	j     journal.Journal
	id    string
	token func() int64
	mask  *secrets.Masker // secret values to mask in what is written

	mu        sync.Mutex
	cond      *sync.Cond
	seq       int64 // last committed Seq
	queue     []journal.Event
	update    *journal.Update
	release   bool   // the next batch gives the lease up
	gen       uint64 // batch that newly queued events join
	committed uint64 // every batch below this one is committed
	flushing  bool
	err       error // sticky: once an append failed nothing more is written
	// stamp is the UpdatedAt the last committed append gave the record
	// (zero when the journal does not say: journal.Append.Stamp); scratch
	// receives it, touched only by the one flushing goroutine.
	stamp, scratch time.Time
}

func newAppender(j journal.Journal, id string, seq int64, token func() int64) *appender {
	a := &appender{j: j, id: id, seq: seq, token: token}
	a.cond = sync.NewCond(&a.mu)
	return a
}

// enqueue queues events to be written with the next commit, without
// waiting. Builtin values use it: they must be durable before any effect
// that depends on them, and every such effect commits through append.
func (a *appender) enqueue(evs ...journal.Event) {
	maskWrite(a.mask, evs, nil)
	a.mu.Lock()
	a.queue = append(a.queue, evs...)
	a.mu.Unlock()
}

// append writes evs (and upd, merged into any queued update) and returns
// once they, and everything queued before them, are committed.
func (a *appender) append(evs []journal.Event, upd *journal.Update) error {
	return a.write(evs, upd, false)
}

// appendRelease is append for a drive's last write: the lease is given up
// in the same commit.
func (a *appender) appendRelease(evs []journal.Event, upd *journal.Update) error {
	return a.write(evs, upd, true)
}

func (a *appender) write(evs []journal.Event, upd *journal.Update, release bool) error {
	maskWrite(a.mask, evs, upd)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.queue = append(a.queue, evs...)
	a.release = a.release || release
	if upd != nil {
		a.update = mergeUpdate(a.update, upd)
	}
	mine := a.gen
	for {
		if a.err != nil {
			return a.err
		}
		if a.committed > mine {
			return nil
		}
		if a.flushing {
			a.cond.Wait()
			continue
		}
		batch, bupd, brel, gen := a.queue, a.update, a.release, a.gen
		a.queue, a.update, a.release = nil, nil, false
		a.gen++
		if len(batch) == 0 && bupd == nil && !brel {
			a.committed = gen + 1
			continue
		}
		a.flushing = true
		expected := a.seq
		a.mu.Unlock()
		// The journal write must finish even when the caller's context is
		// cancelled (a map cancelling its remaining items): other writers'
		// events ride in this batch.
		a.scratch = time.Time{}
		seq, err := a.j.Append(context.Background(), journal.Append{
			ExecutionID: a.id, Token: a.token(), ExpectedSeq: expected,
			Events: batch, Update: bupd, Release: brel, Stamp: &a.scratch,
		})
		a.mu.Lock()
		a.flushing = false
		if err != nil {
			a.err = err
		} else {
			a.seq = seq
			a.committed = gen + 1
			a.stamp = a.scratch
		}
		a.cond.Broadcast()
	}
}

// lastStamp is the UpdatedAt the journal gave the record at the last
// committed append, or zero when it did not say.
func (a *appender) lastStamp() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stamp
}

func mergeUpdate(old, u *journal.Update) *journal.Update {
	if old == nil {
		c := *u
		return &c
	}
	m := *old
	if u.State != nil {
		m.State = u.State
	}
	if u.Output != nil {
		m.Output = u.Output
	}
	if u.Error != nil {
		m.Error = u.Error
	}
	if u.Pauses != nil {
		m.Pauses = u.Pauses
	}
	if u.WakeAt != nil {
		m.WakeAt = u.WakeAt
	}
	return &m
}
