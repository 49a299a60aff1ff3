package definition

import (
	"fmt"
	"sort"
	"strings"
)

// MaxErrors caps the problems an ErrorList reports; the rest are counted
// in one last line.
const MaxErrors = 100

// String renders p as "file:line:col", leaving out the parts it lacks.
func (p Pos) String() string {
	s := p.File
	if p.Line > 0 {
		if s != "" {
			s += ":"
		}
		s += fmt.Sprintf("%d:%d", p.Line, p.Col)
	}
	if s == "" {
		s = "-"
	}
	return s
}

// IsValid reports whether the position is known.
func (p Pos) IsValid() bool { return p.Line > 0 }

// Error is one problem found in a definition, at a place in its source.
type Error struct {
	Pos Pos
	Msg string
}

// Error renders the problem as "file:line:col: message".
func (e Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// ErrorList is every problem found in a load, modelled on go/scanner's.
// Load and Parse return it sorted, without duplicates and capped at
// MaxErrors.
type ErrorList []*Error

// Add appends a problem at pos.
func (p *ErrorList) Add(pos Pos, msg string) { *p = append(*p, &Error{Pos: pos, Msg: msg}) }

// Len, Swap and Less implement sort.Interface: by file, line, column, then
// message.
func (p ErrorList) Len() int      { return len(p) }
func (p ErrorList) Swap(i, j int) { p[i], p[j] = p[j], p[i] }
func (p ErrorList) Less(i, j int) bool {
	a, b := p[i].Pos, p[j].Pos
	if a.File != b.File {
		return a.File < b.File
	}
	if a.Line != b.Line {
		return a.Line < b.Line
	}
	if a.Col != b.Col {
		return a.Col < b.Col
	}
	return p[i].Msg < p[j].Msg
}

// Sort sorts the list in place.
func (p ErrorList) Sort() { sort.Stable(p) }

// RemoveMultiples sorts the list and drops repeated problems (same
// position and message).
func (p *ErrorList) RemoveMultiples() {
	p.Sort()
	out := (*p)[:0]
	for i, e := range *p {
		if i > 0 && *e == *(*p)[i-1] {
			continue
		}
		out = append(out, e)
	}
	*p = out
}

// Error prints one "file:line:col: message" per line.
func (p ErrorList) Error() string {
	var b strings.Builder
	for i, e := range p {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Err returns the list as an error, or nil when it is empty.
func (p ErrorList) Err() error {
	if len(p) == 0 {
		return nil
	}
	return p
}

// finish sorts, deduplicates and caps the list.
func (p *ErrorList) finish() {
	p.RemoveMultiples()
	if n := len(*p); n > MaxErrors {
		last := (*p)[MaxErrors]
		*p = append((*p)[:MaxErrors], &Error{Pos: last.Pos, Msg: fmt.Sprintf("too many errors (%d more not shown)", n-MaxErrors)})
	}
}
