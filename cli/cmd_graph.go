package cli

import (
	"encoding/json"
	"io"
)

// graphCommand is `loom graph`: a workflow drawn from its definition, the
// same drawing the console shows and /v1/workflows serves.
var graphCommand = &command{name: "graph", usage: "graph PATH [--workflow NAME] [--format mermaid|dot|json]", minArgs: 1, maxArgs: 1,
	summary: "draw a workflow's steps as Mermaid, DOT or JSON",
	help: `Prints the graph of the only workflow in PATH (a file or a directory), or of
the one --workflow names: a node per step (and per compensation or fallback)
labelled with its journal path, kind and name, and an edge to each step that
runs next. --format mermaid (the default) prints a Mermaid flowchart to paste
into Markdown; dot prints Graphviz DOT (dot -Tsvg); json prints the
{nodes, edges} graph the HTTP API serves. Task names are not checked: any
valid definition can be drawn.`,
	flags: []flagSpec{{"workflow", "NAME", "the workflow to draw when PATH holds several"},
		{"format", "FORMAT", "mermaid (default), dot or json"}},
	local: true, run: (*app).graph}

func (a *app) graph() error {
	format := a.p.get("format")
	switch format {
	case "", "mermaid", "dot", "json":
	default:
		return usagef("--format %q is not one of mermaid, dot, json", format)
	}
	path := a.p.args[0]
	cat, err := a.load(path, false)
	if err != nil {
		return err
	}
	name, err := pickWorkflow(cat, a.p.get("workflow"), path)
	if err != nil {
		return err
	}
	g := cat.Workflow(name).Graph()
	switch format {
	case "dot":
		_, err = io.WriteString(a.stdout, g.DOT())
	case "json":
		var b []byte
		b, err = json.MarshalIndent(g, "", "  ")
		if err == nil {
			_, err = a.stdout.Write(append(b, '\n'))
		}
	default:
		_, err = io.WriteString(a.stdout, g.Mermaid())
	}
	return err
}
