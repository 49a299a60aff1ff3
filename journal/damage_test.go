package journal_test

import (
	"errors"
	"testing"

	"github.com/loomwork/loom/journal"
)

func TestCheckEvents(t *testing.T) {
	seqs := func(s ...int64) []journal.Event {
		evs := make([]journal.Event, len(s))
		for i, q := range s {
			evs[i].Seq = q
		}
		return evs
	}
	for _, c := range []struct {
		name        string
		last, after int64
		evs         []journal.Event
		want        string
	}{
		{"whole", 3, 0, seqs(1, 2, 3), ""},
		{"none", 0, 0, nil, ""},
		{"after", 3, 1, seqs(2, 3), ""},
		{"appended meanwhile", 2, 0, seqs(1, 2, 3), ""},
		{"gap", 3, 0, seqs(1, 3), "the journal of x is damaged: event 2 of 3 is missing"},
		{"first missing", 3, 0, seqs(2, 3), "the journal of x is damaged: event 1 of 3 is missing"},
		{"tail missing", 5, 0, seqs(1, 2), "the journal of x is damaged: events 3 to 5 of 5 are missing"},
		{"all missing", 2, 0, nil, "the journal of x is damaged: events 1 to 2 of 2 are missing"},
		{"gap of two", 4, 0, seqs(1, 4), "the journal of x is damaged: events 2 to 3 of 4 are missing"},
		{"twice", 2, 0, seqs(1, 1, 2), "the journal of x is damaged: event 1 appears twice or out of order"},
	} {
		err := journal.CheckEvents("x", c.last, c.after, c.evs)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || err.Error() != c.want):
			t.Errorf("%s: got %v\nwant %s", c.name, err, c.want)
		case c.want != "" && !errors.Is(err, journal.ErrDamaged):
			t.Errorf("%s: not ErrDamaged", c.name)
		}
	}
}
