package server

import (
	"strings"
	"time"

	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/journal"
)

// ScheduleInfo is one scheduled workflow as `loom schedules --json` and
// GET /v1/schedules show it.
type ScheduleInfo struct {
	Workflow string    `json:"workflow"`
	Schedule string    `json:"schedule"`
	Cron     string    `json:"cron,omitempty"`
	Timezone string    `json:"timezone,omitempty"`
	Every    string    `json:"every,omitempty"`
	Overlap  string    `json:"overlap"`
	CatchUp  string    `json:"catch_up"`
	Last     *SlotInfo `json:"last"`
	// Due: a slot fell due and was not decided (no loom serve ran).
	Due  bool     `json:"due"`
	Next []string `json:"next"`
}

// SlotInfo is the last slot the journal decided for a schedule.
type SlotInfo struct {
	At          string `json:"at"`
	ExecutionID string `json:"execution_id,omitempty"`
	Skipped     string `json:"skipped,omitempty"`
	DecidedAt   string `json:"decided_at"`
}

// DescribeSchedule says when wf's schedule fires next after now, as the
// scheduler sees it: after the last decided slot, or, for a schedule no
// process has fired yet, after now less the grace a new schedule gets.
func DescribeSchedule(wf *definition.Workflow, last map[string]journal.ScheduleSlot, now time.Time, n int) ScheduleInfo {
	sch := wf.Schedule
	loc := sch.Location
	if loc == nil {
		loc = time.UTC
	}
	show := func(t time.Time) string { return t.In(loc).Format(time.RFC3339) }
	info := ScheduleInfo{Workflow: wf.Name, Schedule: sch.String(), Cron: sch.Cron,
		Overlap: string(sch.Overlap), CatchUp: string(sch.CatchUp), Next: []string{}}
	if sch.Every > 0 {
		info.Every = strings.TrimPrefix(sch.String(), "every ")
	} else {
		info.Timezone = loc.String()
	}
	from := now.Add(-definition.LateGrace)
	if l, ok := last[wf.Name]; ok {
		info.Last = &SlotInfo{At: show(l.At), ExecutionID: l.ExecutionID, Skipped: string(l.Skipped), DecidedAt: show(l.DecidedAt)}
		from = l.At
	}
	at := sch.Next(from)
	if !at.IsZero() && !at.After(now) {
		// One due slot stands for all that are; the catch-up policy
		// decides how many of them start.
		info.Due, info.Next = true, append(info.Next, show(at))
		at = sch.Next(now)
	}
	for len(info.Next) < n && !at.IsZero() {
		info.Next = append(info.Next, show(at))
		at = sch.Next(at)
	}
	return info
}
