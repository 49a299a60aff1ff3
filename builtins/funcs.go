package builtins

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"
)

// Recorder journals the values of builtin calls. The interpreter gives each
// evaluation site (a step path) its own Recorder, which counts calls so that
// the n-th call at a path is matched with the n-th recorded value.
type Recorder interface {
	// Record returns the recorded value of the next call of name at this
	// site; when none is recorded it calls fresh, records its result
	// (normalised to a JSON value: a time becomes its RFC 3339 string) and
	// returns the normalised value. Callers decode the normalised value, so
	// the first run and a replay see identical results.
	Record(name string, fresh func() (any, error)) (any, error)
}

// Clock reads the current time. Tests inject fakes that fail when called.
type Clock interface {
	Now() time.Time
}

// Random is a source of random bits. Tests inject fakes that fail when called.
type Random interface {
	Uint64() uint64
}

// Names lists the journaled expression functions, in the order of SPEC §2.
var Names = []string{"now", "uuid4", "randint", "randrange", "choice", "random"}

// Funcs returns the journaled expression functions bound to one evaluation
// site: each asks rec for its recorded value and computes a fresh one from
// clock or rnd only when none is recorded. The map's values are the typed Go
// functions expr-lang type-checks against, so definition compiles with
// Funcs(nil, nil, nil) (the functions are not called at compile time).
func Funcs(rec Recorder, clock Clock, rnd Random) map[string]any {
	return map[string]any{
		"now": func() (time.Time, error) {
			v, err := rec.Record("now", func() (any, error) { return clock.Now().UTC(), nil })
			if err != nil {
				return time.Time{}, err
			}
			s, ok := v.(string)
			if !ok {
				return time.Time{}, fmt.Errorf("now(): recorded value %v is not a time", v)
			}
			return time.Parse(time.RFC3339Nano, s)
		},
		"uuid4": func() (string, error) {
			v, err := rec.Record("uuid4", func() (any, error) { return UUID4(rnd), nil })
			if err != nil {
				return "", err
			}
			s, ok := v.(string)
			if !ok {
				return "", fmt.Errorf("uuid4(): recorded value %v is not a string", v)
			}
			return s, nil
		},
		"randint": func(a, b int) (int, error) {
			if a > b {
				return 0, fmt.Errorf("randint(%d, %d): the first bound is greater than the second", a, b)
			}
			v, err := rec.Record("randint", func() (any, error) {
				return a + int(uniform(rnd, uint64(b-a)+1)), nil
			})
			if err != nil {
				return 0, err
			}
			return asInt("randint", v)
		},
		"randrange": func(start, stop int, step ...int) (int, error) {
			st := 1
			if len(step) > 1 {
				return 0, fmt.Errorf("randrange takes 2 or 3 arguments")
			}
			if len(step) == 1 {
				st = step[0]
			}
			if st == 0 {
				return 0, fmt.Errorf("randrange(%d, %d, 0): step must not be zero", start, stop)
			}
			var n int
			if st > 0 {
				n = (stop - start + st - 1) / st
			} else {
				n = (start - stop - st - 1) / -st
			}
			if n <= 0 {
				return 0, fmt.Errorf("randrange(%d, %d, %d): empty range", start, stop, st)
			}
			v, err := rec.Record("randrange", func() (any, error) {
				return start + st*int(uniform(rnd, uint64(n))), nil
			})
			if err != nil {
				return 0, err
			}
			return asInt("randrange", v)
		},
		"choice": func(list []any) (any, error) {
			if len(list) == 0 {
				return nil, fmt.Errorf("choice(): the list is empty")
			}
			return rec.Record("choice", func() (any, error) {
				return list[uniform(rnd, uint64(len(list)))], nil
			})
		},
		"random": func() (float64, error) {
			v, err := rec.Record("random", func() (any, error) {
				return float64(rnd.Uint64()>>11) / (1 << 53), nil
			})
			if err != nil {
				return 0, err
			}
			switch f := v.(type) {
			case float64:
				return f, nil
			case int:
				return float64(f), nil // 0 normalises to an integer
			}
			return 0, fmt.Errorf("random(): recorded value %v is not a number", v)
		},
	}
}

// UUID4 returns a random (version 4, RFC 9562) UUID in lowercase canonical form.
func UUID4(rnd Random) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], rnd.Uint64())
	binary.BigEndian.PutUint64(b[8:], rnd.Uint64())
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// uniform returns a uniform integer in [0, n) without modulo bias (n ≥ 1).
func uniform(rnd Random, n uint64) uint64 {
	if n&(n-1) == 0 {
		return rnd.Uint64() & (n - 1)
	}
	limit := ^uint64(0) - ^uint64(0)%n
	for {
		if v := rnd.Uint64(); v < limit {
			return v % n
		}
	}
}

func asInt(fn string, v any) (int, error) {
	switch n := v.(type) {
	case int:
		return n, nil
	case int64:
		return int(n), nil
	case float64:
		if n == float64(int(n)) {
			return int(n), nil
		}
	}
	return 0, fmt.Errorf("%s(): recorded value %v is not an integer", fn, v)
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns the current UTC time.
func (SystemClock) Now() time.Time { return time.Now().UTC() }

// CryptoRandom draws from crypto/rand: unpredictable, so uuid4() values
// cannot be guessed.
type CryptoRandom struct{}

// Uint64 returns 64 random bits.
func (CryptoRandom) Uint64() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return binary.BigEndian.Uint64(b[:])
}
