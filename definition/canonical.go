package definition

import (
	"bytes"
	"encoding/json"
	"sort"

	"gopkg.in/yaml.v3"
)

// canonical writes a workflow's document as JSON that keeps the source's
// key order. Order matters: `set` assigns its variables in the order they
// are written, and the pinned definition an execution resumes on must
// evaluate exactly as the first run did. The same source always gives the
// same bytes.
func canonical(wf *Workflow) ([]byte, error) {
	var buf bytes.Buffer
	if err := writeCanonical(&buf, wf.node, wf.Raw); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeCanonical(buf *bytes.Buffer, n *yaml.Node, raw any) error {
	n = resolve(n)
	switch r := raw.(type) {
	case map[string]any:
		buf.WriteByte('{')
		written := make(map[string]bool, len(r))
		var order []string
		var nodes []*yaml.Node
		if n != nil && n.Kind == yaml.MappingNode {
			for _, p := range pairs(n) {
				k := resolve(p.Key)
				if k == nil || k.Kind != yaml.ScalarNode || written[k.Value] {
					continue
				}
				if _, ok := r[k.Value]; !ok {
					continue
				}
				written[k.Value] = true
				order = append(order, k.Value)
				nodes = append(nodes, p.Value)
			}
		}
		var rest []string
		for k := range r {
			if !written[k] {
				rest = append(rest, k)
			}
		}
		sort.Strings(rest)
		for _, k := range rest {
			order = append(order, k)
			nodes = append(nodes, nil)
		}
		for i, k := range order {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeScalar(buf, k); err != nil {
				return err
			}
			buf.WriteByte(':')
			if err := writeCanonical(buf, nodes[i], r[k]); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
		return nil
	case []any:
		buf.WriteByte('[')
		for i, v := range r {
			if i > 0 {
				buf.WriteByte(',')
			}
			var child *yaml.Node
			if n != nil && n.Kind == yaml.SequenceNode && i < len(n.Content) {
				child = n.Content[i]
			}
			if err := writeCanonical(buf, child, v); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
		return nil
	}
	return writeScalar(buf, raw)
}

func writeScalar(buf *bytes.Buffer, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	buf.Write(bytes.TrimRight(b.Bytes(), "\n"))
	return nil
}
