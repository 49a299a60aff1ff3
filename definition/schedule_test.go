package definition_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/loomwork/loom/definition"
)

func scheduleOf(t *testing.T, src string) *definition.Schedule {
	t.Helper()
	cat, err := definition.Parse("s.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	s := cat.Workflow("s").Schedule
	if s == nil {
		t.Fatal("no schedule")
	}
	return s
}

func TestScheduleNext(t *testing.T) {
	utc := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		schedule, from, want, str string
	}{
		// Strictly after: a slot time itself gives the next one.
		{`{every: 10m}`, "2026-11-29T10:03:00Z", "2026-11-29T10:10:00Z", "every 10m"},
		{`{every: 10m}`, "2026-11-29T10:10:00Z", "2026-11-29T10:20:00Z", "every 10m"},
		{`{every: 1d}`, "2026-11-29T10:10:00Z", "2026-11-30T00:00:00Z", "every 24h"},
		// Weekdays at 9 in Berlin: Friday after 9 → Monday 9:00 CET (8:00 UTC).
		{`{cron: "0 9 * * MON-FRI", timezone: Europe/Berlin}`, "2026-11-27T09:30:00Z", "2026-11-30T08:00:00Z", "0 9 * * MON-FRI (Europe/Berlin)"},
		// Summer time: 9:00 CEST is 7:00 UTC.
		{`{cron: "0 9 * * *", timezone: Europe/Berlin}`, "2026-07-01T12:00:00Z", "2026-07-02T07:00:00Z", "0 9 * * * (Europe/Berlin)"},
		{`{cron: "@hourly"}`, "2026-11-29T10:00:00Z", "2026-11-29T11:00:00Z", "@hourly (UTC)"},
	} {
		s := scheduleOf(t, "name: s\nschedule: "+tc.schedule+"\nsteps:\n  - set: {x: 1}\n")
		if got := s.Next(utc(tc.from)); !got.Equal(utc(tc.want)) {
			t.Errorf("%s: Next(%s) = %s, want %s", tc.schedule, tc.from, got.Format(time.RFC3339), tc.want)
		}
		if s.String() != tc.str {
			t.Errorf("%s: String() = %q, want %q", tc.schedule, s.String(), tc.str)
		}
	}
}

func TestScheduleDefaults(t *testing.T) {
	s := scheduleOf(t, "name: s\ninput: {type: object}\nschedule: {every: 5m, input: {region: eu}}\nsteps:\n  - set: {x: 1}\n")
	if s.Overlap != definition.OverlapSkip || s.CatchUp != definition.CatchUpLatest {
		t.Errorf("defaults: overlap %q, catch_up %q; want skip, latest", s.Overlap, s.CatchUp)
	}
	if fmt.Sprint(s.Input) != "map[region:eu]" {
		t.Errorf("input = %v", s.Input)
	}
}
