package duration

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"time"
)

// Pattern is the grammar of a Loom duration as a regular expression that
// Go's regexp and JSON Schema (ECMA-262) read alike: a Go duration ("90s",
// "1h30m") that may also use d for days ("2d", "1d12h", "12h1d"), or "0".
// The workflow schema and the standard tasks' input schemas use it.
const Pattern = `^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h|d))+)$`

var (
	re     = regexp.MustCompile(Pattern)
	partRE = regexp.MustCompile(`([0-9]+(?:\.[0-9]+)?)(ns|us|µs|μs|ms|s|m|h|d)`)
)

var units = map[string]float64{
	"ns": 1, "us": 1e3, "µs": 1e3, "μs": 1e3, "ms": 1e6,
	"s": 1e9, "m": 60e9, "h": 3600e9, "d": 86400e9,
}

// Match reports whether s has the grammar of a duration (Parse may still
// refuse it as too long).
func Match(s string) bool { return re.MatchString(s) }

// Parse parses a Loom duration (see Pattern); parts add up in any order.
// Negative durations are refused.
func Parse(s string) (time.Duration, error) {
	if !re.MatchString(s) {
		return 0, fmt.Errorf("%q is not a duration (like 90s, 1h30m or 2d)", s)
	}
	var total float64
	for _, m := range partRE.FindAllStringSubmatch(s, -1) {
		n, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration: %v", s, err)
		}
		total += n * units[m[2]]
	}
	if total >= math.MaxInt64 {
		return 0, fmt.Errorf("%q is too long a duration (at most about 290 years)", s)
	}
	return time.Duration(math.Round(total)), nil
}
