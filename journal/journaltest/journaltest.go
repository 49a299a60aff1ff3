package journaltest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loomwork/loom/journal"
)

// Run runs the suite. open returns a fresh, empty journal for one subtest;
// Run closes it when the subtest ends. Subtests run in parallel.
func Run(t *testing.T, open func(t *testing.T) journal.Journal) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			j := open(t)
			t.Cleanup(func() {
				if err := j.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.run(t, &suite{t: t, j: j, ctx: t.Context()})
		})
	}
}

var cases = []struct {
	name string
	run  func(t *testing.T, s *suite)
}{
	{"CreateGet", testCreateGet},
	{"CreateDefaults", testCreateDefaults},
	{"NotFoundAndExists", testNotFoundAndExists},
	{"AppendAndRead", testAppendAndRead},
	{"AppendUpdate", testAppendUpdate},
	{"AppendStamp", testAppendStamp},
	{"ExpectedSeqConflict", testExpectedSeqConflict},
	{"DuplicateEventKey", testDuplicateEventKey},
	{"InvalidInput", testInvalidInput},
	{"LargeInput", testLargeInput},
	{"Fencing", testFencing},
	{"FencingChild", testFencingChild},
	{"LeaseBusy", testLeaseBusy},
	{"LeaseSameHolderBusy", testLeaseSameHolder},
	{"LeaseExpiryTakeover", testLeaseExpiryTakeover},
	{"LeaseExplicitTakeover", testLeaseExplicitTakeover},
	{"LeaseRenewRelease", testLeaseRenewRelease},
	{"LeaseTokensNeverReused", testLeaseTokensNeverReused},
	{"LeaseRequiresRoot", testLeaseRequiresRoot},
	{"ListFilters", testListFilters},
	{"ListOrderAndLimit", testListOrderAndLimit},
	{"ListDue", testListDue},
	{"ListCursor", testListCursor},
	{"ListOldestUpdated", testListOldestUpdated},
	{"AppendRelease", testAppendRelease},
	{"CreateHeld", testCreateHeld},
	{"CopiesInAndOut", testCopies},
	{"CancelledContext", testCancelledContext},
	{"ConcurrentExecutions", testConcurrentExecutions},
	{"ClaimOrder", testClaimOrder},
	{"ClaimBehindBacklog", testClaimBehindBacklog},
	{"ClaimConcurrent", testClaimConcurrent},
	{"RequestCancel", testRequestCancel},
	{"CrashLoop", testCrashLoop},
	{"ClaimGoneHolder", testClaimGoneHolder},
	{"Workers", testWorkers},
	{"Prune", testPrune},
	{"ScheduleSlots", testScheduleSlots},
	{"LabelsActorLastSeq", testLabelsActorLastSeq},
	{"Gauges", testGauges},
	{"WatchCommits", testWatchCommits},
	{"ConcurrentSameExecutionSerialized", testConcurrentSameSerialized},
	{"ConcurrentSameExecutionOptimistic", testConcurrentSameOptimistic},
	{"UseAfterClose", testUseAfterClose},
}

// suite bundles what every case needs, with helpers that fail the test.
type suite struct {
	t   *testing.T
	j   journal.Journal
	ctx context.Context
}

var (
	runnerA = journal.Holder{ID: "runner-a", Host: "host-a", PID: 101}
	runnerB = journal.Holder{ID: "runner-b", Host: "host-b", PID: 202}
)

func (s *suite) create(e *journal.Execution) *journal.Execution {
	s.t.Helper()
	if e.Workflow == "" {
		e.Workflow = "wf"
	}
	if e.State == "" {
		e.State = journal.Running
	}
	if e.Version == 0 {
		e.Version = 1
	}
	if err := s.j.Create(s.ctx, e); err != nil {
		s.t.Fatalf("Create(%s): %v", e.ID, err)
	}
	return e
}

func (s *suite) root(id string) journal.Lease {
	s.t.Helper()
	s.create(&journal.Execution{ID: id})
	return s.acquire(id, runnerA, time.Minute)
}

func (s *suite) acquire(root string, h journal.Holder, ttl time.Duration) journal.Lease {
	s.t.Helper()
	l, err := s.j.Acquire(s.ctx, root, h, ttl, 0)
	if err != nil {
		s.t.Fatalf("Acquire(%s, %s): %v", root, h.ID, err)
	}
	return l
}

func (s *suite) get(id string) *journal.Execution {
	s.t.Helper()
	e, err := s.j.Get(s.ctx, id)
	if err != nil {
		s.t.Fatalf("Get(%s): %v", id, err)
	}
	return e
}

func (s *suite) append(a journal.Append) int64 {
	s.t.Helper()
	seq, err := s.j.Append(s.ctx, a)
	if err != nil {
		s.t.Fatalf("Append(%s after %d): %v", a.ExecutionID, a.ExpectedSeq, err)
	}
	return seq
}

func (s *suite) events(id string, after int64) []journal.Event {
	s.t.Helper()
	evs, err := s.j.Events(s.ctx, id, after)
	if err != nil {
		s.t.Fatalf("Events(%s, %d): %v", id, after, err)
	}
	return evs
}

func (s *suite) list(f journal.Filter) []string {
	s.t.Helper()
	es, err := s.j.List(s.ctx, f)
	if err != nil {
		s.t.Fatalf("List(%+v): %v", f, err)
	}
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.ID
	}
	return ids
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func ev(path string, kind journal.EventKind, name string, ordinal int, data string) journal.Event {
	e := journal.Event{Path: path, Kind: kind, Name: name, Ordinal: ordinal}
	if data != "" {
		e.Data = json.RawMessage(data)
	}
	return e
}

func step(path string, output any) journal.Event {
	data, _ := json.Marshal(map[string]any{"output": output, "started_at": "2025-01-02T03:04:05.123456789Z"})
	return journal.Event{Path: path, Kind: journal.StepCompleted, Name: "task:work", Data: data}
}

// sameJSON compares JSON documents by value: a backend may store JSON in a
// normalised form (PostgreSQL's jsonb does).
func sameJSON(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(va, vb)
}

func ptr[T any](v T) *T { return &v }

func testCreateGet(t *testing.T, s *suite) {
	created := time.Date(2025, 3, 4, 5, 6, 7, 891011121, time.FixedZone("X", 3600))
	in := &journal.Execution{
		ID:             "child-1",
		Workflow:       "order_approval",
		Version:        3,
		State:          journal.Paused,
		ParentID:       "parent-1",
		RootID:         "root-1",
		ParentPath:     "stars[3]",
		Input:          json.RawMessage(`{"order_id":"A-1","n":[1,2.5,null]}`),
		Output:         json.RawMessage(`"done"`),
		Error:          json.RawMessage(`{"type":"Boom","message":"x","data":null,"step":"a/#0"}`),
		Pauses:         json.RawMessage(`[{"name":"approve","path":"approval","schema":{"type":"object"}}]`),
		Definition:     []byte("name: order_approval\nsteps: []\n"),
		DefinitionHash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		WakeAt:         created.Add(time.Hour),
		CreatedAt:      created,
		UpdatedAt:      created.Add(time.Second),
	}
	if err := s.j.Create(s.ctx, in); err != nil {
		t.Fatal(err)
	}
	got := s.get("child-1")
	checkExecution(t, got, in)
}

func checkExecution(t *testing.T, got, want *journal.Execution) {
	t.Helper()
	type pair struct {
		name      string
		got, want any
	}
	for _, p := range []pair{
		{"ID", got.ID, want.ID}, {"Workflow", got.Workflow, want.Workflow},
		{"Version", got.Version, want.Version}, {"State", got.State, want.State},
		{"ParentID", got.ParentID, want.ParentID}, {"RootID", got.RootID, want.RootID},
		{"ParentPath", got.ParentPath, want.ParentPath},
		{"Definition", string(got.Definition), string(want.Definition)},
		{"DefinitionHash", got.DefinitionHash, want.DefinitionHash},
	} {
		if !reflect.DeepEqual(p.got, p.want) {
			t.Errorf("%s = %v, want %v", p.name, p.got, p.want)
		}
	}
	for _, p := range []struct {
		name      string
		got, want []byte
	}{{"Input", got.Input, want.Input}, {"Output", got.Output, want.Output}, {"Error", got.Error, want.Error}, {"Pauses", got.Pauses, want.Pauses}} {
		if !sameJSON(p.got, p.want) {
			t.Errorf("%s = %s, want %s", p.name, p.got, p.want)
		}
	}
	for _, p := range []struct {
		name      string
		got, want time.Time
	}{{"WakeAt", got.WakeAt, want.WakeAt}, {"CreatedAt", got.CreatedAt, want.CreatedAt}, {"UpdatedAt", got.UpdatedAt, want.UpdatedAt}} {
		if !p.got.Equal(p.want) {
			t.Errorf("%s = %v, want %v", p.name, p.got, p.want)
		}
	}
}

func testCreateDefaults(t *testing.T, s *suite) {
	before := time.Now().Add(-time.Second)
	s.create(&journal.Execution{ID: "r"})
	got := s.get("r")
	if got.RootID != "r" {
		t.Errorf("RootID = %q, want the execution's own ID", got.RootID)
	}
	if got.CreatedAt.Before(before) || got.UpdatedAt.Before(before) {
		t.Errorf("CreatedAt/UpdatedAt not set: %v / %v", got.CreatedAt, got.UpdatedAt)
	}
	if got.Input != nil || got.Output != nil || got.Error != nil || got.Pauses != nil || !got.WakeAt.IsZero() {
		t.Errorf("absent fields should stay absent: %+v", got)
	}
	if evs := s.events("r", 0); len(evs) != 0 {
		t.Errorf("new execution has events: %v", evs)
	}
}

