package builtins_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/loomwork/loom/builtins"
)

// fatalClock and fatalRandom fail the test when used: replay must not touch
// the world.
type fatalClock struct{ t *testing.T }

func (c fatalClock) Now() time.Time {
	c.t.Helper()
	c.t.Fatal("the clock was read")
	return time.Time{}
}

type fatalRandom struct{ t *testing.T }

func (r fatalRandom) Uint64() uint64 {
	r.t.Helper()
	r.t.Fatal("the random source was read")
	return 0
}

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

type constRandom uint64

func (r constRandom) Uint64() uint64 { return uint64(r) }

// seeded is a reproducible random source, so distribution checks never flake.
func seeded(seed uint64) builtins.Random { return rand.New(rand.NewPCG(seed, 1)) }

// fresh is a Recorder with nothing recorded: it computes every value,
// normalises it as the interpreter does and remembers it.
type fresh struct {
	calls  []string
	values []any
}

func (r *fresh) Record(name string, f func() (any, error)) (any, error) {
	v, err := f()
	if err != nil {
		return nil, err
	}
	if tm, ok := v.(time.Time); ok {
		v = tm.UTC().Format(time.RFC3339Nano)
	}
	r.calls = append(r.calls, name)
	r.values = append(r.values, v)
	return v, nil
}

// replay is a Recorder that returns recorded values, per name in call
// order, and fails the test if asked to compute one.
type replay struct {
	t        *testing.T
	recorded map[string][]any
}

func (r *replay) Record(name string, f func() (any, error)) (any, error) {
	vs := r.recorded[name]
	if len(vs) == 0 {
		r.t.Fatalf("no recorded value left for %s", name)
	}
	r.recorded[name] = vs[1:]
	return vs[0], nil
}

type failing struct{}

func (failing) Record(string, func() (any, error)) (any, error) {
	return nil, errors.New("journal down")
}

type funcs struct {
	now       func() (time.Time, error)
	uuid4     func() (string, error)
	randint   func(a, b int) (int, error)
	randrange func(start, stop int, step ...int) (int, error)
	choice    func([]any) (any, error)
	random    func() (float64, error)
}

