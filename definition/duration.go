package definition

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"time"
)

var durationRE = regexp.MustCompile(`^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h|d))+)$`)
var durationPartRE = regexp.MustCompile(`([0-9]+(?:\.[0-9]+)?)(ns|us|µs|μs|ms|s|m|h|d)`)

var durationUnits = map[string]float64{
	"ns": 1, "us": 1e3, "µs": 1e3, "μs": 1e3, "ms": 1e6,
	"s": 1e9, "m": 60e9, "h": 3600e9, "d": 86400e9,
}

// ParseDuration parses a Go duration ("90s", "1h30m") that may also use d
// for days ("2d", "1d12h"). Negative durations are refused.
func ParseDuration(s string) (time.Duration, error) {
	if !durationRE.MatchString(s) {
		return 0, fmt.Errorf("%q is not a duration (like 90s, 1h30m or 2d)", s)
	}
	var total float64
	for _, m := range durationPartRE.FindAllStringSubmatch(s, -1) {
		n, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration: %v", s, err)
		}
		total += n * durationUnits[m[2]]
	}
	if total >= math.MaxInt64 {
		return 0, fmt.Errorf("%q is too long a duration (at most about 290 years)", s)
	}
	return time.Duration(math.Round(total)), nil
}
