package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/journaltest"
	"github.com/loomwork/loom/journal/sqlite"
)

func TestConformance(t *testing.T) {
	journaltest.Run(t, func(t *testing.T) journal.Journal { return open(t, filepath.Join(t.TempDir(), "loom.db")) })
}

func open(t testing.TB, path string, opts ...sqlite.Option) *sqlite.Journal {
	t.Helper()
	j, err := sqlite.Open(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return j
}