func bind(rec builtins.Recorder, c builtins.Clock, r builtins.Random) funcs {
	m := builtins.Funcs(rec, c, r)
	return funcs{
		now:       m["now"].(func() (time.Time, error)),
		uuid4:     m["uuid4"].(func() (string, error)),
		randint:   m["randint"].(func(int, int) (int, error)),
		randrange: m["randrange"].(func(int, int, ...int) (int, error)),
		choice:    m["choice"].(func([]any) (any, error)),
		random:    m["random"].(func() (float64, error)),
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func TestFuncsNames(t *testing.T) {
	m := builtins.Funcs(nil, nil, nil) // as definition compiles with it
	var got []string
	for k := range m {
		got = append(got, k)
	}
	sort.Strings(got)
	want := append([]string(nil), builtins.Names...)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Funcs has %v, Names %v", got, want)
	}
	bind(nil, nil, nil) // panics if a signature changed
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestUUID4(t *testing.T) {
	if got := builtins.UUID4(constRandom(0)); got != "00000000-0000-4000-8000-000000000000" {
		t.Errorf("UUID4(zeros) = %s", got)
	}
	if got := builtins.UUID4(constRandom(math.MaxUint64)); got != "ffffffff-ffff-4fff-bfff-ffffffffffff" {
		t.Errorf("UUID4(ones) = %s", got)
	}
	f := bind(&fresh{}, fatalClock{t}, seeded(1))
	seen := map[string]bool{}
	for range 1000 {
		u := must[string](t)(f.uuid4())
		if !uuidRE.MatchString(u) {
			t.Fatalf("uuid4() = %q, not a lowercase canonical version 4 UUID", u)
		}
		if seen[u] {
			t.Fatalf("uuid4() repeated %s", u)
		}
		seen[u] = true
	}
	if u := builtins.UUID4(builtins.CryptoRandom{}); !uuidRE.MatchString(u) {
		t.Errorf("UUID4(CryptoRandom) = %q", u)
	}
}

func TestRandint(t *testing.T) {
	f := bind(&fresh{}, fatalClock{t}, seeded(2))
	const n = 60000
	counts := map[int]int{}
	for range n {
		counts[must[int](t)(f.randint(1, 6))]++
	}
	for v := 1; v <= 6; v++ {
		if c := counts[v]; c < n/6*9/10 || c > n/6*11/10 {
			t.Errorf("randint(1, 6) gave %d %d times in %d; want about %d", v, c, n, n/6)
		}
		delete(counts, v)
	}
	if len(counts) != 0 {
		t.Errorf("randint(1, 6) gave values out of [1, 6]: %v", counts)
	}
	for range 100 {
		if v := must[int](t)(f.randint(-3, -2)); v != -3 && v != -2 {
			t.Fatalf("randint(-3, -2) = %d", v)
		}
	}
	if v := must[int](t)(f.randint(5, 5)); v != 5 {
		t.Errorf("randint(5, 5) = %d", v)
	}
	if v := must[int](t)(bind(&fresh{}, nil, constRandom(math.MaxUint64)).randint(math.MinInt, math.MaxInt)); v != math.MaxInt {
		t.Errorf("randint over all ints, all ones = %d", v)
	}
	if _, err := f.randint(6, 1); err == nil || !strings.Contains(err.Error(), "greater") {
		t.Errorf("randint(6, 1): %v", err)
	}
}

func TestRandrange(t *testing.T) {
	f := bind(&fresh{}, fatalClock{t}, seeded(3))
	for _, c := range []struct {
		start, stop int
		step        []int
		want        []int
	}{
		{0, 5, nil, []int{0, 1, 2, 3, 4}},
		{-5, -3, nil, []int{-5, -4}},
		{0, 10, []int{3}, []int{0, 3, 6, 9}},
		{0, 9, []int{3}, []int{0, 3, 6}},
		{10, 0, []int{-3}, []int{1, 4, 7, 10}},
		{10, 1, []int{-3}, []int{4, 7, 10}},
		{5, 6, []int{10}, []int{5}},
		{-1, -10, []int{-4}, []int{-9, -5, -1}},
	} {
		got := map[int]int{}
		for range 400 {
			got[must[int](t)(f.randrange(c.start, c.stop, c.step...))]++
		}
		var vals []int
		for v := range got {
			vals = append(vals, v)
		}
		sort.Ints(vals)
		if !reflect.DeepEqual(vals, c.want) {
			t.Errorf("randrange(%d, %d, %v) gave %v, want each of %v", c.start, c.stop, c.step, vals, c.want)
		}
	}
	for _, c := range []struct {
		start, stop int
		step        []int
		msg         string
	}{
		{5, 5, nil, "empty range"},
		{5, 0, nil, "empty range"},
		{0, 5, []int{-1}, "empty range"},
		{5, 0, []int{2}, "empty range"},
		{0, 5, []int{0}, "step must not be zero"},
		{0, 5, []int{1, 2}, "2 or 3 arguments"},
	} {
		if _, err := f.randrange(c.start, c.stop, c.step...); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("randrange(%d, %d, %v): error %v, want %q", c.start, c.stop, c.step, err, c.msg)
		}
	}
}

func TestChoice(t *testing.T) {
	f := bind(&fresh{}, fatalClock{t}, seeded(4))
	list := []any{"a", 2, map[string]any{"k": true}}
	seen := map[string]int{}
	for range 300 {
		v := must[any](t)(f.choice(list))
		seen[asJSON(t, v)]++
	}
	if len(seen) != 3 || seen[`"a"`] == 0 || seen[`2`] == 0 || seen[`{"k":true}`] == 0 {
		t.Errorf("choice gave %v", seen)
	}
	if _, err := f.choice(nil); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("choice(empty): %v", err)
	}
}

func TestRandom(t *testing.T) {
	f := bind(&fresh{}, fatalClock{t}, seeded(5))
	var sum float64
	const n = 10000
	for range n {
		v := must[float64](t)(f.random())
		if v < 0 || v >= 1 {
			t.Fatalf("random() = %v, out of [0, 1)", v)
		}
		sum += v
	}
	if mean := sum / n; mean < 0.48 || mean > 0.52 {
		t.Errorf("mean of random() = %v", mean)
	}
	if v := must[float64](t)(bind(&fresh{}, nil, constRandom(math.MaxUint64)).random()); v >= 1 {
		t.Errorf("random() with all ones = %v", v)
	}
	if v := must[float64](t)(bind(&fresh{}, nil, constRandom(0)).random()); v != 0 {
		t.Errorf("random() with zeros = %v", v)
	}
}

// TestReplayReturnsRecorded: with everything recorded the functions return
// exactly the recorded values and never read the clock or randomness.
func TestReplayReturnsRecorded(t *testing.T) {
	rec := &replay{t: t, recorded: map[string][]any{
		"now":       {"2024-05-01T10:00:00.123456789Z", "2024-05-01T10:00:01Z"},
		"uuid4":     {"0b6e8a38-3c3f-4d8e-9d44-2b1c3f1e9a01"},
		"randint":   {4, 6.0},
		"randrange": {9},
		"choice":    {map[string]any{"k": true}},
		"random":    {0.25, 0},
	}}
	f := bind(rec, fatalClock{t}, fatalRandom{t})
	now := must[time.Time](t)(f.now())
	if want := time.Date(2024, 5, 1, 10, 0, 0, 123456789, time.UTC); !now.Equal(want) || now.Location() != time.UTC {
		t.Errorf("now() = %v, want %v", now, want)
	}
	if now := must[time.Time](t)(f.now()); !now.Equal(time.Date(2024, 5, 1, 10, 0, 1, 0, time.UTC)) {
		t.Errorf("second now() = %v", now)
	}
	if u := must[string](t)(f.uuid4()); u != "0b6e8a38-3c3f-4d8e-9d44-2b1c3f1e9a01" {
		t.Errorf("uuid4() = %s", u)
	}
	if v := must[int](t)(f.randint(1, 6)); v != 4 {
		t.Errorf("randint = %d", v)
	}
	if v := must[int](t)(f.randint(1, 6)); v != 6 {
		t.Errorf("randint from a recorded float = %d", v)
	}
	if v := must[int](t)(f.randrange(0, 10, 3)); v != 9 {
		t.Errorf("randrange = %d", v)
	}
	if v := must[any](t)(f.choice([]any{1, 2})); asJSON(t, v) != `{"k":true}` {
		t.Errorf("choice = %v", v)
	}
	if v := must[float64](t)(f.random()); v != 0.25 {
		t.Errorf("random = %v", v)
	}
	if v := must[float64](t)(f.random()); v != 0 {
		t.Errorf("random from a recorded int 0 = %v", v)
	}
}

