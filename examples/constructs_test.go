package examples_test

// Tests of the one-construct examples, and of the real-world one.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
)

func testSwitch(t *testing.T) {
	c := newCLI(t)
	for _, tc := range []struct{ priority, want, path string }{
		{"urgent", `{"page_on_call":true,"queue":"pager"}`, "route/when[0]/#0"},
		{"high", `{"page_on_call":false,"queue":"support"}`, "route/when[1]/#0"},
		{"normal", `{"page_on_call":false,"queue":"support"}`, "route/when[1]/#0"},
		{"low", `{"page_on_call":false,"queue":"backlog"}`, "route/default/#0"},
	} {
		r := c.loom("run", "examples/switch.yaml", "--id", tc.priority, "--input", fmt.Sprintf(`{"priority": %q}`, tc.priority))
		r.exit(t, 0)
		r.out(t, tc.want)
		if outs := stepOutputs(t, c.events(tc.priority)); outs[tc.path] != tc.want {
			t.Errorf("%s: step %s output %q, want %s", tc.priority, tc.path, outs[tc.path], tc.want)
		}
	}
	c.loom("run", "examples/switch.yaml", "--input", `{"priority": "whenever"}`).exit(t, 2)
}

func testForEach(t *testing.T) {
	c := newCLI(t)
	r := c.loom("run", "examples/for_each.yaml", "--id", "inv", "--input",
		`{"lines": [{"sku": "pen", "qty": 3, "price": 2}, {"sku": "ink", "qty": 1, "price": 7}]}`)
	r.exit(t, 0)
	r.out(t, `{"lines":[{"amount":6,"position":1,"sku":"pen"},{"amount":7,"position":2,"sku":"ink"}],"total":13}`)
	outs := stepOutputs(t, c.events("inv"))
	if outs["priced[1]/#0"] != `{"amount":7,"position":2,"sku":"ink"}` {
		t.Errorf("iteration 1: %s", outs["priced[1]/#0"])
	}

	r = c.loom("run", "examples/for_each.yaml", "--input", `{"lines": []}`)
	r.exit(t, 0)
	r.out(t, `{"lines":[],"total":0}`)
}

func testForWhile(t *testing.T) {
	c := newCLI(t)
	r := c.loom("run", "examples/for_while.yaml", "--input", "6")
	r.exit(t, 0)
	r.out(t, `{"path":[6,3,10,5,16,8,4,2,1],"steps":8}`)

	r = c.loom("run", "examples/for_while.yaml", "--input", "1")
	r.exit(t, 0)
	r.out(t, `{"path":[1],"steps":0}`)

	r = c.loom("run", "examples/for_while.yaml", "--id", "c27", "--input", "27")
	r.exit(t, 1)
	r.noStdout(t)
	r.errContains(t, "failed: LimitExceeded at step loop")
	if rec := c.status("c27"); rec.Error == nil || rec.Error.Type != "LimitExceeded" || rec.Error.Step != "loop" {
		t.Errorf("error %s", rec.errorOf())
	} else {
		equal(t, "the error's data", rec.Error.Data, map[string]any{"max_iterations": 100})
	}
}

func testTryCatch(t *testing.T) {
	c := newCLI(t)
	r := c.loom("run", "examples/try_catch.yaml", "--input", `{"a": 10, "b": 4}`)
	r.exit(t, 0)
	r.out(t, `2.5`)
	r.errContains(t, "[info] division of 10 by 4 finished\n")

	r = c.loom("run", "examples/try_catch.yaml", "--input", `{"a": 10, "b": 0}`)
	r.exit(t, 0)
	r.out(t, `{"error":"DivisionByZero","message":"cannot divide 10 by zero","step":"result/try/#0"}`)
	r.errContains(t, "[info] division of 10 by 0 finished\n")
}

func testRaise(t *testing.T) {
	c := newCLI(t)
	r := c.loom("run", "examples/raise.yaml", "--input", `{"name": "ada", "age": 36}`)
	r.exit(t, 0)
	r.out(t, `"ada may enter"`)

	r = c.loom("run", "examples/raise.yaml", "--input", `{"name": "tim", "age": 15}`, "--json")
	r.exit(t, 1)
	rec := decode[record](t, r)
	if rec.State != "FAILED" || rec.errorOf() != `Underage|tim is 15; the minimum age is 18|{"age":15,"minimum":18,"name":"tim"}|check` {
		t.Errorf("state %s, error %s", rec.State, rec.errorOf())
	}
	if rec.Output != nil || rec.Workflow != "age_check" {
		t.Errorf("record %+v", rec)
	}
	r.errContains(t, "of age_check failed: Underage at step check: tim is 15; the minimum age is 18")
}

