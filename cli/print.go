package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/server"
)

// record is the JSON form of an execution (SPEC §5, --json).
type record struct {
	ID        string              `json:"id"`
	Workflow  string              `json:"workflow"`
	Version   int                 `json:"version"`
	State     journal.State       `json:"state"`
	Input     any                 `json:"input"`
	Output    any                 `json:"output"`
	Error     *interpreter.Error  `json:"error"`
	Pauses    []interpreter.Pause `json:"pauses"`
	ParentID  *string             `json:"parent_id"`
	CreatedAt time.Time           `json:"created_at"`
	UpdatedAt time.Time           `json:"updated_at"`
	// WakeAt is set while the execution waits on a timer.
	WakeAt *time.Time `json:"wake_at,omitempty"`
	// Journal names the journal the record was read from (SQLite file or
	// PostgreSQL URL without password): an id means nothing without it.
	Journal string `json:"journal,omitempty"`
	// Holder is the runner holding an unfinished execution's lease
	// (status --json):
	// the API record's, so both ways print the same.
	Holder *server.Holder `json:"holder,omitempty"`
}

// recordOf is ex's record, naming the journal it was read from.
func (a *app) recordOf(ex *interpreter.Execution) record {
	r := recordOf(ex)
	r.Journal = a.journalUsed
	return r
}

func recordOf(ex *interpreter.Execution) record {
	r := record{ID: ex.ID, Workflow: ex.Workflow, Version: ex.Version, State: ex.State,
		Input: ex.Input, Output: ex.Output, Error: ex.Error, Pauses: sortedPauses(ex.Pauses),
		CreatedAt: ex.CreatedAt.UTC(), UpdatedAt: ex.UpdatedAt.UTC()}
	if r.Pauses == nil {
		r.Pauses = []interpreter.Pause{}
	}
	if ex.ParentID != "" {
		p := ex.ParentID
		r.ParentID = &p
	}
	if !ex.WakeAt.IsZero() && !ex.State.Finished() {
		w := ex.WakeAt.UTC()
		r.WakeAt = &w
	}
	return r
}

// printJSON prints v as one line of JSON on stdout.
func (a *app) printJSON(v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("cannot print the result as JSON: %v", err)
	}
	_, err := a.stdout.Write(safeJSON(b.Bytes()))
	return err
}

// compact renders v as JSON in at most n characters, safe to print.
func compact(v any, n int) string {
	b, err := json.Marshal(v)
	if err != nil {
		return safe(fmt.Sprint(v))
	}
	s := string(safeJSON(b))
	if n > 0 && len([]rune(s)) > n {
		return string([]rune(s)[:n-1]) + "…"
	}
	return s
}