func testNotFoundAndExists(t *testing.T, s *suite) {
	_, err := s.j.Get(s.ctx, "nope")
	wantErr(t, "Get unknown", err, journal.ErrNotFound)
	_, err = s.j.Events(s.ctx, "nope", 0)
	wantErr(t, "Events unknown", err, journal.ErrNotFound)
	_, err = s.j.Append(s.ctx, journal.Append{ExecutionID: "nope", Token: 1, Events: []journal.Event{step("a", 1)}})
	wantErr(t, "Append unknown", err, journal.ErrNotFound)
	_, err = s.j.Acquire(s.ctx, "nope", runnerA, time.Minute, 0)
	wantErr(t, "Acquire unknown", err, journal.ErrNotFound)

	s.create(&journal.Execution{ID: "x", Workflow: "first"})
	err = s.j.Create(s.ctx, &journal.Execution{ID: "x", Workflow: "second", State: journal.Running})
	wantErr(t, "Create twice", err, journal.ErrExists)
	if got := s.get("x"); got.Workflow != "first" {
		t.Errorf("a refused Create changed the record: workflow %q", got.Workflow)
	}
	if l, err := s.j.LeaseOf(s.ctx, "x"); err != nil || l != (journal.Lease{}) {
		t.Errorf("LeaseOf without lease = %+v, %v; want zero lease", l, err)
	}
}

func testAppendAndRead(t *testing.T, s *suite) {
	l := s.root("r")
	at := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	before := time.Now().Add(-time.Second)
	first := []journal.Event{
		ev("order", journal.Builtin, "now", 0, `{"value":"2025-01-02T03:04:05.000000006Z"}`),
		ev("order", journal.Builtin, "uuid4", 1, `{"value":"0b7e…"}`),
		{Path: "order", Kind: journal.StepCompleted, Name: "task:fetch_order", Data: json.RawMessage(`{"output":{"id":"A-1","items":[1,2,3],"nested":{"ü":"ß","big":12345678901234567}},"started_at":"2025-01-02T03:04:05Z"}`), Time: at},
	}
	if seq := s.append(journal.Append{ExecutionID: "r", Token: l.Token, Events: first}); seq != 3 {
		t.Fatalf("Append returned seq %d, want 3", seq)
	}
	if seq := s.append(journal.Append{ExecutionID: "r", Token: l.Token, ExpectedSeq: 3}); seq != 3 {
		t.Errorf("empty Append returned %d, want ExpectedSeq 3", seq)
	}
	if seq := s.append(journal.Append{ExecutionID: "r", Token: l.Token, ExpectedSeq: 3, Events: []journal.Event{ev("", journal.CancelRequested, "cancel", 0, "")}}); seq != 4 {
		t.Fatalf("Append returned seq %d, want 4", seq)
	}

	got := s.events("r", 0)
	if len(got) != 4 {
		t.Fatalf("got %d events, want 4: %+v", len(got), got)
	}
	for i, e := range got {
		if e.Seq != int64(i+1) {
			t.Errorf("event %d has Seq %d", i, e.Seq)
		}
		var want journal.Event
		if i < 3 {
			want = first[i]
		} else {
			want = ev("", journal.CancelRequested, "cancel", 0, "")
		}
		if e.Path != want.Path || e.Kind != want.Kind || e.Name != want.Name || e.Ordinal != want.Ordinal {
			t.Errorf("event %d = %+v, want %+v", i, e, want)
		}
		if !sameJSON(e.Data, want.Data) {
			t.Errorf("event %d data = %s, want %s", i, e.Data, want.Data)
		}
		if want.Time.IsZero() {
			if e.Time.Before(before) || e.Time.Location() != time.UTC {
				t.Errorf("event %d Time = %v, want now in UTC", i, e.Time)
			}
		} else if !e.Time.Equal(want.Time) {
			t.Errorf("event %d Time = %v, want the given %v", i, e.Time, want.Time)
		}
	}
	if after := s.events("r", 2); len(after) != 2 || after[0].Seq != 3 || after[1].Seq != 4 {
		t.Errorf("Events(after 2) = %+v, want seqs 3, 4", after)
	}
	if after := s.events("r", 4); len(after) != 0 {
		t.Errorf("Events(after last) = %+v, want none", after)
	}
	if got := s.get("r"); got.UpdatedAt.Before(got.CreatedAt) {
		t.Errorf("UpdatedAt %v before CreatedAt %v", got.UpdatedAt, got.CreatedAt)
	}
}

// testAppendStamp: an Append's Stamp, where the backend fills it, is the
// UpdatedAt a read then returns: for events, an update, and a last write
// that releases the lease.
func testAppendStamp(t *testing.T, s *suite) {
	l := s.root("r")
	var seq int64
	for i, a := range []journal.Append{
		{Events: []journal.Event{step("a", 1)}},
		{Update: &journal.Update{Output: json.RawMessage(`1`)}},
		{Events: []journal.Event{ev("", journal.ExecutionFinished, "COMPLETED", 0, `{"state":"COMPLETED"}`)},
			Update: &journal.Update{State: ptr(journal.Completed), Output: json.RawMessage(`2`)}, Release: true},
	} {
		var stamp time.Time
		a.ExecutionID, a.Token, a.ExpectedSeq, a.Stamp = "r", l.Token, seq, &stamp
		seq = s.append(a)
		if got := s.get("r").UpdatedAt; !stamp.IsZero() && stamp != got {
			t.Errorf("append %d: Stamp %v, the record's UpdatedAt %v", i, stamp, got)
		}
	}
}

func testAppendUpdate(t *testing.T, s *suite) {
	l := s.root("r")
	created := s.get("r")
	time.Sleep(2 * time.Millisecond)
	wake := time.Date(2030, 1, 1, 0, 0, 0, 5, time.UTC)
	seq := s.append(journal.Append{ExecutionID: "r", Token: l.Token, Events: []journal.Event{ev("approve", journal.PauseOpened, "pause:approve", 0, `{"schema":{}}`)},
		Update: &journal.Update{
			State:  ptr(journal.Paused),
			Pauses: json.RawMessage(`[{"name":"approve","path":"approve","schema":{}}]`),
			WakeAt: &wake,
		}})
	got := s.get("r")
	if got.State != journal.Paused || !sameJSON(got.Pauses, []byte(`[{"name":"approve","path":"approve","schema":{}}]`)) || !got.WakeAt.Equal(wake) {
		t.Fatalf("after update: state %s, pauses %s, wake %v", got.State, got.Pauses, got.WakeAt)
	}
	if !got.UpdatedAt.After(created.UpdatedAt) {
		t.Errorf("UpdatedAt not advanced: %v then %v", created.UpdatedAt, got.UpdatedAt)
	}

	// An Update with nil fields leaves them alone.
	seq = s.append(journal.Append{ExecutionID: "r", Token: l.Token, ExpectedSeq: seq, Update: &journal.Update{Output: json.RawMessage(`{"partial":true}`)}})
	got = s.get("r")
	if got.State != journal.Paused || got.Pauses == nil || got.WakeAt.IsZero() || !sameJSON(got.Output, []byte(`{"partial":true}`)) {
		t.Fatalf("nil fields changed the record: %+v", got)
	}

	// "null" clears the pauses, a zero time the wake-up.
	seq = s.append(journal.Append{ExecutionID: "r", Token: l.Token, ExpectedSeq: seq,
		Events: []journal.Event{ev("", journal.ExecutionFinished, "FAILED", 0, `{"state":"FAILED"}`)},
		Update: &journal.Update{
			State:  ptr(journal.Failed),
			Pauses: json.RawMessage("null"),
			WakeAt: &time.Time{},
			Output: json.RawMessage(`null`),
			Error:  json.RawMessage(`{"type":"Rejected","message":"no","data":null,"step":"approve"}`),
		}})
	if seq != 2 {
		t.Errorf("seq = %d, want 2", seq)
	}
	got = s.get("r")
	if got.State != journal.Failed || got.Pauses != nil || !got.WakeAt.IsZero() {
		t.Errorf("not cleared: state %s, pauses %s, wake %v", got.State, got.Pauses, got.WakeAt)
	}
	if !sameJSON(got.Error, []byte(`{"type":"Rejected","message":"no","data":null,"step":"approve"}`)) {
		t.Errorf("Error = %s", got.Error)
	}
	if !sameJSON(got.Output, []byte("null")) {
		t.Errorf("Output = %q, want JSON null", got.Output)
	}
}