func testReturn(t *testing.T) {
	t.Run("hit", func(t *testing.T) {
		c := newCLI(t)
		r := c.loom("run", "examples/return.yaml", "--input", `{"key": "loom", "cache": {"loom": 4}}`)
		r.exit(t, 0)
		r.out(t, `{"source":"cache","value":4}`)
		if n := c.count("exec"); n != 0 {
			t.Errorf("a cache hit ran the command %d times", n)
		}
	})
	t.Run("miss", func(t *testing.T) {
		c := newCLI(t)
		r := c.loom("run", "examples/return.yaml", "--input", `{"key": "loom", "cache": {"other": 5}}`)
		r.exit(t, 0)
		r.out(t, `{"source":"computed","value":4}`)
		if n := c.count("exec"); n != 1 {
			t.Errorf("a cache miss ran the command %d times, want 1", n)
		}
	})
}

func testMapTolerate(t *testing.T) {
	c := newCLI(t)
	r := c.loom("run", "examples/map_tolerate.yaml", "--input", `{"images": ["a.png", "b.gif", "c.jpg"]}`)
	r.exit(t, 0)
	r.out(t, `{"failed":1,"results":[{"thumbnail":"thumbs/a.png"},`+
		`{"error":{"data":null,"message":"cannot resize b.gif","step":"thumbnails[1]","type":"UnsupportedFormat"}},`+
		`{"thumbnail":"thumbs/c.jpg"}]}`)

	r = c.loom("run", "examples/map_tolerate.yaml", "--id", "bad", "--input", `{"images": ["a.bmp", "b.gif", "c.jpg"]}`)
	r.exit(t, 1)
	rec := c.status("bad")
	if rec.Error == nil || rec.Error.Type != "MapFailed" || rec.Error.Step != "thumbnails" {
		t.Fatalf("error %s, want MapFailed at thumbnails", rec.errorOf())
	}
	data, _ := rec.Error.Data.(map[string]any)
	if data["failed"] != 2.0 || data["total"] != 3.0 {
		t.Errorf("MapFailed data %v, want failed 2 of total 3", rec.Error.Data)
	}
}

func testOutput(t *testing.T) {
	c := newCLI(t)
	r := c.loom("run", "examples/output.yaml", "--input", `{"first": "grace", "last": "hopper", "emails": ["gh@navy.mil", "grace@example.org"]}`)
	r.exit(t, 0)
	r.out(t, `{"built_by":"user_profile","email_count":2,"initials":"GH","name":"grace hopper","primary_email":"gh@navy.mil","schema":1,"tags":["profile","v2"]}`)
	r.errContains(t, "[info] built the profile of grace\n")
}

func testIf(t *testing.T) {
	c := newCLI(t)
	for _, tc := range []struct{ in, want string }{
		{`{"weight_kg": 2, "express": false, "country": "NL"}`, `{"cost":9,"customs":false,"express":false}`},
		{`{"weight_kg": 2, "express": true, "country": "NL"}`, `{"cost":19,"customs":false,"express":true}`},
		{`{"weight_kg": 2, "express": false, "country": "US"}`, `{"cost":24,"customs":true,"express":false}`},
		{`{"weight_kg": 2, "express": true, "country": "US"}`, `{"cost":34,"customs":true,"express":true}`},
		{`{"weight_kg": 0.5, "express": false, "country": "NL"}`, `{"cost":6,"customs":false,"express":false}`},
	} {
		r := c.loom("run", "examples/if.yaml", "--input", tc.in)
		r.exit(t, 0)
		r.out(t, tc.want)
	}
}

// deployService is a fake deployment service for deploy_approval.yaml. It
// records every request.
type deployService struct {
	mu       sync.Mutex
	build    string // the status GET /builds/… answers
	requests []string
	keys     map[string]bool
	t        *testing.T
}

func (s *deployService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	line := r.Method + " " + r.URL.Path
	if len(body) > 0 {
		line += " " + string(body)
	}
	s.requests = append(s.requests, line)
	if k := r.Header.Get("Idempotency-Key"); k == "" || s.keys[k] {
		s.t.Errorf("%s: Idempotency-Key %q is missing or used twice", line, k)
	} else {
		s.keys[k] = true
	}
	s.mu.Unlock()

	var in map[string]any
	_ = json.Unmarshal(body, &in)
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	p := r.URL.Path
	switch {
	case r.Method == "GET" && strings.HasPrefix(p, "/builds/"):
		reply(200, map[string]any{"status": s.build})
	case r.Method == "POST" && p == "/deployments":
		reply(201, map[string]any{"id": fmt.Sprintf("dep-%s-%s", in["service"], in["region"]), "region": in["region"], "state": "canary"})
	case r.Method == "POST" && strings.HasPrefix(p, "/deployments/") && strings.HasSuffix(p, "/promote"):
		id := strings.TrimSuffix(strings.TrimPrefix(p, "/deployments/"), "/promote")
		reply(200, map[string]any{"id": id, "state": "live"})
	case r.Method == "POST" && p == "/rollbacks":
		reply(200, map[string]any{"rolled_back": in["deployments"]})
	case r.Method == "POST" && p == "/notifications":
		reply(200, map[string]any{"ok": true})
	default:
		reply(404, map[string]any{"message": "no route"})
	}
}

