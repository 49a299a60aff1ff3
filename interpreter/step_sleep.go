package interpreter

import (
	"context"
	"fmt"
	"time"

	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/journal"
)

// sleep runs a `sleep:` step: a durable timer, journaled when set, waited
// out in process when the engine does so, and otherwise left for a later
// drive (the execution is WAITING until then).
func (x *exec) sleep(ctx context.Context, sc *scope, st *definition.Step, path string) (any, error) {
	if _, ok, err := x.h.completed(path, "sleep"); err != nil || ok {
		return nil, err
	}
	var tr journal.TimerSetData
	if ev, ok, err := x.h.find(path, journal.TimerSet, "sleep"); err != nil {
		return nil, err
	} else if ok {
		if tr, err = journal.DecodeData[journal.TimerSetData](ev); err != nil {
			return nil, fatal(err)
		}
	} else {
		now, err := x.h.begin()
		if err != nil {
			return nil, err
		}
		if tr.WakeAt, err = x.wakeAt(sc, st, path, now); err != nil {
			return nil, err
		}
		if err := x.h.write(journal.Event{Path: path, Kind: journal.TimerSet, Name: "sleep", Data: journal.EncodeData(tr)}); err != nil {
			return nil, err
		}
	}
	if err := x.h.timer(ctx, tr.WakeAt); err != nil {
		if err == errSuspended {
			x.suspend(nil, tr.WakeAt)
		}
		return nil, err
	}
	return nil, x.h.complete(path, "sleep", nil, time.Time{})
}

// wakeAt is when a sleep set now ends: its `until` time, or now plus its
// duration.
func (x *exec) wakeAt(sc *scope, st *definition.Step, path string, now time.Time) (time.Time, error) {
	if st.Sleep.Until == nil {
		return now.Add(st.Sleep.Duration), nil
	}
	v, err := x.evalExpr(st.Sleep.Until, sc, path, "sleep.until")
	if err != nil {
		return time.Time{}, err
	}
	s, _ := v.(string)
	t, perr := time.Parse(time.RFC3339Nano, s)
	if perr != nil {
		return time.Time{}, &Error{Type: "ExpressionError", Message: fmt.Sprintf("sleep.until: expected a time, got %s", short(v, 60)), Step: path}
	}
	return t.UTC(), nil
}
