package interpreter

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/journal"
)

// pause runs a `pause:` step: it opens the pause (with its schema and
// deadline) and suspends the walk until a payload is recorded as the
// step's output, or fails it with PauseTimeout once the deadline passed.
func (x *exec) pause(st *definition.Step, path string) (any, error) {
	name := "pause:" + st.Pause
	if out, ok, err := x.h.completed(path, name); err != nil || ok {
		return out, err
	}
	if werr, _, ok, err := x.h.failed(path, name); err != nil || ok {
		return nil, orErr(err, werr)
	}
	var pr journal.PauseOpenedData
	if ev, ok, err := x.h.find(path, journal.PauseOpened, name); err != nil {
		return nil, err
	} else if ok {
		if pr, err = journal.DecodeData[journal.PauseOpenedData](ev); err != nil {
			return nil, fatal(err)
		}
	} else {
		now, err := x.h.begin()
		if err != nil {
			return nil, err
		}
		pr.Schema = encodeJSON(st.SchemaRaw)
		if st.Timeout > 0 {
			dl := now.Add(st.Timeout)
			pr.Deadline = &dl
		}
		if err := x.h.write(journal.Event{Path: path, Kind: journal.PauseOpened, Name: name, Data: journal.EncodeData(pr)}); err != nil {
			return nil, err
		}
	}
	if pr.Deadline != nil && x.h.past(*pr.Deadline) {
		werr := &Error{Type: "PauseTimeout", Message: fmt.Sprintf("pause %s was not resumed within %s", st.Pause, st.Timeout), Step: path}
		if err := x.h.fail(path, name, werr, pr.Deadline.Add(-st.Timeout)); err != nil {
			return nil, err
		}
		return nil, werr
	}
	var schema any
	if len(pr.Schema) > 0 {
		schema, _ = decodeJSON(pr.Schema)
	}
	var wake time.Time
	if pr.Deadline != nil {
		wake = *pr.Deadline
	}
	x.suspend(&Pause{Name: st.Pause, Path: path, Schema: schema, ExecutionID: x.rec.ID, Deadline: pr.Deadline}, wake)
	return nil, errSuspended
}

var nullJSON = json.RawMessage("null")
