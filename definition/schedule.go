package definition

import (
	"fmt"
	"strings"
	"time"
	// The time zones travel with the binary: a schedule in Europe/Berlin
	// must load the same on a slim container image without
	// /usr/share/zoneinfo as on a developer's laptop.
	_ "time/tzdata"

	"github.com/robfig/cron/v3"
	"github.com/santhosh-tekuri/jsonschema/v5"
	"gopkg.in/yaml.v3"

	"github.com/loomwork/loom/duration"
)

// Overlap is what a schedule does with a slot that falls due while the
// execution it started before is still open.
type Overlap string

// The overlap policies.
const (
	// OverlapSkip journals the slot as skipped (the default: Temporal's
	// and Kubernetes' Forbid).
	OverlapSkip Overlap = "skip"
	// OverlapQueue holds the slot until the open execution finishes, then
	// starts it; the catch-up policy decides how many held slots start.
	OverlapQueue Overlap = "queue"
	// OverlapAllow starts it anyway.
	OverlapAllow Overlap = "allow"
)

// CatchUp is what a schedule does with slots that fell due while no
// `loom serve` ran (or, with OverlapQueue, while the previous execution
// was open).
type CatchUp string

// The catch-up policies.
const (
	// CatchUpNone starts none of them: a slot more than LateGrace late is
	// journaled as missed.
	CatchUpNone CatchUp = "none"
	// CatchUpLatest starts the latest of them once (the default).
	CatchUpLatest CatchUp = "latest"
	// CatchUpAll starts every one of them, oldest first.
	CatchUpAll CatchUp = "all"
)

// LateGrace is how late a slot may be and still count as on time for
// CatchUpNone: a scheduler that polls, or a process that restarts in a few
// seconds, must not lose the slot it was about to fire.
const LateGrace = time.Minute

// Schedule is a workflow's `schedule:` key: when `loom serve` starts the
// workflow by itself.
type Schedule struct {
	// Cron is the cron expression as written ("" for Every), read in
	// Location.
	Cron     string
	Location *time.Location
	// Every fires at the multiples of it since the Unix epoch, so every
	// process computes the same slots.
	Every time.Duration
	// Input is each scheduled execution's input (nil: null), checked
	// against the workflow's input schema at load.
	Input   any
	Overlap Overlap
	CatchUp CatchUp
	Pos     Pos // of the schedule mapping

	spec cron.Schedule
}

// cronParser reads the five standard fields and the @hourly-style
// descriptors. Seconds are left out on purpose: cron users expect five
// fields, and a sub-minute schedule is better written as every.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Next returns the schedule's first slot strictly after t, in UTC (zero if
// the cron expression has none within five years).
func (s *Schedule) Next(t time.Time) time.Time {
	if s.Every > 0 {
		d := int64(s.Every)
		n := t.UnixNano()
		k := n / d
		if n < 0 && n%d != 0 {
			k-- // floor, for times before 1970
		}
		return time.Unix(0, (k+1)*d).UTC()
	}
	if s.spec == nil {
		return time.Time{}
	}
	return s.spec.Next(t).UTC()
}

// String says when the schedule fires, as written.
func (s *Schedule) String() string {
	if s.Every > 0 {
		return "every " + formatEvery(s.Every)
	}
	if s.Location != nil && s.Location != time.UTC {
		return s.Cron + " (" + s.Location.String() + ")"
	}
	return s.Cron + " (UTC)"
}

func formatEvery(d time.Duration) string {
	out := d.String()
	// 10m0s reads better as 10m.
	for _, suffix := range []string{"m0s", "h0m"} {
		if strings.HasSuffix(out, suffix) {
			out = strings.TrimSuffix(out, suffix[1:])
		}
	}
	return out
}

