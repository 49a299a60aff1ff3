package interpreter

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"
)

func TestNormalize(t *testing.T) {
	type point struct {
		X int `json:"x"`
	}
	at := time.Date(2026, 11, 25, 10, 0, 0, 5, time.FixedZone("x", 3600))
	cases := []struct {
		in   any
		want string
	}{
		{nil, `null`},
		{int64(7), `7`},
		{int32(-3), `-3`},
		{uint8(9), `9`},
		{float32(1.5), `1.5`},
		{2.0, `2`},
		{json.Number("12"), `12`},
		{json.Number("1.25"), `1.25`},
		{json.RawMessage(`{"a":[1,2.0]}`), `{"a":[1,2]}`},
		{at, `"2026-11-25T09:00:00.000000005Z"`},
		{point{3}, `{"x":3}`},
		{map[any]any{"k": 1, 2: "two"}, `{"2":"two","k":1}`},
		{[]any{1.0, map[string]any{"b": 2.5}}, `[1,{"b":2.5}]`},
		{[]int{0, 1, -5}, `[0,1,-5]`},
		{[]int{}, `[]`},
	}
	for _, c := range cases {
		got, err := Normalize(c.in)
		if err != nil {
			t.Errorf("Normalize(%#v): %v", c.in, err)
			continue
		}
		if s := string(encodeJSON(got)); s != c.want {
			t.Errorf("Normalize(%#v) = %s, want %s", c.in, s, c.want)
		}
	}
	for _, bad := range []any{math.NaN(), math.Inf(1), func() {}, []any{math.Inf(-1)}} {
		if _, err := Normalize(bad); err == nil {
			t.Errorf("Normalize(%#v) accepted a value JSON cannot hold", bad)
		}
	}
	if v, _ := Normalize(2.0); v != 2 {
		t.Errorf("an integral float is %T, want int", v)
	}
	// A range's []int, copied, is what its JSON would decode to.
	direct, _ := Normalize([]int{4, -1, 1 << 40})
	viaJSON, _ := Normalize(json.RawMessage(`[4,-1,1099511627776]`))
	if !reflect.DeepEqual(direct, viaJSON) {
		t.Errorf("Normalize([]int) = %#v, its JSON %#v", direct, viaJSON)
	}
}
