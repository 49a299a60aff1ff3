package interpreter_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
)

const slowFlow = `
name: w
steps:
  - task: slow
  - task: echo
    with: done
`

var other = journal.Holder{ID: "other-runner", Host: "elsewhere", PID: 7}

// The renewer extends the lease every third of its ttl while a drive runs,
// so the drive keeps its execution past the first expiry.
func TestLeaseIsRenewedWhileADriveRuns(t *testing.T) {
	leasesOnTheFakeClock(t)
	w := newFakeWorld(t, slowFlow, interpreter.WithLeaseTTL(30*time.Second))
	ctx := context.Background()
	done := w.startSlow("renewed")
	for i := 1; i <= 4; i++ {
		// The renewer's timer is the only one set; once it has fired, the
		// next one is set only after the renewal is written.
		if err := w.clk.Waiters(ctx, 1); err != nil {
			t.Fatal(err)
		}
		w.clk.Advance(10 * time.Second)
	}
	if err := w.clk.Waiters(ctx, 1); err != nil {
		t.Fatal(err)
	}
	l, err := w.j.LeaseOf(ctx, "renewed")
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(40*time.Second + 30*time.Second); !l.Expires.Equal(want) {
		t.Errorf("lease expires %v, want %v (renewed at +40s)", l.Expires, want)
	}
	// 40 s after it was taken, past its first expiry, it is still held.
	if _, err := w.j.Acquire(ctx, "renewed", other, time.Minute, 0); !errors.Is(err, journal.ErrBusy) {
		t.Fatalf("Acquire by another runner: %v, want busy", err)
	}
	close(w.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if l, _ := w.j.LeaseOf(ctx, "renewed"); l.Token != 0 {
		t.Errorf("the lease is still held after the drive: %+v", l)
	}
}

// One renewer serves every drive of an engine: two executions running at
// once share one timer, and both leases are renewed by it; when both
// drives are over, no timer is left.
func TestOneRenewerForConcurrentDrives(t *testing.T) {
	leasesOnTheFakeClock(t)
	w := newFakeWorld(t, slowFlow, interpreter.WithLeaseTTL(30*time.Second))
	ctx := context.Background()
	a := w.startSlow("a")
	b := w.startSlow("b")
	for i := 1; i <= 4; i++ {
		if err := w.clk.Waiters(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if n := w.clk.Pending(); n != 1 {
			t.Fatalf("%d timers pending for two drives' leases, want one", n)
		}
		w.clk.Advance(10 * time.Second)
	}
	if err := w.clk.Waiters(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		l, err := w.j.LeaseOf(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if want := t0.Add(40*time.Second + 30*time.Second); !l.Expires.Equal(want) {
			t.Errorf("lease of %s expires %v, want %v (renewed at +40s)", id, l.Expires, want)
		}
	}
	close(w.gate)
	for _, done := range []<-chan error{a, b} {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := w.clk.Pending(); n != 0 {
		t.Errorf("%d timers pending after both drives", n)
	}
}

// A renewal refused because another runner took the lease cancels the
// drive: the running task sees its context end, nothing more is written,
// and the drive reports the lost lease.
func TestLostLeaseCancelsTheDrive(t *testing.T) {
	w := newFakeWorld(t, slowFlow, interpreter.WithLeaseTTL(30*time.Second))
	ctx := context.Background()
	done := w.startSlow("lost")
	l, err := w.j.LeaseOf(ctx, "lost")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.j.Acquire(ctx, "lost", other, time.Minute, l.Token); err != nil {
		t.Fatal(err)
	}
	if err := w.clk.Waiters(ctx, 1); err != nil {
		t.Fatal(err)
	}
	w.clk.Advance(10 * time.Second)
	if err := <-done; !errors.Is(err, journal.ErrFenced) {
		t.Fatalf("Run = %v, want the lost lease", err)
	}
	evs, _ := w.j.Events(ctx, "lost", 0)
	if len(evs) != 0 || w.count("echo") != 0 {
		t.Fatalf("after losing its lease the drive wrote %d events and ran echo %d times", len(evs), w.count("echo"))
	}
}

// A lease nobody renews expires after its ttl: until then another runner
// is refused busy, after it takes the execution over.
func TestLeaseExpiresWhenNotRenewed(t *testing.T) {
	leasesOnTheFakeClock(t)
	w := newFakeWorld(t, `
name: w
steps:
  - pause: go
  - task: echo
    with: done
`)
	ctx := context.Background()
	ex := w.run("w", nil)
	wantState(t, ex, journal.Paused)
	// A runner on another host takes the lease and dies without renewing.
	if _, err := w.j.Acquire(ctx, ex.ID, other, 30*time.Second, 0); err != nil {
		t.Fatal(err)
	}
	w.clk.Advance(30*time.Second - time.Nanosecond)
	if _, err := w.eng.Resume(ctx, ex.ID, "x"); !errors.Is(err, interpreter.ErrBusy) {
		t.Fatalf("Resume while the lease is live: %v, want busy", err)
	}
	w.clk.Advance(time.Nanosecond)
	wantOutput(t, w.resume(ex.ID, "x"), `"done"`)
}

// startSlow runs slowFlow as id on its own goroutine and returns once its
// slow task runs; the channel gets Run's error.
func (w *world) startSlow(id string) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := w.eng.Run(context.Background(), "w", nil, interpreter.WithExecutionID(id))
		done <- err
	}()
	<-w.started
	return done
}

// Each drive holds its own lease: a second drive of an execution that one
// drive of the same engine is running is refused busy, and the task runs
// once (#8, defect 2).
func TestSecondConcurrentDriveIsBusy(t *testing.T) {
	w := newFakeWorld(t, `
name: w
steps:
  - pause: go
  - task: slow
  - task: echo
    with: done
`)
	ctx := context.Background()
	ex := w.run("w", nil)
	wantState(t, ex, journal.Paused)
	done := make(chan error, 1)
	go func() {
		_, err := w.eng.Resume(ctx, ex.ID, "x")
		done <- err
	}()
	<-w.started
	for _, second := range []func() error{
		func() error { _, err := w.eng.Resume(ctx, ex.ID, nil); return err },
		func() error { _, err := w.eng.Resume(ctx, ex.ID, nil, interpreter.OnlyDue()); return err },
		func() error { _, err := w.eng.Cancel(ctx, ex.ID); return err },
	} {
		if err := second(); !errors.Is(err, interpreter.ErrBusy) {
			t.Fatalf("a second drive while the first runs: %v, want busy", err)
		}
	}
	close(w.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := w.count("slow"); n != 1 {
		t.Fatalf("slow ran %d times, want 1", n)
	}
	got, err := w.eng.Get(ctx, ex.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantOutput(t, got, `"done"`)
}

// A drive under a lease its caller holds (a dispatcher's claim) renews and
// releases that lease; a lease for another root is refused.
func TestDriveUnderAHeldLease(t *testing.T) {
	w := newFakeWorld(t, `
name: w
steps:
  - pause: go
  - task: echo
    with: done
`)
	ctx := context.Background()
	ex := w.run("w", nil)
	l, err := w.j.Acquire(ctx, ex.ID, other, time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.eng.Resume(ctx, ex.ID, "x"); !errors.Is(err, interpreter.ErrBusy) {
		t.Fatalf("Resume beside the claim: %v, want busy", err)
	}
	wrong := l
	wrong.RootID = "another"
	if _, err := w.eng.Resume(ctx, ex.ID, "x", interpreter.WithLease(wrong)); !errors.Is(err, interpreter.ErrInvalidInput) {
		t.Fatalf("Resume with another root's lease: %v", err)
	}
	got, err := w.eng.Resume(ctx, ex.ID, "x", interpreter.WithLease(l))
	if err != nil {
		t.Fatal(err)
	}
	wantOutput(t, got, `"done"`)
	if cur, _ := w.j.LeaseOf(ctx, ex.ID); cur.Token != 0 {
		t.Errorf("the claim's lease is still held after the drive: %+v", cur)
	}
	// A call that returns without driving (the execution is finished)
	// releases the lease given all the same: the caller never does.
	l, err = w.j.Acquire(ctx, ex.ID, other, time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.eng.Resume(ctx, ex.ID, nil, interpreter.OnlyDue(), interpreter.WithLease(l)); err != nil {
		t.Fatalf("Resume of what is due of a finished execution: %v", err)
	}
	if _, err := w.eng.Cancel(ctx, ex.ID, interpreter.WithLease(l)); !errors.Is(err, interpreter.ErrFinished) {
		t.Fatalf("Cancel of a finished execution: %v, want ErrFinished", err)
	}
	if cur, _ := w.j.LeaseOf(ctx, ex.ID); cur.Token != 0 {
		t.Errorf("the lease given to a call that did not drive is still held: %+v", cur)
	}
}
