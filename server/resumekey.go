package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/loomwork/loom/journal"
)

// Who resumed or cancelled, and a resume's Idempotency-Key (SPEC §6).

// maxKeyLen bounds an Idempotency-Key: it is journaled with the resume.
const maxKeyLen = 255

// maxKeySearch bounds how many executions of a tree resumedWith reads.
const maxKeySearch = 1000

// idempotencyKey reads a resume's Idempotency-Key header ("" if none).
func idempotencyKey(r *http.Request) (string, error) {
	k := r.Header.Get("Idempotency-Key")
	if len(k) > maxKeyLen || strings.IndexFunc(k, func(c rune) bool { return c < 0x21 || c > 0x7e }) >= 0 {
		return "", badRequest("the Idempotency-Key must be 1 to %d printable ASCII characters without spaces", maxKeyLen)
	}
	return k, nil
}

// resumedWith reports whether a resume sent with key won a pause of
// execution id or of an execution it started (the resume's step.completed
// event carries the key).
func (s *Server) resumedWith(ctx context.Context, id, key string) (bool, error) {
	ids := []string{id}
	for i := 0; i < len(ids) && i < maxKeySearch; i++ {
		evs, err := s.j.Events(ctx, ids[i], 0)
		if err != nil {
			return false, err
		}
		for _, ev := range evs {
			switch {
			case ev.Kind == journal.StepCompleted && strings.HasPrefix(ev.Name, "pause:"):
				if d, err := journal.DecodeStepCompleted(ev.Data); err == nil && d.IdempotencyKey == key {
					return true, nil
				}
			case ev.Kind == journal.ChildStarted:
				if d, err := journal.DecodeData[journal.ChildStartedData](ev); err == nil && d.ID != "" {
					ids = append(ids, d.ID)
				}
			}
		}
	}
	return false, nil
}

// repeatedResume answers a repeat of a resume that won: 200 with the
// record, as the resume itself was answered (or err, if the search for it
// failed).
func (s *Server) repeatedResume(w http.ResponseWriter, r *http.Request, id string, wait time.Duration, until string, err error) error {
	if err != nil {
		return fmt.Errorf("cannot tell whether this resume was made before: %w", err)
	}
	got, err := s.await(r, id, wait, until)
	if err != nil {
		return err
	}
	return s.writeRecord(w, r, http.StatusOK, got)
}
