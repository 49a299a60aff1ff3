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

// pauseCursor is the position after the last pause of a page.
type pauseCursor struct {
	OpenedAt time.Time `json:"o"`
	Exec     string    `json:"e"`
	Path     string    `json:"p"`
	Filter   string    `json:"f"`
}

func (a pauseItem) less(c pauseCursor) int {
	return cmp.Or(a.OpenedAt.Compare(c.OpenedAt), strings.Compare(a.ExecutionID, c.Exec), strings.Compare(a.Path, c.Path))
}

// listPauses is GET /v1/pauses: the open pauses across executions, oldest
// first. A root's record lists every open pause of its tree (a child's
// with its execution id), so only PAUSED roots are read: the cost follows
// the paused executions, not the journal's size. A pause's opened_at is
// when its execution last paused (the record's updated_at), and its
// workflow is the root's: what the person started.
func (s *Server) listPauses(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r, "workflow", "name", "root_id", "label", "limit", "cursor")
	if err != nil {
		return err
	}
	f := journal.Filter{State: journal.Paused, RootsOnly: true, Workflow: first(q["workflow"])}
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
	var recs []*journal.Execution
	if root := first(q["root_id"]); root != "" {
		rec, err := s.j.Get(r.Context(), root)
		if err != nil && !errors.Is(err, journal.ErrNotFound) {
			return err
		}
		if rec != nil && rec.State == journal.Paused && rec.ParentID == "" && (f.Workflow == "" || rec.Workflow == f.Workflow) {
			recs = append(recs, rec)
		}
	} else if recs, err = s.j.List(r.Context(), f); err != nil {
		return err
	}
	name := first(q["name"])
	items := []pauseItem{}
	for _, rec := range recs {
		if len(rec.Pauses) == 0 || string(rec.Pauses) == "null" {
			continue
		}
		var ps []interpreter.Pause
		if err := json.Unmarshal(rec.Pauses, &ps); err != nil {
			return err
		}
		for _, p := range ps {
			if name != "" && p.Name != name {
				continue
			}
			it := pauseItem{ExecutionID: cmp.Or(p.ExecutionID, rec.ID), RootID: rec.RootID, Workflow: rec.Workflow,
				Name: p.Name, Path: p.Path, Schema: p.Schema, OpenedAt: rec.UpdatedAt.UTC(), Deadline: p.Deadline}
			if from != nil && it.less(*from) <= 0 {
				continue
			}
			items = append(items, it)
		}
	}
	slices.SortFunc(items, func(a, b pauseItem) int {
		return a.less(pauseCursor{OpenedAt: b.OpenedAt, Exec: b.ExecutionID, Path: b.Path})
	})
	var next *string
	if len(items) > limit {
		items = items[:limit]
		last := items[limit-1]
		raw, _ := json.Marshal(pauseCursor{OpenedAt: last.OpenedAt, Exec: last.ExecutionID, Path: last.Path, Filter: digest})
		c := base64.RawURLEncoding.EncodeToString(raw)
		next = &c
	}
	writeJSON(w, http.StatusOK, map[string]any{"pauses": items, "next_cursor": next})
	return nil
}