func TestReplayRejectsWrongRecords(t *testing.T) {
	f := bind(&replay{t: t, recorded: map[string][]any{
		"now": {12}, "uuid4": {3}, "randint": {1.5}, "randrange": {"x"}, "random": {"y"},
	}}, fatalClock{t}, fatalRandom{t})
	check := func(name string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), name+"(): recorded value") {
			t.Errorf("%s: error %v", name, err)
		}
	}
	_, err := f.now()
	check("now", err)
	_, err = f.uuid4()
	check("uuid4", err)
	_, err = f.randint(1, 2)
	check("randint", err)
	_, err = f.randrange(1, 2)
	check("randrange", err)
	_, err = f.random()
	check("random", err)
}

// TestFreshValuesAreRecorded: every fresh value goes through the recorder,
// and what the function returns is what was recorded.
func TestFreshValuesAreRecorded(t *testing.T) {
	zone := time.FixedZone("CEST", 2*3600)
	clock := fixedClock(time.Date(2024, 5, 1, 12, 0, 0, 500, zone))
	rec := &fresh{}
	f := bind(rec, clock, seeded(6))
	now := must[time.Time](t)(f.now())
	u := must[string](t)(f.uuid4())
	ri := must[int](t)(f.randint(1, 100))
	rr := must[int](t)(f.randrange(0, 100, 7))
	ch := must[any](t)(f.choice([]any{"x", "y"}))
	rf := must[float64](t)(f.random())

	if want := []string{"now", "uuid4", "randint", "randrange", "choice", "random"}; !reflect.DeepEqual(rec.calls, want) {
		t.Fatalf("recorded %v, want %v", rec.calls, want)
	}
	if rec.values[0] != "2024-05-01T10:00:00.0000005Z" || !now.Equal(time.Time(clock)) || now.Location() != time.UTC {
		t.Errorf("now() = %v, recorded %v", now, rec.values[0])
	}
	if rec.values[1] != u || rec.values[2] != ri || rec.values[3] != rr || rec.values[4] != ch || rec.values[5] != rf {
		t.Errorf("returned %v %v %v %v %v, recorded %v", u, ri, rr, ch, rf, rec.values[1:])
	}

	// Replaying what was recorded gives the same values without the world.
	again := bind(&replay{t: t, recorded: map[string][]any{
		"now": {rec.values[0]}, "uuid4": {rec.values[1]}, "randint": {rec.values[2]},
		"randrange": {rec.values[3]}, "choice": {rec.values[4]}, "random": {rec.values[5]},
	}}, fatalClock{t}, fatalRandom{t})
	if n := must[time.Time](t)(again.now()); !n.Equal(now) {
		t.Errorf("replayed now() = %v, first %v", n, now)
	}
	if must[string](t)(again.uuid4()) != u || must[int](t)(again.randint(1, 100)) != ri ||
		must[int](t)(again.randrange(0, 100, 7)) != rr || must[any](t)(again.choice([]any{"x", "y"})) != ch ||
		must[float64](t)(again.random()) != rf {
		t.Error("replay differs from the first run")
	}
}

func TestRecorderErrors(t *testing.T) {
	f := bind(failing{}, fatalClock{t}, fatalRandom{t})
	errs := []error{}
	_, err := f.now()
	errs = append(errs, err)
	_, err = f.uuid4()
	errs = append(errs, err)
	_, err = f.randint(1, 2)
	errs = append(errs, err)
	_, err = f.randrange(1, 2)
	errs = append(errs, err)
	_, err = f.choice([]any{1})
	errs = append(errs, err)
	_, err = f.random()
	errs = append(errs, err)
	for i, err := range errs {
		if err == nil || err.Error() != "journal down" {
			t.Errorf("%s: error %v, want the recorder's", builtins.Names[i], err)
		}
	}
}

func TestSystemClock(t *testing.T) {
	before := time.Now()
	now := builtins.SystemClock{}.Now()
	if now.Location() != time.UTC || now.Before(before.Add(-time.Second)) || now.After(time.Now().Add(time.Second)) {
		t.Errorf("SystemClock.Now() = %v", now)
	}
}
