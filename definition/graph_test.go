package definition

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
)

// TestGraph checks the drawing of every workflow under testdata/graph
// against the archive's golden files: "json" (the graph the API serves),
// "mermaid" and "dot". The workflow drawn is the catalog's first by name,
// or the one a "workflow: NAME" comment line names.
func TestGraph(t *testing.T) {
	files, err := filepath.Glob("testdata/graph/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no graph cases")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			cat, err := loadArchive(ar)
			if err != nil {
				t.Fatal(err)
			}
			name := cat.Names()[0]
			for _, line := range strings.Split(string(ar.Comment), "\n") {
				if rest, ok := strings.CutPrefix(line, "workflow:"); ok {
					name = strings.TrimSpace(rest)
				}
			}
			g := cat.Workflow(name).Graph()
			js, err := json.MarshalIndent(g, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			checkGraph(t, g)
			got := map[string]string{"json": string(js) + "\n", "mermaid": g.Mermaid(), "dot": g.DOT()}
			changed := false
			for _, out := range []string{"json", "mermaid", "dot"} {
				idx := -1
				for i := range ar.Files {
					if ar.Files[i].Name == out {
						idx = i
					}
				}
				if *update {
					if idx < 0 {
						ar.Files = append(ar.Files, txtar.File{Name: out})
						idx = len(ar.Files) - 1
					}
					ar.Files[idx].Data = []byte(got[out])
					changed = true
					continue
				}
				if idx < 0 {
					t.Fatalf("no %s file; run with -update", out)
				}
				if got[out] != string(ar.Files[idx].Data) {
					t.Errorf("%s: got:\n%s\nwant:\n%s", out, got[out], ar.Files[idx].Data)
				}
			}
			if changed {
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// checkGraph checks what every graph must hold: unique node paths, and
// edges only between nodes, each once.
func checkGraph(t *testing.T, g *Graph) {
	t.Helper()
	nodes := map[string]bool{}
	for _, n := range g.Nodes {
		if nodes[n.Path] {
			t.Errorf("node %q twice", n.Path)
		}
		nodes[n.Path] = true
	}
	edges := map[GraphEdge]bool{}
	for _, e := range g.Edges {
		if !nodes[e.From] || !nodes[e.To] {
			t.Errorf("edge %v names a missing node", e)
		}
		if edges[e] {
			t.Errorf("edge %v twice", e)
		}
		edges[e] = true
	}
}

// TestGraphExamples draws every example workflow: each journal path the
// interpreter can write has a node.
func TestGraphExamples(t *testing.T) {
	files, _ := filepath.Glob("../examples/*.yaml")
	for _, f := range files {
		cat, err := Load(f)
		if err != nil {
			continue // some examples need tasks or siblings; the examples' own tests load them
		}
		for _, n := range cat.Names() {
			checkGraph(t, cat.Workflow(n).Graph())
		}
	}
}
