package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/server"
)

// The CLI as a client of loom serve (SPEC §6): with --server URL (or
// $LOOM_SERVER, and $LOOM_TOKEN), run, resume, status, list, show and
// cancel talk to a server instead of opening the journal. They fetch over
// HTTP and print with the same code as the local commands, so output and
// exit codes stay the same.

var flagServer = flagSpec{"server", "URL", "talk to a loom serve at URL instead of the journal (default $LOOM_SERVER)"}

func init() {
	remote := map[string]func(*app) error{
		"run": (*app).remoteRun, "resume": (*app).remoteResume, "status": (*app).remoteStatus,
		"list": (*app).remoteList, "show": (*app).remoteShow, "cancel": (*app).remoteCancel,
	}
	for name, rfn := range remote {
		c := lookupCommand(name)
		local, rfn := c.run, rfn
		c.flags = append(c.flags, flagServer)
		c.run = func(a *app) error {
			if a.serverURL() != "" && !(name == "resume" && a.p.has("due")) {
				return rfn(a)
			}
			return local(a)
		}
	}
}

func (a *app) serverURL() string {
	if v := a.p.get("server"); v != "" {
		return v
	}
	return a.getenv("LOOM_SERVER")
}

// client talks to one server.
type client struct {
	a     *app
	base  string
	token string
}

func (a *app) client() (*client, error) {
	raw := strings.TrimRight(a.serverURL(), "/")
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--server %q is not an http:// or https:// URL", raw)
	}
	c := &client{a: a, base: raw, token: a.getenv("LOOM_TOKEN")}
	a.viaServer, a.journalUsed = true, raw // records name the server they came from
	if c.token != "" && u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		return nil, refusef("refusing to send $LOOM_TOKEN over plain http:// to %s; use https://", u.Host)
	}
	return c, nil
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// apiError is an error answer of the server, mapped to what the local
// command would have returned, so exitCode and hint treat it alike.
type apiError struct {
	code, msg string
	is        []error
}

func (e *apiError) Error() string   { return e.msg }
func (e *apiError) Unwrap() []error { return e.is }

// unreachable: the server did not answer or answered 503.
type unreachable struct{ msg string }

func (e *unreachable) Error() string { return e.msg }

// do sends a request and decodes a 2xx answer into out.
func (c *client) do(method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(c.a.ctx, method, c.base+path, rd)
	if err != nil {
		return 0, err
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, &unreachable{fmt.Sprintf("cannot reach the server at %s: %v; the execution is intact, try again", c.base, unwrapURL(err))}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, &unreachable{fmt.Sprintf("the server at %s broke off its answer: %v", c.base, err)}
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error.Code == "" {
			return resp.StatusCode, &unreachable{fmt.Sprintf("the server at %s answered %s", c.base, resp.Status)}
		}
		return resp.StatusCode, apiErrorOf(resp.StatusCode, e.Error.Code, e.Error.Message)
	}
	if out != nil {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(out); err != nil {
			return resp.StatusCode, fmt.Errorf("the server's answer is not the JSON expected: %v", err)
		}
	}
	return resp.StatusCode, nil
}

func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return unwrapNet(ue.Err)
	}
	return err
}

// apiErrorOf maps SPEC §6's error codes back to the refusals of the local
// commands.
func apiErrorOf(status int, code, msg string) error {
	e := &apiError{code: code, msg: msg}
	switch code {
	case "not_found":
		e.is = []error{interpreter.ErrNotFound}
	case "invalid_input", "invalid_payload":
		e.is = []error{interpreter.ErrInvalidInput}
	case "not_paused":
		e.is = []error{interpreter.ErrNotPaused}
	case "pause_timed_out":
		e.is = []error{interpreter.ErrNotPaused, interpreter.ErrPauseTimedOut}
	case "busy":
		e.is = []error{journal.ErrBusy}
	case "finished":
		e.is = []error{interpreter.ErrFinished}
	case "execution_exists":
		e.is = []error{journal.ErrExists}
	case "non_determinism":
		e.is = []error{interpreter.ErrNonDeterminism}
	case "journal_damaged":
		// The local command adds its own hint about loom doctor.
		e.msg, _, _ = strings.Cut(msg, "; `loom doctor`")
		e.is = []error{journal.ErrDamaged}
	default:
		if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
			return &unreachable{msg}
		}
		return &cliError{kind: kindRefused, msg: msg}
	}
	return e
}

