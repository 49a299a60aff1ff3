package definition

import (
	"fmt"
	"strings"
)

// Graph is a workflow drawn from its definition: one node per step (and per
// compensation or fallback), and edges in the order steps run. Node paths
// are the journal's paths (SPEC §2), with "[*]" standing for any item or
// iteration of a map or for whose items run steps. A journal path maps to
// its node segment by segment: an "@N" attempt suffix is dropped, and an
// item index "[N]" becomes "[*]" — or names the map node itself when the
// map's items are a task or call (they have no inner nodes). A switch arm's
// "when[N]" is a literal segment, not an item.
type Graph struct {
	Workflow string      `json:"workflow"`
	Nodes    []GraphNode `json:"nodes"`
	Edges    []GraphEdge `json:"edges"`
}

// GraphNode is one step of a Graph.
type GraphNode struct {
	// Path is the step's journal path, "[*]" for an item index.
	Path string `json:"path"`
	// Kind is the step's kind, or "compensate" / "fallback" for those
	// actions of a step (at PATH/#compensate and PATH/#fallback, as the
	// interpreter journals them).
	Kind string `json:"kind"`
	// Name is what the step names: the task, called workflow or pause; for
	// a map its task or workflow; for set its variables; for raise its
	// error type; for sleep its duration. Empty when there is none.
	Name string `json:"name"`
}

// GraphEdge says To runs after (or, for a construct's first inner step,
// inside) From.
type GraphEdge struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// ItemAny is the path segment a Graph uses for any item of a map or
// iteration of a for.
const ItemAny = "[*]"

// Graph draws the workflow. It is computed from the checked definition
// alone, so it is the same for a catalog's workflow and for an execution's
// pinned copy of it.
func (wf *Workflow) Graph() *Graph {
	b := &graphBuilder{g: &Graph{Workflow: wf.Name, Nodes: []GraphNode{}, Edges: []GraphEdge{}}}
	b.steps(wf.Steps, "", nil)
	return b.g
}

type graphBuilder struct{ g *Graph }

func (b *graphBuilder) node(path string, kind Kind, name string, preds []string) {
	b.g.Nodes = append(b.g.Nodes, GraphNode{Path: path, Kind: string(kind), Name: name})
	for _, p := range preds {
		b.g.Edges = append(b.g.Edges, GraphEdge{From: p, To: path})
	}
}

// steps adds a list of steps run one after another, the first after preds,
// and returns the paths the next step runs after.
func (b *graphBuilder) steps(list []*Step, prefix string, preds []string) []string {
	for _, st := range list {
		preds = b.step(st, joinPath(prefix, st.Key), preds)
	}
	return preds
}

func (b *graphBuilder) step(st *Step, path string, preds []string) []string {
	b.node(path, st.Kind, stepName(st), preds)
	self := []string{path}
	exits := self
	switch st.Kind {
	case KindParallel:
		exits = nil
		for _, br := range st.Parallel {
			exits = append(exits, b.steps(br.Steps, joinPath(path, br.Name), self)...)
		}
	case KindSwitch:
		exits = nil
		hasDefault := false
		for _, c := range st.Switch {
			hasDefault = hasDefault || c.Default
			exits = append(exits, b.steps(c.Steps, joinPath(path, c.Key), self)...)
		}
		if !hasDefault {
			exits = append(exits, path) // no arm matched: the switch falls through
		}
	case KindTry:
		exits = b.steps(st.Try.Steps, joinPath(path, "try"), self)
		if st.Try.Catch != nil {
			exits = append(exits, b.steps(st.Try.Catch.Steps, joinPath(path, "catch"), self)...)
		}
		if len(st.Try.Finally) > 0 {
			exits = b.steps(st.Try.Finally, joinPath(path, "finally"), dedupe(exits))
		}
	case KindMap:
		if len(st.Map.Steps) > 0 {
			exits = b.steps(st.Map.Steps, path+ItemAny, self)
		}
	case KindFor:
		exits = b.steps(st.For.Steps, path+ItemAny, self)
	}
	if st.Fallback != nil {
		fb := path + "/#fallback"
		b.node(fb, "fallback", actionName(st.Fallback), self)
		exits = append(exits, fb)
	}
	if st.Compensate != nil {
		b.node(path+"/#compensate", "compensate", actionName(st.Compensate), self)
	}
	return dedupe(exits)
}

