package server

import (
	"bufio"
	"database/sql"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/loomwork/loom/journal"
)

// streamMsg is a list stream's message: a change, or (Event "damaged") a
// record the journal could not read.
type streamMsg struct {
	Event string
	listChange
	Problem string
}

// listStream opens GET path as a list stream and returns its messages,
// decoded, as they come.
func (h *harness) listStream(path string) <-chan streamMsg {
	h.t.Helper()
	req, _ := http.NewRequest("GET", h.http.URL+path, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" ||
		resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("X-Accel-Buffering") != "no" {
		h.t.Fatalf("list stream: %d %v", resp.StatusCode, resp.Header)
	}
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() || sc.Text() != "retry: 2000" {
		h.t.Fatalf("list stream's first line: %q", sc.Text())
	}
	out := make(chan streamMsg, 100)
	go func() {
		defer close(out)
		event := ""
		for sc.Scan() {
			if e, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				event = e
			}
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				m := streamMsg{Event: event}
				var err error
				if event == "damaged" {
					var row DamagedRow
					err = json.Unmarshal([]byte(d), &row)
					m.ID, m.Problem = row.ID, row.Problem
				} else {
					err = json.Unmarshal([]byte(d), &m.listChange)
				}
				if err != nil {
					h.t.Errorf("list stream data %q: %v", d, err)
				}
				out <- m
				event = ""
			}
		}
	}()
	return out
}

// next is the next message, failing the test if none comes: every step
// before it committed already, so it is due within watchPoll.
func next(t *testing.T, msgs <-chan streamMsg) streamMsg {
	t.Helper()
	select {
	case c, ok := <-msgs:
		if !ok {
			t.Fatal("the list stream ended")
		}
		return c
	case <-time.After(time.Minute):
		t.Fatal("no list stream message within a minute")
	}
	return streamMsg{}
}

func TestListStream(t *testing.T) {
	h := newHarness(t)
	if st, _, rec := h.do("POST", "/v1/executions?wait=60s", `{"workflow": "approval", "id": "a1"}`); st != 201 || rec["state"] != "PAUSED" {
		t.Fatalf("start a1: %d %v", st, rec)
	}
	msgs := h.listStream("/v1/executions?state=PAUSED&roots=true")
	// A record that never matches is never told; a new matching one is.
	if st, _, rec := h.do("POST", "/v1/executions?wait=60s", `{"workflow": "hello", "id": "h1", "input": {"name": "x"}}`); st != 201 || rec["state"] != "COMPLETED" {
		t.Fatalf("start h1: %d %v", st, rec)
	}
	if st, _, rec := h.do("POST", "/v1/executions?wait=60s", `{"workflow": "approval", "id": "a2"}`); st != 201 || rec["state"] != "PAUSED" {
		t.Fatalf("start a2: %d %v", st, rec)
	}
	if c := next(t, msgs); c.ID != "a2" || c.Workflow != "approval" || c.State != journal.Paused || c.UpdatedAt.IsZero() {
		t.Fatalf("first message %+v, want a2 PAUSED", c)
	}
	// a1 was on the page the client listed: leaving the filter, it is
	// told, until its last state.
	if st, _, rec := h.do("POST", "/v1/executions/a1/resume?wait=60s&until=finished", `{"payload": {"approved": true}}`); st != 200 || rec["state"] != "COMPLETED" {
		t.Fatalf("resume a1: %d %v", st, rec)
	}
	for {
		c := next(t, msgs)
		if c.ID != "a1" {
			t.Fatalf("message %+v, want one of a1", c)
		}
		if c.State == journal.Completed {
			break
		}
	}

	// Another process's commit (straight into the journal, past this
	// server) is seen by re-reading the first page every watchPoll.
	now := h.clock.Now()
	if err := h.j.Create(t.Context(), &journal.Execution{ID: "x1", Workflow: "approval", Version: 1, State: journal.Paused,
		DefinitionHash: "h", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		h.clock.Advance(watchPoll)
		select {
		case c := <-msgs:
			if c.ID != "x1" || c.State != journal.Paused {
				t.Fatalf("message %+v, want x1 PAUSED", c)
			}
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("another process's new record was never told")
}

// A record the stream would have told of, but that the journal cannot
// read, is told as damaged, not skipped.
func TestListStreamTellsDamage(t *testing.T) {
	h := newHarness(t)
	if st, _, rec := h.do("POST", "/v1/executions?wait=60s", `{"workflow": "approval", "id": "a1"}`); st != 201 || rec["state"] != "PAUSED" {
		t.Fatalf("start a1: %d %v", st, rec)
	}
	msgs := h.listStream("/v1/executions")
	db, err := sql.Open("sqlite3", h.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE executions SET created_at = 'garbage' WHERE id = 'a1'`); err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		h.clock.Advance(watchPoll)
		select {
		case m := <-msgs:
			if m.Event != "damaged" || m.ID != "a1" || !strings.HasPrefix(m.Problem, "its creation time: ") {
				t.Fatalf("message %+v, want a1 damaged", m)
			}
			// Told once: the next change is another record's.
			if st, _, rec := h.do("POST", "/v1/executions?wait=60s", `{"workflow": "approval", "id": "a2"}`); st != 201 || rec["state"] != "PAUSED" {
				t.Fatalf("start a2: %d %v", st, rec)
			}
			h.clock.Advance(watchPoll)
			if m := next(t, msgs); m.Event != "" || m.ID != "a2" {
				t.Fatalf("message %+v, want a2 PAUSED", m)
			}
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("the damaged record was never told")
}

func TestListStreamBadFilter(t *testing.T) {
	h := newHarness(t)
	st, _, body := h.do("GET", "/v1/executions?state=paws", "", "Accept", "text/event-stream")
	wantError(t, "bad state on a list stream", st, body, 400, "bad_request")
}
