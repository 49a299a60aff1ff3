package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Validate checks what every backend requires of a new execution: an ID,
// and valid JSON in its JSON fields. Backends call it before writing.
func (e *Execution) Validate() error {
	if e == nil || e.ID == "" {
		return errors.New("journal: create: execution has no ID")
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"input", e.Input}, {"output", e.Output}, {"error", e.Error}, {"pauses", e.Pauses}} {
		if len(f.raw) > 0 && !json.Valid(f.raw) {
			return fmt.Errorf("journal: create %s: %s is not valid JSON", e.ID, f.name)
		}
	}
	return nil
}

// Validate checks what every backend requires of an append: a kind on
// every event, and valid JSON in event data and in the update.
func (a *Append) Validate() error {
	for i, ev := range a.Events {
		if ev.Kind == "" {
			return fmt.Errorf("journal: append to %s: event %d has no kind", a.ExecutionID, i)
		}
		if len(ev.Data) > 0 && !json.Valid(ev.Data) {
			return fmt.Errorf("journal: append to %s: event %d (%q, %s): data is not valid JSON", a.ExecutionID, i, ev.Path, ev.Kind)
		}
	}
	if u := a.Update; u != nil {
		for _, f := range []struct {
			name string
			raw  json.RawMessage
		}{{"output", u.Output}, {"error", u.Error}, {"pauses", u.Pauses}} {
			if len(f.raw) > 0 && !json.Valid(f.raw) {
				return fmt.Errorf("journal: append to %s: update %s is not valid JSON", a.ExecutionID, f.name)
			}
		}
	}
	return nil
}

// ApplyTo changes e as a backend applies u: set fields replace, Pauses
// "null" clears, a zero WakeAt clears. It copies what it takes.
func (u *Update) ApplyTo(e *Execution) {
	if u == nil {
		return
	}
	if u.State != nil {
		e.State = *u.State
	}
	if len(u.Output) > 0 {
		e.Output = bytes.Clone(u.Output)
	}
	if len(u.Error) > 0 {
		e.Error = bytes.Clone(u.Error)
	}
	if len(u.Pauses) > 0 {
		if bytes.Equal(bytes.TrimSpace(u.Pauses), []byte("null")) {
			e.Pauses = nil
		} else {
			e.Pauses = bytes.Clone(u.Pauses)
		}
	}
	if u.WakeAt != nil {
		e.WakeAt = u.WakeAt.UTC()
		if u.WakeAt.IsZero() {
			e.WakeAt = time.Time{}
		}
	}
}
