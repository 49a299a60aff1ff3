package sqlite_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/loomwork/loom/journal"
)

// TestPruneDeletesUnusedDefinitions: a pinned definition is stored once
// (schema 3) and shared by hash; Prune deletes it with the last execution
// that uses it, and never while another (open or not yet pruned) does.
func TestPruneDeletesUnusedDefinitions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loom.db")
	j := open(t, path)
	ctx := context.Background()
	def := func(src string) ([]byte, string) {
		sum := sha256.Sum256([]byte(src))
		return []byte(src), hex.EncodeToString(sum[:])
	}
	d1, h1 := def("name: one\nsteps: [{set: {x: 1}}]\n")
	d2, h2 := def("name: two\nsteps: [{set: {x: 2}}]\n")
	d3, h3 := def("name: three\nsteps: [{set: {x: 3}}]\n")
	long := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	create := func(id, root string, st journal.State, src []byte, hash string) {
		t.Helper()
		e := &journal.Execution{ID: id, RootID: root, Workflow: "wf", Version: 1, State: st,
			Definition: src, DefinitionHash: hash, CreatedAt: long, UpdatedAt: long}
		if root != id {
			e.ParentID, e.ParentPath = root, "call"
		}
		if err := j.Create(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// d1: two finished roots (one with a child). d2: one finished root and
	// one open. d3: one finished root.
	create("a", "a", journal.Completed, d1, h1)
	create("a-child", "a", journal.Completed, d1, h1)
	create("b", "b", journal.Completed, d1, h1)
	create("c", "c", journal.Failed, d2, h2)
	create("open", "open", journal.Paused, d2, h2)
	create("d", "d", journal.Completed, d3, h3)

	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stored := func() []string {
		t.Helper()
		rows, err := db.Query(`SELECT hash FROM definitions ORDER BY hash`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var h string
			if err := rows.Scan(&h); err != nil {
				t.Fatal(err)
			}
			out = append(out, h)
		}
		return out
	}
	want := func(hs ...string) []string { slices.Sort(hs); return hs }
	if got := stored(); !slices.Equal(got, want(h1, h2, h3)) {
		t.Fatalf("stored definitions %v, want the three", got)
	}
	// Only a: b still uses d1.
	res, err := j.Prune(ctx, journal.PruneRequest{FinishedBefore: time.Now(), States: []journal.State{journal.Completed}, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Roots != 1 || res.Definitions != 0 || !slices.Equal(stored(), want(h1, h2, h3)) {
		t.Fatalf("pruned %+v; stored %v: a definition another execution uses went", res, stored())
	}
	var total journal.PruneResult
	for {
		res, err := j.Prune(ctx, journal.PruneRequest{FinishedBefore: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		total.Add(res)
		if res.Roots == 0 {
			break
		}
	}
	// b, c and d went: d1 and d3 with them; d2 stays for the open one.
	if total.Roots != 3 || total.Definitions != 2 {
		t.Errorf("pruned %+v, want 3 roots and 2 definitions", total)
	}
	if got := stored(); !slices.Equal(got, want(h2)) {
		t.Errorf("stored definitions %v, want only the open execution's", got)
	}
	if e, err := j.Get(ctx, "open"); err != nil || string(e.Definition) != string(d2) {
		t.Errorf("the open execution's definition: %v %q", err, e.Definition)
	}
	// A new execution of a pruned definition stores it again.
	create("again", "again", journal.Running, d1, h1)
	if e, err := j.Get(ctx, "again"); err != nil || string(e.Definition) != string(d1) {
		t.Errorf("a definition pinned again after its prune: %v %q", err, e.Definition)
	}
}
