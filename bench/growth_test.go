package bench

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/sqlite"
)

// threeSteps is the workflow whose finished executions BenchmarkJournalSize
// weighs: three tasks, an input and an output, as an order flow has.
const threeSteps = `
name: order
input:
  type: object
steps:
  - id: reserve
    task: echo
    with: {order: "${ input.order }", qty: 2}
  - id: charge
    task: echo
    with: {order: "${ input.order }", amount: 42.5}
  - id: ship
    task: echo
    with: {order: "${ input.order }", carrier: "ups"}
output: '${ {"order": input.order, "shipped": steps.ship.output.carrier} }'
`

// sizeExecutions is how many executions BenchmarkJournalSize runs; the
// issue's figure is -size.executions=100000 (CI runs the default).
var sizeExecutions = flag.Int("size.executions", 2000, "finished executions BenchmarkJournalSize weighs")

// BenchmarkJournalSize: the bytes a finished 3-step execution takes in the
// SQLite file (pages in use after a checkpoint, divided by executions), and
// the file's whole size.
func BenchmarkJournalSize(b *testing.B) {
	n := *sizeExecutions
	cat, err := definition.Parse("order.yaml", []byte(threeSteps))
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		path := filepath.Join(b.TempDir(), "loom.db")
		j, err := sqlite.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		eng := interpreter.New(cat, tasks(), j)
		ctx := context.Background()
		before := fileBytes(b, path)
		sem := make(chan struct{}, 100)
		errs := make(chan error, n)
		for k := 0; k < n; k++ {
			sem <- struct{}{}
			go func() {
				defer func() { <-sem }()
				ex, err := eng.Run(ctx, "order", map[string]any{"order": "A-" + strconv.Itoa(k)})
				if err == nil && ex.State != journal.Completed {
					err = fmt.Errorf("state %s", ex.State)
				}
				errs <- err
			}()
		}
		for k := 0; k < n; k++ {
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
		j.Close()
		after := fileBytes(b, path)
		b.ReportMetric(float64(after-before)/float64(n), "bytes/execution")
		b.ReportMetric(float64(after)/1e6, "MB-in-file")
	}
}

// fileBytes is the size of the pages in use in the SQLite file at path,
// after its WAL is checkpointed into it.
func fileBytes(b *testing.B, path string) int64 {
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var pages, free, size int64
	if _, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		b.Fatal(err)
	}
	for q, dst := range map[string]*int64{"PRAGMA page_count": &pages, "PRAGMA freelist_count": &free, "PRAGMA page_size": &size} {
		if err := db.QueryRow(q).Scan(dst); err != nil {
			b.Fatal(err)
		}
	}
	return (pages - free) * size
}
