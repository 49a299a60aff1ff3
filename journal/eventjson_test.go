package journal_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/loomwork/loom/journal"
)

// TestEventJSON: the form show --json and the API print, and back.
func TestEventJSON(t *testing.T) {
	at := time.Date(2026, 11, 29, 20, 0, 0, 5, time.FixedZone("x", 3600))
	for _, tc := range []struct {
		ev   journal.Event
		want string
	}{
		{journal.Event{Seq: 1, Path: "a", Kind: journal.TimerSet, Name: "sleep", Time: at},
			`{"seq":1,"path":"a","kind":"timer.set","name":"sleep","ordinal":0,"data":null,"time":"2026-11-29T19:00:00.000000005Z"}`},
		{journal.Event{Seq: 2, Path: "a", Kind: journal.StepCompleted, Name: "task:t", Ordinal: 1, Data: json.RawMessage(`{"output":1}`), Time: at.UTC()},
			`{"seq":2,"path":"a","kind":"step.completed","name":"task:t","ordinal":1,"data":{"output":1},"time":"2026-11-29T19:00:00.000000005Z"}`},
	} {
		b, err := json.Marshal(tc.ev)
		if err != nil || string(b) != tc.want {
			t.Fatalf("marshal: %s, %v\nwant %s", b, err, tc.want)
		}
		var back journal.Event
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		tc.ev.Time = tc.ev.Time.UTC()
		if !reflect.DeepEqual(back, tc.ev) {
			t.Errorf("round trip: %+v, want %+v", back, tc.ev)
		}
	}
}
