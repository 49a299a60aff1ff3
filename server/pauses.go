package server

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
)

// pauseItem is one open pause of GET /v1/pauses.
type pauseItem struct {
	ExecutionID string     `json:"execution_id"`
	RootID      string     `json:"root_id"`
	Workflow    string     `json:"workflow"`
	Name        string     `json:"name"`
	Path        string     `json:"path"`
	Schema      any        `json:"schema"`
	OpenedAt    time.Time  `json:"opened_at"`
	Deadline    *time.Time `json:"deadline"`
}

// pauseCursor is the position after the last pause of a page: the pauses
// are ordered by (opened_at, root_id, execution_id, path), which is the
// journal's OldestUpdated order of their roots, then their own order.
type pauseCursor struct {
	OpenedAt time.Time `json:"o"`
	Root     string    `json:"r"`
	Exec     string    `json:"e"`
	Path     string    `json:"p"`
	Filter   string    `json:"f"`
}

func (a pauseItem) less(c pauseCursor) int {
	return cmp.Or(a.OpenedAt.Compare(c.OpenedAt), strings.Compare(a.RootID, c.Root),
		strings.Compare(a.ExecutionID, c.Exec), strings.Compare(a.Path, c.Path))
}

func (a pauseItem) position() pauseCursor {
	return pauseCursor{OpenedAt: a.OpenedAt, Root: a.RootID, Exec: a.ExecutionID, Path: a.Path}
}

// listPauses is GET /v1/pauses: the open pauses across executions, oldest
// first. A root's record lists every open pause of its tree (a child's
// with its execution id), so only PAUSED roots are read, a page at a time
// in the journal's OldestUpdated order (indexed for PAUSED records): a
// page costs its rows, not the journal's size nor the number of paused
// executions. A pause's opened_at is when its execution last paused (the
// record's updated_at), and its workflow is the root's: what the person
// started. A name filter is not indexed: it reads root pages until the
// page of pauses is full.
func (s *Server) listPauses(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r, "workflow", "name", "root_id", "label", "limit", "cursor")
	if err != nil {
		return err
	}
	f := journal.Filter{State: journal.Paused, RootsOnly: true, Workflow: first(q["workflow"]), Order: journal.OldestUpdated}
	for _, l := range q["label"] {
		k, v, ok := strings.Cut(l, ":")
		if !ok || !labelKey.MatchString(k) {
			return badRequest("label=%q: use KEY:VALUE", l)
		}
		if f.Labels == nil {
			f.Labels = map[string]string{}
		}
		f.Labels[k] = v
	}
	limit := 50
	if v := first(q["limit"]); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 {
			return badRequest("limit=%q: use a number from 1 to 500", v)
		}
		limit = min(limit, 500)
	}
	digest := filterDigest(q) + "|" + first(q["name"]) + "|" + first(q["root_id"])
	var from *pauseCursor
	if c := first(q["cursor"]); c != "" {
		from = &pauseCursor{}
		raw, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil || json.Unmarshal(raw, from) != nil {
			return apiErr(http.StatusBadRequest, "bad_cursor", "the cursor is not one this server made")
		}
		if from.Filter != digest {
			return apiErr(http.StatusBadRequest, "bad_cursor", "the cursor belongs to another filter; list again from the first page")
		}
	}
	name := first(q["name"])
	items := []pauseItem{}
	// add appends rec's open pauses that come after the cursor.
	add := func(rec *journal.Execution) error {
		if len(rec.Pauses) == 0 || string(rec.Pauses) == "null" {
			return nil
		}
		var ps []interpreter.Pause
		if err := json.Unmarshal(rec.Pauses, &ps); err != nil {
			return err
		}
		var mine []pauseItem
		for _, p := range ps {
			if name != "" && p.Name != name {
				continue
			}
			it := pauseItem{ExecutionID: cmp.Or(p.ExecutionID, rec.ID), RootID: rec.RootID, Workflow: rec.Workflow,
				Name: p.Name, Path: p.Path, Schema: p.Schema, OpenedAt: rec.UpdatedAt.UTC(), Deadline: p.Deadline}
			if from == nil || it.less(*from) > 0 {
				mine = append(mine, it)
			}
		}
		slices.SortFunc(mine, func(a, b pauseItem) int { return a.less(b.position()) })
		items = append(items, mine...)
		return nil
	}
	// get adds the pauses of the root id if it is one the filter selects.
	get := func(id string) error {
		rec, err := s.j.Get(r.Context(), id)
		if errors.Is(err, journal.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if rec.State != journal.Paused || rec.ParentID != "" || (f.Workflow != "" && rec.Workflow != f.Workflow) {
			return nil
		}
		for k, v := range f.Labels {
			if got, ok := rec.Labels[k]; !ok || got != v {
				return nil
			}
		}
		return add(rec)
	}
	if root := first(q["root_id"]); root != "" {
		if err := get(root); err != nil {
			return err
		}
	} else {
		if from != nil {
			// The last page may have ended inside a root's pauses: the
			// rest of them come first, if it still waits as it did.
			if err := get(from.Root); err != nil {
				return err
			}
			if len(items) > 0 && !items[0].OpenedAt.Equal(from.OpenedAt) {
				items = items[:0] // it paused again since: it is further on
			}
			f.After = journal.OldestUpdated.CursorAt(&journal.Execution{UpdatedAt: from.OpenedAt, ID: from.Root})
		}
		// Every paused root has a pause, so a page of limit+1 roots fills
		// the page and tells whether another follows; a name filter may
		// need more.
		f.Limit = limit + 1
		for len(items) <= limit {
			recs, err := s.j.List(r.Context(), f)
			if err != nil {
				return err
			}
			for _, rec := range recs {
				if err := add(rec); err != nil {
					return err
				}
			}
			if len(recs) < f.Limit {
				break
			}
			f.After = journal.OldestUpdated.CursorAt(recs[len(recs)-1])
		}
	}
	var next *string
	if len(items) > limit {
		items = items[:limit]
		c := items[limit-1].position()
		c.Filter = digest
		raw, _ := json.Marshal(c)
		s := base64.RawURLEncoding.EncodeToString(raw)
		next = &s
	}
	writeJSON(w, http.StatusOK, map[string]any{"pauses": items, "next_cursor": next})
	return nil
}
