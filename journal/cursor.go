package journal

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrBadCursor: a Filter.After that no List page handed out (malformed, or
// from another program).
var ErrBadCursor = errors.New("bad cursor")

// cursorVersion prefixes every cursor, so that a later format can be told
// apart from this one.
const cursorVersion = "1"

// cursorLayout is the cursor's time: UTC, nine fractional digits, so the
// position survives nanosecond by nanosecond.
const cursorLayout = "2006-01-02T15:04:05.000000000Z"

// CursorAt is the opaque cursor of e's position in List's order (CreatedAt,
// then ID, newest first): a Filter with After set to it lists the
// executions after e. A caller pages by passing the cursor of the last
// record of a page (asking for Limit+1 records tells whether another page
// follows).
func CursorAt(e *Execution) string {
	raw := cursorVersion + "|" + e.CreatedAt.UTC().Format(cursorLayout) + "|" + e.ID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// ParseCursor reads a cursor of CursorAt back into the position it names:
// backends list the executions strictly before (createdAt, id) in
// newest-first order. An error wraps ErrBadCursor.
func ParseCursor(c string) (createdAt time.Time, id string, err error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("%w: not a cursor a list page handed out", ErrBadCursor)
	}
	parts := strings.SplitN(string(raw), "|", 3)
	if len(parts) != 3 || parts[0] != cursorVersion || parts[2] == "" {
		return time.Time{}, "", fmt.Errorf("%w: not a cursor a list page handed out", ErrBadCursor)
	}
	t, err := time.Parse(cursorLayout, parts[1])
	if err != nil {
		return time.Time{}, "", fmt.Errorf("%w: not a cursor a list page handed out", ErrBadCursor)
	}
	return t, parts[2], nil
}
