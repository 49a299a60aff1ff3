package definition

import (
	stdctx "context"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// fakeTasks is a task registry for tests.
type fakeTasks map[string]string // name → input JSON Schema ("" for none)

func (f fakeTasks) HasTask(name string) bool { _, ok := f[name]; return ok }
func (f fakeTasks) TaskNames() []string {
	var out []string
	for n := range f {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
func (f fakeTasks) TaskInputSchema(name string) []byte {
	if s := f[name]; s != "" {
		return []byte(s)
	}
	return nil
}

// fakeSecrets is a secret provider that lists these (Canonical) names.
type fakeSecrets []string

func (f fakeSecrets) Lookup(_ stdctx.Context, name string) (string, bool, error) {
	for _, n := range f {
		if n == strings.ToUpper(name) {
			return "value of " + n, true, nil
		}
	}
	return "", false, nil
}

func (f fakeSecrets) Names(stdctx.Context) ([]string, error) { return f, nil }

// loadArchive loads the .yaml/.yml files of an archive as one catalog.
// "tasks: a, b" and "task: name=JSON Schema" lines in the archive's
// comment enable WithTasks; "secrets: a, b" WithSecrets.
func loadArchive(ar *txtar.Archive) (*Catalog, error) {
	var opts []Option
	var ft fakeTasks
	for _, line := range strings.Split(string(ar.Comment), "\n") {
		if rest, ok := strings.CutPrefix(line, "secrets:"); ok {
			var fs fakeSecrets
			for _, n := range strings.Split(rest, ",") {
				fs = append(fs, strings.ToUpper(strings.TrimSpace(n)))
			}
			opts = append(opts, WithSecrets(fs))
		}
		if rest, ok := strings.CutPrefix(line, "tasks:"); ok {
			if ft == nil {
				ft = fakeTasks{}
			}
			for _, t := range strings.Split(rest, ",") {
				ft[strings.TrimSpace(t)] = ""
			}
		}
		if rest, ok := strings.CutPrefix(line, "task:"); ok {
			if ft == nil {
				ft = fakeTasks{}
			}
			name, schema, _ := strings.Cut(strings.TrimSpace(rest), "=")
			ft[name] = schema
		}
	}
	if ft != nil {
		opts = append(opts, WithTasks(ft))
	}
	l := newLoader(opts)
	path := "."
	for _, f := range ar.Files {
		if path == "." {
			path = f.Name
		}
		if strings.HasSuffix(f.Name, ".yaml") || strings.HasSuffix(f.Name, ".yml") {
			l.file(f.Name, f.Data)
		}
	}
	return l.finish(path)
}

// TestInvalid checks the rendered problems of every definition under
// testdata/invalid against the archive's "want" file.
func TestInvalid(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 40 {
		t.Errorf("only %d invalid definitions; want at least 40", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			_, err = loadArchive(ar)
			got := "<no error>\n"
			if err != nil {
				got = err.Error() + "\n"
				if _, ok := err.(ErrorList); !ok {
					t.Errorf("error is %T, want ErrorList", err)
				}
			}
			// Stable run to run.
			for i := 0; i < 3; i++ {
				_, err2 := loadArchive(ar)
				if err2 == nil && err != nil || err2 != nil && err2.Error()+"\n" != got {
					t.Fatalf("unstable output:\n%v\nthen:\n%v", got, err2)
				}
			}
			var want *txtar.File
			for i := range ar.Files {
				if ar.Files[i].Name == "want" {
					want = &ar.Files[i]
				}
			}
			if *update {
				if want == nil {
					ar.Files = append(ar.Files, txtar.File{Name: "want"})
					want = &ar.Files[len(ar.Files)-1]
				}
				want.Data = []byte(got)
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want == nil {
				t.Fatalf("no want file; run with -update")
			}
			if got != string(want.Data) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want.Data)
			}
			if err == nil {
				t.Errorf("definition is valid; an invalid one was expected")
			}
		})
	}
}
