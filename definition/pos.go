package definition

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// scalarPos returns the position of rune offset off of scalar n's value:
// exact for plain and quoted scalars on one line and for literal (|)
// blocks, else the scalar's start.
func (s *source) scalarPos(n *yaml.Node, off int) Pos {
	start := s.pos(n)
	if n == nil || n.Kind != yaml.ScalarNode || off < 0 || n.Line < 1 || n.Line > len(s.lines) {
		return start
	}
	line := []rune(s.lines[n.Line-1])
	col0 := n.Column - 1
	if col0 < 0 || col0 > len(line) {
		return start
	}
	val := []rune(n.Value)
	switch n.Style & (yaml.SingleQuotedStyle | yaml.DoubleQuotedStyle | yaml.LiteralStyle | yaml.FoldedStyle) {
	case 0:
		if strings.ContainsRune(n.Value, '\n') || col0+len(val) > len(line) || string(line[col0:col0+len(val)]) != n.Value {
			return start
		}
		return s.clamp(n.Line, n.Column+off)
	case yaml.SingleQuotedStyle, yaml.DoubleQuotedStyle:
		cols, ok := quotedColumns(line[col0:], n.Style&yaml.DoubleQuotedStyle != 0, val)
		if !ok || off > len(cols) {
			return start
		}
		if off == len(cols) {
			return s.clamp(n.Line, n.Column+cols[len(cols)-1]+1)
		}
		return s.clamp(n.Line, n.Column+cols[off])
	case yaml.LiteralStyle:
		return s.literalPos(n, off, start)
	}
	return start
}

// quotedColumns maps each rune of a quoted scalar's value to its offset in
// raw (which starts at the opening quote); ok is false when the scalar is
// not entirely on this line or does not decode to want.
func quotedColumns(raw []rune, double bool, want []rune) ([]int, bool) {
	if len(raw) == 0 {
		return nil, false
	}
	q := raw[0]
	var cols []int
	var got []rune
	escaped := false
	for i := 1; i < len(raw); i++ {
		r := raw[i]
		switch {
		case r == q && !double && i+1 < len(raw) && raw[i+1] == '\'':
			cols = append(cols, i)
			got = append(got, '\'')
			i++
		case r == q:
			if escaped {
				return cols, len(got) == len(want)
			}
			return cols, string(got) == string(want)
		case double && r == '\\':
			if i+1 >= len(raw) {
				return nil, false
			}
			cols = append(cols, i)
			escaped = true
			switch raw[i+1] {
			case 'x':
				i += 3
			case 'u':
				i += 5
			case 'U':
				i += 9
			default:
				i++
			}
			got = append(got, 0) // a placeholder; compared by length below
		default:
			cols = append(cols, i)
			got = append(got, r)
		}
	}
	return nil, false
}

// literalPos maps an offset in a literal block scalar to its line and
// column.
func (s *source) literalPos(n *yaml.Node, off int, start Pos) Pos {
	val := []rune(n.Value)
	if off > len(val) {
		return start
	}
	k, c := 0, 0
	for _, r := range val[:off] {
		if r == '\n' {
			k++
			c = 0
		} else {
			c++
		}
	}
	lineNo := n.Line + 1 + k
	if lineNo > len(s.lines) {
		return start
	}
	want := strings.Split(n.Value, "\n")[k]
	src := s.lines[lineNo-1]
	if want == "" {
		return start
	}
	i := strings.Index(src, want)
	if i < 0 || strings.TrimLeft(src[:i], " ") != "" {
		return start
	}
	return s.clamp(lineNo, len([]rune(src[:i]))+1+c)
}
