package server

import (
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"
)

func TestListPauses(t *testing.T) {
	h := newHarness(t)
	for _, id := range []string{"p1", "p2", "p3"} {
		st, _, rec := h.do("POST", "/v1/executions?wait=60s", `{"workflow": "approval", "id": "`+id+`", "labels": {"team": "`+id+`"}}`)
		if st != 201 || rec["state"] != "PAUSED" {
			t.Fatalf("start %s: %d %v", id, st, rec)
		}
		h.clock.Advance(time.Second)
	}
	ids := func(body map[string]any) []string {
		var out []string
		for _, p := range body["pauses"].([]any) {
			m := p.(map[string]any)
			if m["name"] != "approve" || m["path"] != "approve" || m["workflow"] != "approval" || m["root_id"] != m["execution_id"] || m["opened_at"] == nil || m["schema"] == nil {
				t.Errorf("pause %v", m)
			}
			out = append(out, m["execution_id"].(string))
		}
		return out
	}
	st, _, body := h.do("GET", "/v1/pauses?limit=2", "")
	if got := ids(body); st != 200 || len(got) != 2 || got[0] != "p1" || got[1] != "p2" || body["next_cursor"] == nil {
		t.Fatalf("first page: %d %v", st, body)
	}
	st, _, body = h.do("GET", "/v1/pauses?limit=2&cursor="+url.QueryEscape(body["next_cursor"].(string)), "")
	if got := ids(body); st != 200 || len(got) != 1 || got[0] != "p3" || body["next_cursor"] != nil {
		t.Fatalf("second page: %d %v", st, body)
	}
	_, _, first := h.do("GET", "/v1/pauses?limit=1", "")
	st, _, body = h.do("GET", "/v1/pauses?limit=1&name=other&cursor="+url.QueryEscape(first["next_cursor"].(string)), "")
	wantError(t, "cursor of another filter", st, body, 400, "bad_cursor")
	for q, want := range map[string]int{"name=approve": 3, "name=other": 0, "workflow=hello": 0, "label=team:p2": 1, "root_id=p3": 1, "root_id=nosuch": 0} {
		st, _, body := h.do("GET", "/v1/pauses?"+q, "")
		if got := ids(body); st != 200 || len(got) != want {
			t.Errorf("%s: %d %v, want %d", q, st, got, want)
		}
	}
	st, _, body = h.do("GET", "/v1/pauses?nme=approve", "")
	wantError(t, "unknown parameter", st, body, 400, "bad_request")
	// A resumed pause leaves the inbox.
	if st, _, rec := h.do("POST", "/v1/executions/p1/resume?wait=60s&until=finished", `{"payload": {"approved": true}}`); st != 200 {
		t.Fatalf("resume: %d %v", st, rec)
	}
	if _, _, body = h.do("GET", "/v1/pauses", ""); len(ids(body)) != 2 || ids(body)[0] != "p2" {
		t.Errorf("after resume: %v", body)
	}
}

// TestListPausesPages: a root with two open pauses may be cut by a page;
// paging by every limit gives each pause once, in the order of one page.
func TestListPausesPages(t *testing.T) {
	h := newHarness(t)
	for _, start := range []string{`"approval", "id": "a1"`, `"twoapprovals", "id": "t1"`, `"approval", "id": "a2"`} {
		st, _, rec := h.do("POST", "/v1/executions?wait=60s", `{"workflow": `+start+`}`)
		if st != 201 || rec["state"] != "PAUSED" {
			t.Fatalf("start %s: %d %v", start, st, rec)
		}
		h.clock.Advance(time.Second)
	}
	key := func(p any) string {
		m := p.(map[string]any)
		return m["execution_id"].(string) + " " + m["name"].(string)
	}
	_, _, body := h.do("GET", "/v1/pauses", "")
	var all []string
	for _, p := range body["pauses"].([]any) {
		all = append(all, key(p))
	}
	if want := []string{"a1 approve", "t1 finance", "t1 legal", "a2 approve"}; !slices.Equal(all, want) {
		t.Fatalf("one page = %v, want %v", all, want)
	}
	for limit := 1; limit <= 4; limit++ {
		var got []string
		q := "/v1/pauses?limit=" + strconv.Itoa(limit)
		for page := 0; page < 10; page++ {
			st, _, body := h.do("GET", q, "")
			if st != 200 {
				t.Fatalf("%s: %d %v", q, st, body)
			}
			for _, p := range body["pauses"].([]any) {
				got = append(got, key(p))
			}
			c, ok := body["next_cursor"].(string)
			if !ok {
				break
			}
			q = "/v1/pauses?limit=" + strconv.Itoa(limit) + "&cursor=" + url.QueryEscape(c)
		}
		if !slices.Equal(got, all) {
			t.Errorf("pages of %d = %v, want %v", limit, got, all)
		}
	}
}
