package journal_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/loomwork/loom/journal"
)

func TestCheckID(t *testing.T) {
	const rule = "; an execution id is 1 to 128 letters, digits, '-', '_', '.' and ':', and not '.' or '..'"
	for id, want := range map[string]string{
		"a":                         "",
		"Order-7_a.b:c":             "",
		strings.Repeat("x", 128):    "",
		"":                          "invalid execution id: it is empty" + rule,
		strings.Repeat("x", 129):    "invalid execution id: it is 129 characters long" + rule,
		strings.Repeat("x", 100000): "invalid execution id: it is 100000 characters long" + rule,
		".":                         `invalid execution id: "." is a path element` + rule,
		"..":                        `invalid execution id: ".." is a path element` + rule,
		"a/b":                       `invalid execution id: it holds "/" at byte 2` + rule,
		"\x1b[2J":                   `invalid execution id: it holds "\x1b" at byte 1` + rule,
		"ok\u202etxt":               `invalid execution id: it holds "\u202e" at byte 3` + rule,
		"caf\xe9":                   `invalid execution id: it holds the byte \xe9 at byte 4` + rule,
		"é":                         `invalid execution id: it holds "\u00e9" at byte 1` + rule,
	} {
		err := journal.CheckID(id)
		switch {
		case want == "" && err != nil:
			t.Errorf("CheckID(%.20q) = %v, want nil", id, err)
		case want != "" && (err == nil || err.Error() != want):
			t.Errorf("CheckID(%.20q) = %v\nwant %s", id, err, want)
		case want != "" && !errors.Is(err, journal.ErrInvalidID):
			t.Errorf("CheckID(%.20q) is not ErrInvalidID", id)
		}
	}
}
