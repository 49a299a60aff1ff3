package interpreter

import (
	"encoding/json"
	"testing"
)

// The scalar fast path must agree with the full decoder on every input.
func TestDecodeScalarAgreesWithDecoder(t *testing.T) {
	for _, s := range []string{`null`, `true`, `false`, `0`, `-0`, `7`, `-12`, `007`, `1e3`, `1.5`, `123456789012345678`,
		`"plain"`, `""`, `"esc\"aped"`, `"tab\t"`, `"é"`, `"\u00e9"`, `[1]`, `{"a":1}`, `9223372036854775807`, `-`, `-01`, `+5`, `1-2`, `--1`, `-9`} {
		fast, ok := decodeScalar([]byte(s))
		if !ok {
			continue
		}
		if !json.Valid([]byte(s)) {
			t.Errorf("%s: fast path accepted what JSON refuses", s)
			continue
		}
		slow, err := decodeJSONSlow([]byte(s))
		if err != nil || !equalValues(fast, slow) {
			t.Errorf("%s: fast %#v, decoder %#v", s, fast, slow)
		}
	}
}

func FuzzDecodeScalar(f *testing.F) {
	for _, s := range []string{`null`, `7`, `"x"`, `-1`, `1.5`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fast, ok := decodeScalar([]byte(s))
		if !ok {
			return
		}
		slow, err := decodeJSONSlow([]byte(s))
		if err != nil || !equalValues(fast, slow) {
			t.Fatalf("%q: fast %#v, decoder %#v (%v)", s, fast, slow, err)
		}
	})
}
