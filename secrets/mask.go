package secrets

import (
	"bytes"
	"encoding/json"
	"net/url"
	"sort"
	"strings"
	"sync"
)

// Mask replaces a secret's value wherever it is masked.
const Mask = "***"

// Masker masks registered secret values in strings and JSON documents. The
// zero value masks nothing; a nil *Masker too. It is safe for concurrent
// use; a Masker may fall back on a parent (an engine's secrets under one
// execution's write-only inputs).
type Masker struct {
	parent *Masker

	mu      sync.RWMutex
	values  map[string]bool
	forms   []string          // every form to mask, longest first
	needles [][]byte          // forms and their JSON-escaped spellings, to find them in a document
	repl    *strings.Replacer // nil until needed
}

// NewMasker returns a Masker that also masks what parent masks (parent may
// be nil).
func NewMasker(parent *Masker) *Masker { return &Masker{parent: parent} }

// Add registers a secret value. Besides the value itself it masks each of
// its lines (a multi-line key leaks line by line in a log) and the forms a
// URL gives it (a token in a query string is percent-encoded). Empty
// values and whitespace are not registered: they would mask everything.
func (m *Masker) Add(value string) {
	if m == nil || strings.TrimSpace(value) == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.values[value] {
		return
	}
	if m.values == nil {
		m.values = map[string]bool{}
	}
	m.values[value] = true
	forms := []string{value, url.QueryEscape(value), url.PathEscape(value)}
	if strings.ContainsAny(value, "\r\n") {
		for _, l := range strings.FieldsFunc(value, func(r rune) bool { return r == '\n' || r == '\r' }) {
			if l = strings.TrimSpace(l); l != "" {
				forms = append(forms, l)
			}
		}
	}
	have := make(map[string]bool, len(m.forms))
	for _, f := range m.forms {
		have[f] = true
	}
	for _, f := range forms {
		if !have[f] {
			have[f] = true
			m.forms = append(m.forms, f)
			m.needles = append(m.needles, jsonSpellings(f)...)
		}
	}
	sort.SliceStable(m.forms, func(i, j int) bool { return len(m.forms[i]) > len(m.forms[j]) })
	m.repl = nil
}

// jsonSpellings are the ways f can appear in a JSON document's text: as it
// is and escaped, with and without HTML escaping.
func jsonSpellings(f string) [][]byte {
	out := [][]byte{[]byte(f)}
	for _, html := range []bool{true, false} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		_ = enc.Encode(f) // a string always encodes
		q := bytes.TrimRight(b.Bytes(), "\n")
		q = q[1 : len(q)-1]
		if !bytes.Equal(q, out[len(out)-1]) && !bytes.Equal(q, out[0]) {
			out = append(out, q)
		}
	}
	return out
}

// Empty reports whether nothing is masked.
func (m *Masker) Empty() bool {
	for ; m != nil; m = m.parent {
		m.mu.RLock()
		n := len(m.forms)
		m.mu.RUnlock()
		if n > 0 {
			return false
		}
	}
	return true
}

func (m *Masker) replacer() *strings.Replacer {
	m.mu.RLock()
	r := m.repl
	m.mu.RUnlock()
	if r != nil {
		return r
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.repl == nil {
		pairs := make([]string, 0, 2*len(m.forms))
		for _, f := range m.forms {
			pairs = append(pairs, f, Mask)
		}
		m.repl = strings.NewReplacer(pairs...)
	}
	return m.repl
}

// String returns s with every registered value masked.
func (m *Masker) String(s string) string {
	for ; m != nil; m = m.parent {
		if m.empty1() {
			continue
		}
		s = m.replacer().Replace(s)
	}
	return s
}

// empty1 reports whether m itself (not its parent) masks nothing.
func (m *Masker) empty1() bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.forms) == 0
}

// contains reports whether b may hold a registered value: in its text, or
// escaped as JSON escapes it.
func (m *Masker) contains(b []byte) bool {
	for ; m != nil; m = m.parent {
		m.mu.RLock()
		needles := m.needles
		m.mu.RUnlock()
		for _, n := range needles {
			if bytes.Contains(b, n) {
				return true
			}
		}
	}
	return false
}

// JSON returns the JSON document raw with every registered value masked in
// its strings (keys and values) and numbers (one whose text holds a secret
// becomes the masked string: its digits are the secret). The
// document is decoded and encoded again only when its text may hold a
// value, so clean documents are returned as they are. A document that is
// not JSON is masked as text.
func (m *Masker) JSON(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || m.Empty() || !m.contains(raw) {
		return raw
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return json.RawMessage(m.String(string(raw)))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m.Value(v)); err != nil {
		return json.RawMessage(m.String(string(raw)))
	}
	return json.RawMessage(bytes.TrimRight(buf.Bytes(), "\n"))
}

// Value returns a copy of the JSON value v (as encoding/json decodes it)
// with every registered value masked in its strings and numbers.
func (m *Masker) Value(v any) any {
	switch x := v.(type) {
	case string:
		return m.String(x)
	case json.Number:
		if s := m.String(x.String()); s != x.String() {
			return s
		}
		return x
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[m.String(k)] = m.Value(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = m.Value(e)
		}
		return out
	}
	return v
}
