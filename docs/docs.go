// Package docs is Loom's reference: the Markdown pages of this folder,
// embedded so that `loom help TOPIC` prints the same pages offline that
// the repository shows. A page is a topic named after its file
// (language.md is the topic "language"); README.md is the index.
package docs

import (
	"embed"
	"io/fs"
	"sort"
	"strings"
)

//go:embed *.md
var pages embed.FS

// Page returns the Markdown of the topic name (a file name without .md),
// and false when there is no such page.
func Page(name string) ([]byte, bool) {
	if name == "" || strings.ContainsAny(name, "/\\.") {
		return nil, false
	}
	b, err := pages.ReadFile(name + ".md")
	if err != nil {
		return nil, false
	}
	return b, true
}

// Topics returns the names of every page, sorted, the index ("README")
// included.
func Topics() []string {
	entries, _ := fs.ReadDir(pages, ".")
	var out []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".md"); ok {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Title returns a page's first heading, without the leading "# ".
func Title(name string) string {
	b, ok := Page(name)
	if !ok {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if t, ok := strings.CutPrefix(line, "# "); ok {
			return strings.TrimSpace(t)
		}
	}
	return name
}
