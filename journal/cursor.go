package journal

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrBadCursor: a Filter.After that no List page handed out (malformed,
// from another program, or from a list in another Order).
var ErrBadCursor = errors.New("bad cursor")

// cursorVersions prefix every cursor, one per Order, so that a later
// format, or a cursor of another order, can be told apart from this one.
var cursorVersions = map[Order]string{NewestCreated: "1", OldestUpdated: "u1"}

// cursorLayout is the cursor's time: UTC, nine fractional digits, so the
// position survives nanosecond by nanosecond.
const cursorLayout = "2006-01-02T15:04:05.000000000Z"

// CursorAt is the opaque cursor of e's position in List's default order
// (NewestCreated): a Filter with After set to it lists the executions
// after e. A caller pages by passing the cursor of the last record of a
// page (asking for Limit+1 records tells whether another page follows).
func CursorAt(e *Execution) string { return NewestCreated.CursorAt(e) }

// ParseCursor reads a cursor of CursorAt back into the position it names:
// backends list the executions strictly before (createdAt, id) in
// newest-first order. An error wraps ErrBadCursor.
func ParseCursor(c string) (createdAt time.Time, id string, err error) {
	return NewestCreated.ParseCursor(c)
}

// CursorAt is the opaque cursor of e's position in o: its (CreatedAt, ID)
// for NewestCreated, its (UpdatedAt, ID) for OldestUpdated.
func (o Order) CursorAt(e *Execution) string {
	at := e.CreatedAt
	if o == OldestUpdated {
		at = e.UpdatedAt
	}
	raw := cursorVersions[o] + "|" + at.UTC().Format(cursorLayout) + "|" + e.ID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// ParseCursor reads a cursor of o.CursorAt back into the position it
// names, (time, id): backends list the executions strictly after it in o.
// A cursor of another order is as bad as a malformed one. An error wraps
// ErrBadCursor.
func (o Order) ParseCursor(c string) (at time.Time, id string, err error) {
	bad := fmt.Errorf("%w: not a cursor a list page handed out", ErrBadCursor)
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", bad
	}
	parts := strings.SplitN(string(raw), "|", 3)
	if v, ok := cursorVersions[o]; len(parts) != 3 || !ok || parts[0] != v || parts[2] == "" {
		return time.Time{}, "", bad
	}
	t, err := time.Parse(cursorLayout, parts[1])
	if err != nil {
		return time.Time{}, "", bad
	}
	return t, parts[2], nil
}
