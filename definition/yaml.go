package definition

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// maxValues bounds the values of one document after alias expansion, so a
// "billion laughs" document is refused instead of exhausting memory.
const maxValues = 200_000

// maxDepth bounds how deeply lists and maps nest in a document: every later
// stage (schema validation, building, canonical form) walks the value
// recursively, and no workflow needs a hundredth of it.
const maxDepth = 1000

// source is one file being loaded.
type source struct {
	file  string
	src   []byte
	lines []string
}

func newSource(file string, src []byte) *source {
	return &source{file: file, src: src, lines: strings.Split(string(src), "\n")}
}

// pos is the position of n.
func (s *source) pos(n *yaml.Node) Pos {
	if n == nil {
		return Pos{File: s.file, Line: 1, Col: 1}
	}
	return s.clamp(n.Line, n.Column)
}

// clamp keeps a position inside the file.
func (s *source) clamp(line, col int) Pos {
	if line < 1 {
		line = 1
	}
	if line > len(s.lines) {
		line = len(s.lines)
	}
	max := utf8.RuneCountInString(s.lines[line-1]) + 1
	if col < 1 {
		col = 1
	}
	if col > max {
		col = max
	}
	return Pos{File: s.file, Line: line, Col: col}
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// documents splits the file into its YAML documents (top nodes, never
// nil). A syntax error is added to errs and ends the file.
func (s *source) documents(errs *ErrorList) (docs []*yaml.Node, ok bool) {
	if !s.checkText(errs) {
		return nil, false
	}
	defer func() {
		if r := recover(); r != nil {
			errs.Add(s.clamp(1, 1), fmt.Sprintf("YAML syntax error: %v", r))
			ok = false
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(s.src))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, true
		}
		if err != nil {
			s.syntaxError(err, errs)
			return docs, false
		}
		if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
			docs = append(docs, n.Content[0])
		} else if n.Kind != 0 && n.Kind != yaml.DocumentNode {
			docs = append(docs, &n)
		}
	}
}

// checkText reports the first byte YAML cannot hold (invalid UTF-8, or a
// character outside YAML's printable set such as NUL) at its line and
// column; the YAML parser would report it at 1:1.
func (s *source) checkText(errs *ErrorList) bool {
	line, col := 1, 1
	for i := 0; i < len(s.src); {
		r, n := utf8.DecodeRune(s.src[i:])
		var msg string
		switch {
		case r == utf8.RuneError && n == 1:
			msg = fmt.Sprintf("invalid UTF-8: the byte \\x%02x; YAML files are UTF-8", s.src[i])
		case r == '\n':
			line, col = line+1, 1
			i += n
			continue
		case !yamlPrintable(r) && !(i == 0 && r == '\ufeff'):
			msg = fmt.Sprintf("the character %U is not allowed in YAML (a control character)", r)
		}
		if msg != "" {
			errs.Add(Pos{File: s.file, Line: line, Col: col}, msg)
			return false
		}
		col++
		i += n
	}
	return true
}

// yamlPrintable reports whether YAML 1.2 allows r in a document
// (c-printable).
func yamlPrintable(r rune) bool {
	switch {
	case r == '\t', r == '\r', r == 0x85:
		return true
	case r < 0x20, r >= 0x7f && r < 0xa0:
		return false
	case r >= 0xd800 && r <= 0xdfff, r == 0xfffe, r == 0xffff:
		return false
	}
	return true
}

func (s *source) syntaxError(err error, errs *ErrorList) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 1
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	p := s.clamp(line, 1)
	text := s.lines[p.Line-1]
	col := firstNonBlank(text)
	if strings.Contains(msg, "mapping values are not allowed") {
		if c := secondMappingColon(text); c > 0 {
			col = c
		}
	}
	if strings.Contains(msg, "found character that cannot start any token") {
		if c := strings.IndexByte(text, '\t'); c >= 0 && strings.TrimLeft(text[:c], " ") == "" {
			errs.Add(s.clamp(p.Line, c+1), "a tab in the indentation: tabs are not allowed for indentation in YAML; indent with spaces")
			return
		}
	}
	if strings.Contains(msg, "did not find expected") {
		// yaml.v3 names the line where the enclosing block began; the
		// fault is usually a later line indented to no enclosing level.
		if l, c := misindented(s.lines, p.Line-1); l > 0 {
			errs.Add(s.clamp(l, c), fmt.Sprintf("YAML syntax error: this line is indented %d spaces, which lines up with no enclosing key or list item (%s at line %d)", c-1, msg, p.Line))
			return
		}
	}
	p = s.clamp(p.Line, col)
	hint := ""
	if strings.Contains(msg, "mapping values are not allowed") || strings.Contains(msg, "did not find expected") {
		if strings.Contains(text, "${") {
			hint = " (quote expressions that hold \": \", \" #\" or start with {)"
		}
	}
	errs.Add(p, "YAML syntax error: "+msg+hint)
}

