package sqlite_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/sqlite"
)

// damageTrials is how many seeded damages TestRandomDamage tries (-short:
// a tenth).
const damageTrials = 200

// TestRandomDamage damages copies of a journal file at seeded random
// (whole pages overwritten with noise, zeroed, replaced by another page
// of the file, as a misdirected write leaves them; the file truncated) and
// reads every execution of each copy as loom's read commands do. Every
// read must either answer exactly what was written or fail with an error
// that says the journal is damaged (or, for a file that no longer is a
// journal, cannot be opened): never a shorter history, a record that is
// not there, another execution's record, or a panic (issue #11, defect 5:
// 5 of 800 such reads used to return part of a history silently). A
// failing seed reruns alone with -run 'TestRandomDamage/seed=N$'.
func TestRandomDamage(t *testing.T) {
	truth, clean := damageJournal(t)
	trials := damageTrials
	if testing.Short() {
		trials /= 10
	}
	var (
		mu    sync.Mutex
		tally [4]int // undamaged, refused at open, some reads refused, every read right
	)
	for seed := range trials {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(uint64(seed), 0x10047))
			damaged, how := damage(r, clean)
			path := filepath.Join(t.TempDir(), "loom.db")
			if err := os.WriteFile(path, damaged, 0o644); err != nil {
				t.Fatal(err)
			}
			outcome := readDamaged(t, path, truth, how)
			mu.Lock()
			tally[outcome]++
			mu.Unlock()
		})
	}
	t.Cleanup(func() {
		t.Logf("%d damaged copies: %d read right whole, %d refused at open, %d refused some reads and answered the rest right, %d undamaged by chance",
			trials, tally[3], tally[1], tally[2], tally[0])
	})
}

// record is what a read of one execution returns.
type record struct {
	exec   *journal.Execution
	events []journal.Event
}

