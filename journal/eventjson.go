package journal

import (
	"encoding/json"
	"time"
)

// eventJSON is the JSON form of an Event: the one `loom show --json`, the
// HTTP API and its event stream print, and the CLI reads back from a
// server. Keys are lower case, an event without data has "data": null, and
// the time is in UTC.
type eventJSON struct {
	Seq     int64           `json:"seq"`
	Path    string          `json:"path"`
	Kind    EventKind       `json:"kind"`
	Name    string          `json:"name"`
	Ordinal int             `json:"ordinal"`
	Data    json.RawMessage `json:"data"`
	Time    time.Time       `json:"time"`
}

// MarshalJSON writes the event's JSON form.
func (e Event) MarshalJSON() ([]byte, error) {
	d := e.Data
	if len(d) == 0 {
		d = json.RawMessage("null")
	}
	return json.Marshal(eventJSON{Seq: e.Seq, Path: e.Path, Kind: e.Kind, Name: e.Name, Ordinal: e.Ordinal, Data: d, Time: e.Time.UTC()})
}

// UnmarshalJSON reads the event's JSON form; "data": null reads as no data,
// as the journal stores it.
func (e *Event) UnmarshalJSON(b []byte) error {
	var j eventJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	if string(j.Data) == "null" {
		j.Data = nil
	}
	*e = Event{Seq: j.Seq, Path: j.Path, Kind: j.Kind, Name: j.Name, Ordinal: j.Ordinal, Data: j.Data, Time: j.Time}
	return nil
}
