package journal

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// The Data of each event kind: one struct per kind, used by the engine to
// write events and to read them back, and by anything that shows a journal
// (`loom show`). Data is always a JSON object; fields added later are
// optional, so older journals keep reading.

// StepCompletedData is the Data of a StepCompleted event: the step's
// output and, for steps that ran something, when the attempt started.
type StepCompletedData struct {
	Output    json.RawMessage `json:"output"`
	StartedAt time.Time       `json:"started_at,omitzero"`
	// By names who resumed a pause (the token's name, or "local"), and
	// IdempotencyKey is the key the resume was sent with, if any: a
	// repeat of that resume is answered with the record (SPEC §6).
	By             string `json:"by,omitempty"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// Encode renders d as {"output":…,"started_at":"…"} without re-scanning
// the output (it is written for every step, so it stays cheap).
func (d StepCompletedData) Encode() json.RawMessage {
	out := d.Output
	if len(out) == 0 {
		out = json.RawMessage("null")
	}
	b := make([]byte, 0, len(out)+64)
	b = append(b, `{"output":`...)
	b = append(b, out...)
	if !d.StartedAt.IsZero() {
		b = append(b, `,"started_at":"`...)
		b = d.StartedAt.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	for _, f := range []struct{ key, v string }{{"by", d.By}, {"idempotency_key", d.IdempotencyKey}} {
		if f.v != "" {
			v, _ := json.Marshal(f.v)
			b = append(append(append(append(b, ",\""...), f.key...), "\":"...), v...)
		}
	}
	return append(b, '}')
}

// DecodeStepCompleted reads a StepCompleted event's Data. The common shape
// Encode writes is cut without decoding the output (replaying a large map
// reads one per item); anything else goes through the JSON decoder.
func DecodeStepCompleted(data json.RawMessage) (StepCompletedData, error) {
	const head, tail = `{"output":`, `,"started_at":"`
	if bytes.HasPrefix(data, []byte(head)) && bytes.HasSuffix(data, []byte(`"}`)) {
		if i := bytes.LastIndex(data, []byte(tail)); i > len(head) {
			ts := data[i+len(tail) : len(data)-2]
			if bytes.IndexByte(ts, '"') < 0 {
				if t, err := time.Parse(time.RFC3339Nano, string(ts)); err == nil {
					return StepCompletedData{Output: json.RawMessage(data[len(head):i]), StartedAt: t}, nil
				}
			}
		}
	}
	var d StepCompletedData
	err := decode(StepCompleted, data, &d)
	return d, err
}

// ErrorData is a workflow error as the journal records it.
type ErrorData struct {
	Type    string          `json:"type"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
	Step    string          `json:"step"`
}

// StepFailedData is the Data of a StepFailed event.
type StepFailedData struct {
	Error     *ErrorData `json:"error"`
	StartedAt time.Time  `json:"started_at,omitzero"`
}

// BuiltinData is the Data of a Builtin event: the function's value.
type BuiltinData struct {
	Value json.RawMessage `json:"value"`
}

// PauseOpenedData is the Data of a PauseOpened event.
type PauseOpenedData struct {
	Schema   json.RawMessage `json:"schema"`
	Deadline *time.Time      `json:"deadline,omitempty"`
}

// TimerSetData is the Data of a TimerSet event.
type TimerSetData struct {
	WakeAt time.Time `json:"wake_at"`
}

// ChildStartedData is the Data of a ChildStarted event. The child's id is
// journaled before the child exists, so a crash between the two creates
// that same child on resume.
type ChildStartedData struct {
	ID       string `json:"id"`
	Workflow string `json:"workflow"`
}

// ExecutionFinishedData is the Data of an ExecutionFinished event.
type ExecutionFinishedData struct {
	State  State           `json:"state"`
	Output json.RawMessage `json:"output"`
	Error  *ErrorData      `json:"error,omitempty"`
}

// DefinitionUpgradedData is the Data of a DefinitionUpgraded event.
type DefinitionUpgradedData struct {
	Definition string `json:"definition"`
	Hash       string `json:"hash"`
}

// MarkerData is the Data of events that carry nothing but their kind
// (CancelRequested, TimedOut), and for a cancel who asked for it (the
// token's name, or "local") when the process that carries it out knows.
type MarkerData struct {
	By string `json:"by,omitempty"`
}

// EncodeData renders a payload struct as an event's Data.
func EncodeData(v any) json.RawMessage {
	if d, ok := v.(StepCompletedData); ok {
		return d.Encode()
	}
	b, err := json.Marshal(v)
	if err != nil {
		// Payloads hold raw JSON, strings and times: they always encode.
		panic(fmt.Sprintf("journal: encoding %T: %v", v, err))
	}
	return b
}

// DecodeData reads ev's Data into the payload struct of its kind.
func DecodeData[T any](ev Event) (T, error) {
	var v T
	err := decode(ev.Kind, ev.Data, &v)
	return v, err
}

func decode(kind EventKind, data json.RawMessage, v any) error {
	if len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("journal: bad %s record: %w", kind, err)
	}
	return nil
}

// RerunOfData is the data of a RerunOf event.
type RerunOfData struct {
	// ExecutionID is the rerun execution.
	ExecutionID string `json:"execution_id"`
	// From is the path the rerun runs live from ("" : everything recorded
	// was reused).
	From string `json:"from"`
	// Reused counts the events copied from it.
	Reused int `json:"reused"`
}
