package sqlite

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/internal/timetext"
)

// The compact forms schemaCompact stores (issue #14: at most 1 KB per finished
// 3-step execution). Each one reads back as exactly what was written.

// kindCodes are the integers the known event kinds are stored as: one
// byte on the event and in its key's index entry, where the text took up
// to 18. A kind not listed is stored as its text (the kind column is ANY).
// Append only: a code once written keeps its kind.
var kindCodes = map[journal.EventKind]int64{
	journal.StepCompleted:      1,
	journal.StepFailed:         2,
	journal.Builtin:            3,
	journal.PauseOpened:        4,
	journal.TimerSet:           5,
	journal.ChildStarted:       6,
	journal.ExecutionFinished:  7,
	journal.CancelRequested:    8,
	journal.TimedOut:           9,
	journal.DefinitionUpgraded: 10,
	journal.RerunOf:            11,
}

// codeKinds is kindCodes the other way round.
var codeKinds = func() map[int64]journal.EventKind {
	m := make(map[int64]journal.EventKind, len(kindCodes))
	for k, c := range kindCodes {
		m[c] = k
	}
	return m
}()

// kindValue is how kind is stored.
func kindValue(kind journal.EventKind) any {
	if c, ok := kindCodes[kind]; ok {
		return c
	}
	return string(kind)
}

// kindOf reads a stored kind back.
func kindOf(v any) (journal.EventKind, error) {
	switch v := v.(type) {
	case int64:
		if k, ok := codeKinds[v]; ok {
			return k, nil
		}
		return "", fmt.Errorf("unknown event kind code %d", v)
	case string:
		return journal.EventKind(v), nil
	case []byte:
		return journal.EventKind(v), nil
	}
	return "", fmt.Errorf("event kind %v (%T) is neither a code nor text", v, v)
}

// kindText is an SQL expression that renders the kind column as text,
// for the migration and the events_shown view.
func kindText(col string) string {
	var sb strings.Builder
	sb.WriteString("CASE " + col)
	for k, c := range kindCodes {
		fmt.Fprintf(&sb, " WHEN %d THEN '%s'", c, k)
	}
	sb.WriteString(" ELSE " + col + " END")
	return sb.String()
}

// kindCode is kindText's inverse: an SQL expression that turns the text
// kind in col into its code (the migration's).
func kindCode(col string) string {
	var sb strings.Builder
	sb.WriteString("CASE " + col)
	for k, c := range kindCodes {
		fmt.Fprintf(&sb, " WHEN '%s' THEN %d", k, c)
	}
	sb.WriteString(" ELSE " + col + " END")
	return sb.String()
}

// startedKey ends the Data of nearly every step event (journal.Encode):
// `,"started_at":"` + the attempt's start (RFC 3339, nanoseconds, UTC) +
// `"}`. That text, ~44 bytes, is stored as the number of nanoseconds the
// start came before the event's time, 2-4 bytes, in the events' started
// column.
const startedKey = `,"started_at":"`

// cutStarted splits data into what is stored: data without its trailing
// started_at member, and the start's distance before at. ok is false when
// data does not end so, or when the time would not be rendered back to
// the same text; then data is stored whole. The member is the top-level
// object's: the `,"` before its key cannot be inside a JSON string (a
// quote there is escaped), and the `}` after it is the document's last.
func cutStarted(data []byte, at time.Time) (rest []byte, before int64, ok bool) {
	n := len(data)
	if n < len(startedKey)+len(`Z"}`)+1 || data[n-1] != '}' || data[n-2] != '"' || data[0] != '{' {
		return nil, 0, false
	}
	i := bytes.LastIndex(data, []byte(startedKey))
	if i < 1 {
		return nil, 0, false
	}
	ts := data[i+len(startedKey) : n-2]
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil || !bytes.Equal(appendStarted(nil, t), ts) || !representable(t) || !representable(at) {
		return nil, 0, false
	}
	d := at.Sub(t)
	if d == math.MaxInt64 || d == math.MinInt64 { // saturated: not exact
		return nil, 0, false
	}
	rest = make([]byte, 0, i+1)
	rest = append(append(rest, data[:i]...), '}')
	return rest, int64(d), true
}

