package cli

import "testing"

func TestSafe(t *testing.T) {
	for in, want := range map[string]string{
		"plain id-1:2":     "plain id-1:2",
		"café ✓":           "café ✓",
		"\x1b[2Jclear":     `\x1b[2Jclear`,
		"a\tb\nc\rd":       `a\tb\nc\rd`,
		"del\x7f c1\u0085": `del\x7f c1\x85`,
		"x\u202etxt.exe":   `x\u202etxt.exe`,
		"\u2066iso\u2069":  `\u2066iso\u2069`,
		"bad\xffutf8":      `bad\xffutf8`,
	} {
		if got := safe(in); got != want {
			t.Errorf("safe(%q) = %s, want %s", in, got, want)
		}
	}
	for in, want := range map[string]string{
		`{"a":"\u001b"}`:       `{"a":"\u001b"}`,
		"{\"a\":\"x\u202ey\"}": `{"a":"x\u202ey"}`,
		"[\"\u0085\x7f\"]":     `["\u0085\u007f"]`,
	} {
		if got := string(safeJSON([]byte(in))); got != want {
			t.Errorf("safeJSON(%q) = %s, want %s", in, got, want)
		}
	}
}