func testExpectedSeqConflict(t *testing.T, s *suite) {
	l := s.root("r")
	s.append(journal.Append{ExecutionID: "r", Token: l.Token, Events: []journal.Event{step("a", 1), step("b", 2)}})
	for _, expected := range []int64{0, 1, 3, 7} {
		_, err := s.j.Append(s.ctx, journal.Append{ExecutionID: "r", Token: l.Token, ExpectedSeq: expected,
			Events: []journal.Event{step(fmt.Sprintf("c%d", expected), 3)},
			Update: &journal.Update{State: ptr(journal.Failed)}})
		wantErr(t, fmt.Sprintf("Append after %d with last 2", expected), err, journal.ErrConflict)
	}
	if evs := s.events("r", 0); len(evs) != 2 {
		t.Errorf("refused appends wrote events: %+v", evs)
	}
	if got := s.get("r"); got.State != journal.Running {
		t.Errorf("refused appends changed the state to %s", got.State)
	}
	if seq := s.append(journal.Append{ExecutionID: "r", Token: l.Token, ExpectedSeq: 2, Events: []journal.Event{step("c", 3)}}); seq != 3 {
		t.Errorf("seq = %d, want 3", seq)
	}
}

func testDuplicateEventKey(t *testing.T, s *suite) {
	l := s.root("r")
	s.append(journal.Append{ExecutionID: "r", Token: l.Token, Events: []journal.Event{ev("a", journal.Builtin, "now", 0, `{"value":1}`)}})
	_, err := s.j.Append(s.ctx, journal.Append{ExecutionID: "r", Token: l.Token, ExpectedSeq: 1, Events: []journal.Event{ev("b", journal.Builtin, "now", 0, `{}`), ev("a", journal.Builtin, "now", 0, `{"value":2}`)}})
	wantErr(t, "same (path, kind, ordinal) twice", err, journal.ErrConflict)
	_, err = s.j.Append(s.ctx, journal.Append{ExecutionID: "r", Token: l.Token, ExpectedSeq: 1, Events: []journal.Event{ev("c", journal.Builtin, "now", 0, `{}`), ev("c", journal.Builtin, "now", 0, `{}`)}})
	wantErr(t, "same (path, kind, ordinal) in one append", err, journal.ErrConflict)
	if evs := s.events("r", 0); len(evs) != 1 {
		t.Fatalf("refused appends wrote events: %+v", evs)
	}
	// Other kinds and ordinals at the same path are distinct facts.
	s.append(journal.Append{ExecutionID: "r", Token: l.Token, ExpectedSeq: 1, Events: []journal.Event{
		ev("a", journal.Builtin, "now", 1, `{}`), ev("a", journal.StepCompleted, "set", 0, `{}`)}})
}

func testInvalidInput(t *testing.T, s *suite) {
	l := s.root("r")
	for name, a := range map[string]journal.Append{
		"bad event JSON":  {Events: []journal.Event{ev("a", journal.StepCompleted, "x", 0, `{"output":`)}},
		"no kind":         {Events: []journal.Event{{Path: "a"}}},
		"bad update JSON": {Update: &journal.Update{Output: json.RawMessage(`nope`)}},
	} {
		a.ExecutionID, a.Token = "r", l.Token
		if _, err := s.j.Append(s.ctx, a); err == nil {
			t.Errorf("%s: Append accepted it", name)
		}
	}
	if err := s.j.Create(s.ctx, &journal.Execution{}); err == nil {
		t.Errorf("Create accepted an execution without ID")
	}
	if err := s.j.Create(s.ctx, &journal.Execution{ID: "bad", Workflow: "wf", State: journal.Running, Input: json.RawMessage(`{`)}); err == nil {
		t.Errorf("Create accepted invalid input JSON")
	}
	if evs := s.events("r", 0); len(evs) != 0 {
		t.Errorf("invalid appends wrote events: %+v", evs)
	}
}

// testLargeInput: an input far larger than a database page (a backend may
// store it apart from the record, which every commit rewrites) reads back
// whole through Get and List while the execution appends, survives a
// refused Create of the same id and a refused CreateHeld, and goes with
// its execution when it is pruned.
func testLargeInput(t *testing.T, s *suite) {
	items := make([]string, 20_000)
	for i := range items {
		items[i] = fmt.Sprint(i)
	}
	big := json.RawMessage(`{"items":[` + strings.Join(items, ",") + `]}`)
	small := json.RawMessage(`{"items":[1]}`)
	l, err := s.j.CreateHeld(s.ctx, &journal.Execution{ID: "big", Workflow: "wf", Version: 1, State: journal.Running, Input: big}, runnerA, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	s.create(&journal.Execution{ID: "small", Input: small})
	var seq int64
	for i := range 50 {
		seq = s.append(journal.Append{ExecutionID: "big", Token: l.Token, ExpectedSeq: seq, Events: []journal.Event{step(fmt.Sprintf("m[%d]", i), i)}})
	}
	err = s.j.Create(s.ctx, &journal.Execution{ID: "big", Workflow: "wf", Version: 1, State: journal.Running, Input: small})
	wantErr(t, "Create of an existing id", err, journal.ErrExists)
	if _, err := s.j.CreateHeld(s.ctx, &journal.Execution{ID: "kid", ParentID: "big", RootID: "big", Input: big}, runnerA, time.Minute); err == nil {
		t.Fatal("CreateHeld of a child succeeded")
	}
	if got := s.get("big"); !bytes.Equal(got.Input, big) || got.LastSeq != 50 {
		t.Fatalf("Get(big): %d bytes of input, last seq %d; want %d bytes, 50", len(got.Input), got.LastSeq, len(big))
	}
	all, err := s.j.List(s.ctx, journal.Filter{})
	if err != nil || len(all) != 2 {
		t.Fatalf("List: %d records, %v", len(all), err)
	}
	for _, e := range all {
		if want := map[string]json.RawMessage{"big": big, "small": small}[e.ID]; !bytes.Equal(e.Input, want) {
			t.Errorf("List: %s has %d bytes of input, want %d", e.ID, len(e.Input), len(want))
		}
	}
	completed := journal.Completed
	s.append(journal.Append{ExecutionID: "big", Token: l.Token, ExpectedSeq: seq, Release: true, Update: &journal.Update{State: &completed, Output: json.RawMessage(`50`)}})
	if got := s.get("big"); !bytes.Equal(got.Input, big) || string(got.Output) != "50" {
		t.Fatalf("Get(big) after it completed: %d bytes of input, output %s", len(got.Input), got.Output)
	}
	res, err := s.j.Prune(s.ctx, journal.PruneRequest{FinishedBefore: time.Now().Add(time.Hour)})
	if err != nil || res.Roots != 1 {
		t.Fatalf("Prune: %+v, %v", res, err)
	}
	if _, err := s.j.Get(s.ctx, "big"); !errors.Is(err, journal.ErrNotFound) {
		t.Fatalf("Get(big) after its prune: %v", err)
	}
	// A new execution under the pruned id starts with its own input.
	big2 := json.RawMessage(`{"items":[` + strings.Join(items[1:], ",") + `]}`)
	s.create(&journal.Execution{ID: "big", Input: big2})
	if got := s.get("big"); !bytes.Equal(got.Input, big2) {
		t.Fatalf("Get(big) created again: %d bytes of input, want %d", len(got.Input), len(big2))
	}
}

func testFencing(t *testing.T, s *suite) {
	s.create(&journal.Execution{ID: "r"})
	_, err := s.j.Append(s.ctx, journal.Append{ExecutionID: "r", Token: 0, Events: []journal.Event{step("a", 1)}})
	wantErr(t, "Append without any lease", err, journal.ErrFenced)

	a := s.acquire("r", runnerA, 30*time.Millisecond)
	seq := s.append(journal.Append{ExecutionID: "r", Token: a.Token, Events: []journal.Event{step("a", 1)}})
	time.Sleep(60 * time.Millisecond)
	// Expiry alone does not fence: nobody has taken the lease yet.
	seq = s.append(journal.Append{ExecutionID: "r", Token: a.Token, ExpectedSeq: seq, Events: []journal.Event{step("b", 2)}})

	b := s.acquire("r", runnerB, time.Minute)
	if b.Token <= a.Token {
		t.Fatalf("new token %d not larger than %d", b.Token, a.Token)
	}
	_, err = s.j.Append(s.ctx, journal.Append{ExecutionID: "r", Token: a.Token, ExpectedSeq: seq, Events: []journal.Event{step("c", 3)}, Update: &journal.Update{State: ptr(journal.Completed)}})
	wantErr(t, "Append with the stale token", err, journal.ErrFenced)
	_, err = s.j.Append(s.ctx, journal.Append{ExecutionID: "r", Token: b.Token + 1, ExpectedSeq: seq, Events: []journal.Event{step("c", 3)}})
	wantErr(t, "Append with a token never issued", err, journal.ErrFenced)
	if got := s.get("r"); got.State != journal.Running {
		t.Errorf("a fenced append changed the state to %s", got.State)
	}
	seq = s.append(journal.Append{ExecutionID: "r", Token: b.Token, ExpectedSeq: seq, Events: []journal.Event{step("c", 3)}})
	if seq != 3 {
		t.Errorf("seq = %d, want 3", seq)
	}

	if err := s.j.Release(s.ctx, b); err != nil {
		t.Fatal(err)
	}
	_, err = s.j.Append(s.ctx, journal.Append{ExecutionID: "r", Token: b.Token, ExpectedSeq: seq, Events: []journal.Event{step("d", 4)}})
	wantErr(t, "Append after Release", err, journal.ErrFenced)
	if evs := s.events("r", 0); len(evs) != 3 {
		t.Errorf("got %d events, want 3", len(evs))
	}
}

func testFencingChild(t *testing.T, s *suite) {
	a := s.root("root")
	s.create(&journal.Execution{ID: "child", ParentID: "root", RootID: "root", ParentPath: "call"})
	s.create(&journal.Execution{ID: "grandchild", ParentID: "child", RootID: "root", ParentPath: "items[0]"})
	for _, id := range []string{"child", "grandchild"} {
		s.append(journal.Append{ExecutionID: id, Token: a.Token, Events: []journal.Event{step("x", 1)}})
	}
	b, err := s.j.Acquire(s.ctx, "root", runnerB, time.Minute, a.Token)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"child", "grandchild"} {
		_, err := s.j.Append(s.ctx, journal.Append{ExecutionID: id, Token: a.Token, ExpectedSeq: 1, Events: []journal.Event{step("y", 2)}})
		wantErr(t, "Append to "+id+" with the root's stale token", err, journal.ErrFenced)
		s.append(journal.Append{ExecutionID: id, Token: b.Token, ExpectedSeq: 1, Events: []journal.Event{step("y", 2)}})
	}
	// A child has no lease of its own: its token is its root's.
	s.create(&journal.Execution{ID: "other"})
	o := s.acquire("other", runnerA, time.Minute)
	_, err = s.j.Append(s.ctx, journal.Append{ExecutionID: "child", Token: o.Token, ExpectedSeq: 2, Events: []journal.Event{step("z", 3)}})
	wantErr(t, "Append to a child with another root's token", err, journal.ErrFenced)
}

