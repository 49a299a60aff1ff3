package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loomwork/loom/journal"
)

// downJournal refuses claims as an unavailable journal does while down is
// set (issue #11, defect 7).
type downJournal struct {
	journal.Journal
	down atomic.Bool
}

func (d *downJournal) Claim(ctx context.Context, r journal.ClaimRequest) (journal.ClaimResult, error) {
	if d.down.Load() {
		return journal.ClaimResult{}, &journal.UnavailableError{Err: errors.New("database or disk is full")}
	}
	return d.Journal.Claim(ctx, r)
}

func TestRetryWait(t *testing.T) {
	for _, c := range []struct {
		poll     time.Duration
		failures int
		want     time.Duration
	}{
		{time.Second, 1, time.Second},
		{time.Second, 2, 2 * time.Second},
		{time.Second, 3, 4 * time.Second},
		{time.Second, 5, 16 * time.Second},
		{time.Second, 6, 30 * time.Second},
		{time.Second, 1000, 30 * time.Second},
		{time.Minute, 3, time.Minute}, // a poll slower than the cap is not hurried
	} {
		if got := retryWait(c.poll, c.failures); got != c.want {
			t.Errorf("retryWait(%s, %d) = %s, want %s", c.poll, c.failures, got, c.want)
		}
	}
}

// TestClaimOutage: while the journal refuses claims, /readyz answers 503
// saying why, and the dispatcher retries with a growing wait; once the
// journal is back, the next retry claims again and /readyz answers 200.
func TestClaimOutage(t *testing.T) {
	dj := &downJournal{}
	h := newHarness(t, func(c *Config) { dj.Journal = c.Journal; c.Journal = dj })
	dj.down.Store(true)
	for range 3 { // a pass that began before the outage ends first
		h.srv.wake()
		<-h.polled
	}
	st, body := readyz(t, h)
	if st != http.StatusServiceUnavailable || !strings.HasPrefix(body, "the dispatcher cannot claim work: the journal is unavailable: database or disk is full (") {
		t.Fatalf("readyz during the outage: %d %q", st, body)
	}
	f := h.srv.claimErr.Load()
	if f == nil || f.failures < 2 || f.retry < retryWait(h.srv.cfg.PollInterval, f.failures)*8/10 {
		t.Fatalf("after %+v, the dispatcher waits less than its backoff", f)
	}
	dj.down.Store(false)
	// Past the retry, however jittered; again if the signal was a pass
	// that began before the journal came back.
	for i := 0; h.srv.claimErr.Load() != nil; i++ {
		if i == 10 {
			t.Fatal("the dispatcher does not claim again once the journal is back")
		}
		h.clock.Advance(2 * maxRetryWait)
		<-h.polled
	}
	// Ready once the heartbeat the journal refused is journaled too (its
	// timer has passed: a commit of the heartbeat goroutine to wait for).
	untilReady(t, h)
}

// untilReady waits for /readyz to answer 200, each other answer being 503:
// an asynchronous commit (the first heartbeat), not a timer, is awaited.
func untilReady(t *testing.T, h *harness) {
	t.Helper()
	for i := 0; ; i++ {
		st, body := readyz(t, h)
		if st == http.StatusOK {
			return
		}
		if st != http.StatusServiceUnavailable || i == 1000 {
			t.Fatalf("readyz: %d %q", st, body)
		}
		time.Sleep(time.Millisecond)
	}
}

func readyz(t *testing.T, h *harness) (int, string) {
	t.Helper()
	resp, err := http.Get(h.http.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
