// Command loom-crashtest runs crash trials against a loom binary (see
// internal/crashtest): `loom-crashtest -trials 100` on SQLite, `-db
// postgres://…` on PostgreSQL, `-trials 1000` for a long campaign. It
// builds the binary from this module unless -loom names one, prints the
// counts, and exits 1 when any trial failed.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/loomwork/loom/internal/crashtest"
)

func main() {
	trials := flag.Int("trials", 100, "how many trials to run")
	seed := flag.Int64("seed", time.Now().UnixNano()%1_000_000, "the seed of the kill moments (printed, to rerun a campaign)")
	db := flag.String("db", "", "the journal: a PostgreSQL URL, else a new SQLite file in the work directory")
	loom := flag.String("loom", "", "the loom binary (default: built from this module)")
	verbose := flag.Bool("v", false, "print a line per trial")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	dir, err := os.MkdirTemp("", "loom-crashtest-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	if *loom == "" {
		*loom = filepath.Join(dir, "loom")
		if out, err := exec.Command("go", "build", "-o", *loom, "github.com/loomwork/loom/cmd/loom").CombinedOutput(); err != nil {
			fail(fmt.Errorf("go build: %v: %s", err, out))
		}
	}
	backend := "PostgreSQL"
	if *db == "" {
		*db, backend = filepath.Join(dir, "loom.db"), "SQLite"
	}
	cfg := crashtest.Config{Loom: *loom, DB: *db, Dir: dir, Trials: *trials, Seed: *seed}
	if *verbose {
		cfg.Progress = os.Stderr
	}
	start := time.Now()
	res, err := crashtest.Run(ctx, cfg)
	fmt.Printf("crash trials on %s (seed %d): %s in %s\n", backend, *seed, res, time.Since(start).Round(time.Second))
	for _, f := range res.Failures {
		fmt.Println("  " + f)
	}
	if err != nil {
		fail(err)
	}
	if len(res.Failures) > 0 || res.Passed != *trials {
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "loom-crashtest:", err)
	os.Exit(1)
}
