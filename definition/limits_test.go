package definition

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestLimits evaluates expressions that build too much and checks each is
// refused, before it allocates what it asked for, with the whole sentence
// naming the limit; and that ordinary expressions still work.
func TestLimits(t *testing.T) {
	big := strings.Repeat("x", 1<<20+1<<19) // 1.5 MiB: under the value limit, its double over
	env := map[string]any{
		"vars":  map[string]any{"s": big, "l": []any{big}, "small": "abc"},
		"input": map[string]any{"n": 3, "list": []any{1, 2, 3}},
	}
	cases := []struct {
		name, src string
		lim       Limits
		want      string // the error, or the value (as %v) when it must succeed
	}{
		{name: "concat", src: `${ vars.s + vars.s }`,
			want: "expression ${ vars.s + vars.s }: a string of 3 MiB goes past the limit of 2 MiB per value (expr-value)"},
		{name: "concat in let", src: `${ let t = vars.s; t + t }`,
			want: "expression ${ let t = vars.s; t + t }: a string of 3 MiB goes past the limit of 2 MiB per value (expr-value)"},
		{name: "repeat", src: `${ repeat(vars.small, 1000000) }`,
			want: "expression ${ repeat(vars.small, 1000000) }: repeat's string of 2.9 MiB goes past the limit of 2 MiB per value (expr-value)"},
		{name: "repeat huge", src: `${ repeat(vars.s, 1000000) }`,
			want: "expression ${ repeat(vars.s, 1000000) }: repeat's string of 1464.8 GiB goes past the limit of 2 MiB per value (expr-value)"},
		{name: "replace", src: `${ replace(vars.s, "x", "yy") }`,
			want: "expression ${ replace(vars.s, \"x\", \"yy\") }: replace's string of 3 MiB goes past the limit of 2 MiB per value (expr-value)"},
		{name: "join", src: `${ join([vars.small, vars.small], vars.s) }`,
			want: "expression ${ join([vars.small, vars.small], vars.s) }: join's string of 3 MiB goes past the limit of 2 MiB per value (expr-value)"},
		{name: "toJSON of shared", src: `${ toJSON([vars.s, vars.s]) }`,
			want: "expression ${ toJSON([vars.s, vars.s]) }: a list larger than the limit of 2 MiB per value (expr-value)"},
		{name: "list literal", src: `${ [vars.s, vars.s] }`,
			want: "expression ${ [vars.s, vars.s] }: a list larger than the limit of 2 MiB per value (expr-value)"},
		{name: "map literal", src: `${ {a: vars.s, b: vars.s} }`,
			want: "expression ${ {a: vars.s, b: vars.s} }: a map larger than the limit of 2 MiB per value (expr-value)"},
		{name: "concat lists", src: `${ concat(vars.l, vars.l) }`,
			want: "expression ${ concat(vars.l, vars.l) }: a list larger than the limit of 2 MiB per value (expr-value)"},
		{name: "map builds", src: `${ map(1..3, vars.s) }`,
			want: "expression ${ map(1..3, vars.s) }: a list larger than the limit of 2 MiB per value (expr-value)"},
		{name: "reduce doubling", src: `${ reduce(1..40, #acc + #acc, 'xy') }`,
			want: "expression ${ reduce(1..40, #acc + #acc, 'xy') }: a string of 4 MiB goes past the limit of 2 MiB per value (expr-value)"},
		{name: "total", src: `${ map(1..20, repeat("x", 1000000)) }`,
			want: "expression ${ map(1..20, repeat(\"x\", 1000000)) }: the values built by this evaluation reach 16.2 MiB, past the limit of 16 MiB per evaluation (expr-total)"},
		{name: "ops", src: `${ all(1..1000, all(1..1000, all(1..10, true))) }`,
			want: "expression ${ all(1..1000, all(1..1000, all(1..10, true))) }: this evaluation goes past the limit of 1000000 operations per evaluation (expr-ops)"},
		{name: "range", src: `${ 1..100000000 }`,
			want: "expression ${ 1..100000000 }: the range 1..100000000 goes past the limit of 1000000 operations per evaluation (expr-ops)"},
		{name: "template", src: `${ vars.s }-${ vars.s }`,
			want: "expression ${ vars.s }: a template's string of 3 MiB goes past the limit of 2 MiB per value (expr-value)"},
		{name: "settable", src: `${ vars.small + vars.small }`, lim: Limits{Value: 5},
			want: "expression ${ vars.small + vars.small }: a string of 6 bytes goes past the limit of 5 bytes per value (expr-value)"},
		{name: "settable ops", src: `${ count(1..10, # > 2) }`, lim: Limits{Ops: 15},
			want: "expression ${ count(1..10, # > 2) }: this evaluation goes past the limit of 15 operations per evaluation (expr-ops)"},

		{name: "ok concat", src: `${ vars.small + "d" }`, want: "abcd"},
		{name: "ok numbers", src: `${ input.n + 4 }`, want: "7"},
		{name: "ok repeat", src: `${ repeat("ab", input.n) }`, want: "ababab"},
		{name: "ok map", src: `${ map(input.list, # * 2) }`, want: "[2 4 6]"},
		{name: "ok keys", src: `${ keys({b: 1, a: 2}) }`, want: "[a b]"},
		{name: "ok join", src: `${ join(["a", "b"], "-") }`, want: "a-b"},
		{name: "ok string", src: `${ string(input.n) + "!" }`, want: "3!"},
		{name: "ok upper", src: `${ upper(vars.small + "d") }`, want: "ABCD"},
		{name: "ok template", src: `n=${ input.n } l=${ input.list }`, want: "n=3 l=[1,2,3]"},
		{name: "ok let", src: `${ let a = vars.small; a + a }`, want: "abcabc"},
		{name: "ok the same value", src: `${ vars.s }`, want: fmt.Sprint(big)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cat := mustParse(t, "name: l\nsteps:\n  - set: {v: '"+strings.ReplaceAll(c.src, "'", "''")+"'}\n")
			got, err := cat.Workflow("l").Steps[0].Set[0].Value.EvalWithin(env, c.lim)
			if !strings.HasPrefix(c.name, "ok") {
				if err == nil {
					t.Fatalf("no error, got %s", truncate(got))
				}
				if err.Error() != c.want {
					t.Errorf("error\n got: %s\nwant: %s", err, c.want)
				}
				if !errors.Is(err, ErrExprLimit) {
					t.Errorf("%v is not ErrExprLimit", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := fmt.Sprint(got); s != c.want {
				t.Errorf("got %s, want %s", truncate(s), truncate(c.want))
			}
		})
	}
}

// TestLimitTypeErrors: the limit patches do not change what a type error
// in an expression says (the expression is checked as written).
func TestLimitTypeErrors(t *testing.T) {
	for src, want := range map[string]string{
		`${ "a" + 1 }`:      `invalid operation: + (mismatched types string and int)`,
		`${ repeat(1, 2) }`: `cannot use int as argument (type string) to call repeat `,
		`${ [1] + [2] }`:    `invalid operation: + (mismatched types []interface {} and []interface {})`,
	} {
		_, err := Parse("l.yaml", []byte("name: l\nsteps:\n  - set: {v: '"+src+"'}\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", src, err, want)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int]string{0: "0 bytes", 1023: "1023 bytes", 1024: "1 KiB", 1536: "1.5 KiB",
		2 << 20: "2 MiB", 1 << 30: "1 GiB", 3<<20 + 1: "3 MiB", 3 << 29: "1.5 GiB"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}