// misindented returns the 1-based line and column of the first line from
// lines[from] on whose indentation matches no enclosing level (a key
// dedented too little or too much), or 0, 0. A list item "- x" opens two
// levels: the dash's and its content's.
func misindented(lines []string, from int) (int, int) {
	var levels []int
	for i := from; i < len(lines); i++ {
		t := lines[i]
		body := strings.TrimLeft(t, " ")
		if body == "" || strings.HasPrefix(body, "#") {
			continue
		}
		ind := len(t) - len(body)
		popped := false
		for len(levels) > 0 && ind < levels[len(levels)-1] {
			levels = levels[:len(levels)-1]
			popped = true
		}
		if popped && (len(levels) == 0 || levels[len(levels)-1] != ind) {
			return i + 1, ind + 1
		}
		if len(levels) == 0 || ind > levels[len(levels)-1] {
			levels = append(levels, ind)
		}
		if strings.HasPrefix(body, "- ") {
			levels = append(levels, ind+2+len(body[2:])-len(strings.TrimLeft(body[2:], " ")))
		}
	}
	return 0, 0
}

func firstNonBlank(s string) int {
	col := 1
	for _, r := range s {
		if r != ' ' && r != '\t' {
			return col
		}
		col++
	}
	return 1
}

// secondMappingColon finds the column of the second ": " of a line outside
// quotes: where YAML refuses a second mapping value.
func secondMappingColon(s string) int {
	var quote rune
	seen := 0
	col := 0
	rs := []rune(s)
	for i, r := range rs {
		col++
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'':
			quote = r
		case r == ':' && (i+1 == len(rs) || rs[i+1] == ' '):
			seen++
			if seen == 2 {
				return col
			}
		}
	}
	return 0
}

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.AliasNode {
		return nil
	}
	return n
}

// pair is one key and value of a mapping.
type pair struct {
	Key, Value *yaml.Node
}

// pairs returns the key/value pairs of a mapping, with "<<" merge keys
// expanded in place (explicit keys win).
func pairs(n *yaml.Node) []pair {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	merge := false
	for i := 0; i+1 < len(n.Content); i += 2 {
		if isMergeKey(n.Content[i]) {
			merge = true
			break
		}
	}
	if !merge {
		out := make([]pair, 0, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			out = append(out, pair{n.Content[i], n.Content[i+1]})
		}
		return out
	}
	return mergedPairs(n, map[*yaml.Node]bool{n: true}, map[string]bool{})
}

// mergedPairs expands a mapping with merge keys. Each merged mapping is
// expanded once (seen), which keeps a document of merges of merges linear
// and a merge cycle finite; keys already present win.
func mergedPairs(n *yaml.Node, seen map[*yaml.Node]bool, have map[string]bool) []pair {
	var out []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; !isMergeKey(k) && !have[k.Value] {
			have[k.Value] = true
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !isMergeKey(k) {
			out = append(out, pair{k, v})
			continue
		}
		var srcs []*yaml.Node
		if rv := resolve(v); rv != nil && rv.Kind == yaml.SequenceNode {
			srcs = rv.Content
		} else {
			srcs = []*yaml.Node{v}
		}
		for _, m := range srcs {
			m = resolve(m)
			if m == nil || m.Kind != yaml.MappingNode || seen[m] {
				continue
			}
			seen[m] = true
			for _, p := range mergedPairs(m, seen, map[string]bool{}) {
				if !have[p.Key.Value] {
					have[p.Key.Value] = true
					out = append(out, p)
				}
			}
		}
	}
	return out
}

func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "!!merge" || k.Tag == "")
}