// statusLine says on stderr where an execution got to and, when it is not
// finished, the exact command that continues it.
func (a *app) statusLine(ex *interpreter.Execution) {
	w, p := a.stderr, a.prog()
	id, wf := safe(ex.ID), safe(ex.Workflow)
	switch ex.State {
	case journal.Completed:
		fmt.Fprintf(w, "%s: execution %s of %s completed\n", p, id, wf)
	case journal.Failed:
		fmt.Fprintf(w, "%s: execution %s of %s failed: %s\n", p, id, wf, describeError(ex.Error))
	case journal.Cancelled:
		fmt.Fprintf(w, "%s: execution %s of %s was cancelled\n", p, id, wf)
	case journal.Paused:
		ps := sortedPauses(ex.Pauses)
		if len(ps) == 1 {
			fmt.Fprintf(w, "%s: execution %s of %s is paused at %s (pause %s)\n", p, id, wf, safe(ps[0].Path), safe(ps[0].Name))
		} else {
			fmt.Fprintf(w, "%s: execution %s of %s is paused at %d pauses\n", p, id, wf, len(ps))
		}
		a.printPauses(w, ex, len(ps) > 1)
	case journal.Waiting:
		when := "its timer"
		if !ex.WakeAt.IsZero() {
			when = "its timer, due at " + ex.WakeAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s: execution %s of %s is waiting for %s\n", p, id, wf, when)
		fmt.Fprintf(w, "  continue it once due with: %s (or %s from cron)\n", a.command("resume", ex.ID), a.command("resume", "--due"))
	default:
		fmt.Fprintf(w, "%s: execution %s of %s was interrupted and is still %s\n", p, id, wf, safe(string(ex.State)))
		fmt.Fprintf(w, "  continue it with: %s\n", a.command("resume", ex.ID))
	}
}

// command renders a loom command line to copy, with --db when the journal
// was named by the flag.
func (a *app) command(args ...string) string {
	parts := []string{a.prog()}
	for _, s := range args {
		parts = append(parts, shellQuote(safe(s)))
	}
	if a.p.has("db") {
		parts = append(parts, "--db", shellQuote(safe(a.p.get("db"))))
	}
	return strings.Join(parts, " ")
}

// printPauses prints, for each open pause of ex, its payload schema,
// deadline and the command that resumes it; named says each pause's path
// and name first.
func (a *app) printPauses(w io.Writer, ex *interpreter.Execution, named bool) {
	ps := sortedPauses(ex.Pauses)
	for _, pz := range ps {
		if named {
			where := ""
			if pz.ExecutionID != "" {
				where = " in child " + safe(pz.ExecutionID)
			}
			fmt.Fprintf(w, "  %s (pause %s)%s\n", safe(pz.Path), safe(pz.Name), where)
		}
		if pz.Schema != nil {
			fmt.Fprintf(w, "  payload schema: %s\n", compact(pz.Schema, 300))
		}
		if pz.Deadline != nil {
			fmt.Fprintf(w, "  deadline: %s (then it fails with PauseTimeout)\n", pz.Deadline.UTC().Format(timeLayout))
		}
		fmt.Fprintf(w, "  continue it with: %s\n", a.resumeCommand(ex.ID, pz, len(ps) > 1))
	}
}

func (a *app) resumeCommand(id string, pz interpreter.Pause, several bool) string {
	args := []string{"resume", id}
	if several {
		args = append(args, "--pause", pz.Path)
	}
	if pz.Schema != nil {
		args = append(args, "--input", compact(exampleOf(pz.Schema), 0))
	}
	return a.command(args...)
}

// exampleOf builds a value of the shape a JSON Schema asks for: its
// example, default, const or first enum value, else the required
// properties of an object filled the same way. It fills a resume command
// to edit, not a value to send blindly.
func exampleOf(schema any) any {
	s, ok := schema.(map[string]any)
	if !ok {
		return nil
	}
	if ex, ok := s["examples"].([]any); ok && len(ex) > 0 {
		return ex[0]
	}
	for _, k := range []string{"default", "const"} {
		if v, ok := s[k]; ok {
			return v
		}
	}
	if e, ok := s["enum"].([]any); ok && len(e) > 0 {
		return e[0]
	}
	typ, _ := s["type"].(string)
	if l, ok := s["type"].([]any); ok && len(l) > 0 {
		typ, _ = l[0].(string)
	}
	if typ == "" {
		if _, ok := s["properties"]; ok {
			typ = "object"
		}
	}
	switch typ {
	case "object":
		out := map[string]any{}
		props, _ := s["properties"].(map[string]any)
		req, _ := s["required"].([]any)
		for _, r := range req {
			if name, ok := r.(string); ok {
				out[name] = exampleOf(props[name])
			}
		}
		return out
	case "array":
		return []any{}
	case "string":
		return ""
	case "boolean":
		return true
	case "integer", "number":
		if m, ok := s["minimum"]; ok {
			return m
		}
		return 0
	}
	return nil
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@%+=,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// stepIndex matches a path's last segment when it is a step without id:
// "#2", "#2[1]", "#2@3".
var stepIndex = regexp.MustCompile(`^#(\d+)((?:\[\d+\])?(?:@\d+)?)$`)

// describeStep names the step at path for people, who count from one: a
// step without id is "the third step (#2)", or "the first step of
// guard/catch (guard/catch/#0)" when nested; a step with an id is "step
// ID".
func describeStep(path string) string {
	parent, last := "", path
	if k := strings.LastIndexByte(path, '/'); k >= 0 {
		parent, last = path[:k], path[k+1:]
	}
	m := stepIndex.FindStringSubmatch(last)
	if m == nil {
		return "step " + path
	}
	n, _ := strconv.Atoi(m[1])
	what := "the " + ordinal(n+1) + " step"
	if parent != "" {
		what += " of " + parent
	}
	return what + " (" + path + ")"
}

// ordinal spells n ≥ 1 as people say it in a list: first … tenth, then 11th.
func ordinal(n int) string {
	words := []string{"first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"}
	if n >= 1 && n <= len(words) {
		return words[n-1]
	}
	suffix := "th"
	switch {
	case n%100 >= 11 && n%100 <= 13:
	case n%10 == 1:
		suffix = "st"
	case n%10 == 2:
		suffix = "nd"
	case n%10 == 3:
		suffix = "rd"
	}
	return strconv.Itoa(n) + suffix
}

func describeError(e *interpreter.Error) string {
	if e == nil {
		return "no error recorded"
	}
	s := safe(e.Type)
	if e.Step != "" {
		s += " at " + describeStep(safe(e.Step))
	}
	s += ": " + safe(oneLine(e.Message))
	if e.Data != nil {
		s += " (data: " + compact(e.Data, 200) + ")"
	}
	return s
}

// printStatus prints loom status's table; h is the holder of a RUNNING
// execution's lease (nil for none), read from the journal or, through a
// server, from its record, which says whether it is gone.
func (a *app) printStatus(ex *interpreter.Execution, h *server.Holder) {
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, safe(v)) }
	row("id", ex.ID)
	row("workflow", fmt.Sprintf("%s (version %d)", ex.Workflow, ex.Version))
	row("state", string(ex.State))
	if ex.ParentID != "" {
		row("parent", ex.ParentID)
	}
	row("created", ex.CreatedAt.UTC().Format(timeLayout))
	row("updated", ex.UpdatedAt.UTC().Format(timeLayout))
	row("input", compact(ex.Input, 200))
	switch ex.State {
	case journal.Completed:
		row("output", compact(ex.Output, 200))
	case journal.Waiting:
		if !ex.WakeAt.IsZero() {
			row("wakes", ex.WakeAt.UTC().Format(timeLayout))
		}
	}
	if ex.Error != nil {
		row("error", describeError(ex.Error))
	}
	if line := a.holderLine(ex, h); line != "" {
		row("holder", line)
	}
	tw.Flush()
	if len(ex.Pauses) > 0 {
		fmt.Fprintln(a.stdout, "open pauses:")
		a.printPauses(a.stdout, ex, true)
	}
}

