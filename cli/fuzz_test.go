package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loomwork/loom/builtins"
)

// FuzzArgs runs arbitrary command lines in process: whatever a user types,
// loom answers with one of its exit statuses and never reaches the panic
// guard. $WF is a valid workflow, $BAD an invalid one.
func FuzzArgs(f *testing.F) {
	for _, seed := range []string{
		"", "help", "help run", "run", "run $WF", "run $WF --json", "run $WF --input {", "run $WF --input 1 --input-file -",
		"run $WF --id x --id", "run $BAD", "validate $WF $BAD", "validate", "resume", "resume x --pause", "resume --due --json",
		"resume x --definition $BAD", "status x", "list --state paused --workflow w --all", "show x --json", "replay x",
		"cancel x", "schema", "--", "-", "run -- $WF", "list --json=1", "run $WF --input-file /nonexistent",
		"status \x00", "run $WF --workflow \xff", "list --db", "resume x --input null --pause p",
	} {
		f.Add(seed)
	}
	dir := f.TempDir()
	wf := filepath.Join(dir, "wf.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(wf, []byte("name: wf\nsteps:\n  - id: p\n    pause: p\n"), 0o644); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("name: Bad\nsteps: [{tsk: 1}]\n"), 0o644); err != nil {
		f.Fatal(err)
	}
	db := filepath.Join(dir, "j.db")
	getenv := func(k string) string {
		if k == "LOOM_DB" {
			return db
		}
		return ""
	}
	tasks := builtins.Standard()
	f.Fuzz(func(t *testing.T, line string) {
		line = strings.NewReplacer("$WF", wf, "$BAD", bad).Replace(line)
		var args []string
		if line != "" {
			args = strings.Split(line, " ")
		}
		for i, a := range args { // never write outside the temporary directory
			switch name := strings.TrimLeft(a, "-"); {
			case a != name && (name == "db" || name == "input-file") && i+1 < len(args):
				args[i+1] = db
			case a != name && (strings.HasPrefix(name, "db=") || strings.HasPrefix(name, "input-file=")):
				args[i] = "--db=" + db
			case i > 0 && a != "" && a[0] != '-' && a != wf && a != bad:
				args[i] = filepath.Join(dir, filepath.Base(a)) // paths stay inside dir
			}
		}
		var stdout, stderr bytes.Buffer
		code := Run(tasks, args, strings.NewReader("{}"), &stdout, &stderr, getenv)
		if code < 0 || code > 4 {
			t.Errorf("%q: exit %d", args, code)
		}
		if strings.Contains(stderr.String(), "internal error") || strings.Contains(stderr.String(), "goroutine ") {
			t.Errorf("%q: %s", args, stderr.String())
		}
		if code != 0 && code != 3 && stderr.Len() == 0 {
			t.Errorf("%q: exit %d with nothing on stderr", args, code)
		}
	})
}
