package cli

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/interpreter"
)

// DefaultInputLimit is the largest input or resume payload, in bytes of
// its JSON text: 2 MiB, as Temporal's payloads.
const DefaultInputLimit = 2 << 20

// limits are the limits a command runs within (SPEC §5), set by --limits or
// $LOOM_LIMITS as NAME=VALUE,NAME=VALUE; the flag wins over the variable
// name by name.
type limits struct {
	input  int // bytes of an input or resume payload
	engine interpreter.Limits
}

// limitSpec is one settable limit: its name, what it bounds, and where it
// is stored.
type limitSpec struct {
	name, help string
	size       bool // a size in bytes (KiB, MiB, GiB suffixes), else a count
	set        func(*limits, int)
}

var limitSpecs = []limitSpec{
	{name: "input", help: "the size of an input or a resume payload (default 2MiB)", size: true,
		set: func(l *limits, n int) { l.input = n }},
	{name: "expr-value", help: "the size of a value one expression operation builds (default 2MiB)", size: true,
		set: func(l *limits, n int) { l.engine.Expr.Value = n }},
	{name: "expr-total", help: "the size of the values one evaluation builds (default 16MiB)", size: true,
		set: func(l *limits, n int) { l.engine.Expr.Total = n }},
	{name: "expr-ops", help: "the operations of one evaluation (default 1000000)",
		set: func(l *limits, n int) { l.engine.Expr.Ops = n }},
	{name: "map-items", help: "the items one map step may run (default 100000)",
		set: func(l *limits, n int) { l.engine.MapItems = n }},
}

var flagLimit = flagSpec{"limits", "NAME=N,…", "raise or lower a limit: " + limitNames() + " (default $LOOM_LIMITS; see `loom help run`)"}

func limitNames() string {
	names := make([]string, len(limitSpecs))
	for i, s := range limitSpecs {
		names[i] = s.name
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// limits returns the limits of this invocation: defaults, then
// $LOOM_LIMITS, then --limits.
func (a *app) limits() (limits, error) {
	l := limits{input: DefaultInputLimit}
	for _, src := range []struct{ what, text string }{{"$LOOM_LIMITS", a.getenv("LOOM_LIMITS")}, {"--limits", a.p.get("limits")}} {
		if err := parseLimits(&l, src.what, src.text); err != nil {
			return l, err
		}
	}
	return l, nil
}

func parseLimits(l *limits, what, text string) error {
	for _, item := range strings.Split(text, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, value, ok := strings.Cut(item, "=")
		if !ok {
			return usagef("%s: %q is not NAME=VALUE (limits: %s)", what, item, limitNames())
		}
		var spec *limitSpec
		for i := range limitSpecs {
			if limitSpecs[i].name == strings.TrimSpace(name) {
				spec = &limitSpecs[i]
			}
		}
		if spec == nil {
			return usagef("%s: unknown limit %q (limits: %s)", what, name, limitNames())
		}
		n, err := parseLimitValue(strings.TrimSpace(value), spec.size)
		if err != nil {
			return usagef("%s: %s=%s: %v", what, spec.name, value, err)
		}
		spec.set(l, n)
	}
	return nil
}

// parseLimitValue reads a positive count, or a size with an optional KiB,
// MiB or GiB suffix.
func parseLimitValue(s string, size bool) (int, error) {
	mult := 1
	if size {
		for _, u := range []struct {
			suffix string
			mult   int
		}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
			if strings.HasSuffix(s, u.suffix) {
				s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
				break
			}
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		if size {
			return 0, fmt.Errorf("want a positive size such as 4MiB, 512KiB or 1048576")
		}
		return 0, fmt.Errorf("want a positive whole number")
	}
	return n * mult, nil
}

// sizeLimitError is an input larger than the input limit.
func sizeLimitError(src string, limit int) error {
	return &cliError{kind: kindRefused,
		msg:  fmt.Sprintf("%s is larger than the input limit of %s", src, definition.FormatSize(limit)),
		hint: "nothing was done; --limits input=SIZE raises it"}
}
