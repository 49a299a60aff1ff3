// Package timetext is how the SQL journal backends store times as text:
// RFC 3339 in UTC with a fixed nine-digit fraction, so nanoseconds survive
// a round trip and text order is time order (List and the Due filter
// compare the text). PostgreSQL stores every time so; SQLite the times of
// its workers and schedule slots, and a record's or lease's time only when
// Unix nanoseconds cannot hold it (past 2262).
package timetext

import (
	"fmt"
	"time"
)

// Layout is RFC 3339 with a fixed nine-digit fraction.
const Layout = "2006-01-02T15:04:05.000000000Z"

// Format renders t in UTC with Layout.
func Format(t time.Time) string { return t.UTC().Format(Layout) }

// Parse reads a stored time back, in UTC.
func Parse(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad time %q in database: %w", s, err)
	}
	return t.UTC(), nil
}