// holderLine says who drives a RUNNING execution (pid@host and the lease
// expiry), and when nobody can, the command that continues it.
func (a *app) holderLine(ex *interpreter.Execution, h *server.Holder) string {
	if ex.State != journal.Running {
		return ""
	}
	cont := "; `" + a.command("resume", ex.ID) + "` continues it"
	if h == nil {
		return "none: no runner holds it (its runner stopped)" + cont
	}
	who := fmt.Sprintf("%d@%s", h.PID, h.Host)
	now := a.clock.Now()
	switch {
	case h.Gone:
		return who + ", a process that no longer exists (lease until " + h.Expires.UTC().Format(timeLayout) + ")" + cont
	case !h.Expires.After(now):
		return who + ", whose lease expired at " + h.Expires.UTC().Format(timeLayout) + cont
	}
	return fmt.Sprintf("%s, lease until %s (%s left)", who, h.Expires.UTC().Format(timeLayout), roundDuration(h.Expires.Sub(now)))
}

const timeLayout = "2006-01-02 15:04:05.000"

func (a *app) printList(exs []*interpreter.Execution) {
	if len(exs) == 0 {
		switch {
		case a.journalUsed == "":
			fmt.Fprintf(a.stderr, "%s: no executions: there is no journal at %s (--db or $LOOM_DB names another)\n", a.prog(), a.journalName())
		case a.p.has("state") || a.p.has("workflow") || a.p.has("since"):
			fmt.Fprintf(a.stderr, "%s: no executions match in the journal %s\n", a.prog(), a.journalUsed)
		default:
			fmt.Fprintf(a.stderr, "%s: no executions in the journal %s\n", a.prog(), a.journalUsed)
		}
		return
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tWORKFLOW\tSTATE\tUPDATED")
	for _, ex := range exs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", safe(ex.ID), safe(ex.Workflow), safe(string(ex.State)), ex.UpdatedAt.UTC().Format(timeLayout))
	}
	tw.Flush()
}

