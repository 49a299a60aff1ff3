package docs_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/cli"
	"github.com/loomwork/loom/docs"
)

// snippet is one fenced ```yaml block of a page.
type snippet struct {
	page string
	line int // of the opening fence
	// kind is the word after ```yaml: "" for a workflow file, "invalid"
	// for a workflow file showing a mistake, "test" for a loom test file
	// (docs/testing.md; loomtest checks its own format).
	kind string
	text string
}

var fence = regexp.MustCompile("^```(\\S*)(?:\\s+(\\S+))?\\s*$")

// snippets returns the ```yaml blocks of a Markdown page.
func snippets(page string, src []byte) []snippet {
	var out []snippet
	var cur *snippet
	var inFence bool
	for i, line := range strings.Split(string(src), "\n") {
		if m := fence.FindStringSubmatch(line); m != nil {
			switch {
			case inFence:
				inFence = false
				if cur != nil {
					out = append(out, *cur)
					cur = nil
				}
			default:
				inFence = true
				if m[1] == "yaml" {
					cur = &snippet{page: page, line: i + 1, kind: m[2]}
				}
			}
			continue
		}
		if cur != nil {
			cur.text += line + "\n"
		}
	}
	return out
}

// pages returns every page of docs/ and the repository's README.
func pages(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	files, _ := filepath.Glob("*.md")
	for _, f := range append(files, "../README.md") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[f] = b
	}
	return out
}

// TestSnippetsValidate runs `loom validate` on every ```yaml block of the
// reference and the README: each is a whole workflow file and must be
// accepted, except a block marked ```yaml invalid, which shows a mistake
// and must be refused.
func TestSnippetsValidate(t *testing.T) {
	dir := t.TempDir()
	n := 0
	for page, src := range pages(t) {
		for _, s := range snippets(page, src) {
			switch s.kind {
			case "", "invalid":
			case "test":
				continue
			default:
				t.Errorf("%s:%d: ```yaml %s: the word after yaml must be invalid or test", s.page, s.line, s.kind)
				continue
			}
			n++
			file := filepath.Join(dir, fmt.Sprintf("%s-%d.yaml", strings.TrimSuffix(filepath.Base(page), ".md"), s.line))
			if err := os.WriteFile(file, []byte(s.text), 0o644); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			code := cli.Run(builtins.Standard(), []string{"validate", file}, nil, &stdout, &stderr, os.Getenv)
			switch {
			case s.kind == "invalid" && code == 0:
				t.Errorf("%s:%d: the block marked invalid is accepted by loom validate", s.page, s.line)
			case s.kind == "" && code != 0:
				t.Errorf("%s:%d: loom validate refuses the block (exit %d):\n%s", s.page, s.line, code, stderr.String())
			}
		}
	}
	if n < 10 {
		t.Errorf("found only %d yaml blocks; the fence parser is broken", n)
	}
}

// TestPagesEmbedded checks that every page of the folder is a topic of the
// binary, with a title, and that the index links each one.
func TestPagesEmbedded(t *testing.T) {
	index, ok := docs.Page("README")
	if !ok {
		t.Fatal("the index README.md is not embedded")
	}
	files, _ := filepath.Glob("*.md")
	if len(files) != len(docs.Topics()) {
		t.Errorf("docs/ has %d pages, the binary %d topics (%v)", len(files), len(docs.Topics()), docs.Topics())
	}
	for _, f := range files {
		name := strings.TrimSuffix(f, ".md")
		b, ok := docs.Page(name)
		if !ok {
			t.Errorf("%s is not embedded", f)
			continue
		}
		if !strings.HasPrefix(string(b), "# ") {
			t.Errorf("%s does not start with a # title", f)
		}
		if name != "README" && !bytes.Contains(index, []byte("("+f+")")) {
			t.Errorf("docs/README.md does not link %s", f)
		}
	}
	for _, bad := range []string{"", "../go", "language.md", "nosuch"} {
		if _, ok := docs.Page(bad); ok {
			t.Errorf("Page(%q) found a page", bad)
		}
	}
}

// TestLinks checks that every relative link of the pages names a file that
// exists.
func TestLinks(t *testing.T) {
	link := regexp.MustCompile(`\]\(([^)#\s]+)(#[^)]*)?\)`)
	for page, src := range pages(t) {
		for _, m := range link.FindAllStringSubmatch(string(src), -1) {
			target := m[1]
			if strings.Contains(target, "://") {
				continue
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(page), target)); err != nil {
				t.Errorf("%s links %s, which does not exist", page, target)
			}
		}
	}
}
