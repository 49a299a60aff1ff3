package duration_test

import (
	"regexp"
	"testing"
	"time"

	"github.com/loomwork/loom/duration"
)

func TestParse(t *testing.T) {
	for s, want := range map[string]time.Duration{
		"0": 0, "90s": 90 * time.Second, "1h30m": 90 * time.Minute, "2d": 48 * time.Hour,
		"1d12h": 36 * time.Hour, "12h1d": 36 * time.Hour, "1.5d": 36 * time.Hour, "0.5d": 12 * time.Hour,
		"250ms": 250 * time.Millisecond, "1µs": time.Microsecond, "1us": time.Microsecond,
	} {
		if got, err := duration.Parse(s); err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v; want %v", s, got, err, want)
		}
		if !duration.Match(s) {
			t.Errorf("Match(%q) = false", s)
		}
	}
	for s, msg := range map[string]string{
		"":        `"" is not a duration (like 90s, 1h30m or 2d)`,
		"-1s":     `"-1s" is not a duration (like 90s, 1h30m or 2d)`,
		"1":       `"1" is not a duration (like 90s, 1h30m or 2d)`,
		"1 s":     `"1 s" is not a duration (like 90s, 1h30m or 2d)`,
		"s":       `"s" is not a duration (like 90s, 1h30m or 2d)`,
		"1w":      `"1w" is not a duration (like 90s, 1h30m or 2d)`,
		"d":       `"d" is not a duration (like 90s, 1h30m or 2d)`,
		"1e3d":    `"1e3d" is not a duration (like 90s, 1h30m or 2d)`,
		"2dd":     `"2dd" is not a duration (like 90s, 1h30m or 2d)`,
		".5s":     `".5s" is not a duration (like 90s, 1h30m or 2d)`,
		"Infd":    `"Infd" is not a duration (like 90s, 1h30m or 2d)`,
		"200000d": `"200000d" is too long a duration (at most about 290 years)`,
	} {
		got, err := duration.Parse(s)
		if err == nil {
			t.Errorf("Parse(%q) = %v, want an error", s, got)
		} else if err.Error() != msg {
			t.Errorf("Parse(%q): %v\nwant %s", s, err, msg)
		}
	}
}

// Pattern is read alike by Go and by JSON Schema's ECMA-262 dialect: no
// construct the two read differently (lookarounds, \d, flags).
func TestPatternIsPortable(t *testing.T) {
	if regexp.MustCompile(`\(\?|\\[dDwWsSbB]`).MatchString(duration.Pattern) {
		t.Fatalf("Pattern %s uses a construct Go and ECMA-262 read differently", duration.Pattern)
	}
}