// remote runs fn and turns an unreachable server into exit 5 with its
// sentence. An execution id is checked first, as the local commands do.
func (a *app) remote(fn func(c *client) error) error {
	if a.cmd.name != "run" && len(a.p.args) == 1 {
		if err := journal.CheckID(a.p.args[0]); err != nil {
			return err
		}
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	err = fn(c)
	var u *unreachable
	if errors.As(err, &u) {
		fmt.Fprintf(a.stderr, "%s %s: %s\n", a.prog(), a.cmd.name, oneLine(u.msg))
		return exitWith(ExitUnavailable)
	}
	return err
}

// get reads an execution, waiting (repeated long polls) while it is
// RUNNING when settle is set.
func (c *client) get(id string, settle bool) (*interpreter.Execution, error) {
	rec, err := c.record(id, settle)
	if err != nil {
		return nil, err
	}
	return rec.Execution()
}

// record reads execution id's API record; with settle, once it is not
// RUNNING (repeated long polls).
func (c *client) record(id string, settle bool) (*server.Record, error) {
	for {
		var rec server.Record
		path := "/v1/executions/" + url.PathEscape(id)
		if settle {
			path += "?wait=60s&until=settled"
		}
		if _, err := c.do("GET", path, nil, &rec); err != nil {
			return nil, err
		}
		if !settle || rec.State != journal.Running {
			return &rec, nil
		}
	}
}

func (a *app) remoteRun() error {
	return a.remote(func(c *client) error {
		_, name, in, err := a.runArgs(a.p.args[0], false)
		if err != nil {
			return err
		}
		body := map[string]any{"workflow": name, "input": in}
		if a.p.has("id") {
			body["id"] = a.p.get("id")
		}
		var rec server.Record
		st, err := c.do("POST", "/v1/executions?wait=60s&until=settled", body, &rec)
		if st == http.StatusOK || errors.Is(err, journal.ErrExists) {
			return a.existsError()
		}
		if err != nil {
			return err
		}
		ex, err := rec.Execution()
		if err == nil && ex.State == journal.Running {
			ex, err = c.get(ex.ID, true)
		}
		if err != nil {
			return err
		}
		return a.report(ex)
	})
}

func (a *app) remoteResume() error {
	return a.remote(func(c *client) error {
		if len(a.p.args) != 1 {
			return usagef("usage: loom resume ID [--input JSON | --input-file FILE] [--pause NAME_OR_PATH] (or loom resume --due)")
		}
		if a.p.has("definition") {
			return usagef("--definition upgrades through the journal; it does not work with --server")
		}
		id := a.p.args[0]
		payload, given, err := a.input()
		if err != nil {
			return err
		}
		body := map[string]any{}
		if given {
			body["payload"] = payload
		}
		if p := a.p.get("pause"); p != "" {
			body["pause"] = p
		}
		var rec server.Record
		if _, err := c.do("POST", "/v1/executions/"+url.PathEscape(id)+"/resume?wait=60s&until=settled", body, &rec); err != nil {
			return err
		}
		ex, err := rec.Execution()
		if err == nil && ex.State == journal.Running {
			ex, err = c.get(id, true)
		}
		if err != nil {
			return err
		}
		return a.report(ex)
	})
}

func (a *app) remoteStatus() error {
	return a.remote(func(c *client) error {
		rec, err := c.record(a.p.args[0], false)
		if err != nil {
			return err
		}
		ex, err := rec.Execution()
		if err != nil {
			return err
		}
		if a.p.has("json") {
			r := a.recordOf(ex)
			r.Holder = rec.Holder
			return a.printJSON(r)
		}
		a.printStatus(ex, rec.Holder)
		return nil
	})
}

func (a *app) remoteList() error {
	return a.remote(func(c *client) error {
		f, limit, since, err := a.listOptions()
		if err != nil {
			return err
		}
		q := url.Values{}
		if f.RootsOnly {
			q.Set("roots", "true")
		}
		if f.State != "" {
			q.Set("state", string(f.State))
		}
		if f.Workflow != "" {
			q.Set("workflow", f.Workflow)
		}
		if !since.IsZero() {
			q.Set("created_after", since.UTC().Format(time.RFC3339Nano))
		}
		exs, more, damaged, err := c.list(q, limit)
		if err != nil {
			return err
		}
		return a.showList(exs, more, limit, damaged, a.recordOf)
	})
}

// list pages through GET /v1/executions with the filter q: at most limit
// executions (0: all), whether more were left out, and the records the
// server's journal could not read (nil if none), as a local List says them.
func (c *client) list(q url.Values, limit int) (exs []*interpreter.Execution, more bool, damaged *journal.DamagedRowsError, err error) {
	for cursor := ""; ; {
		page := url.Values{}
		for k, v := range q {
			page[k] = v
		}
		page.Set("limit", "500")
		if cursor != "" {
			page.Set("cursor", cursor)
		}
		var out struct {
			Executions []server.Record     `json:"executions"`
			Next       *string             `json:"next_cursor"`
			Damaged    []server.DamagedRow `json:"damaged"`
		}
		if _, err := c.do("GET", "/v1/executions?"+page.Encode(), nil, &out); err != nil {
			return nil, false, nil, err
		}
		for _, d := range out.Damaged {
			if damaged == nil {
				damaged = &journal.DamagedRowsError{}
			}
			damaged.Rows = append(damaged.Rows, &journal.DamagedError{ID: d.ID, Problem: d.Problem})
		}
		for i := range out.Executions {
			ex, err := out.Executions[i].Execution()
			if err != nil {
				return nil, false, nil, err
			}
			exs = append(exs, ex)
		}
		if limit > 0 && len(exs) > limit {
			return exs[:limit], true, damaged, nil
		}
		if out.Next == nil {
			return exs, false, damaged, nil
		}
		cursor = *out.Next
	}
}

func (a *app) remoteShow() error {
	return a.remote(func(c *client) error {
		id := a.p.args[0]
		ex, err := c.get(id, false)
		if err != nil {
			return err
		}
		var evs []journal.Event
		for after := int64(0); ; {
			var out struct {
				Events []journal.Event `json:"events"`
				More   bool            `json:"has_more"`
			}
			if _, err := c.do("GET", fmt.Sprintf("/v1/executions/%s/events?after=%d&limit=10000", url.PathEscape(id), after), nil, &out); err != nil {
				return err
			}
			for _, e := range out.Events {
				evs = append(evs, e)
				after = e.Seq
			}
			if !out.More {
				break
			}
		}
		if a.p.has("json") {
			return a.printJSON(nonNil(evs))
		}
		children, _, damaged, err := c.list(url.Values{"parent_id": {id}}, 0)
		if err != nil {
			return err
		}
		if damaged != nil {
			return damaged
		}
		// oldest first, as in the timeline
		slices.Reverse(children)
		a.printTimeline(ex, evs, children)
		return nil
	})
}

func (a *app) remoteCancel() error {
	return a.remote(func(c *client) error {
		if a.p.has("state") {
			if len(a.p.args) > 0 {
				return usagef("--state cancels every execution in that state; it takes no ID")
			}
			st, err := a.bulkState("cancel", cancellable)
			if err != nil {
				return err
			}
			q := url.Values{"state": {string(st)}, "roots": {"true"}}
			if w := a.p.get("workflow"); w != "" {
				q.Set("workflow", w)
			}
			exs, _, damaged, err := c.list(q, 0)
			if err != nil {
				return err
			}
			if damaged != nil {
				return damaged
			}
			ids := make([]string, len(exs))
			for i, ex := range exs {
				ids[i] = ex.ID
			}
			return a.bulkDo("cancel", st, ids, func(id string) (string, error) {
				ex, err := c.cancel(id)
				if err != nil {
					return "", err
				}
				return string(ex.State), nil
			})
		}
		if len(a.p.args) != 1 || a.p.has("dry-run") || a.p.has("workflow") {
			return usagef("usage: loom cancel ID (or loom cancel --state S [--workflow W] [--dry-run])")
		}
		ex, err := c.cancel(a.p.args[0])
		if err != nil {
			return err
		}
		if a.p.has("json") {
			if err := a.printJSON(a.recordOf(ex)); err != nil {
				return err
			}
		}
		fmt.Fprintf(a.stderr, "%s: execution %s is %s\n", a.prog(), safe(ex.ID), safe(string(ex.State)))
		return nil
	})
}

// cancel asks the server to cancel execution id and waits until it is
// finished. An execution CANCELLED before the request (200, not 202) is
// refused as the local command refuses it.
func (c *client) cancel(id string) (*interpreter.Execution, error) {
	var rec server.Record
	st, err := c.do("POST", "/v1/executions/"+url.PathEscape(id)+"/cancel", nil, &rec)
	if err != nil {
		return nil, err
	}
	ex, err := rec.Execution()
	if err == nil && st == http.StatusOK && ex.State == journal.Cancelled {
		return nil, fmt.Errorf("%w: execution %s is already %s", interpreter.ErrFinished, id, ex.State)
	}
	if h := rec.Holder; err == nil && h != nil && !h.Gone && !h.Worker && h.Expires.After(c.a.clock.Now()) {
		// A runner at a terminal holds it and does not look for cancel
		// requests: busy, as the local command says (exit 4).
		return nil, cancelBusy(&journal.BusyError{Lease: journal.Lease{RootID: rec.RootID,
			Holder: journal.Holder{Host: h.Host, PID: h.PID}, Expires: h.Expires}})
	}
	for err == nil && !ex.State.Finished() {
		var r server.Record
		if _, err = c.do("GET", "/v1/executions/"+url.PathEscape(id)+"?wait=60s&until=finished", nil, &r); err == nil {
			ex, err = r.Execution()
		}
		if c.a.ctx.Err() != nil {
			return nil, context.Cause(c.a.ctx)
		}
	}
	return ex, err
}
