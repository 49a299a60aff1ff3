package loomtest_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/loomtest"
	"github.com/rogpeppe/go-internal/txtar"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

var durations = regexp.MustCompile(`\d+\.\d+s`)

// TestGolden runs the test files of each testdata/*.txtar archive (its
// workflows and *.test.yaml files, written to a directory) and compares
// the whole report with the archive's "want" file: invalid test files
// with every problem at its position, failing assertions with want and
// got, passing cases. Durations are masked.
func TestGolden(t *testing.T) {
	archives, err := filepath.Glob("testdata/*.txtar")
	if err != nil || len(archives) == 0 {
		t.Fatalf("no archives under testdata: %v", err)
	}
	for _, path := range archives {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			abs, err := filepath.Abs(path)
			if err != nil {
				t.Fatal(err)
			}
			ar, err := txtar.ParseFile(abs)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			wantIdx := -1
			for i, f := range ar.Files {
				if f.Name == "want" {
					wantIdx = i
					continue
				}
				p := filepath.Join(dir, f.Name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, f.Data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			t.Chdir(dir)
			files, err := loomtest.Find(".")
			if err != nil {
				t.Fatal(err)
			}
			r := &loomtest.Runner{Tasks: interpreter.NewRegistry(builtins.Standard())}
			var results []*loomtest.FileResult
			for _, f := range files {
				results = append(results, r.RunFile(context.Background(), f))
			}
			var out bytes.Buffer
			loomtest.WriteText(&out, results, true)
			got := durations.ReplaceAllString(out.String(), "X.XXs")
			if *update {
				if wantIdx < 0 {
					ar.Files = append(ar.Files, txtar.File{Name: "want"})
					wantIdx = len(ar.Files) - 1
				}
				ar.Files[wantIdx].Data = []byte(got)
				if err := os.WriteFile(abs, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if wantIdx < 0 {
				t.Fatalf("%s has no want file; run go test -update", path)
			}
			if want := string(ar.Files[wantIdx].Data); got != want {
				t.Errorf("report differs\n--- got\n%s--- want\n%s", got, want)
			}
		})
	}
}