func testLeaseBusy(t *testing.T, s *suite) {
	s.create(&journal.Execution{ID: "r"})
	before := time.Now()
	a := s.acquire("r", runnerA, time.Minute)
	if a.RootID != "r" || a.Token <= 0 || a.Holder != runnerA {
		t.Errorf("lease = %+v", a)
	}
	if a.Expires.Before(before.Add(59*time.Second)) || a.Expires.After(time.Now().Add(61*time.Second)) {
		t.Errorf("Expires = %v, want about a minute from now", a.Expires)
	}
	_, err := s.j.Acquire(s.ctx, "r", runnerB, time.Minute, 0)
	wantErr(t, "Acquire of a held lease", err, journal.ErrBusy)
	var busy *journal.BusyError
	if !errors.As(err, &busy) {
		t.Fatalf("error %v does not wrap a *journal.BusyError", err)
	}
	if busy.Lease.Holder != runnerA || busy.Lease.Token != a.Token || busy.Lease.RootID != "r" || !busy.Lease.Expires.Equal(a.Expires) {
		t.Errorf("BusyError lease = %+v, want %+v", busy.Lease, a)
	}
	// Giving some other token as takeover does not help.
	_, err = s.j.Acquire(s.ctx, "r", runnerB, time.Minute, a.Token+1)
	wantErr(t, "takeover with a wrong token", err, journal.ErrBusy)
	if got, err := s.j.LeaseOf(s.ctx, "r"); err != nil || got.Token != a.Token || got.Holder != runnerA || !got.Expires.Equal(a.Expires) {
		t.Errorf("LeaseOf = %+v, %v; want %+v", got, err, a)
	}
}

// testLeaseSameHolder: a live lease is refused to everyone, its own holder
// included, so two drives of one runner never hold an execution at once;
// once released, the holder takes it again with a new token, and the old
// token is fenced.
func testLeaseSameHolder(t *testing.T, s *suite) {
	s.create(&journal.Execution{ID: "r"})
	a1 := s.acquire("r", runnerA, time.Minute)
	_, err := s.j.Acquire(s.ctx, "r", runnerA, time.Minute, 0)
	wantErr(t, "Acquire of a live lease by its own holder", err, journal.ErrBusy)
	var busy *journal.BusyError
	if !errors.As(err, &busy) || busy.Lease.Token != a1.Token || busy.Lease.Holder != runnerA {
		t.Errorf("busy error %v does not name the live lease %+v", err, a1)
	}
	if err := s.j.Release(s.ctx, a1); err != nil {
		t.Fatal(err)
	}
	a2 := s.acquire("r", runnerA, time.Minute)
	if a2.Token <= a1.Token {
		t.Fatalf("re-acquisition token %d not larger than %d", a2.Token, a1.Token)
	}
	_, err = s.j.Renew(s.ctx, a1, time.Minute)
	wantErr(t, "Renew of the replaced lease", err, journal.ErrFenced)
	_, err = s.j.Append(s.ctx, journal.Append{ExecutionID: "r", Token: a1.Token, Events: []journal.Event{step("a", 1)}})
	wantErr(t, "Append with the replaced token", err, journal.ErrFenced)
}

func testLeaseExpiryTakeover(t *testing.T, s *suite) {
	s.create(&journal.Execution{ID: "r"})
	a := s.acquire("r", runnerA, 30*time.Millisecond)
	time.Sleep(60 * time.Millisecond)
	b := s.acquire("r", runnerB, time.Minute)
	if b.Token <= a.Token || b.Holder != runnerB {
		t.Fatalf("takeover lease = %+v after %+v", b, a)
	}
	_, err := s.j.Renew(s.ctx, a, time.Minute)
	wantErr(t, "Renew after losing the lease", err, journal.ErrFenced)
	err = s.j.Release(s.ctx, a)
	wantErr(t, "Release after losing the lease", err, journal.ErrFenced)
	if got, _ := s.j.LeaseOf(s.ctx, "r"); got.Token != b.Token {
		t.Errorf("a fenced Release changed the lease: %+v", got)
	}
}

func testLeaseExplicitTakeover(t *testing.T, s *suite) {
	s.create(&journal.Execution{ID: "r"})
	a := s.acquire("r", runnerA, time.Hour)
	b, err := s.j.Acquire(s.ctx, "r", runnerB, time.Minute, a.Token)
	if err != nil {
		t.Fatalf("takeover with the current token: %v", err)
	}
	if b.Token <= a.Token || b.Holder != runnerB {
		t.Fatalf("takeover lease = %+v", b)
	}
	// The old token no longer takes it back.
	_, err = s.j.Acquire(s.ctx, "r", runnerA, time.Minute, a.Token)
	wantErr(t, "takeover with a stale token", err, journal.ErrBusy)
}

