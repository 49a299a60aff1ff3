package postgres_test

import (
	"testing"

	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/journaltest"
	"github.com/loomwork/loom/journal/postgres"
)

// BenchmarkAppend: grouped commits against one durable commit per append
// (synchronous_commit on: a WAL flush per commit), on a fresh schema. It
// needs LOOM_POSTGRES_DSN.
func BenchmarkAppend(b *testing.B) {
	journaltest.BenchmarkAppend(b, func(b *testing.B) (journal.Journal, journaltest.Counts) {
		j := open(b, freshSchema(b), postgres.WithMaxConns(8))
		return j, func() (int64, int64) { s := j.Stats(); return s.Appends, s.Commits }
	})
}
