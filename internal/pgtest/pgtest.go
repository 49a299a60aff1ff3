// Package pgtest gives a test the PostgreSQL server that
// $LOOM_POSTGRES_DSN names (.ci/run and scripts/postgres-for-tests.sh start
// one) and a schema of its own, so tests of every package can share one
// server without seeing each other's tables.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DSN returns $LOOM_POSTGRES_DSN, or skips t when it is not set.
func DSN(t testing.TB) string {
	t.Helper()
	d := os.Getenv("LOOM_POSTGRES_DSN")
	if d == "" {
		t.Skip("LOOM_POSTGRES_DSN is not set: start a server with " +
			"`export LOOM_POSTGRES_DSN=$(bash scripts/postgres-for-tests.sh)` to run the PostgreSQL tests")
	}
	return d
}

// Schema creates a schema no other test uses, named prefix_ and random hex,
// and drops it with everything in it when t ends. It returns the schema's
// name, for postgres.WithSchema, and a DSN whose search_path is that schema,
// for what takes only a DSN (the CLI's --db, a loom serve). It skips t when
// $LOOM_POSTGRES_DSN is not set.
func Schema(t testing.TB, prefix string) (name, dsn string) {
	t.Helper()
	base := DSN(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name = prefix + "_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := exec1(ctx, base, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create schema %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := exec1(ctx, base, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return name, base + sep + "search_path=" + name
}

// Dump returns pg_dump's text of the schema, for tests that grep what the
// database holds; it skips t when pg_dump is not on PATH.
func Dump(t testing.TB, schema string) []byte {
	t.Helper()
	if _, err := exec.LookPath("pg_dump"); err != nil {
		t.Skip("pg_dump is not on PATH")
	}
	out, err := exec.Command("pg_dump", "--schema="+schema, DSN(t)).Output()
	if err != nil {
		t.Fatalf("pg_dump --schema=%s: %v", schema, err)
	}
	return out
}

func exec1(ctx context.Context, dsn, sql string) error {
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, sql)
	return err
}
