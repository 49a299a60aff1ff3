package sealed_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loomwork/loom/internal/pgtest"

	_ "github.com/mattn/go-sqlite3"

	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/journaltest"
	"github.com/loomwork/loom/journal/memory"
	"github.com/loomwork/loom/journal/postgres"
	"github.com/loomwork/loom/journal/sealed"
	"github.com/loomwork/loom/journal/sqlite"
)

func keys(t testing.TB, lines ...string) *sealed.Keys {
	t.Helper()
	k, err := sealed.ParseKeys([]byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newLine(t testing.TB, id string) string {
	t.Helper()
	l, err := sealed.NewKeyLine(nil, id)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestConformance: a sealed journal is a journal, whatever it wraps.
func TestConformance(t *testing.T) {
	k := keys(t, newLine(t, "k1"))
	journaltest.Run(t, func(t *testing.T) journal.Journal { return sealed.Wrap(memory.New(), k) })
}

const secret = "tok-5ecret-value"

// write stores one execution whose input, output, error and events all
// carry the secret, through s.
func write(t *testing.T, s journal.Journal, id string) {
	t.Helper()
	ctx := context.Background()
	in := json.RawMessage(`{"token":"` + secret + `"}`)
	l, err := s.CreateHeld(ctx, &journal.Execution{ID: id, Workflow: "wf", Version: 1, State: journal.Running, Input: in, Definition: []byte("name: wf\n")},
		journal.Holder{ID: "h", Host: "host", PID: 1}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	failed := journal.Failed
	_, err = s.Append(ctx, journal.Append{ExecutionID: id, Token: l.Token, Events: []journal.Event{
		{Path: "call", Kind: journal.StepFailed, Name: "task:http", Data: json.RawMessage(`{"error":{"type":"HTTPError","message":"GET https://api/?t=` + secret + `"}}`)},
		{Path: "", Kind: journal.ExecutionFinished, Name: "FAILED", Data: json.RawMessage(`{"state":"FAILED","output":"` + secret + `"}`)},
	}, Update: &journal.Update{State: &failed, Output: json.RawMessage(`"` + secret + `"`), Error: json.RawMessage(`{"message":"` + secret + `"}`)}})
	if err != nil {
		t.Fatal(err)
	}
}

// check reads the execution back through s and finds every value whole.
func check(t *testing.T, s journal.Journal, id string) {
	t.Helper()
	ctx := context.Background()
	e, err := s.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for what, v := range map[string]json.RawMessage{"input": e.Input, "output": e.Output, "error": e.Error} {
		if !bytes.Contains(v, []byte(secret)) {
			t.Errorf("%s reads %s", what, v)
		}
	}
	evs, err := s.Events(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || !bytes.Contains(evs[0].Data, []byte(secret)) || !bytes.Contains(evs[1].Data, []byte(secret)) {
		t.Errorf("events read %v", evs)
	}
	es, err := s.List(ctx, journal.Filter{})
	if err != nil || len(es) == 0 || !bytes.Contains(es[0].Input, []byte(secret)) {
		t.Errorf("List: %v, %v", es, err)
	}
}

// TestSQLiteFileHoldsNoClearText writes through a sealed SQLite journal and
// greps the database file (and its WAL): the value is nowhere in it.
func TestSQLiteFileHoldsNoClearText(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loom.db")
	j, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sealed.Wrap(j, keys(t, newLine(t, "k1")))
	write(t, s, "x1")
	check(t, s, "x1")
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(path + "*")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s holds the value in clear", f)
		}
	}
	// The rows are there, sealed: a plain read sees envelopes.
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM events WHERE data LIKE '{"$loom_sealed":1,"key":"k1"%'`).Scan(&n); err != nil || n != 2 {
		t.Errorf("sealed events: %d, %v", n, err)
	}
}

// TestPostgresDumpHoldsNoClearText does the same with pg_dump of the schema.
func TestPostgresDumpHoldsNoClearText(t *testing.T) {
	if _, err := exec.LookPath("pg_dump"); err != nil {
		t.Skip("no pg_dump on PATH")
	}
	schema, _ := pgtest.Schema(t, "sealedtest")
	j, err := postgres.Open(context.Background(), pgtest.DSN(t), postgres.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	s := sealed.Wrap(j, keys(t, newLine(t, "k1")))
	write(t, s, "x1")
	check(t, s, "x1")
	dump := pgtest.Dump(t, schema)
	if !bytes.Contains(dump, []byte(`$loom_sealed`)) {
		t.Fatalf("the dump holds no sealed value: %.400s", dump)
	}
	if bytes.Contains(dump, []byte(secret)) {
		t.Error("the PostgreSQL dump holds the value in clear")
	}
}

func TestRotationAndKeyErrors(t *testing.T) {
	mem := memory.New()
	old := newLine(t, "old")
	write(t, sealed.Wrap(mem, keys(t, old)), "a")
	rotated := keys(t, newLine(t, "new"), old)
	write(t, sealed.Wrap(mem, rotated), "b")
	for _, id := range []string{"a", "b"} {
		check(t, sealed.Wrap(mem, rotated), id) // old and new records both open
	}
	raw, _ := mem.Get(context.Background(), "b")
	if k, ok := sealed.IsSealed(raw.Input); !ok || k != "new" {
		t.Errorf("a new record is sealed with %q, %v", k, ok)
	}

	_, err := sealed.Wrap(mem, nil).Get(context.Background(), "a")
	wantErr(t, err, "the journal of a is encrypted (key old): give its key file with --key-file or $LOOM_KEY_FILE")
	_, err = sealed.Wrap(mem, keys(t, newLine(t, "new"))).Events(context.Background(), "a", 0)
	wantErr(t, err, "the journal of a is encrypted with key old, which the key file does not hold: add that key's line to the key file")
	// Same id, other key material: it does not open.
	_, err = sealed.Wrap(mem, keys(t, newLine(t, "old"))).Get(context.Background(), "a")
	if !errors.Is(err, sealed.ErrTampered) {
		t.Errorf("a wrong key: %v", err)
	}

	// A view shows what is in clear and marks the rest.
	v, err := sealed.View(mem, nil).Get(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	if string(v.Input) != `"(encrypted with key old)"` || string(v.Error) != `{"message":"(encrypted with key old)","type":"Encrypted"}` || v.Workflow != "wf" {
		t.Errorf("view: input %s, error %s, workflow %s", v.Input, v.Error, v.Workflow)
	}
	view := sealed.View(mem, nil)
	evs, err := view.Events(context.Background(), "a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if string(evs[0].Data) != `{"error":{"message":"(encrypted with key old)","type":"Encrypted"}}` || string(evs[1].Data) != `{"output":"(encrypted with key old)"}` {
		t.Errorf("view: events %s, %s", evs[0].Data, evs[1].Data)
	}
	if h := view.Hidden(); len(h) != 1 || h[0] != "old" {
		t.Errorf("Hidden() = %v", h)
	}
}

// TestMovedValueDoesNotOpen: a sealed value is bound to its place.
func TestMovedValueDoesNotOpen(t *testing.T) {
	mem := memory.New()
	k := keys(t, newLine(t, "k"))
	write(t, sealed.Wrap(mem, k), "a")
	raw, _ := mem.Get(context.Background(), "a")
	ctx := context.Background()
	if err := mem.Create(ctx, &journal.Execution{ID: "b", Workflow: "wf", Version: 1, State: journal.Running, Input: raw.Output, Definition: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := sealed.Wrap(mem, k).Get(ctx, "b"); !errors.Is(err, sealed.ErrTampered) {
		t.Errorf("another record's output as input: %v", err)
	}
}

func TestClearRecordsStayReadable(t *testing.T) {
	mem := memory.New()
	write(t, mem, "plain") // before encryption was turned on
	check(t, sealed.Wrap(mem, keys(t, newLine(t, "k"))), "plain")
	if sealed.Wrap(mem, nil).Encrypting() {
		t.Error("no keys, yet Encrypting")
	}
}

func TestParseKeys(t *testing.T) {
	good := newLine(t, "k1")
	for src, want := range map[string]string{
		"":                          "1: the key file holds no key (make one with `loom key new`)",
		"# only a comment\n":        "1: the key file holds no key (make one with `loom key new`)",
		"k1\n":                      "1: a key line is \"ID BASE64-KEY\" (make one with `loom key new`)",
		"\nk1 c2hvcnQ=\n":           "2: key \"k1\" is not 32 bytes in base64 (make one with `loom key new`)",
		"bad/id " + good[3:] + "\n": "1: key id \"bad/id\" must be 1 to 64 letters, digits or _.:-",
		good + "\n" + good + "\n":   "2: key id \"k1\" appears twice",
	} {
		_, err := sealed.ParseKeys([]byte(src))
		wantErr(t, err, want)
	}
	k, err := sealed.ParseKeys([]byte("# keys\n" + good + "  # current\n" + newLine(t, "") + "\n"))
	if err != nil || k.Current() != "k1" {
		t.Errorf("ParseKeys: %v, current %q", err, k.Current())
	}
	path := filepath.Join(t.TempDir(), "loom.key")
	if err := os.WriteFile(path, []byte("nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = sealed.LoadKeys(path)
	wantErr(t, err, path+":1: a key line is \"ID BASE64-KEY\" (make one with `loom key new`)")
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || err.Error() != want {
		t.Errorf("error %v\nwant  %s", err, want)
	}
}