// damageJournal writes a journal of executions with events, children,
// outputs, errors and inputs large enough to be stored aside, closes it
// (so it is one file, without a WAL), and returns what a read of each
// returns, and the file.
func damageJournal(t *testing.T) (map[string]record, []byte) {
	path := filepath.Join(t.TempDir(), "loom.db")
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	j, err := sqlite.Open(path, sqlite.WithClock(func() time.Time { clock = clock.Add(time.Millisecond); return clock }))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	holder := journal.Holder{ID: "h", Host: "host", PID: 1}
	for i := range 40 {
		id := fmt.Sprintf("exec-%02d", i)
		input := json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))
		if i%5 == 0 {
			input = json.RawMessage(`{"items":[` + strings.Repeat(fmt.Sprintf(`"item %d",`, i), 600) + `"last"]}`)
		}
		l, err := j.CreateHeld(ctx, &journal.Execution{ID: id, Workflow: "wf", Version: 1, State: journal.Running, Input: input,
			Definition: []byte("name: wf\n"), DefinitionHash: "h", Labels: map[string]string{"i": fmt.Sprint(i)}}, holder, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		var seq int64
		for k := range 5 + i%11 {
			data := json.RawMessage(fmt.Sprintf(`{"output":{"k":%d,"of":%q}}`, k, id))
			if seq, err = j.Append(ctx, journal.Append{ExecutionID: id, Token: l.Token, ExpectedSeq: seq,
				Events: []journal.Event{{Path: fmt.Sprintf("s%d", k), Kind: journal.StepCompleted, Name: "echo", Data: data}}}); err != nil {
				t.Fatal(err)
			}
		}
		if i%4 == 1 {
			kid := id + "-child"
			if err := j.Create(ctx, &journal.Execution{ID: kid, Workflow: "wf", Version: 1, State: journal.Running, ParentID: id, RootID: id,
				ParentPath: "call", Input: input, DefinitionHash: "h"}); err != nil {
				t.Fatal(err)
			}
			done := journal.Completed
			if _, err := j.Append(ctx, journal.Append{ExecutionID: kid, Token: l.Token, Events: []journal.Event{{Path: "a", Kind: journal.StepCompleted, Name: "echo"}},
				Update: &journal.Update{State: &done, Output: json.RawMessage(`"child"`)}}); err != nil {
				t.Fatal(err)
			}
		}
		if i%3 != 2 { // a third stay RUNNING
			state, upd := journal.Completed, &journal.Update{Output: json.RawMessage(fmt.Sprint(i))}
			if i%3 == 1 {
				state, upd = journal.Failed, &journal.Update{Error: json.RawMessage(`{"type":"Boom","message":"it failed"}`)}
			}
			upd.State = &state
			if _, err := j.Append(ctx, journal.Append{ExecutionID: id, Token: l.Token, ExpectedSeq: seq, Release: true, Update: upd}); err != nil {
				t.Fatal(err)
			}
		}
	}
	truth := map[string]record{}
	all, err := j.List(ctx, journal.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range all {
		rec, err := j.Get(ctx, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		evs, err := j.Events(ctx, e.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		truth[e.ID] = record{rec, evs}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-wal"); err == nil {
		t.Fatal("the WAL outlived the last connection: the file alone is not the journal")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return truth, b
}

const pageSize = 4096

// damage returns a damaged copy of db and says how it was damaged.
func damage(r *rand.Rand, db []byte) ([]byte, string) {
	b := bytes.Clone(db)
	pages := len(b) / pageSize
	var how []string
	for range 1 + r.IntN(3) {
		p := r.IntN(pages)
		page := b[p*pageSize : (p+1)*pageSize]
		switch r.IntN(4) {
		case 0:
			for i := range page {
				page[i] = byte(r.Uint32())
			}
			how = append(how, fmt.Sprintf("page %d overwritten with noise", p+1))
		case 1:
			clear(page)
			how = append(how, fmt.Sprintf("page %d zeroed", p+1))
		case 2:
			q := r.IntN(pages)
			copy(page, db[q*pageSize:(q+1)*pageSize])
			how = append(how, fmt.Sprintf("page %d replaced by page %d", p+1, q+1))
		case 3:
			n := r.IntN(len(b))
			b = b[:n]
			how = append(how, fmt.Sprintf("truncated to %d bytes", n))
			return b, strings.Join(how, ", ")
		}
	}
	return b, strings.Join(how, ", ")
}

// readDamaged opens the damaged journal at path read-only and reads every
// execution of truth, failing t on any answer that is neither right nor a
// damage error. It returns 0 when the copy read as sound and the damage
// changed nothing that is read, 1 when the open was refused, 2 when some
// reads were refused, 3 when every read was right.
func readDamaged(t *testing.T, path string, truth map[string]record, how string) (outcome int) {
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("%s: panic: %v", how, p)
		}
	}()
	ctx := t.Context()
	j, err := sqlite.OpenReadOnly(path)
	if err != nil {
		if !errors.Is(err, journal.ErrDamaged) && !errors.Is(err, sqlite.ErrUninitialized) {
			t.Errorf("%s: open: %v; want an error that says the journal is damaged", how, err)
		}
		return 1
	}
	defer j.Close()
	refused := 0
	check := func(what string, err error) bool {
		if err == nil {
			return true
		}
		if !errors.Is(err, journal.ErrDamaged) {
			t.Errorf("%s: %s: %v; want the right answer or an error that says the journal is damaged", how, what, err)
		}
		refused++
		return false
	}
	list, err := j.List(ctx, journal.Filter{})
	var rows *journal.DamagedRowsError
	if errors.As(err, &rows) || check("list", err) {
		listed := map[string]bool{}
		for _, e := range list {
			listed[e.ID] = true
			if want, ok := truth[e.ID]; !ok {
				t.Errorf("%s: list: an execution %q that was never written", how, e.ID)
			} else if d := diffRecord(e, want.exec, false); d != "" {
				t.Errorf("%s: list: %s reads with %s", how, e.ID, d)
			}
		}
		named := 0
		if rows != nil {
			named = len(rows.Rows)
			refused++
		}
		if len(listed)+named < len(truth) {
			t.Errorf("%s: list: %d executions and %d named damaged, of %d, with no error for the others", how, len(listed), named, len(truth))
		}
	}
	for id, want := range truth {
		if e, err := j.Get(ctx, id); check("get "+id, err) {
			if d := diffRecord(e, want.exec, true); d != "" {
				t.Errorf("%s: get %s reads with %s", how, id, d)
			}
		}
		if evs, err := j.Events(ctx, id, 0); check("events of "+id, err) && !reflect.DeepEqual(evs, want.events) {
			t.Errorf("%s: events of %s: %d events that differ from the %d written", how, id, len(evs), len(want.events))
		}
	}
	if refused > 0 {
		return 2
	}
	if probs, err := j.CheckIntegrity(ctx); err != nil || len(probs) > 0 {
		return 3
	}
	return 0
}

// diffRecord names the fields of got that differ from want ("" for none);
// List does not read definitions.
func diffRecord(got, want *journal.Execution, withDefinition bool) string {
	w := *want
	if !withDefinition {
		w.Definition = nil
	}
	var diff []string
	g, x := reflect.ValueOf(*got), reflect.ValueOf(w)
	for i := range g.NumField() {
		if !reflect.DeepEqual(g.Field(i).Interface(), x.Field(i).Interface()) {
			diff = append(diff, fmt.Sprintf("%s %.60q, not %.60q", g.Type().Field(i).Name, fmt.Sprint(g.Field(i).Interface()), fmt.Sprint(x.Field(i).Interface())))
		}
	}
	return strings.Join(diff, "; ")
}