// calls returns the recorded requests, sorted (concurrent map items reach
// the service in any order).
func (s *deployService) calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]string(nil), s.requests...)
	sort.Strings(out)
	return out
}

func testDeployApproval(t *testing.T) {
	start := func(t *testing.T, build string) (*cliEnv, *deployService, string) {
		svc := &deployService{build: build, keys: map[string]bool{}, t: t}
		srv := httptest.NewServer(svc)
		t.Cleanup(srv.Close)
		in := fmt.Sprintf(`{"service": "checkout", "version": "1.4.2", "regions": ["eu-west-1", "us-east-1"], "api": %q}`, srv.URL)
		return newCLI(t), svc, in
	}
	staged := []string{
		`GET /builds/checkout/1.4.2`,
		`POST /deployments {"region":"eu-west-1","service":"checkout","stage":"canary","version":"1.4.2"}`,
		`POST /deployments {"region":"us-east-1","service":"checkout","stage":"canary","version":"1.4.2"}`,
	}

	t.Run("approved", func(t *testing.T) {
		c, svc, in := start(t, "passed")
		r := c.loom("run", "examples/deploy_approval.yaml", "--id", "rel", "--input", in)
		r.exit(t, 3)
		rec := c.status("rel")
		if rec.pauses() != "decision (release_manager)" {
			t.Fatalf("pauses %s", rec.pauses())
		}
		equal(t, "requests before the pause", svc.calls(), staged)

		c.loom("resume", "rel", "--input", `{"approved": "yes"}`).exit(t, 2)
		r = c.loom("resume", "rel", "--input", `{"approved": true, "approver": "maria"}`)
		r.exit(t, 0)
		r.out(t, `{"approved_by":"maria","live":[{"id":"dep-checkout-eu-west-1","state":"live"},{"id":"dep-checkout-us-east-1","state":"live"}],"service":"checkout","version":"1.4.2"}`)
		equal(t, "requests", svc.calls(), append(append([]string(nil), staged...),
			`POST /deployments/dep-checkout-eu-west-1/promote`,
			`POST /deployments/dep-checkout-us-east-1/promote`,
			`POST /notifications {"text":"checkout 1.4.2 is live in 2 regions, approved by maria"}`,
		))
	})

	t.Run("rejected", func(t *testing.T) {
		c, svc, in := start(t, "passed")
		c.loom("run", "examples/deploy_approval.yaml", "--id", "rel", "--input", in).exit(t, 3)
		r := c.loom("resume", "rel", "--input", `{"approved": false, "approver": "maria", "reason": "error rate"}`)
		r.exit(t, 1)
		r.noStdout(t)
		if rec := c.status("rel"); rec.errorOf() != "Rejected|checkout 1.4.2 was rejected by maria: error rate|null|#4" {
			t.Errorf("error %s", rec.errorOf())
		}
		equal(t, "requests", svc.calls(), append(append([]string(nil), staged...),
			`POST /rollbacks {"deployments":["dep-checkout-eu-west-1","dep-checkout-us-east-1"],"service":"checkout"}`,
		))
	})

	t.Run("cancelled", func(t *testing.T) {
		c, svc, in := start(t, "passed")
		c.loom("run", "examples/deploy_approval.yaml", "--id", "rel", "--input", in).exit(t, 3)
		r := c.loom("cancel", "rel")
		r.exit(t, 0)
		r.errContains(t, "execution rel is CANCELLED")
		if rec := c.status("rel"); rec.State != "CANCELLED" || len(rec.Pauses) != 0 {
			t.Errorf("state %s, pauses %s", rec.State, rec.pauses())
		}
		equal(t, "requests", svc.calls(), append(append([]string(nil), staged...),
			`POST /rollbacks {"deployments":["dep-checkout-eu-west-1","dep-checkout-us-east-1"],"service":"checkout"}`,
		))
		c.loom("cancel", "rel").exit(t, 2)
		c.loom("resume", "rel", "--input", `{"approved": true, "approver": "maria"}`).exit(t, 2)
	})

	t.Run("build not ready", func(t *testing.T) {
		c, svc, in := start(t, "running")
		r := c.loom("run", "examples/deploy_approval.yaml", "--id", "rel", "--input", in)
		r.exit(t, 1)
		if rec := c.status("rel"); rec.errorOf() != "BuildNotReady|build checkout 1.4.2 is running|null|#1" {
			t.Errorf("error %s", rec.errorOf())
		}
		equal(t, "requests", svc.calls(), staged[:1])
	})
}