// printTimeline prints the journal: time, path, event, duration, value
// (cut to fit a line unless --full), then the execution's children.
func (a *app) printTimeline(ex *interpreter.Execution, evs []journal.Event, children []*interpreter.Execution) {
	width := 60
	if a.p.has("full") {
		width = 0
	}
	fmt.Fprintf(a.stdout, "execution %s of %s (version %d): %s, created %s\n", safe(ex.ID), safe(ex.Workflow), ex.Version, safe(string(ex.State)), ex.CreatedAt.UTC().Format(timeLayout))
	if len(evs) == 0 {
		fmt.Fprintln(a.stdout, "(no events)")
		return
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tPATH\tEVENT\tDURATION\tVALUE")
	opened := map[string]time.Time{} // pause path → when it opened
	for _, ev := range evs {
		path := ev.Path
		if path == "" {
			path = "-"
		}
		event := string(ev.Kind)
		if ev.Name != "" && ev.Name != string(ev.Kind) {
			event += " " + ev.Name
		}
		dur, val := eventSummary(ev, width)
		switch {
		case ev.Kind == journal.PauseOpened:
			opened[ev.Path] = ev.Time
		case ev.Kind == journal.StepCompleted && strings.HasPrefix(ev.Name, "pause:") && !opened[ev.Path].IsZero():
			dur = roundDuration(ev.Time.Sub(opened[ev.Path])).String() // how long the pause waited
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ev.Time.UTC().Format(timeLayout), safe(path), safe(event), dur, safe(val))
	}
	tw.Flush()
	if len(children) == 0 {
		return
	}
	fmt.Fprintf(a.stdout, "\nchildren (%s show ID for each one's journal):\n", a.prog())
	tw = tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tWORKFLOW\tSTATE\tUPDATED")
	for _, c := range children {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", safe(c.ID), safe(c.Workflow), safe(string(c.State)), c.UpdatedAt.UTC().Format(timeLayout))
	}
	tw.Flush()
}

// eventSummary returns an event's duration (when it records a start) and a
// short rendering of its value.
// eventSummary is an event's duration and value for the timeline; values
// are cut to n characters (n = 0: whole).
func eventSummary(ev journal.Event, n int) (dur, val string) {
	var d map[string]any
	if len(ev.Data) > 0 {
		_ = json.Unmarshal(ev.Data, &d)
	}
	if s, ok := d["started_at"].(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil && !ev.Time.IsZero() {
			dur = roundDuration(ev.Time.Sub(t)).String()
		}
	}
	switch ev.Kind {
	case journal.StepCompleted:
		val = compact(d["output"], n)
	case journal.StepFailed:
		if e, ok := d["error"].(map[string]any); ok {
			val = fmt.Sprintf("%v: %v", e["type"], e["message"])
			if r := []rune(val); n > 0 && len(r) > n {
				val = string(r[:n-1]) + "…"
			}
		} else {
			val = compact(d["output"], n)
		}
	case journal.Builtin:
		val = compact(d["value"], n)
	case journal.PauseOpened:
		if dl, ok := d["deadline"]; ok && dl != nil {
			val = fmt.Sprintf("deadline %v", dl)
		}
	case journal.TimerSet:
		val = fmt.Sprintf("wakes at %v", d["wake_at"])
	case journal.ChildStarted:
		val = fmt.Sprintf("%v (%v)", d["id"], d["workflow"])
	case journal.ExecutionFinished:
		if e, ok := d["error"].(map[string]any); ok && e != nil {
			val = fmt.Sprintf("%v: %v", e["type"], e["message"])
		} else {
			val = compact(d["output"], n)
		}
	case journal.DefinitionUpgraded:
		if h, ok := d["hash"].(string); ok && len(h) > 12 {
			val = "definition " + h[:12]
		}
	}
	return dur, val
}

func roundDuration(d time.Duration) time.Duration {
	switch {
	case d < 0:
		return 0
	case d < time.Millisecond:
		return d.Round(time.Microsecond)
	case d < time.Second:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Millisecond)
}

// nonNil makes an empty list print as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
