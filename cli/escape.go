package cli

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// safe returns s with what a terminal would act on escaped: C0 and C1
// control characters, DEL, the Unicode bidirectional controls (a
// right-to-left override makes "txt.exe" read "exe.txt") and invalid UTF-8,
// each as a Go escape (\x1b, \u202e). Every value read from a journal goes
// through it before it is printed as text: ids, names, paths and messages
// come from users, tasks and other programs.
func safe(s string) string {
	if strings.IndexFunc(s, unsafeRune) < 0 && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case unsafeRune(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// unsafeRune reports whether r is a control character or a bidirectional
// control.
func unsafeRune(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// safeJSON escapes, in encoded JSON, the characters encoding/json leaves
// as they are and a terminal acts on (DEL, C1 controls, bidirectional
// controls), as \u escapes: the JSON means the same.
func safeJSON(b []byte) []byte {
	if bytes.IndexFunc(b, func(r rune) bool { return r >= 0x7f && unsafeRune(r) }) < 0 {
		return b
	}
	var out bytes.Buffer
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r >= 0x7f && unsafeRune(r) {
			fmt.Fprintf(&out, `\u%04x`, r)
		} else {
			out.Write(b[i : i+n])
		}
		i += n
	}
	return out.Bytes()
}