func stepName(st *Step) string {
	switch st.Kind {
	case KindTask:
		return st.Task
	case KindCall:
		return st.Call
	case KindPause:
		return st.Pause
	case KindMap:
		return st.Map.Task + st.Map.Call
	case KindSet:
		names := make([]string, len(st.Set))
		for i, f := range st.Set {
			names[i] = f.Name
		}
		return strings.Join(names, ", ")
	case KindRaise:
		return st.Raise.Error
	case KindSleep:
		if st.Sleep.Until != nil {
			return "until"
		}
		return st.Sleep.Duration.String()
	}
	return ""
}

func actionName(a *Action) string { return a.Task + a.Call }

func joinPath(prefix, seg string) string {
	if prefix == "" {
		return seg
	}
	return prefix + "/" + seg
}

func dedupe(paths []string) []string {
	seen := make(map[string]bool, len(paths))
	out := paths[:0:0]
	for _, p := range paths {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// Mermaid renders the graph as a Mermaid flowchart, for docs and READMEs.
// Compensations and fallbacks hang off their step by dotted edges.
func (g *Graph) Mermaid() string {
	var sb strings.Builder
	sb.WriteString("flowchart TD\n")
	ids := g.ids()
	for i, n := range g.Nodes {
		open, close := mermaidShape(n.Kind)
		fmt.Fprintf(&sb, "  n%d%s\"%s\"%s\n", i, open, mermaidText(n.Path)+"<br/>"+mermaidText(nodeLabel(n)), close)
	}
	kinds := g.kinds()
	for _, e := range g.Edges {
		arrow := "-->"
		if k := kinds[e.To]; k == "compensate" || k == "fallback" {
			arrow = "-.->"
		}
		fmt.Fprintf(&sb, "  n%d %s n%d\n", ids[e.From], arrow, ids[e.To])
	}
	return sb.String()
}

// DOT renders the graph in Graphviz's DOT language.
func (g *Graph) DOT() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "digraph %s {\n", dotQuote(g.Workflow))
	sb.WriteString("  node [shape=box, fontname=\"Helvetica\"];\n")
	ids := g.ids()
	for i, n := range g.Nodes {
		fmt.Fprintf(&sb, "  n%d [label=%s, shape=%s];\n", i, dotQuote(n.Path+"\n"+nodeLabel(n)), dotShape(n.Kind))
	}
	kinds := g.kinds()
	for _, e := range g.Edges {
		style := ""
		if k := kinds[e.To]; k == "compensate" || k == "fallback" {
			style = " [style=dashed]"
		}
		fmt.Fprintf(&sb, "  n%d -> n%d%s;\n", ids[e.From], ids[e.To], style)
	}
	sb.WriteString("}\n")
	return sb.String()
}

func (g *Graph) ids() map[string]int {
	ids := make(map[string]int, len(g.Nodes))
	for i, n := range g.Nodes {
		ids[n.Path] = i
	}
	return ids
}

func (g *Graph) kinds() map[string]string {
	kinds := make(map[string]string, len(g.Nodes))
	for _, n := range g.Nodes {
		kinds[n.Path] = n.Kind
	}
	return kinds
}

func nodeLabel(n GraphNode) string {
	if n.Name == "" {
		return n.Kind
	}
	return n.Kind + " " + n.Name
}

func mermaidShape(kind string) (string, string) {
	switch kind {
	case string(KindPause):
		return "{{", "}}"
	case string(KindCall):
		return "[[", "]]"
	case string(KindSwitch):
		return "{", "}"
	case string(KindMap), string(KindFor), string(KindParallel), string(KindTry):
		return "([", "])"
	case string(KindSleep):
		return "(", ")"
	case "compensate", "fallback":
		return "[/", "/]"
	}
	return "[", "]"
}

// mermaidText escapes text for a quoted Mermaid label with its entity codes,
// so no name can close the label or open markup.
func mermaidText(s string) string {
	var sb strings.Builder
	for _, r := range s {
		switch r {
		case '#', '"', '<', '>', '&', '`':
			fmt.Fprintf(&sb, "#%d;", r)
		default:
			sb.WriteRune(r)
		}
	}
	return sb.String()
}

func dotShape(kind string) string {
	switch kind {
	case string(KindPause):
		return "hexagon"
	case string(KindCall):
		return "box3d"
	case string(KindSwitch):
		return "diamond"
	case string(KindMap), string(KindFor), string(KindParallel), string(KindTry):
		return "box, style=rounded"
	case string(KindSleep):
		return "ellipse"
	case "compensate", "fallback":
		return "parallelogram"
	}
	return "box"
}

func dotQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
