package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/loomwork/loom/clock"
	"github.com/loomwork/loom/definition"
	"github.com/santhosh-tekuri/jsonschema/v5"
)

// openAPIDoc is the parts of the description the test reads.
type openAPIDoc struct {
	OpenAPI string `json:"openapi"`
	Paths   map[string]map[string]struct {
		Parameters []struct {
			Name string `json:"name"`
			In   string `json:"in"`
		} `json:"parameters"`
		Responses map[string]json.RawMessage `json:"responses"`
	} `json:"paths"`
}

// TestOpenAPIDescribesTheServer checks openapi.json against the server:
// the same routes, the same query parameters per route (the server's own
// refusal of an unknown parameter lists the ones it takes), and every
// answer of a run through the whole API valid against the schema the
// description gives for its route and status.
func TestOpenAPIDescribesTheServer(t *testing.T) {
	h := newHarness(t, withSchedule(t))
	var doc openAPIDoc
	if err := json.Unmarshal(openAPI, &doc); err != nil || doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi.json: %v (openapi %q)", err, doc.OpenAPI)
	}

	// Routes, both ways.
	var served []string
	for _, p := range h.srv.patterns {
		if method, path, ok := strings.Cut(p, " "); ok && strings.HasPrefix(path, "/v1/") {
			served = append(served, strings.ToLower(method)+" "+path)
		}
	}
	var described []string
	for path, ops := range doc.Paths {
		for method := range ops {
			described = append(described, method+" "+path)
		}
	}
	sort.Strings(served)
	sort.Strings(described)
	if !slices.Equal(served, described) {
		t.Fatalf("routes served:\n  %s\nroutes described:\n  %s", strings.Join(served, "\n  "), strings.Join(described, "\n  "))
	}

	// Query parameters, as the server refuses an unknown one.
	takes := regexp.MustCompile(`\(this route takes (.*)\)$`)
	concrete := strings.NewReplacer("{id}", "nosuch", "{name}", "hello")
	for _, route := range served {
		method, path, _ := strings.Cut(route, " ")
		st, _, body := h.raw(strings.ToUpper(method), concrete.Replace(path)+"?zz_unknown=1", "{}")
		var e struct{ Error struct{ Message string } }
		_ = json.Unmarshal(body, &e)
		if st != 400 {
			t.Errorf("%s with an unknown parameter: %d %s", route, st, body)
			continue
		}
		var got []string
		if m := takes.FindStringSubmatch(e.Error.Message); m != nil {
			got = strings.Split(m[1], ", ")
		} else if !strings.HasSuffix(e.Error.Message, "this route takes none") {
			t.Errorf("%s: the refusal %q names no parameters", route, e.Error.Message)
		}
		var want []string
		for _, p := range doc.Paths[path][method].Parameters {
			if p.In == "query" {
				want = append(want, p.Name)
			}
		}
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s takes the query parameters %v; the description says %v", route, got, want)
		}
	}

	// Answers, against the schemas.
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	if err := c.AddResource("openapi.json", bytes.NewReader(openAPI)); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	check := func(route, method, path, body string, hdr []string, want int) map[string]any {
		t.Helper()
		st, _, raw := h.raw(method, path, body, hdr...)
		if st != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, st, raw, want)
		}
		ptr := fmt.Sprintf("openapi.json#/paths/%s/%s/responses/%d/content/application~1json/schema",
			strings.ReplaceAll(strings.ReplaceAll(route, "~", "~0"), "/", "~1"), strings.ToLower(method), st)
		sch, err := c.Compile(ptr)
		if err != nil {
			t.Fatalf("%s %s answered %d, which the description of %s does not have: %v", method, path, st, route, err)
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatalf("%s %s: not JSON: %s", method, path, raw)
		}
		if err := sch.Validate(v); err != nil {
			t.Errorf("%s %s → %d does not match the description:\n%s\n%#v", method, path, st, raw, err)
		}
		seen[fmt.Sprintf("%s %s %d", strings.ToLower(method), route, st)] = true
		m, _ := v.(map[string]any)
		return m
	}
	const (
		execs  = "/v1/executions"
		exec1  = "/v1/executions/{id}"
		resume = "/v1/executions/{id}/resume"
		cancel = "/v1/executions/{id}/cancel"
	)
	check("/v1/openapi.json", "GET", "/v1/openapi.json", "", nil, 200)
	check(execs, "POST", execs+"?wait=60s", `{"workflow": "hello", "input": {"name": "Ada"}, "id": "h1", "labels": {"team": "a"}}`, nil, 201)
	check(execs, "POST", execs, `{"workflow": "hello", "input": {"name": "Ada"}, "id": "h1", "labels": {"team": "a"}}`, nil, 200)
	check(execs, "POST", execs, `{"workflow": "hello", "input": {"name": "Bob"}, "id": "h1"}`, nil, 409)
	check(execs, "POST", execs, `{"workflow": "hello", "input": {}}`, nil, 400)
	check(execs, "POST", execs, `{"workflow": "nosuch"}`, nil, 404)
	check(execs, "POST", execs, `{"workflow": "hello"`, []string{"Content-Type", "text/plain"}, 415)
	check(execs, "POST", execs, `{"workflow": "hello", "input": {"name": "`+strings.Repeat("x", int(h.srv.cfg.MaxBody))+`"}}`, nil, 413)
	check(execs, "POST", execs+"?wait=60s", `{"workflow": "approval", "id": "a1"}`, nil, 201)
	h.srv.backlog.Store(int64(h.srv.cfg.MaxBacklog) + 1) // as a read of the gauges would (TestMaxBacklog)
	check(execs, "POST", execs, `{"workflow": "hello", "input": {"name": "Ada"}}`, nil, 503)
	h.srv.backlog.Store(0)
	check(execs, "GET", execs+"?limit=1", "", nil, 200)
	check(execs, "GET", execs+"?state=nonsense", "", nil, 400)
	check(exec1, "GET", "/v1/executions/h1", "", nil, 200)
	check(exec1, "GET", "/v1/executions/nosuch", "", nil, 404)
	check("/v1/executions/{id}/events", "GET", "/v1/executions/h1/events?limit=2", "", nil, 200)
	check("/v1/executions/{id}/events", "GET", "/v1/executions/nosuch/events", "", nil, 404)
	check("/v1/executions/{id}/definition", "GET", "/v1/executions/h1/definition", "", nil, 200)
	check("/v1/executions/{id}/definition", "GET", "/v1/executions/nosuch/definition", "", nil, 404)
	check("/v1/pauses", "GET", "/v1/pauses", "", nil, 200)
	check("/v1/workers", "GET", "/v1/workers", "", nil, 200)
	check("/v1/workers", "GET", "/v1/workers?limit=1", "", nil, 400)
	check("/v1/pauses", "GET", "/v1/pauses?limit=x", "", nil, 400)
	check(resume, "POST", "/v1/executions/a1/resume", `{"payload": {"approved": "yes"}}`, nil, 400)
	check(resume, "POST", "/v1/executions/a1/resume?wait=60s", `{"payload": {"approved": true}}`, nil, 200)
	check(resume, "POST", "/v1/executions/h1/resume", `{"payload": 1}`, nil, 409)
	check(resume, "POST", "/v1/executions/nosuch/resume", `{"payload": 1}`, nil, 404)
	check(resume, "POST", "/v1/executions/a1/resume", `{"payload": 1, "extra": 2}`, nil, 400)
	check(resume, "POST", "/v1/executions/a1/resume", `{"payload": "`+strings.Repeat("x", int(h.srv.cfg.MaxBody))+`"}`, nil, 413)
	check(resume, "POST", "/v1/executions/a1/resume", `1`, []string{"Content-Type", "text/plain"}, 415)
	check(execs, "POST", execs+"?wait=60s", `{"workflow": "longnap", "id": "n1"}`, nil, 201)
	check(cancel, "POST", "/v1/executions/n1/cancel", "", nil, 202)
	for st, _, rec := h.do("GET", "/v1/executions/n1?wait=60s&until=finished", ""); st != 200 || rec["state"] != "CANCELLED"; st, _, rec = h.do("GET", "/v1/executions/n1?wait=60s&until=finished", "") {
		if st != 200 {
			t.Fatalf("GET n1: %d %v", st, rec)
		}
	}
	check(cancel, "POST", "/v1/executions/n1/cancel", "", nil, 200)
	check(cancel, "POST", "/v1/executions/h1/cancel", "", nil, 409)
	check(cancel, "POST", "/v1/executions/nosuch/cancel", "", nil, 404)
	rerun := "/v1/executions/{id}/rerun"
	check(rerun, "POST", "/v1/executions/n1/rerun", `{"id": "n2"}`, nil, 201)
	check(rerun, "POST", "/v1/executions/n1/rerun?wait=60s", `{"from": "nap", "input": null}`, nil, 201)
	check(rerun, "POST", "/v1/executions/n1/rerun", `{"from": "nosuch"}`, nil, 400)
	check(rerun, "POST", "/v1/executions/h1/rerun", "", nil, 409)
	check(rerun, "POST", "/v1/executions/n1/rerun", `{"id": "n2"}`, nil, 200)
	check(rerun, "POST", "/v1/executions/n1/rerun", `{"id": "h1"}`, nil, 409)
	check(rerun, "POST", "/v1/executions/nosuch/rerun", "", nil, 404)
	check(rerun, "POST", "/v1/executions/n1/rerun", `{"input": "`+strings.Repeat("x", int(h.srv.cfg.MaxBody))+`"}`, nil, 413)
	check(rerun, "POST", "/v1/executions/n1/rerun", `{}`, []string{"Content-Type", "text/plain"}, 415)
	if sch := check("/v1/schedules", "GET", "/v1/schedules?next=3", "", nil, 200); len(fmt.Sprint(sch["schedules"])) < 10 {
		t.Errorf("GET /v1/schedules lists no schedule: %v", sch)
	}
	check("/v1/schedules", "GET", "/v1/schedules?next=x", "", nil, 400)
	check("/v1/workflows", "GET", "/v1/workflows", "", nil, 200)
	check("/v1/workflows/{name}", "GET", "/v1/workflows/hello", "", nil, 200)
	check("/v1/workflows/{name}", "GET", "/v1/workflows/nosuch", "", nil, 404)

	// Every status the description promises for these routes, apart from
	// the token ones (TestTokens), was seen.
	for path, ops := range doc.Paths {
		for method, op := range ops {
			for status := range op.Responses {
				if status == "401" || status == "403" {
					continue
				}
				if k := fmt.Sprintf("%s %s %s", method, path, status); !seen[k] {
					t.Errorf("the test provoked no %s", k)
				}
			}
		}
	}
}

// withSchedule adds a scheduled workflow to the harness's catalog, so that
// GET /v1/schedules has one to describe. The time starts at 08:30 UTC, far
// from its 03:00 slot, so that it fires nothing.
func withSchedule(t *testing.T) harnessOpt {
	return func(c *Config) {
		src, err := os.ReadFile("testdata/catalog.yaml")
		if err != nil {
			t.Fatal(err)
		}
		src = append(src, "\n---\nname: nightly\nschedule: {every: 24h}\nsteps:\n  - id: a\n    task: echo\n    with: x\n"...)
		cat, err := definition.Parse("catalog.yaml", src, definition.WithTasks(c.Tasks.(definition.Tasks)))
		if err != nil {
			t.Fatal(err)
		}
		c.Catalog = cat
		c.Clock = clock.NewFake(time.Date(2026, 11, 29, 8, 30, 0, 0, time.UTC))
	}
}