// restoreStarted is cutStarted's inverse: dst ends with the stored data
// less its closing brace, and restoreStarted appends the started_at
// member and the brace back, restoredExtra bytes in all (unless the
// start's year has more than four digits).
func restoreStarted(dst []byte, at time.Time, before int64) []byte {
	dst = append(dst, startedKey...)
	dst = appendStarted(dst, time.Unix(0, at.UnixNano()-before))
	return append(dst, `"}`...)
}

// restoredExtra is what restoreStarted adds: the key, a time in
// time.RFC3339Nano with a four-digit year, and the closing `"}`.
const restoredExtra = len(startedKey) + len("2006-01-02T15:04:05.999999999Z") + len(`"}`)

// appendStarted renders a start as journal.StepCompletedData.Encode does.
func appendStarted(b []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(b, time.RFC3339Nano)
}

// representable reports whether t is exact as Unix nanoseconds, which an
// int64 holds from 1677-09-21 to 2262-04-11: those whose whole second is
// strictly inside that range (timeNanos's test, the same in SQL).
func representable(t time.Time) bool {
	s := t.Unix()
	return s > -9223372037 && s < 9223372036
}

// timeValue is how a record's or a lease's time is stored: Unix
// nanoseconds, 8 bytes where the text took 30 (and as much again in each
// index that holds it). A time an int64 of nanoseconds cannot hold (a
// deadline past 2262) is stored as its text: SQLite sorts text after every
// integer, so such a time still sorts after the others. (A time before
// 1677 would sort wrongly; no clock gives one.)
func timeValue(t time.Time) any {
	if representable(t) {
		return t.UnixNano()
	}
	return timetext.Format(t)
}

// nullTimeValue is timeValue with the zero time as NULL.
func nullTimeValue(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return timeValue(t)
}

// storedTime scans a time column as it is (NULL, Unix nanoseconds or
// text); time parses it, so a value that does not parse reads as damage
// the caller names, not as a Scan error.
type storedTime struct{ v any }

// Scan implements sql.Scanner.
func (s *storedTime) Scan(src any) error {
	if b, ok := src.([]byte); ok {
		src = string(b) // the driver reuses its buffer
	}
	s.v = src
	return nil
}

// valid reports whether the column was not NULL.
func (s storedTime) valid() bool { return s.v != nil }

// time reads the stored time; the zero time for NULL.
func (s storedTime) time() (time.Time, error) {
	switch v := s.v.(type) {
	case nil:
		return time.Time{}, nil
	case int64:
		return time.Unix(0, v).UTC(), nil
	case string:
		return timetext.Parse(v)
	}
	return time.Time{}, fmt.Errorf("bad time %v (%T) in database", s.v, s.v)
}

// timeNanos is an SQL expression that converts the text time in col
// (timetext's layout) to Unix nanoseconds, where it is well formed and an
// int64 holds it, and leaves it as it is otherwise: schemaCompact's migration
// of the records' and leases' times, timeValue in SQL.
func timeNanos(col string) string {
	secs := `CAST(strftime('%s', substr(` + col + `, 1, 19)) AS INTEGER)`
	frac := `CAST(substr(` + col + `, 21, 9) AS INTEGER)`
	return `CASE WHEN typeof(` + col + `) = 'text'
		AND ` + col + ` GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]Z'
		AND strftime('%Y-%m-%dT%H:%M:%S', substr(` + col + `, 1, 19)) = substr(` + col + `, 1, 19)
		AND ` + secs + ` > -9223372037 AND ` + secs + ` < 9223372036
		THEN ` + secs + ` * 1000000000 + ` + frac + `
		ELSE ` + col + ` END`
}
