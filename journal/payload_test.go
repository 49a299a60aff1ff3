package journal_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/loomwork/loom/journal"
)

// The fast path of DecodeStepCompleted reads what the JSON decoder reads.
func TestDecodeStepCompletedAgreesWithJSON(t *testing.T) {
	for _, data := range []string{
		`{"output":{"a":[1,2]},"started_at":"2026-11-25T10:00:00.000000001Z"}`,
		`{"output":"x,\"started_at\":\"y","started_at":"2026-11-25T10:00:00Z"}`,
		`{"started_at":"2026-11-25T10:00:00Z","output":[3]}`,
		`{"output":null}`,
		`{"output":1,"started_at":"not a time"}`,
	} {
		var want journal.StepCompletedData
		wantErr := json.Unmarshal([]byte(data), &want)
		got, err := journal.DecodeStepCompleted(json.RawMessage(data))
		if (err != nil) != (wantErr != nil) {
			t.Errorf("%s: error %v, JSON decoder says %v", data, err, wantErr)
			continue
		}
		if err == nil && (!bytes.Equal(compact(got.Output), compact(want.Output)) || !got.StartedAt.Equal(want.StartedAt)) {
			t.Errorf("%s: got %s at %v, want %s at %v", data, got.Output, got.StartedAt, want.Output, want.StartedAt)
		}
	}
}

// Encode writes what json.Marshal writes, which DecodeStepCompleted reads.
func TestStepCompletedEncode(t *testing.T) {
	at := time.Date(2026, 11, 25, 10, 0, 0, 1, time.UTC)
	for _, d := range []journal.StepCompletedData{
		{Output: json.RawMessage(`{"a":1}`), StartedAt: at},
		{Output: json.RawMessage(`null`)},
		{},
		{Output: json.RawMessage(`{"ok":true}`), StartedAt: at, By: "ops <a>", IdempotencyKey: "k\"1"},
		{Output: json.RawMessage(`2`), By: "local"},
	} {
		want, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Output) == 0 {
			want = []byte(`{"output":null}`)
		}
		got := d.Encode()
		if !bytes.Equal(got, want) {
			t.Errorf("Encode = %s, json.Marshal = %s", got, want)
		}
		back, err := journal.DecodeStepCompleted(got)
		if err != nil || !bytes.Equal(compact(back.Output), compact(d.Output)) && len(d.Output) > 0 || !back.StartedAt.Equal(d.StartedAt) ||
			back.By != d.By || back.IdempotencyKey != d.IdempotencyKey {
			t.Errorf("round trip of %s: %+v, %v", got, back, err)
		}
	}
}

func TestDecodeData(t *testing.T) {
	ev := journal.Event{Kind: journal.ChildStarted, Data: json.RawMessage(`{"id":"c1","workflow":"w"}`)}
	d, err := journal.DecodeData[journal.ChildStartedData](ev)
	if err != nil || d.ID != "c1" || d.Workflow != "w" {
		t.Errorf("DecodeData = %+v, %v", d, err)
	}
	ev.Data = json.RawMessage(`[`)
	if _, err := journal.DecodeData[journal.ChildStartedData](ev); err == nil || err.Error() != "journal: bad child.started record: unexpected end of JSON input" {
		t.Errorf("DecodeData of bad data: %v", err)
	}
}

func compact(b []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return b
	}
	return buf.Bytes()
}
