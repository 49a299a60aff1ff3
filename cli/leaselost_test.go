package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/cli"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/sqlite"
)

// TestLeaseLost: a runner whose lease another runner took over (it froze
// past its lease) exits 4 with "lease lost to …" naming the new holder,
// every time, never 1 as if the workflow had failed (issue #11 defect 3).
// The takeover is a task of the workflow itself, so it lands at the same
// moment every run, with no timer or sleep.
func TestLeaseLost(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "loom.db")
	wf := filepath.Join(dir, "wf.yaml")
	if err := os.WriteFile(wf, []byte("name: w\nsteps:\n  - task: steal\n  - task: echo\n    with: after\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var current string // the execution being run
	reg := interpreter.NewRegistry(builtins.Standard())
	interpreter.Register(reg, "steal", func(ctx context.Context, _ any) (any, error) {
		// Another process on another host takes the lease over, as it would
		// once this runner's lease had expired.
		j, err := sqlite.Open(db)
		if err != nil {
			return nil, err
		}
		defer j.Close()
		root := current
		l, err := j.LeaseOf(ctx, root)
		if err != nil {
			return nil, err
		}
		_, err = j.Acquire(ctx, root, journal.Holder{ID: "thief", Host: "elsewhere", PID: 4242}, time.Minute, l.Token)
		return nil, err
	})
	for i := 0; i < 9; i++ {
		id := fmt.Sprintf("l%d", i)
		current = id
		var so, se bytes.Buffer
		code := cli.Run(reg, []string{"run", wf, "--id", id, "--db", db}, nil, &so, &se, func(string) string { return "" })
		want := "loom run: lease lost to runner thief (pid 4242 on elsewhere), which continues the execution; this runner stopped and wrote nothing more; `loom status " + id + " --db " + db + "` shows where it is\n"
		if code != 4 || se.String() != want {
			t.Fatalf("run %d: exit %d, stderr:\n%s\nwant exit 4 and:\n%s", i, code, se.String(), want)
		}
		if strings.TrimSpace(so.String()) != "" {
			t.Errorf("stdout: %s", so.String())
		}
	}
}
