package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// MaxIDLength is the longest execution id.
const MaxIDLength = 128

// ErrInvalidID is returned (wrapped, with a sentence saying why) for an
// execution id outside the safe alphabet (see CheckID).
var ErrInvalidID = errors.New("invalid execution id")

// CheckID reports whether id is a valid execution id: 1 to MaxIDLength
// ASCII letters, digits, '-', '_', '.' and ':', and neither "." nor "..".
// Ids are printed in listings, used in URLs and file names, and typed by
// people: an escape sequence, a right-to-left override or a path element in
// one would mislead every one of them.
func CheckID(id string) error {
	const rule = "an execution id is 1 to 128 letters, digits, '-', '_', '.' and ':', and not '.' or '..'"
	switch {
	case id == "":
		return fmt.Errorf("%w: it is empty; %s", ErrInvalidID, rule)
	case len(id) > MaxIDLength:
		return fmt.Errorf("%w: it is %d characters long; %s", ErrInvalidID, len(id), rule)
	case id == "." || id == "..":
		return fmt.Errorf("%w: %q is a path element; %s", ErrInvalidID, id, rule)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return fmt.Errorf("%w: it holds %s at byte %d; %s", ErrInvalidID, quoteByte(id, i), i+1, rule)
		}
	}
	return nil
}

// quoteByte renders the character at byte i of s, escaped when it is not
// printable ASCII.
func quoteByte(s string, i int) string {
	r, _ := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError {
		return fmt.Sprintf("the byte \\x%02x", s[i])
	}
	q := strconv.QuoteToASCII(string(r))
	return q
}

// Validate checks what every backend requires of a new execution: a valid
// ID (CheckID), and valid JSON in its JSON fields. Backends call it before
// writing.
func (e *Execution) Validate() error {
	if e == nil || e.ID == "" {
		return errors.New("journal: create: execution has no ID")
	}
	if err := CheckID(e.ID); err != nil {
		return fmt.Errorf("journal: create: %w", err)
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
