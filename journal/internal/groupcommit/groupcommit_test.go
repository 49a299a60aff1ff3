package groupcommit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type op struct {
	Ticket
	n int
}

var errClosed = errors.New("closed")

// A batch is everything queued while the previous commit ran, each caller
// hears back after its commit, and Stats count it.
func TestBatchesAndOutcomes(t *testing.T) {
	q := NewQueue[*op](64, errClosed)
	var c Counters
	release, holding := make(chan struct{}), make(chan struct{})
	var batches [][]int
	var mu sync.Mutex
	go q.Run(100, func(batch []*op) {
		live := Live(batch)
		if len(live) > 0 && live[0].n == 0 {
			close(holding)
			<-release // hold the first commit so the rest queue behind it
		}
		ns := []int{}
		for _, o := range live {
			ns = append(ns, o.n)
			if o.n == 3 {
				o.Err = errors.New("refused")
			}
		}
		mu.Lock()
		batches = append(batches, ns)
		mu.Unlock()
		Committed(&c, live)
	})
	var wg sync.WaitGroup
	errs := make([]error, 6)
	first := &op{n: 0}
	first.Append, first.Events = true, 2
	wg.Go(func() { errs[0] = q.Submit(context.Background(), first) })
	<-holding // the first commit runs, alone
	for i := 1; i < 6; i++ {
		wg.Go(func() { errs[i] = q.Submit(context.Background(), &op{n: i}) })
	}
	for q.Len() < 5 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if len(batches) != 2 || len(batches[0]) != 1 || len(batches[1]) != 5 {
		t.Fatalf("batches = %v, want [0] then the five queued behind it", batches)
	}
	for i, err := range errs {
		if (i == 3) != (err != nil) {
			t.Errorf("op %d: err %v", i, err)
		}
	}
	if s := c.Stats(); s.Commits != 2 || s.Writes != 6 || s.Appends != 1 || s.Events != 2 || s.LargestBatch != 5 {
		t.Errorf("stats = %+v", s)
	}
	if !q.Close() || q.Close() {
		t.Error("Close should report true once, then false")
	}
	if err := q.Submit(context.Background(), &op{}); !errors.Is(err, errClosed) {
		t.Errorf("Submit after Close: %v", err)
	}
}

// A caller whose context ends while its write is still queued gets the
// context's error, and the writer skips the write.
func TestAbandonedWriteNeverRuns(t *testing.T) {
	q := NewQueue[*op](8, errClosed)
	hold, holding := make(chan struct{}), make(chan struct{})
	ran := make(chan int, 8)
	var c Counters
	go q.Run(8, func(batch []*op) {
		live := Live(batch)
		for _, o := range live {
			if o.n == 0 {
				close(holding)
				<-hold
			}
			ran <- o.n
		}
		Committed(&c, live)
	})
	go func() { _ = q.Submit(context.Background(), &op{n: 0}) }()
	<-holding // op 0's commit holds the writer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- q.Submit(ctx, &op{n: 1}) }()
	for q.Len() < 1 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned Submit: %v", err)
	}
	close(hold)
	q.Close()
	close(ran)
	for n := range ran {
		if n == 1 {
			t.Fatal("an abandoned write ran")
		}
	}
}
