package clock_test

import (
	"context"
	"testing"
	"time"

	"github.com/loomwork/loom/clock"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestFakeTimersFireInOrderWhenPassed(t *testing.T) {
	f := clock.NewFake(t0)
	a := f.NewTimer(2 * time.Second)
	b := f.NewTimer(time.Second)
	f.Advance(500 * time.Millisecond)
	select {
	case <-a.C():
		t.Fatal("a fired early")
	case <-b.C():
		t.Fatal("b fired early")
	default:
	}
	f.Advance(time.Second)
	if got := <-b.C(); !got.Equal(t0.Add(1500 * time.Millisecond)) {
		t.Errorf("b fired at %v", got)
	}
	if f.Pending() != 1 {
		t.Errorf("pending = %d, want 1", f.Pending())
	}
	if !a.Stop() || a.Stop() {
		t.Error("Stop of a pending timer must report true once")
	}
	if f.Pending() != 0 {
		t.Errorf("pending after Stop = %d", f.Pending())
	}
}

func TestFakeZeroTimerFiresAtOnce(t *testing.T) {
	f := clock.NewFake(t0)
	select {
	case <-f.NewTimer(0).C():
	default:
		t.Fatal("a timer of 0 did not fire at once")
	}
}

func TestFakeSetNeverGoesBack(t *testing.T) {
	f := clock.NewFake(t0)
	f.Set(t0.Add(-time.Hour))
	if !f.Now().Equal(t0) {
		t.Errorf("Now = %v after setting the past", f.Now())
	}
}

func TestWaitersAndDeadline(t *testing.T) {
	f := clock.NewFake(t0)
	ctx, cancel := clock.WithTimeout(context.Background(), f, time.Minute)
	defer cancel()
	if err := f.Waiters(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("deadline context done before its time")
	}
	f.Advance(time.Minute)
	<-ctx.Done()
	if !clock.Expired(ctx) {
		t.Errorf("Expired = false, cause %v", context.Cause(ctx))
	}
	c2, cancel2 := clock.WithTimeout(context.Background(), f, time.Minute)
	cancel2()
	if clock.Expired(c2) {
		t.Error("a cancelled context counts as expired")
	}
}

func TestWaitersGivesUpWithContext(t *testing.T) {
	f := clock.NewFake(t0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.Waiters(ctx, 1); err != context.Canceled {
		t.Errorf("Waiters = %v, want context.Canceled", err)
	}
}

func TestSleep(t *testing.T) {
	f := clock.NewFake(t0)
	done := make(chan error, 1)
	go func() { done <- clock.Sleep(context.Background(), f, time.Hour) }()
	if err := f.Waiters(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	f.Advance(time.Hour)
	if err := <-done; err != nil {
		t.Errorf("Sleep = %v", err)
	}
}

func TestSystemDeadlineIsContextDeadline(t *testing.T) {
	ctx, cancel := clock.WithDeadline(context.Background(), clock.System{}, time.Now().Add(-time.Second))
	defer cancel()
	<-ctx.Done()
	if !clock.Expired(ctx) {
		t.Error("a passed System deadline is not Expired")
	}
}