// lookup returns the value of key in mapping n and its key node.
func lookup(n *yaml.Node, key string) (v, k *yaml.Node) {
	for _, p := range pairs(n) {
		if p.Key.Value == key {
			return resolve(p.Value), p.Key
		}
	}
	return nil, nil
}

// plain converts a document to plain data (the Raw form and what the schema
// validates), reporting what JSON cannot hold: duplicate keys, non-scalar
// keys, unknown tags, NaN and infinities.
type plainer struct {
	s     *source
	errs  *ErrorList
	count int
	over  bool
}

func (p *plainer) value(n *yaml.Node, depth int) any {
	n = resolve(n)
	if n == nil || p.over {
		return nil
	}
	p.count++
	if depth > maxDepth {
		p.over = true
		p.errs.Add(p.s.pos(n), fmt.Sprintf("document nested too deeply: more than %d levels of lists and maps", maxDepth))
		return nil
	}
	if p.count > maxValues {
		p.over = true
		p.errs.Add(p.s.pos(n), fmt.Sprintf("document too large: more than %d values (after expanding aliases)", maxValues))
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		seen := map[string]*yaml.Node{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if isMergeKey(k) {
				continue
			}
			rk := resolve(k)
			if rk == nil || rk.Kind != yaml.ScalarNode {
				p.errs.Add(p.s.pos(k), "mapping keys must be strings")
				continue
			}
			if first, dup := seen[rk.Value]; dup {
				p.errs.Add(p.s.pos(k), fmt.Sprintf("duplicate key %q (first at line %d)", rk.Value, first.Line))
				continue
			}
			seen[rk.Value] = k
		}
		for _, pr := range pairs(n) {
			rk := resolve(pr.Key)
			if rk == nil || rk.Kind != yaml.ScalarNode {
				continue
			}
			if _, done := m[rk.Value]; done {
				continue
			}
			m[rk.Value] = p.value(pr.Value, depth+1)
		}
		return m
	case yaml.SequenceNode:
		l := make([]any, len(n.Content))
		for i, c := range n.Content {
			l[i] = p.value(c, depth+1)
		}
		return l
	case yaml.ScalarNode:
		return p.scalar(n)
	}
	return nil
}

func (p *plainer) scalar(n *yaml.Node) any {
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err == nil {
			return b
		}
		return n.Value
	case "!!int":
		if i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64); err == nil && int64(int(i)) == i {
			return int(i)
		}
		var v any
		if err := n.Decode(&v); err == nil {
			switch x := v.(type) {
			case int:
				return x
			case int64:
				return int(x)
			case uint64:
				return float64(x)
			case float64:
				return x
			}
		}
		if f, err := strconv.ParseFloat(n.Value, 64); err == nil && !math.IsInf(f, 0) {
			return f
		}
		p.errs.Add(p.s.pos(n), fmt.Sprintf("%s is not a number JSON can hold", n.Value))
		return nil
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return n.Value
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			p.errs.Add(p.s.pos(n), fmt.Sprintf("%s is not a number JSON can hold", n.Value))
			return nil
		}
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int(f)
		}
		return f
	case "!!str", "!!timestamp", "!!binary", "":
		return n.Value
	}
	p.errs.Add(p.s.pos(n), fmt.Sprintf("unsupported YAML tag %s: values are JSON values", n.Tag))
	return n.Value
}

// yaml11Bools are the words YAML 1.1 reads as booleans and YAML 1.2 (and
// so Loom) reads as strings.
var yaml11Bools = map[string]bool{"yes": true, "no": true, "on": true, "off": true, "y": true, "n": true}

// isYAML11Bool reports whether n is a plain scalar YAML 1.1 would have read
// as a boolean.
func isYAML11Bool(n *yaml.Node) bool {
	return n != nil && n.Kind == yaml.ScalarNode && n.Style == 0 && n.ShortTag() == "!!str" && yaml11Bools[strings.ToLower(n.Value)]
}

// kindName names a node's JSON type for messages.
func kindName(n *yaml.Node) string {
	n = resolve(n)
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!null":
		return "null"
	case "!!bool":
		return "a boolean"
	case "!!int":
		return "an integer"
	case "!!float":
		return "a number"
	}
	return "a string"
}
