package journaltest

import (
	"context"
	"testing"
	"time"

	"github.com/loomwork/loom/journal"
)

// ClaimsAfterUpgrade checks a journal just migrated to a schema whose
// claim reads indexes of the queued starts and the begun running roots,
// built from records written before: root "resumed", which has events and
// no lease, is claimed (a resume) ahead of the older queued start "old-1";
// "old-1" comes next (a start); and once it begins and is released, it
// is claimed again as a resume, having left the queue of starts.
func ClaimsAfterUpgrade(t *testing.T, j journal.Journal) {
	t.Helper()
	ctx := context.Background()
	me := journal.Holder{ID: "me", Host: "h", PID: 1}
	claim := func() journal.Claim {
		t.Helper()
		res, err := j.Claim(ctx, journal.ClaimRequest{Holder: me, TTL: time.Hour, Limit: 1})
		if err != nil || len(res.Claims) != 1 {
			t.Fatalf("claim: %+v, %v", res, err)
		}
		return res.Claims[0]
	}
	if c := claim(); c.Lease.RootID != "resumed" || c.Reason != journal.ClaimResume {
		t.Fatalf("first claim: %s (%s), want resumed (resume)", c.Lease.RootID, c.Reason)
	}
	c := claim()
	if c.Lease.RootID != "old-1" || c.Reason != journal.ClaimStart {
		t.Fatalf("second claim: %s (%s), want old-1 (start)", c.Lease.RootID, c.Reason)
	}
	if _, err := j.Append(ctx, journal.Append{ExecutionID: "old-1", Token: c.Lease.Token, Release: true,
		Events: []journal.Event{{Path: "s0", Kind: journal.StepCompleted, Name: "task:echo", Data: []byte(`{"output":1}`)}}}); err != nil {
		t.Fatal(err)
	}
	if c := claim(); c.Lease.RootID != "old-1" || c.Reason != journal.ClaimResume {
		t.Fatalf("third claim: %s (%s), want old-1 (resume)", c.Lease.RootID, c.Reason)
	}
}