func testLeaseRenewRelease(t *testing.T, s *suite) {
	s.create(&journal.Execution{ID: "r"})
	a := s.acquire("r", runnerA, 50*time.Millisecond)
	r, err := s.j.Renew(s.ctx, a, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if r.Token != a.Token || r.Holder != runnerA || r.Expires.Before(time.Now().Add(59*time.Minute)) {
		t.Fatalf("renewed lease = %+v", r)
	}
	time.Sleep(80 * time.Millisecond)
	// Renewed beyond the first ttl: still held.
	_, err = s.j.Acquire(s.ctx, "r", runnerB, time.Minute, 0)
	wantErr(t, "Acquire of a renewed lease", err, journal.ErrBusy)

	if err := s.j.Release(s.ctx, r); err != nil {
		t.Fatal(err)
	}
	if got, err := s.j.LeaseOf(s.ctx, "r"); err != nil || got != (journal.Lease{}) {
		t.Errorf("LeaseOf after Release = %+v, %v", got, err)
	}
	err = s.j.Release(s.ctx, r)
	wantErr(t, "second Release", err, journal.ErrFenced)
	_, err = s.j.Renew(s.ctx, r, time.Minute)
	wantErr(t, "Renew after Release", err, journal.ErrFenced)
	b := s.acquire("r", runnerB, time.Minute)
	if b.Token <= a.Token {
		t.Errorf("token %d after release not larger than %d", b.Token, a.Token)
	}
}

func testCreateHeld(t *testing.T, s *suite) {
	l, err := s.j.CreateHeld(s.ctx, &journal.Execution{ID: "r", State: journal.Running}, runnerA, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if l.RootID != "r" || l.Token == 0 || l.Holder != runnerA {
		t.Fatalf("lease = %+v", l)
	}
	if got := s.get("r"); got.RootID != "r" || got.State != journal.Running {
		t.Fatalf("record = %+v", got)
	}
	if n := s.append(journal.Append{ExecutionID: "r", Token: l.Token, Events: []journal.Event{{Path: "a", Kind: journal.StepCompleted}}}); n != 1 {
		t.Fatalf("seq = %d", n)
	}
	_, err = s.j.CreateHeld(s.ctx, &journal.Execution{ID: "r"}, runnerB, time.Minute)
	wantErr(t, "CreateHeld of an existing id", err, journal.ErrExists)
	if got, _ := s.j.LeaseOf(s.ctx, "r"); got.Token != l.Token || got.Holder != runnerA {
		t.Fatalf("a refused CreateHeld changed the lease: %+v", got)
	}
	// A child cannot be held: the refusal leaves no record behind.
	if _, err := s.j.CreateHeld(s.ctx, &journal.Execution{ID: "c", ParentID: "r", RootID: "r"}, runnerA, time.Minute); err == nil {
		t.Fatal("CreateHeld of a child succeeded")
	}
	if _, err := s.j.Get(s.ctx, "c"); !errors.Is(err, journal.ErrNotFound) {
		t.Fatalf("a refused CreateHeld left a record: %v", err)
	}
}

func testAppendRelease(t *testing.T, s *suite) {
	l := s.root("r")
	s.create(&journal.Execution{ID: "c", ParentID: "r", RootID: "r"})
	done := journal.Completed
	// A refused append releases nothing.
	_, err := s.j.Append(s.ctx, journal.Append{ExecutionID: "r", Token: l.Token, ExpectedSeq: 5, Release: true,
		Events: []journal.Event{{Path: "a", Kind: journal.StepCompleted}}})
	wantErr(t, "conflicting Append with Release", err, journal.ErrConflict)
	if got, _ := s.j.LeaseOf(s.ctx, "r"); got.Token != l.Token {
		t.Fatalf("a refused append released the lease: %+v", got)
	}
	// A child's last write releases its root's lease.
	if n := s.append(journal.Append{ExecutionID: "c", Token: l.Token, Release: true,
		Events: []journal.Event{{Path: "a", Kind: journal.StepCompleted}}, Update: &journal.Update{State: &done}}); n != 1 {
		t.Fatalf("seq = %d", n)
	}
	if got, err := s.j.LeaseOf(s.ctx, "r"); err != nil || got != (journal.Lease{}) {
		t.Fatalf("LeaseOf after Append with Release = %+v, %v", got, err)
	}
	_, err = s.j.Append(s.ctx, journal.Append{ExecutionID: "r", Token: l.Token,
		Events: []journal.Event{{Path: "b", Kind: journal.StepCompleted}}})
	wantErr(t, "Append after release", err, journal.ErrFenced)
	err = s.j.Release(s.ctx, l)
	wantErr(t, "Release after Append with Release", err, journal.ErrFenced)
	if b := s.acquire("r", runnerB, time.Minute); b.Token <= l.Token {
		t.Errorf("token %d after release not larger than %d", b.Token, l.Token)
	}
}

func testLeaseTokensNeverReused(t *testing.T, s *suite) {
	seen := map[int64]bool{}
	var last int64
	for i := range 3 {
		id := fmt.Sprintf("r%d", i)
		s.create(&journal.Execution{ID: id})
		for range 3 {
			l := s.acquire(id, runnerA, time.Minute)
			if seen[l.Token] || l.Token <= last {
				t.Fatalf("token %d reused or not growing (last %d)", l.Token, last)
			}
			seen[l.Token], last = true, l.Token
			if err := s.j.Release(s.ctx, l); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func testLeaseRequiresRoot(t *testing.T, s *suite) {
	s.create(&journal.Execution{ID: "root"})
	s.create(&journal.Execution{ID: "child", ParentID: "root", RootID: "root"})
	if _, err := s.j.Acquire(s.ctx, "child", runnerA, time.Minute, 0); err == nil {
		t.Errorf("Acquire on a child execution succeeded; leases live on the root")
	}
}

func testListFilters(t *testing.T, s *suite) {
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(i int, id, wf string, st journal.State, parent, root string) {
		s.create(&journal.Execution{ID: id, Workflow: wf, State: st, ParentID: parent, RootID: root, CreatedAt: base.Add(time.Duration(i) * time.Minute)})
	}
	mk(0, "a", "orders", journal.Completed, "", "")
	mk(1, "b", "orders", journal.Running, "", "")
	mk(2, "b1", "ship", journal.Running, "b", "b")
	mk(3, "b2", "ship", journal.Failed, "b", "b")
	mk(4, "c", "billing", journal.Paused, "", "")
	mk(5, "b1x", "ship", journal.Paused, "b1", "b")

	for _, tc := range []struct {
		f    journal.Filter
		want []string
	}{
		{journal.Filter{}, []string{"b1x", "c", "b2", "b1", "b", "a"}},
		{journal.Filter{State: journal.Running}, []string{"b1", "b"}},
		{journal.Filter{State: journal.Paused}, []string{"b1x", "c"}},
		{journal.Filter{Workflow: "ship"}, []string{"b1x", "b2", "b1"}},
		{journal.Filter{ParentID: "b"}, []string{"b2", "b1"}},
		{journal.Filter{RootsOnly: true}, []string{"c", "b", "a"}},
		{journal.Filter{Workflow: "orders", State: journal.Completed}, []string{"a"}},
		{journal.Filter{Workflow: "ship", State: journal.Paused, ParentID: "b1"}, []string{"b1x"}},
		{journal.Filter{Workflow: "ship", RootsOnly: true}, []string{}},
		{journal.Filter{Workflow: "nope"}, []string{}},
		{journal.Filter{Limit: 2}, []string{"b1x", "c"}},
		{journal.Filter{RootsOnly: true, Limit: 1}, []string{"c"}},
	} {
		if got := s.list(tc.f); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("List(%+v) = %v, want %v", tc.f, got, tc.want)
		}
	}
}

func testListOrderAndLimit(t *testing.T, s *suite) {
	same := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	// Sub-second differences and equal times: CreatedAt desc, then ID desc.
	s.create(&journal.Execution{ID: "m", CreatedAt: same})
	s.create(&journal.Execution{ID: "z", CreatedAt: same})
	s.create(&journal.Execution{ID: "a", CreatedAt: same})
	s.create(&journal.Execution{ID: "n1", CreatedAt: same.Add(500 * time.Millisecond)})
	s.create(&journal.Execution{ID: "n2", CreatedAt: same.Add(time.Second)})
	s.create(&journal.Execution{ID: "n0", CreatedAt: same.Add(time.Nanosecond)})
	s.create(&journal.Execution{ID: "old", CreatedAt: same.Add(-time.Nanosecond)})
	want := []string{"n2", "n1", "n0", "z", "m", "a", "old"}
	if got := s.list(journal.Filter{}); !reflect.DeepEqual(got, want) {
		t.Errorf("List = %v, want %v", got, want)
	}
	if got := s.list(journal.Filter{Limit: 4}); !reflect.DeepEqual(got, want[:4]) {
		t.Errorf("List(limit 4) = %v, want %v", got, want[:4])
	}
	if got := s.list(journal.Filter{Limit: 100}); !reflect.DeepEqual(got, want) {
		t.Errorf("List(limit 100) = %v, want %v", got, want)
	}
}

// pages lists f a page of n at a time, following cursors, until a page
// comes back short; it returns the pages' IDs.
func (s *suite) pages(f journal.Filter, n int) [][]string {
	s.t.Helper()
	var out [][]string
	f.Limit = n
	for {
		es, err := s.j.List(s.ctx, f)
		if err != nil {
			s.t.Fatalf("List(%+v): %v", f, err)
		}
		ids := make([]string, len(es))
		for i, e := range es {
			ids[i] = e.ID
			if e.Definition != nil {
				s.t.Errorf("List(%+v): %s has its definition loaded", f, e.ID)
			}
		}
		out = append(out, ids)
		if len(es) < n {
			return out
		}
		f.After = f.Order.CursorAt(es[len(es)-1])
	}
}

func testListCursor(t *testing.T, s *suite) {
	same := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	mk := func(id string, at time.Time, parent string) {
		root := parent
		if root == "" {
			root = id
		}
		s.create(&journal.Execution{ID: id, Workflow: "w", State: journal.Running, ParentID: parent, RootID: root,
			CreatedAt: at, Definition: []byte("name: w\n"), DefinitionHash: "h"})
	}
	// Equal times are ordered by ID, so a page boundary inside them
	// neither repeats nor skips a record.
	mk("m", same, "")
	mk("z", same, "")
	mk("a", same, "")
	mk("n1", same.Add(500*time.Millisecond), "")
	mk("n0", same.Add(time.Nanosecond), "")
	mk("old", same.Add(-time.Nanosecond), "")
	mk("kid", same.Add(time.Second), "m")

	want := [][]string{{"kid", "n1"}, {"n0", "z"}, {"m", "a"}, {"old"}}
	if got := s.pages(journal.Filter{}, 2); !reflect.DeepEqual(got, want) {
		t.Errorf("pages of 2 = %v, want %v", got, want)
	}
	want = [][]string{{"n1", "n0", "z"}, {"m", "a", "old"}, {}}
	if got := s.pages(journal.Filter{RootsOnly: true}, 3); !reflect.DeepEqual(got, want) {
		t.Errorf("root pages of 3 = %v, want %v", got, want)
	}

	// Executions created after the first page do not shift later pages.
	first, err := s.j.List(s.ctx, journal.Filter{Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	mk("new", same.Add(time.Hour), "")
	mk("zz", same, "")
	after := journal.CursorAt(first[len(first)-1])
	if got := s.list(journal.Filter{After: after, Limit: 3}); !reflect.DeepEqual(got, []string{"zz", "z", "m"}) {
		// zz sorts between n0 and z: created at a position not yet paged,
		// it shows up there; nothing present throughout is skipped.
		t.Errorf("second page after new executions = %v, want [zz z m]", got)
	}
	if got := s.list(journal.Filter{After: after, Workflow: "w", State: journal.Running, Limit: 0}); !reflect.DeepEqual(got, []string{"zz", "z", "m", "a", "old"}) {
		t.Errorf("rest after cursor with filters = %v", got)
	}

	for _, bad := range []string{"nope", "!!", journal.CursorAt(&journal.Execution{})[:4]} {
		_, err := s.j.List(s.ctx, journal.Filter{After: bad})
		wantErr(t, "List(After: "+bad+")", err, journal.ErrBadCursor)
	}
}

// testListOldestUpdated: the inbox's order, records by UpdatedAt then ID,
// oldest first, paged by cursors of that order; an append that updates a
// record moves it to the end.
func testListOldestUpdated(t *testing.T, s *suite) {
	same := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	mk := func(id string, st journal.State, created, updated time.Time, parent string) {
		root := parent
		if root == "" {
			root = id
		}
		s.create(&journal.Execution{ID: id, Workflow: "w", State: st, ParentID: parent, RootID: root,
			CreatedAt: created, UpdatedAt: updated})
	}
	// Creation order is the reverse of update order, so a backend that
	// sorted by creation would fail.
	mk("p-late", journal.Paused, same.Add(-3*time.Hour), same.Add(time.Hour), "")
	mk("p-b", journal.Paused, same.Add(-2*time.Hour), same, "")
	mk("p-a", journal.Paused, same.Add(-time.Hour), same, "")
	mk("p-ns", journal.Paused, same.Add(-30*time.Minute), same.Add(time.Nanosecond), "")
	mk("p-early", journal.Paused, same, same.Add(-time.Minute), "")
	mk("r-old", journal.Running, same, same.Add(-time.Hour), "")
	mk("kid", journal.Paused, same, same.Add(-2*time.Hour), "p-b")

	inbox := journal.Filter{State: journal.Paused, RootsOnly: true, Order: journal.OldestUpdated}
	want := [][]string{{"p-early", "p-a"}, {"p-b", "p-ns"}, {"p-late"}}
	if got := s.pages(inbox, 2); !reflect.DeepEqual(got, want) {
		t.Errorf("paused root pages of 2, oldest updated first = %v, want %v", got, want)
	}
	if got := s.list(journal.Filter{State: journal.Paused, Order: journal.OldestUpdated}); !reflect.DeepEqual(got, []string{"kid", "p-early", "p-a", "p-b", "p-ns", "p-late"}) {
		t.Errorf("paused, children too, oldest updated first = %v", got)
	}
	if got := s.list(journal.Filter{Order: journal.OldestUpdated, Limit: 3}); !reflect.DeepEqual(got, []string{"kid", "r-old", "p-early"}) {
		t.Errorf("any state, oldest updated first, limit 3 = %v", got)
	}

	// An update moves a record to the end, and a record that leaves the
	// state leaves the list.
	l := s.acquire("p-early", runnerA, time.Minute)
	paused := journal.Paused
	s.append(journal.Append{ExecutionID: "p-early", Token: l.Token, Update: &journal.Update{State: &paused}})
	running := journal.Running
	lb := s.acquire("p-b", runnerA, time.Minute)
	s.append(journal.Append{ExecutionID: "p-b", Token: lb.Token, Update: &journal.Update{State: &running}})
	if got := s.list(inbox); !reflect.DeepEqual(got, []string{"p-a", "p-ns", "p-late", "p-early"}) {
		t.Errorf("inbox after p-early paused again and p-b resumed = %v, want [p-a p-ns p-late p-early]", got)
	}

	// A cursor belongs to its order.
	first, err := s.j.List(s.ctx, journal.Filter{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	inbox.After = journal.CursorAt(first[0])
	_, err = s.j.List(s.ctx, inbox)
	wantErr(t, "List(OldestUpdated, After: a NewestCreated cursor)", err, journal.ErrBadCursor)
	_, err = s.j.List(s.ctx, journal.Filter{After: journal.OldestUpdated.CursorAt(first[0])})
	wantErr(t, "List(NewestCreated, After: an OldestUpdated cursor)", err, journal.ErrBadCursor)
	if _, err := s.j.List(s.ctx, journal.Filter{Order: journal.Order(99)}); err == nil {
		t.Errorf("List(Order 99) succeeded; an unknown order must fail")
	}
}

func testListDue(t *testing.T, s *suite) {
	now := time.Now().UTC()
	due := now.Add(time.Minute)
	base := now.Add(-time.Hour)
	n := 0
	mk := func(id string, st journal.State, wake time.Time, root string) {
		n++
		s.create(&journal.Execution{ID: id, State: st, WakeAt: wake, ParentID: root, RootID: root, CreatedAt: base.Add(time.Duration(n) * time.Second)})
	}
	mk("wait-past", journal.Waiting, now.Add(-time.Second), "")
	mk("wait-at", journal.Waiting, due, "")
	mk("wait-future", journal.Waiting, due.Add(time.Second), "")
	mk("wait-nowake", journal.Waiting, time.Time{}, "")
	mk("run-nolease", journal.Running, time.Time{}, "")
	mk("run-live", journal.Running, time.Time{}, "")
	mk("run-short", journal.Running, time.Time{}, "")
	mk("run-released", journal.Running, time.Time{}, "")
	mk("child-of-live", journal.Running, time.Time{}, "run-live")
	mk("child-of-short", journal.Running, time.Time{}, "run-short")
	mk("paused", journal.Paused, now.Add(-time.Hour), "")
	mk("paused-later", journal.Paused, due.Add(time.Hour), "")
	mk("paused-nowake", journal.Paused, time.Time{}, "")
	mk("done", journal.Completed, time.Time{}, "")
	s.acquire("run-live", runnerA, time.Hour)
	s.acquire("run-short", runnerA, time.Second) // live now, expired at due
	rel := s.acquire("run-released", runnerA, time.Hour)
	if err := s.j.Release(s.ctx, rel); err != nil {
		t.Fatal(err)
	}

	want := []string{"paused", "child-of-short", "run-released", "run-short", "run-nolease", "wait-at", "wait-past"}
	if got := s.list(journal.Filter{Due: due}); !reflect.DeepEqual(got, want) {
		t.Errorf("List(Due) = %v, want %v", got, want)
	}
	if got := s.list(journal.Filter{Due: due, State: journal.Waiting}); !reflect.DeepEqual(got, []string{"wait-at", "wait-past"}) {
		t.Errorf("List(Due, WAITING) = %v", got)
	}
	if got := s.list(journal.Filter{Due: due, RootsOnly: true, Limit: 2}); !reflect.DeepEqual(got, []string{"paused", "run-released"}) {
		t.Errorf("List(Due, roots, limit 2) = %v", got)
	}
	// At now, the short lease is still live.
	if got := s.list(journal.Filter{Due: now}); !reflect.DeepEqual(got, []string{"paused", "run-released", "run-nolease", "wait-past"}) {
		t.Errorf("List(Due now) = %v", got)
	}
	// The backend's selection is journal.Due's, record by record.
	for _, at := range []time.Time{now, due} {
		listed := map[string]bool{}
		for _, id := range s.list(journal.Filter{Due: at}) {
			listed[id] = true
		}
		for _, id := range s.list(journal.Filter{}) {
			e := s.get(id)
			l, err := s.j.LeaseOf(s.ctx, e.RootID)
			if err != nil {
				t.Fatal(err)
			}
			if d := journal.Due(e, l, at); d != listed[id] {
				t.Errorf("%s: journal.Due says %v, List(Due) says %v", id, d, listed[id])
			}
		}
	}
}

func testCopies(t *testing.T, s *suite) {
	in := &journal.Execution{ID: "r", Input: json.RawMessage(`{"a":1}`), Definition: []byte("name: x")}
	s.create(in)
	in.Input[2] = 'X'
	in.Definition[0] = 'X'
	in.RootID = "mutated"
	got := s.get("r")
	if string(got.Input) != `{"a":1}` || string(got.Definition) != "name: x" || got.RootID != "r" {
		t.Fatalf("Create kept the caller's memory: %+v", got)
	}
	got.Input[2] = 'Y'
	if again := s.get("r"); string(again.Input) != `{"a":1}` {
		t.Fatalf("Get returned shared memory: input now %s", again.Input)
	}

	l := s.acquire("r", runnerA, time.Minute)
	evs := []journal.Event{ev("a", journal.StepCompleted, "set", 0, `{"output":1}`)}
	out := json.RawMessage(`{"o":1}`)
	s.append(journal.Append{ExecutionID: "r", Token: l.Token, Events: evs, Update: &journal.Update{Output: out}})
	evs[0].Data[2] = 'X'
	evs[0].Path = "mutated"
	out[2] = 'X'
	read := s.events("r", 0)
	if string(read[0].Data) != `{"output":1}` || read[0].Path != "a" || read[0].Seq != 1 {
		t.Fatalf("Append kept the caller's memory: %+v", read[0])
	}
	if evs[0].Seq != 0 {
		t.Errorf("Append wrote Seq %d into the caller's slice", evs[0].Seq)
	}
	if got := s.get("r"); string(got.Output) != `{"o":1}` {
		t.Fatalf("Append kept the caller's output: %s", got.Output)
	}
	read[0].Data[2] = 'Y'
	if again := s.events("r", 0); string(again[0].Data) != `{"output":1}` {
		t.Fatalf("Events returned shared memory: %s", again[0].Data)
	}
}

func testCancelledContext(t *testing.T, s *suite) {
	l := s.root("r")
	ctx, cancel := context.WithCancel(s.ctx)
	cancel()
	_, err := s.j.Append(ctx, journal.Append{ExecutionID: "r", Token: l.Token, Events: []journal.Event{step("a", 1)}})
	wantErr(t, "Append with a cancelled context", err, context.Canceled)
	err = s.j.Create(ctx, &journal.Execution{ID: "x", Workflow: "wf", State: journal.Running})
	wantErr(t, "Create with a cancelled context", err, context.Canceled)
	if evs := s.events("r", 0); len(evs) != 0 {
		t.Errorf("cancelled append wrote %+v", evs)
	}
	if _, err := s.j.Get(s.ctx, "x"); !errors.Is(err, journal.ErrNotFound) {
		t.Errorf("cancelled Create stored the execution: %v", err)
	}
}

// testConcurrentExecutions is the shape of a busy engine: many executions,
// each driven by its own goroutine, one append per step.
func testConcurrentExecutions(t *testing.T, s *suite) {
	const execs, steps = 40, 10
	leases := make([]journal.Lease, execs)
	for i := range execs {
		leases[i] = s.root(fmt.Sprintf("e%02d", i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, execs)
	for i := range execs {
		wg.Go(func() {
			id := fmt.Sprintf("e%02d", i)
			var seq int64
			for k := range steps {
				a := journal.Append{ExecutionID: id, Token: leases[i].Token, ExpectedSeq: seq,
					Events: []journal.Event{step(fmt.Sprintf("s%d", k), map[string]int{"exec": i, "step": k})}}
				if k == steps-1 {
					a.Update = &journal.Update{State: ptr(journal.Completed), Output: json.RawMessage(fmt.Sprint(i))}
				}
				got, err := s.j.Append(s.ctx, a)
				if err != nil {
					errs <- fmt.Errorf("%s step %d: %w", id, k, err)
					return
				}
				if got != seq+1 {
					errs <- fmt.Errorf("%s step %d: seq %d, want %d", id, k, got, seq+1)
					return
				}
				seq = got
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := range execs {
		id := fmt.Sprintf("e%02d", i)
		evs := s.events(id, 0)
		if len(evs) != steps {
			t.Fatalf("%s has %d events, want %d", id, len(evs), steps)
		}
		for k, e := range evs {
			var d struct {
				Output struct{ Exec, Step int }
			}
			if err := json.Unmarshal(e.Data, &d); err != nil || e.Seq != int64(k+1) || d.Output.Exec != i || d.Output.Step != k {
				t.Fatalf("%s event %d = seq %d %s (%v)", id, k, e.Seq, e.Data, err)
			}
		}
		if got := s.get(id); got.State != journal.Completed || string(got.Output) != fmt.Sprint(i) {
			t.Errorf("%s: state %s output %s", id, got.State, got.Output)
		}
	}
}

// testConcurrentSameSerialized: concurrent map items of one execution whose
// appends the caller serialises (as the engine's per-execution batching does).
func testConcurrentSameSerialized(t *testing.T, s *suite) {
	const workers, each = 8, 10
	l := s.root("r")
	var (
		mu  sync.Mutex
		seq int64
		wg  sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for k := range each {
				mu.Lock()
				got, err := s.j.Append(s.ctx, journal.Append{ExecutionID: "r", Token: l.Token, ExpectedSeq: seq,
					Events: []journal.Event{step(fmt.Sprintf("items[%d]/s%d", w, k), w*100+k)}})
				if err == nil {
					seq = got
				}
				mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	checkDense(t, s, "r", workers*each)
}

// testConcurrentSameOptimistic: writers racing on one execution without
// coordination; the expected sequence must let exactly one win each round.
func testConcurrentSameOptimistic(t *testing.T, s *suite) {
	const workers, each = 6, 5
	l := s.root("r")
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for k := 0; k < each; {
				evs, err := s.j.Events(s.ctx, "r", 0)
				if err != nil {
					t.Error(err)
					return
				}
				_, err = s.j.Append(s.ctx, journal.Append{ExecutionID: "r", Token: l.Token, ExpectedSeq: int64(len(evs)),
					Events: []journal.Event{step(fmt.Sprintf("w%d/s%d", w, k), w*100+k)}})
				switch {
				case err == nil:
					k++
				case !errors.Is(err, journal.ErrConflict):
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	checkDense(t, s, "r", workers*each)
}

func checkDense(t *testing.T, s *suite, id string, n int) {
	t.Helper()
	evs := s.events(id, 0)
	if len(evs) != n {
		t.Fatalf("%s has %d events, want %d", id, len(evs), n)
	}
	paths := map[string]bool{}
	for i, e := range evs {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
		if paths[e.Path] {
			t.Fatalf("path %s recorded twice", e.Path)
		}
		paths[e.Path] = true
	}
}

func testClaimOrder(t *testing.T, s *suite) {
	now := time.Now().UTC()
	base := now.Add(-3 * time.Hour)
	n := 0
	mk := func(id string, st journal.State, wake time.Time, parent string) {
		n++
		s.create(&journal.Execution{ID: id, State: st, WakeAt: wake, ParentID: parent, RootID: parent, CreatedAt: base.Add(time.Duration(n) * time.Second)})
	}
	mk("new-2", journal.Running, time.Time{}, "")
	mk("cancel-paused", journal.Paused, time.Time{}, "")
	mk("due-old", journal.Waiting, now.Add(-2*time.Hour), "")
	mk("due-new", journal.Waiting, now.Add(-time.Hour), "")
	mk("paused-due", journal.Paused, now.Add(-90*time.Minute), "")
	mk("resumed", journal.Running, time.Time{}, "")
	mk("expired", journal.Running, time.Time{}, "")
	mk("held", journal.Running, time.Time{}, "")
	mk("future", journal.Waiting, now.Add(time.Hour), "")
	mk("paused-nowake", journal.Paused, time.Time{}, "")
	mk("done", journal.Completed, time.Time{}, "")
	mk("child", journal.Running, time.Time{}, "held")
	mk("excluded", journal.Running, time.Time{}, "")
	// new-1 is created after new-2 but says it is older.
	s.create(&journal.Execution{ID: "new-1", CreatedAt: base})
	l := s.acquire("resumed", runnerB, time.Hour)
	s.append(journal.Append{ExecutionID: "resumed", Token: l.Token, Events: []journal.Event{step("a", 1)}, Release: true})
	s.acquire("expired", runnerB, time.Nanosecond)
	s.acquire("held", runnerB, time.Hour)
	if _, err := s.j.RequestCancel(s.ctx, "cancel-paused", "ops"); err != nil {
		t.Fatal(err)
	}
	claim := func(h journal.Holder, limit int) journal.ClaimResult {
		t.Helper()
		res, err := s.j.Claim(s.ctx, journal.ClaimRequest{Holder: h, TTL: time.Hour, Limit: limit, Exclude: []string{"excluded"}})
		if err != nil {
			t.Fatalf("Claim: %v", err)
		}
		for _, c := range res.Claims {
			if c.Lease.Holder != h || c.Lease.Token == 0 {
				t.Errorf("claim of %s: lease %+v", c.Lease.RootID, c.Lease)
			}
			if got, _ := s.j.LeaseOf(s.ctx, c.Lease.RootID); got.Token != c.Lease.Token {
				t.Errorf("claim of %s: the journal's lease is %+v, the claim's %+v", c.Lease.RootID, got, c.Lease)
			}
		}
		return res
	}
	str := func(cs []journal.Claim) string {
		var b strings.Builder
		for _, c := range cs {
			fmt.Fprintf(&b, "%s:%s ", c.Lease.RootID, c.Reason)
		}
		return b.String()
	}
	first := claim(runnerA, 3)
	if got, want := str(first.Claims), "cancel-paused:cancel due-old:timer paused-due:timer "; got != want {
		t.Errorf("first claim = %s, want %s", got, want)
	}
	if !first.NextWake.Equal(now.Add(time.Hour)) {
		t.Errorf("NextWake = %v, want the future timer %v", first.NextWake, now.Add(time.Hour))
	}
	rest := claim(runnerA, 100)
	if got, want := str(rest.Claims), "due-new:timer resumed:resume expired:takeover new-1:start new-2:start "; got != want {
		t.Errorf("second claim = %s, want %s", got, want)
	}
	if again := claim(runnerB, 100); len(again.Claims) != 0 {
		t.Errorf("claimed roots claimed again: %s", str(again.Claims))
	}
	if got := s.get("expired").Takeovers; got != 1 {
		t.Errorf("takeovers of expired = %d, want 1", got)
	}
	if got := s.get("new-1").Takeovers; got != 0 {
		t.Errorf("takeovers of new-1 = %d, want 0", got)
	}
	if none := claim(runnerA, 0); len(none.Claims) != 0 {
		t.Errorf("Limit 0 claimed %s", str(none.Claims))
	}
}

// testClaimBehindBacklog: a claim that reads only part of a backlog of
// queued starts (a backend may stop at its limit) still takes, ahead of
// them all, a cancel, a resume and a takeover of roots created after
// them; and an excluded start does not use up the limit.
func testClaimBehindBacklog(t *testing.T, s *suite) {
	base := time.Now().UTC().Add(-time.Hour)
	for i := range 20 {
		s.create(&journal.Execution{ID: fmt.Sprintf("q%02d", i), CreatedAt: base.Add(time.Duration(i) * time.Second)})
	}
	late := base.Add(time.Minute)
	for _, id := range []string{"late-cancel", "late-resume", "late-expired"} {
		s.create(&journal.Execution{ID: id, CreatedAt: late})
	}
	if _, err := s.j.RequestCancel(s.ctx, "late-cancel", "ops"); err != nil {
		t.Fatal(err)
	}
	l := s.acquire("late-resume", runnerB, time.Hour)
	s.append(journal.Append{ExecutionID: "late-resume", Token: l.Token, Events: []journal.Event{step("a", 1)}, Release: true})
	s.acquire("late-expired", runnerB, time.Nanosecond)
	claim := func(limit int) string {
		t.Helper()
		res, err := s.j.Claim(s.ctx, journal.ClaimRequest{Holder: runnerA, TTL: time.Hour, Limit: limit, Exclude: []string{"q00"}})
		if err != nil {
			t.Fatalf("Claim: %v", err)
		}
		var b strings.Builder
		for _, c := range res.Claims {
			fmt.Fprintf(&b, "%s:%s ", c.Lease.RootID, c.Reason)
		}
		return b.String()
	}
	if got, want := claim(3), "late-cancel:cancel late-resume:resume late-expired:takeover "; got != want {
		t.Errorf("first claim = %s, want %s", got, want)
	}
	if got, want := claim(1), "q01:start "; got != want {
		t.Errorf("second claim = %s, want %s (q00 is excluded)", got, want)
	}
}

func testClaimConcurrent(t *testing.T, s *suite) {
	const n = 40
	for i := range n {
		s.create(&journal.Execution{ID: fmt.Sprintf("e%02d", i)})
	}
	var mu sync.Mutex
	got := map[string]string{}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := journal.Holder{ID: fmt.Sprintf("w%d", w), Host: "h", PID: w}
			for {
				res, err := s.j.Claim(s.ctx, journal.ClaimRequest{Holder: h, TTL: time.Hour, Limit: 3})
				if err != nil {
					t.Errorf("Claim: %v", err)
					return
				}
				if len(res.Claims) == 0 {
					return
				}
				mu.Lock()
				for _, c := range res.Claims {
					if prev, ok := got[c.Lease.RootID]; ok {
						t.Errorf("%s claimed by %s and %s", c.Lease.RootID, prev, h.ID)
					}
					got[c.Lease.RootID] = h.ID
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(got) != n {
		t.Errorf("%d of %d executions claimed", len(got), n)
	}
}

// testRequestCancel: the request is stored on the root with who made it
// (the first requester's name stays), refused for a child and unknown ids,
// a no-op on a finished execution; a claim by any holder then finds it,
// and the record it reads names the requester, so that whichever process
// carries the cancel out journals that actor.
func testRequestCancel(t *testing.T, s *suite) {
	_, err := s.j.RequestCancel(s.ctx, "nope", "ops")
	wantErr(t, "RequestCancel unknown", err, journal.ErrNotFound)
	s.create(&journal.Execution{ID: "r", State: journal.Paused})
	s.create(&journal.Execution{ID: "c", ParentID: "r", RootID: "r"})
	s.create(&journal.Execution{ID: "d", State: journal.Completed})
	_, err = s.j.RequestCancel(s.ctx, "c", "ops")
	wantErr(t, "RequestCancel of a child", err, journal.ErrNotRoot)
	var nr *journal.NotRootError
	if !errors.As(err, &nr) || nr.RootID != "r" {
		t.Errorf("RequestCancel of a child: %v does not name the root", err)
	}
	if got := s.get("c"); got.CancelRequested {
		t.Errorf("a refused request marked the child")
	}
	if got := s.get("r"); got.CancelRequested || got.CancelRequestedBy != "" {
		t.Errorf("before any request: cancel requested %v by %q", got.CancelRequested, got.CancelRequestedBy)
	}
	rec, err := s.j.RequestCancel(s.ctx, "r", "ops")
	if err != nil || !rec.CancelRequested || rec.CancelRequestedBy != "ops" || rec.State != journal.Paused {
		t.Fatalf("RequestCancel(r) = %+v, %v", rec, err)
	}
	if got := s.get("r"); !got.CancelRequested || got.CancelRequestedBy != "ops" {
		t.Errorf("the request is stored as %v by %q, want true by ops", got.CancelRequested, got.CancelRequestedBy)
	}
	if rec, err = s.j.RequestCancel(s.ctx, "r", "audit"); err != nil || !rec.CancelRequested || rec.CancelRequestedBy != "ops" {
		t.Errorf("a repeated request = %+v, %v; want the first requester (ops) kept", rec, err)
	}
	rec, err = s.j.RequestCancel(s.ctx, "d", "ops")
	if err != nil || rec.CancelRequested || rec.CancelRequestedBy != "" || rec.State != journal.Completed {
		t.Errorf("RequestCancel of a finished execution = %+v, %v; want it unchanged", rec, err)
	}
	// Another holder (another process) claims the cancel and reads who
	// asked for it from the journal alone.
	res, err := s.j.Claim(s.ctx, journal.ClaimRequest{Holder: runnerB, TTL: time.Minute, Limit: 10})
	if err != nil || len(res.Claims) != 1 || res.Claims[0].Lease.RootID != "r" || res.Claims[0].Reason != journal.ClaimCancel {
		t.Fatalf("Claim after the request = %+v, %v; want r for its cancel", res, err)
	}
	if got := s.get("r"); got.CancelRequestedBy != "ops" {
		t.Errorf("the claimer reads the request as by %q, want ops", got.CancelRequestedBy)
	}
	if es, err := s.j.List(s.ctx, journal.Filter{}); err != nil || len(es) == 0 {
		t.Errorf("List: %d, %v", len(es), err)
	} else {
		for _, e := range es {
			if want := map[string]string{"r": "ops"}[e.ID]; e.CancelRequestedBy != want {
				t.Errorf("List: %s cancel requested by %q, want %q", e.ID, e.CancelRequestedBy, want)
			}
		}
	}
}

// testLabelsActorLastSeq: the service's fields of a record (labels,
// started_by, the start's trace context) are stored by Create and by
// CreateHeld, read by Get and List, and absent when not given.
func testLabelsActorLastSeq(t *testing.T, s *suite) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	s.create(&journal.Execution{ID: "a", Labels: map[string]string{"customer": "ACME", "tier.x": "gold"}, StartedBy: "ci", TraceParent: tp})
	s.create(&journal.Execution{ID: "b", Labels: map[string]string{"customer": "ACME"}})
	s.create(&journal.Execution{ID: "c"})
	got := s.get("a")
	if !reflect.DeepEqual(got.Labels, map[string]string{"customer": "ACME", "tier.x": "gold"}) || got.StartedBy != "ci" || got.TraceParent != tp {
		t.Errorf("labels/started_by/trace_parent = %v / %q / %q", got.Labels, got.StartedBy, got.TraceParent)
	}
	if c := s.get("c"); c.Labels != nil || c.StartedBy != "" || c.LastSeq != 0 || c.CancelRequested || c.CancelRequestedBy != "" || c.TraceParent != "" || c.Takeovers != 0 {
		t.Errorf("absent service fields: %+v", c)
	}
	if _, err := s.j.CreateHeld(s.ctx, &journal.Execution{ID: "held", Workflow: "wf", Version: 1, State: journal.Running, StartedBy: "ci", TraceParent: tp}, runnerA, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := s.get("held"); got.StartedBy != "ci" || got.TraceParent != tp {
		t.Errorf("CreateHeld: started_by/trace_parent = %q / %q", got.StartedBy, got.TraceParent)
	}
	if es, err := s.j.List(s.ctx, journal.Filter{}); err != nil {
		t.Fatal(err)
	} else {
		for _, e := range es {
			if want := map[string]string{"a": tp, "held": tp}[e.ID]; e.TraceParent != want {
				t.Errorf("List: %s trace_parent %q, want %q", e.ID, e.TraceParent, want)
			}
		}
	}
	for _, tc := range []struct {
		labels map[string]string
		want   []string
	}{
		{map[string]string{"customer": "ACME"}, []string{"b", "a"}},
		{map[string]string{"customer": "ACME", "tier.x": "gold"}, []string{"a"}},
		{map[string]string{"customer": "acme"}, []string{}},
		{map[string]string{"other": "ACME"}, []string{}},
	} {
		if got := s.list(journal.Filter{Labels: tc.labels}); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("List(labels %v) = %v, want %v", tc.labels, got, tc.want)
		}
	}
	l := s.acquire("a", runnerA, time.Minute)
	s.append(journal.Append{ExecutionID: "a", Token: l.Token, Events: []journal.Event{step("x", 1), step("y", 2)}})
	if got := s.get("a").LastSeq; got != 2 {
		t.Errorf("LastSeq = %d, want 2", got)
	}
	if got := s.list(journal.Filter{Labels: map[string]string{"customer": "ACME"}, Limit: 1}); len(got) != 1 || got[0] != "b" {
		t.Errorf("List with labels and a limit = %v", got)
	}
}

// testUseAfterClose: after Close (which may be called again), every
// method fails with the one journal.ErrClosed, whatever the backend.
func testUseAfterClose(t *testing.T, s *suite) {
	s.create(&journal.Execution{ID: "r", State: journal.Running})
	if err := s.j.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.j.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.j.Create(s.ctx, &journal.Execution{ID: "x"}); !errors.Is(err, journal.ErrClosed) {
		t.Errorf("Create after Close: %v, want journal.ErrClosed", err)
	}
	if _, err := s.j.Get(s.ctx, "r"); !errors.Is(err, journal.ErrClosed) {
		t.Errorf("Get after Close: %v, want journal.ErrClosed", err)
	}
	if _, err := s.j.List(s.ctx, journal.Filter{}); !errors.Is(err, journal.ErrClosed) {
		t.Errorf("List after Close: %v, want journal.ErrClosed", err)
	}
	if _, err := s.j.Acquire(s.ctx, "r", journal.Holder{ID: "a"}, time.Minute, 0); !errors.Is(err, journal.ErrClosed) {
		t.Errorf("Acquire after Close: %v, want journal.ErrClosed", err)
	}
}
