package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// sharedFlags are documented once, under "Flags every command takes" in
// docs/cli.md, not in each command's section.
var sharedFlags = map[string]bool{"help": true, "db": true, "verbose": true, "key-file": true, "secrets-dir": true, "server": true}

// topFlags are the flags of loom itself, before any command.
var topFlags = map[string]bool{"help": true, "h": true, "version": true}

// docPages returns docs/*.md and the repository's README.md.
func docPages(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("../docs/*.md")
	if err != nil || len(files) == 0 {
		t.Fatalf("no pages in ../docs: %v", err)
	}
	out := map[string]string{}
	for _, f := range append(files, "../README.md") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimPrefix(f, "../")] = string(b)
	}
	return out
}

var (
	codeSpan    = regexp.MustCompile("`([^`\n]+)`")
	loomCall    = regexp.MustCompile(`(?:^|[\s(/])loom ((?:--?)?[a-z][a-z-]*)([^|;&)#<>` + "`" + `]*)`)
	flagToken   = regexp.MustCompile(`(?:^|[\s\[|(])(--?[a-z][a-z0-9-]*)`)
	cmdHeading  = regexp.MustCompile("(?m)^### `loom ([a-z-]+)`")
	fenceLine   = regexp.MustCompile("^```")
	sectionFlag = regexp.MustCompile("`(--?[a-z][a-z0-9-]*)")
)

// codeTexts returns the inline code spans of a page and the lines of its
// fenced blocks other than yaml, json and go (shell commands).
func codeTexts(page string) []string {
	var out []string
	in, lang := false, ""
	for _, line := range strings.Split(page, "\n") {
		if fenceLine.MatchString(line) {
			if in {
				in = false
			} else {
				in, lang = true, strings.Fields(strings.TrimPrefix(line, "```") + " x")[0]
			}
			continue
		}
		if in {
			if lang == "sh" || lang == "x" || lang == "text" {
				out = append(out, line)
			}
			continue
		}
		for _, m := range codeSpan.FindAllStringSubmatch(line, -1) {
			out = append(out, m[1])
		}
	}
	return out
}

func hasFlag(c *command, name string) bool {
	_, ok := lookupFlag(c.flags, name)
	return ok
}

// TestDocsNameRealFlags checks every `loom COMMAND … --flag` the pages
// name against the command table: the command exists and takes the flag.
func TestDocsNameRealFlags(t *testing.T) {
	for name, page := range docPages(t) {
		for _, text := range codeTexts(page) {
			for _, m := range loomCall.FindAllStringSubmatch(text, -1) {
				word, rest := m[1], m[2]
				if strings.HasPrefix(word, "-") {
					if !topFlags[strings.TrimLeft(word, "-")] {
						t.Errorf("%s: `%s` names %s, which loom does not take", name, strings.TrimSpace(m[0]), word)
					}
					continue
				}
				c := lookupCommand(word)
				if c == nil {
					t.Errorf("%s: `%s` names the command %q, which loom does not have", name, strings.TrimSpace(m[0]), word)
					continue
				}
				for _, f := range flagToken.FindAllStringSubmatch(rest, -1) {
					flag := strings.TrimLeft(f[1], "-")
					if !hasFlag(c, flag) {
						t.Errorf("%s: `%s` names %s, which loom %s does not take", name, strings.TrimSpace(m[0]), f[1], word)
					}
				}
			}
		}
	}
}

// TestCLIPageDocumentsEveryFlag checks docs/cli.md against the command
// table: a "### `loom NAME`" section for each command naming each of its
// flags, and no flag in a section that the command does not take.
func TestCLIPageDocumentsEveryFlag(t *testing.T) {
	b, err := os.ReadFile("../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	sections := map[string]string{}
	locs := cmdHeading.FindAllStringSubmatchIndex(page, -1)
	for i, l := range locs {
		end := len(page)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		if k := strings.Index(page[l[1]:end], "\n## "); k >= 0 {
			end = l[1] + k
		}
		sections[page[l[2]:l[3]]] = page[l[1]:end]
	}
	shared := page[strings.Index(page, "## Flags every command takes"):]
	for f := range sharedFlags {
		if !strings.Contains(shared, "`--"+f) {
			t.Errorf("docs/cli.md: the shared flag --%s is not under \"Flags every command takes\"", f)
		}
	}
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
		sec, ok := sections[c.name]
		if !ok {
			t.Errorf("docs/cli.md has no section \"### `loom %s`\" for the command %s", c.name, c.name)
			continue
		}
		for _, f := range c.flags {
			if sharedFlags[f.name] {
				continue
			}
			dashes := "--"
			if len(f.name) == 1 {
				dashes = "-"
			}
			if !strings.Contains(sec, "`"+dashes+f.name) {
				t.Errorf("docs/cli.md: the section of loom %s does not document its flag %s%s", c.name, dashes, f.name)
			}
		}
		for _, m := range sectionFlag.FindAllStringSubmatch(sec, -1) {
			flag := strings.TrimLeft(m[1], "-")
			if !hasFlag(c, flag) && !sharedFlags[flag] {
				t.Errorf("docs/cli.md: the section of loom %s names %s, which it does not take", c.name, m[1])
			}
		}
	}
	sort.Strings(names)
	for s := range sections {
		if lookupCommand(s) == nil {
			t.Errorf("docs/cli.md has a section for loom %s, which is not a command (commands: %s)", s, strings.Join(names, ", "))
		}
	}
}
