package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/loomwork/loom/docs"
)

func init() {
	register(&command{name: "docs", usage: "docs [TOPIC]", minArgs: 0, maxArgs: 1,
		summary: "print a page of the reference (the repository's docs/, built in)",
		help: `Prints a page of Loom's reference, the same Markdown as the repository's
docs/ folder, built into this binary so it works offline. Without TOPIC it
prints the index; "loom help TOPIC" prints a page too when TOPIC is not a
command.`,
		local: true, run: (*app).docsCmd})
}

func (a *app) docsCmd() error {
	topic := "README"
	if len(a.p.args) == 1 {
		topic = a.p.args[0]
	}
	return a.printPage(topic)
}

// printPage prints the reference page topic on stdout; an unknown topic is
// a usage error listing the topics.
func (a *app) printPage(topic string) error {
	name := strings.TrimSuffix(topic, ".md")
	if strings.EqualFold(name, "index") || strings.EqualFold(name, "readme") {
		name = "README"
	}
	b, ok := docs.Page(name)
	if !ok {
		return &cliError{kind: kindUsage, msg: fmt.Sprintf("no command or reference page %q", topic),
			hint: "the pages are " + strings.Join(topicNames(), ", ") + "; `loom help` lists the commands"}
	}
	_, err := a.stdout.Write(b)
	return err
}

// topicNames are the reference pages a person can ask for, the index
// left out.
func topicNames() []string {
	var out []string
	for _, t := range docs.Topics() {
		if t != "README" {
			out = append(out, t)
		}
	}
	return out
}

// topicsUsage lists the reference pages under the commands in loom's usage.
func topicsUsage(w io.Writer) {
	fmt.Fprintln(w, "\nReference pages (loom help TOPIC, or loom docs TOPIC):")
	for _, t := range topicNames() {
		fmt.Fprintf(w, "  %-*s %s\n", nameWidth(), t, docs.Title(t))
	}
}
