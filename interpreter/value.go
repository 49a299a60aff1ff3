package interpreter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Normalize turns v into Loom's value model (docs/design.md, "Value
// model"): nil, bool, int, float64, string, []any and map[string]any, with
// integral numbers as int, a time.Time as its RFC 3339 string and any other
// Go value as its JSON form. Every value that crosses a step boundary or the
// journal goes through it, on the first run and on replay alike, so both see
// identical types.
func Normalize(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, string, int:
		return x, nil
	case float64:
		return normFloat(x)
	case float32:
		return normFloat(float64(x))
	case int64:
		return int(x), nil
	case int32:
		return int(x), nil
	case uint8, uint16, uint32, int8, int16:
		return normNumber(json.Number(fmt.Sprint(x)))
	case json.Number:
		return normNumber(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), nil
	case json.RawMessage:
		return decodeJSON(x)
	case []int:
		// What a range (0..n) gives: a for or map over it replays as
		// often as it runs, and the JSON round trip below was most of
		// the cost of its items.
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = e
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			n, err := Normalize(e)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			n, err := Normalize(e)
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	case map[any]any:
		// expr's fromPairs and groupBy build these: JSON keys are strings.
		out := make(map[string]any, len(x))
		for k, e := range x {
			n, err := Normalize(e)
			if err != nil {
				return nil, err
			}
			ks, ok := k.(string)
			if !ok {
				ks = fmt.Sprint(k)
			}
			out[ks] = n
		}
		return out, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("value is not JSON: %w", err)
	}
	return decodeJSON(b)
}

func normFloat(f float64) (any, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("value %v is not a JSON number", f)
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return int(f), nil
	}
	return f, nil
}

func normNumber(n json.Number) (any, error) {
	if i, err := n.Int64(); err == nil {
		return int(i), nil
	}
	f, err := n.Float64()
	if err != nil {
		return nil, fmt.Errorf("value %s is not a JSON number", n)
	}
	return normFloat(f)
}

// decodeJSON decodes a JSON document into the value model.
func decodeJSON(b []byte) (any, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if v, ok := decodeScalar(b); ok {
		return v, nil
	}
	return decodeJSONSlow(b)
}

func decodeJSONSlow(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return normalizeDecoded(v)
}

// decodeScalar decodes the common small documents — null, booleans,
// integers and strings without escapes — without a json.Decoder: replaying
// a large map decodes one per item. It reads b in place: only a string's
// body is copied.
func decodeScalar(b []byte) (any, bool) {
	switch {
	case string(b) == "null":
		return nil, true
	case string(b) == "true":
		return true, true
	case string(b) == "false":
		return false, true
	case len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"':
		body := b[1 : len(b)-1]
		for _, c := range body {
			if c == '\\' || c == '"' || c < 0x20 || c >= 0x80 {
				return nil, false
			}
		}
		return string(body), true
	case len(b) > 0 && len(b) < 19:
		return decodeInt(b)
	}
	return nil, false
}

// decodeInt decodes a JSON integer of fewer than 19 characters (it cannot
// overflow); no leading zeros, no "-0".
func decodeInt(b []byte) (any, bool) {
	neg := b[0] == '-'
	digits := b
	if neg {
		digits = b[1:]
	}
	if len(digits) == 0 || (digits[0] == '0' && (len(digits) > 1 || neg)) {
		return nil, false
	}
	n := 0
	for _, c := range digits {
		if c < '0' || c > '9' {
			return nil, false
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// normalizeDecoded converts json.Number leaves in place.
func normalizeDecoded(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		return normNumber(x)
	case []any:
		for i, e := range x {
			n, err := normalizeDecoded(e)
			if err != nil {
				return nil, err
			}
			x[i] = n
		}
	case map[string]any:
		for k, e := range x {
			n, err := normalizeDecoded(e)
			if err != nil {
				return nil, err
			}
			x[k] = n
		}
	}
	return v, nil
}

// encodeJSON encodes a normalised value; map keys come out sorted, so the
// same value always gives the same bytes.
func encodeJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		// Normalised values always encode; this is a programming error.
		panic(fmt.Sprintf("loom: encoding a normalised value: %v", err))
	}
	return b
}

// equalValues compares two normalised values.
func equalValues(a, b any) bool {
	return bytes.Equal(encodeJSON(a), encodeJSON(b))
}

// short renders a value in at most n characters, for messages and `show`.
func short(v any, n int) string {
	s := string(encodeJSON(v))
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}