// cronNever is the time a cron expression's first slot is looked for from
// at load: fixed, so that a definition loads the same on every day.
var cronNever = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// schedule builds a workflow's schedule; the document schema has checked
// the keys and their types, so only what it cannot say is reported here.
func (b *builder) schedule(n *yaml.Node, raw any, wf *Workflow) *Schedule {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	m := fields(n)
	s := &Schedule{Overlap: OverlapSkip, CatchUp: CatchUpLatest, Location: time.UTC, Pos: b.pos(n)}
	if v, ok := str(m["overlap"]); ok {
		s.Overlap = Overlap(v)
	}
	if v, ok := str(m["catch_up"]); ok {
		s.CatchUp = CatchUp(v)
	}
	cronText, hasCron := str(m["cron"])
	_, hasEvery := m["every"]
	switch {
	case hasCron && hasEvery:
		b.add(b.pos(keyNode(n, "every")), "schedule: give either cron or every, not both")
		return nil
	case !hasCron && !hasEvery:
		b.add(s.Pos, "schedule: give cron (like \"0 9 * * MON-FRI\") or every (like 10m)")
		return nil
	}
	if zone, ok := str(m["timezone"]); ok {
		if !hasCron {
			b.add(b.pos(keyNode(n, "timezone")), "schedule.timezone applies to cron; every counts from 1970-01-01 UTC and has no time zone")
			return nil
		}
		loc, err := time.LoadLocation(zone)
		if err != nil || zone == "" || zone == "Local" {
			b.add(b.pos(m["timezone"]), fmt.Sprintf("schedule.timezone: %q is not an IANA time zone (like UTC, Europe/Berlin or America/New_York)", zone))
			return nil
		}
		s.Location = loc
	}
	if hasCron {
		if strings.HasPrefix(strings.TrimSpace(cronText), "@every") {
			b.add(b.pos(m["cron"]), "schedule.cron: write @every as the every key (like every: 10m), whose slots every process agrees on")
			return nil
		}
		if strings.Contains(cronText, "TZ=") {
			b.add(b.pos(m["cron"]), "schedule.cron: give the time zone as schedule.timezone, not inside the expression")
			return nil
		}
		spec, err := cronParser.Parse(cronText)
		if err != nil {
			b.add(b.pos(m["cron"]), fmt.Sprintf("schedule.cron: %q is not a cron expression (minute hour day-of-month month day-of-week, or @daily): %s", cronText, err))
			return nil
		}
		if ss, ok := spec.(*cron.SpecSchedule); ok {
			ss.Location = s.Location
		}
		s.Cron, s.spec = cronText, spec
		if s.Next(cronNever).IsZero() {
			b.add(b.pos(m["cron"]), fmt.Sprintf("schedule.cron: %q never fires (no such date)", cronText))
			return nil
		}
	} else {
		text, _ := str(m["every"])
		if d, err := duration.Parse(text); err == nil && d == 0 {
			b.add(b.pos(m["every"]), "schedule.every must be longer than 0")
			return nil
		}
		if s.Every = b.duration(m["every"]); s.Every <= 0 {
			return nil // the document schema reported it
		}
	}
	if rm, ok := raw.(map[string]any); ok {
		if sm, ok := rm["schedule"].(map[string]any); ok {
			s.Input = sm["input"]
		}
	}
	if wf.InputSchema != nil {
		ve, ok := wf.InputSchema.Validate(jsonRoundTrip(s.Input)).(*jsonschema.ValidationError)
		if ok {
			for len(ve.Causes) > 0 {
				ve = ve.Causes[0]
			}
			in := keyNode(n, "input")
			at, _ := nodeAt(m["input"], splitPointer(ve.InstanceLocation))
			switch {
			case at != nil:
			case in != nil:
				at = in
			default:
				at = n
			}
			where := ""
			if ve.InstanceLocation != "" {
				where = ve.InstanceLocation + ": "
			}
			b.add(b.pos(at), fmt.Sprintf("schedule.input does not match the workflow's input schema: %s%s", where, ve.Message))
			return nil
		}
	}
	return s
}
