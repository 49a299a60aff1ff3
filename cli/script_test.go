package cli_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/sqlite"
	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain makes the test binary the loom command for the scripts: each
// `exec loom …` runs cli.Main in a child process, through the real entry
// point with its own argv, streams, environment and exit status.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"loom":       func() { os.Exit(scriptLoom(func() interpreter.Tasks { return builtins.Standard() })) },
		"loom-teams": func() { os.Exit(scriptLoom(func() interpreter.Tasks { return teamTasks() })) },
	})
}

// teamTasks is a custom binary's registry: the standard tasks and one of
// its own.
func teamTasks() *interpreter.Registry {
	reg := interpreter.NewRegistry(builtins.Standard())
	interpreter.Register(reg, "greet", func(ctx context.Context, in struct{ Name string }) (string, error) {
		if in.Name == "" {
			return "", interpreter.Errorf("NoName", "greet needs a name")
		}
		return "hello, " + in.Name, nil
	})
	// count appends its input to the file "calls" in the working
	// directory and returns it (fails with Boom for "fail"): scripts count
	// which tasks ran.
	interpreter.Register(reg, "count", func(ctx context.Context, in string) (string, error) {
		if in == "fail" {
			return "", interpreter.Errorf("Boom", "count was told to fail")
		}
		f, err := os.OpenFile("calls", os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return "", err
		}
		defer f.Close()
		_, err = fmt.Fprintln(f, in)
		return in, err
	})
	return reg
}

func TestScript(t *testing.T) {
	testscript.Run(t, scriptParams(false))
}

// scriptParams are the scripts' parameters; server says whether the
// client commands go through a loom serve (TestScriptServer), which the
// condition [server] tells a script.
func scriptParams(server bool) testscript.Params {
	return testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		UpdateScripts:       os.Getenv("UPDATE_SCRIPTS") != "",
		Setup: func(env *testscript.Env) error {
			// Characters a script cannot type: an escape and a right-to-left override.
			env.Setenv("ESC", "\x1b")
			env.Setenv("RLO", "\u202e")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"jsonget":     cmdJSONGet,
			"holdlease":   cmdHoldLease,
			"tamper":      cmdTamper,
			"sql":         cmdSQL,
			"freeport":    cmdFreePort,
			"waitserver":  cmdWaitServer,
			"http":        cmdHTTP,
			"nocleartext": cmdNoClearText,
			"crashed":     cmdCrashed,
			"driving":     cmdDriving,
		},
		Condition: func(cond string) (bool, error) {
			if cond == "server" {
				return server, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
	}
}

// jsonget VAR KEY[.KEY…]: sets $VAR to a field of the JSON in the last
// command's stdout (a string as is, anything else as JSON).
func cmdJSONGet(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: jsonget VAR KEY[.KEY...]")
	}
	var v any
	ts.Check(json.Unmarshal([]byte(ts.ReadFile("stdout")), &v))
	for _, k := range strings.Split(args[1], ".") {
		m, ok := v.(map[string]any)
		if !ok {
			ts.Fatalf("jsonget: %s: not an object", k)
		}
		v = m[k]
	}
	s, ok := v.(string)
	if !ok {
		b, _ := json.Marshal(v)
		s = string(b)
	}
	ts.Setenv(args[0], s)
}

func openDB(ts *testscript.TestScript) *sqlite.Journal {
	path := ts.Getenv("LOOM_DB")
	if path == "" {
		path = filepath.Join(ts.Getenv("WORK"), ".loom", "loom.db")
	}
	j, err := sqlite.Open(path)
	ts.Check(err)
	return j
}

// sql STATEMENT: runs one SQL statement on the journal's SQLite file
// directly, as damage or a hand edit would.
func cmdSQL(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: sql STATEMENT")
	}
	path := ts.Getenv("LOOM_DB")
	if path == "" {
		path = filepath.Join(ts.Getenv("WORK"), ".loom", "loom.db")
	}
	db, err := sql.Open("sqlite3", path)
	ts.Check(err)
	defer db.Close()
	_, err = db.Exec(args[0])
	ts.Check(err)
}

// holdlease ID: takes the lease of execution ID for a minute as a live
// runner (this test process), so loom must refuse it as busy.
func cmdHoldLease(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: holdlease ID")
	}
	j := openDB(ts)
	defer j.Close()
	_, err := j.Acquire(context.Background(), args[0], interpreter.LocalHolder("script"), time.Minute, 0)
	ts.Check(err)
}

// tamper ID: appends a completed step the definition does not have, so
// the journal no longer replays to its record.
func cmdTamper(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: tamper ID")
	}
	ctx := context.Background()
	j := openDB(ts)
	defer j.Close()
	l, err := j.Acquire(ctx, args[0], interpreter.LocalHolder("tamper"), time.Minute, 0)
	ts.Check(err)
	evs, err := j.Events(ctx, args[0], 0)
	ts.Check(err)
	last := int64(0)
	if len(evs) > 0 {
		last = evs[len(evs)-1].Seq
	}
	_, err = j.Append(ctx, journal.Append{ExecutionID: args[0], Token: l.Token, ExpectedSeq: last,
		Events: []journal.Event{{Path: "ghost", Kind: journal.StepCompleted, Name: "task:echo",
			Data: json.RawMessage(`{"output": 1, "started_at": "2020-01-01T00:00:00Z"}`), Time: time.Now()}}})
	ts.Check(err)
	ts.Check(j.Release(ctx, l))
}

// nocleartext DIR VALUE: no file under DIR (a SQLite journal, its WAL and
// shared memory) holds VALUE in clear.
func cmdNoClearText(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: nocleartext DIR VALUE")
	}
	files := 0
	ts.Check(filepath.WalkDir(ts.MkAbs(args[0]), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		if bytes.Contains(b, []byte(args[1])) {
			ts.Fatalf("%s holds %q in clear", path, args[1])
		}
		return nil
	}))
	if files == 0 {
		ts.Fatalf("no file under %s", args[0])
	}
}

// crashed ID: leaves execution ID as a runner killed with kill -9 leaves
// it: RUNNING, its lease held by a process of this host that no longer
// exists.
func cmdCrashed(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: crashed ID")
	}
	gone := exec.Command(os.Args[0], "-test.run=^$")
	ts.Check(gone.Run())
	killed := interpreter.LocalHolder("killed")
	killed.PID = gone.Process.Pid
	heldRunning(ts, args[0], killed)
}

// driving ID: execution ID is RUNNING under a live runner's lease (this
// test process's, for a minute), as while a loom run drives it: no loom
// serve takes it over.
func cmdDriving(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: driving ID")
	}
	heldRunning(ts, args[0], interpreter.LocalHolder("driving"))
}

// heldRunning makes execution id RUNNING under holder's lease.
func heldRunning(ts *testscript.TestScript, id string, holder journal.Holder) {
	ctx := context.Background()
	j := openDB(ts)
	defer j.Close()
	l, err := j.Acquire(ctx, id, holder, time.Minute, 0)
	ts.Check(err)
	evs, err := j.Events(ctx, id, 0)
	ts.Check(err)
	running := journal.Running
	_, err = j.Append(ctx, journal.Append{ExecutionID: id, Token: l.Token, ExpectedSeq: evs[len(evs)-1].Seq,
		Update: &journal.Update{State: &running}})
	ts.Check(err)
}
