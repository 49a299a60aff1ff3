package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/journaltest"
	"github.com/loomwork/loom/journal/sqlite"
)

// BenchmarkAppend: grouped commits against one durable commit per append,
// on a temp-dir file with synchronous=FULL (a real fsync per commit).
func BenchmarkAppend(b *testing.B) {
	journaltest.BenchmarkAppend(b, func(b *testing.B) (journal.Journal, journaltest.Counts) {
		j, err := sqlite.Open(filepath.Join(b.TempDir(), "loom.db"))
		if err != nil {
			b.Fatal(err)
		}
		return j, func() (int64, int64) { s := j.Stats(); return s.Appends, s.Commits }
	})
}
