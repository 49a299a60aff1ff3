package examples_test

// Tests of the flows Flux's own examples show.

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"
)

func testHelloWorld(t *testing.T) {
	c := newCLI(t)

	// A missing input is refused before anything is written.
	r := c.loom("run", "examples/hello_world.yaml")
	r.exit(t, 2)
	r.oneLineErr(t, "loom run: invalid input: the input does not match the input schema of hello_world: ")
	if _, err := os.Stat(c.db); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused input created the journal (%v)", err)
	}
	for _, in := range []string{`{}`, `{"name": ""}`, `{"name": 7}`, `{"name": "World", "extra": 1}`} {
		r = c.loom("run", "examples/hello_world.yaml", "--input", in)
		r.exit(t, 2)
		r.oneLineErr(t, "loom run: invalid input: the input does not match the input schema of hello_world: ")
	}

	r = c.loom("run", "examples/hello_world.yaml", "--input", `{"name": "World"}`)
	r.exit(t, 0)
	r.out(t, `"Hello, World!"`)
	if l := c.list(); len(l) != 1 {
		t.Errorf("%d executions in the journal, want only the accepted one", len(l))
	}
}

func testPipeline(t *testing.T) {
	c := newCLI(t)
	r := c.loom("run", "examples/pipeline.yaml", "--input", "5", "--id", "pipe")
	r.exit(t, 0)
	r.out(t, `169`)
	outs := stepOutputs(t, c.events("pipe"))
	for path, want := range map[string]string{"multiply_by_two": "10", "add_three": "13", "square": "169"} {
		if outs[path] != want {
			t.Errorf("step %s output %s, want %s", path, outs[path], want)
		}
	}
	c.loom("run", "examples/pipeline.yaml", "--input", `"five"`).exit(t, 2)
}

func testParallel(t *testing.T) {
	c := newCLI(t)
	r := c.loom("run", "examples/parallel.yaml", "--id", "par", "--input", `{"text": "the quick brown fox"}`)
	r.exit(t, 0)
	r.out(t, `{"shout":"THE QUICK BROWN FOX","stats":{"length":19,"letters":16},"words":4}`)
	outs := stepOutputs(t, c.events("par"))
	for path, want := range map[string]string{
		"analyses/words/#0": "4",
		"analyses/shout/#0": `"THE QUICK BROWN FOX"`,
		"analyses/stats/#1": `{"length":19,"letters":16}`,
	} {
		if outs[path] != want {
			t.Errorf("step %s output %s, want %s", path, outs[path], want)
		}
	}
}

func testPausePayload(t *testing.T) {
	c := newCLI(t)
	c.loom("run", "examples/pause_payload.yaml", "--id", "q1", "--input", `{"item": "keyboard", "price": 80}`).exit(t, 3)

	// Out of the schema's bounds: refused, still paused, nothing journaled.
	before := len(c.events("q1"))
	r := c.loom("resume", "q1", "--input", `{"percent": 60}`)
	r.exit(t, 2)
	r.oneLineErr(t, "loom resume: ")
	if rec := c.status("q1"); rec.State != "PAUSED" {
		t.Errorf("after a refused payload: %s", rec.State)
	}
	if after := len(c.events("q1")); after != before {
		t.Errorf("a refused payload journaled %d events", after-before)
	}

	r = c.loom("resume", "q1", "--input", `{"percent": 25}`)
	r.exit(t, 0)
	r.out(t, `{"discount":25,"item":"keyboard","price":80,"total":60}`)

	c.loom("run", "examples/pause_payload.yaml", "--id", "q2", "--input", `{"item": "desk", "price": 199.5}`).exit(t, 3)
	r = c.loom("resume", "q2", "--input", `{"percent": 10}`)
	r.exit(t, 0)
	r.out(t, `{"discount":10,"item":"desk","price":199.5,"total":179.55}`)
}

func testConditionalPause(t *testing.T) {
	c := newCLI(t)
	r := c.loom("run", "examples/conditional_pause.yaml", "--id", "small", "--input", `{"employee": "ada", "amount": 120}`)
	r.exit(t, 0)
	r.out(t, `{"amount":120,"employee":"ada","status":"auto-approved"}`)
	for _, ev := range c.events("small") {
		if ev.Kind == "pause.opened" {
			t.Errorf("a claim under the limit opened a pause at %s", ev.Path)
		}
	}

	r = c.loom("run", "examples/conditional_pause.yaml", "--id", "big", "--input", `{"employee": "ada", "amount": 5000}`)
	r.exit(t, 3)
	if rec := c.status("big"); rec.pauses() != "approval (manager_approval)" {
		t.Fatalf("pauses %s", rec.pauses())
	}
	r = c.loom("resume", "big", "--input", `{"approved": true}`)
	r.exit(t, 0)
	r.out(t, `{"amount":5000,"employee":"ada","status":"approved by a manager"}`)

	c.loom("run", "examples/conditional_pause.yaml", "--id", "bob", "--input", `{"employee": "bob", "amount": 5000}`).exit(t, 3)
	r = c.loom("resume", "bob", "--input", `{"approved": false}`)
	r.exit(t, 1)
	if rec := c.status("bob"); rec.errorOf() != "Rejected|the claim of bob for 5000 was rejected|null|#2" {
		t.Errorf("error %s", rec.errorOf())
	}
}

func testRetryFallback(t *testing.T) {
	c := newCLI(t)
	r := c.loom("run", "examples/retry_fallback.yaml", "--id", "oslo", "--input", `{"city": "Oslo"}`)
	r.exit(t, 0)
	r.out(t, `{"city":"Oslo","forecast":"rain","source":"service"}`)
	if n := c.count("exec"); n != 1 {
		t.Errorf("the service was called %d times for a city it knows, want 1", n)
	}

	r = c.loom("run", "examples/retry_fallback.yaml", "--id", "atlantis", "--input", `{"city": "Atlantis"}`)
	r.exit(t, 0)
	r.out(t, `{"city":"Atlantis","forecast":"unknown","reason":"Unavailable: the weather service has no forecast for Atlantis","source":"fallback"}`)
	if n := c.count("exec"); n != 1+3 {
		t.Errorf("the service was called %d times for Atlantis, want 3", n-1)
	}
	evs := c.events("atlantis")
	equal(t, "the failed attempts", strings.Join(paths(evs, "step.failed"), " "), "forecast forecast@2 forecast@3")
}

func testSaga(t *testing.T) {
	c := newCLI(t)
	r := c.loom("run", "examples/saga.yaml", "--input", `{"traveller": "ada", "city": "Porto"}`)
	r.exit(t, 0)
	r.out(t, `{"car":"CR-ada-Porto","flight":"FL-ada-Porto","hotel":"HT-ada-Porto"}`)
	if strings.Contains(r.stderr, "cancel") {
		t.Errorf("a successful booking ran compensations:\n%s", r.stderr)
	}

	r = c.loom("run", "examples/saga.yaml", "--id", "lisbon", "--input", `{"traveller": "ada", "city": "Lisbon"}`)
	r.exit(t, 1)
	r.noStdout(t)
	var comps []string
	for _, line := range strings.Split(r.stderr, "\n") {
		if strings.HasPrefix(line, "[warn] ") {
			comps = append(comps, line)
		}
	}
	equal(t, "the compensations, in order", comps, []string{"[warn] cancel hotel HT-ada-Lisbon", "[warn] cancel flight FL-ada-Lisbon"})
	r.errContains(t, "execution lisbon of trip_booking failed: NoCarsLeft at step car: no car is left in Lisbon")
	rec := c.status("lisbon")
	if rec.State != "FAILED" || rec.errorOf() != `NoCarsLeft|no car is left in Lisbon|{"city":"Lisbon"}|car` {
		t.Errorf("state %s, error %s", rec.State, rec.errorOf())
	}
	if n := c.count("log"); n != 2 {
		t.Errorf("%d compensations ran, want 2", n)
	}
}

func testTimeout(t *testing.T) {
	c := newCLI(t)
	r := c.loom("run", "examples/timeout.yaml", "--input", `{"seconds": 0}`)
	r.exit(t, 0)
	r.out(t, `{"complete":true,"rows":42}`)

	start := time.Now()
	r = c.loom("run", "examples/timeout.yaml", "--id", "slow", "--input", `{"seconds": 30}`)
	took := time.Since(start)
	r.exit(t, 0)
	r.out(t, `{"complete":false,"note":"task exec timed out after 2s","rows":0}`)
	if took > 15*time.Second {
		t.Errorf("the run took %s: the command was not killed at its timeout", took)
	}
	evs := c.events("slow")
	equal(t, "the failed step", strings.Join(paths(evs, "step.failed"), " "), "report/try/#0")
}

func testSleep(t *testing.T) {
	c := newCLI(t)
	r := c.loom("run", "examples/sleep.yaml", "--no-wait", "--id", "nap", "--json")
	r.exit(t, 3)
	rec := decode[record](t, r)
	if rec.State != "WAITING" {
		t.Fatalf("run --no-wait: state %s, want WAITING", rec.State)
	}
	r = c.loom("status", "nap")
	r.exit(t, 0)
	if !strings.Contains(r.stdout, "WAITING") || !strings.Contains(r.stdout, "wakes") {
		t.Errorf("status of a waiting execution:\n%s", r.stdout)
	}
	var timers int
	for _, ev := range c.events("nap") {
		if ev.Kind == "timer.set" {
			timers++
		}
	}
	if timers != 1 {
		t.Errorf("%d timers journaled, want 1", timers)
	}

	// resume waits for what is left of the timer, then goes on.
	r = c.loom("resume", "nap")
	r.exit(t, 0)
	r.out(t, `{"slept_long_enough":true}`)

	// run waits the timers out itself.
	r = c.loom("run", "examples/sleep.yaml")
	r.exit(t, 0)
	r.out(t, `{"slept_long_enough":true}`)

	// resume --due (for cron) continues what is due, and only that.
	c.loom("run", "examples/sleep.yaml", "--no-wait", "--id", "cron").exit(t, 3)
	r = c.loom("resume", "--due")
	r.exit(t, 0)
	if rec := c.status("cron"); rec.State != "WAITING" {
		t.Fatalf("resume --due continued a timer not yet due: %s", rec.State)
	}
	var wake struct {
		WakeAt time.Time `json:"wake_at"`
	}
	r = c.loom("status", "cron", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &wake); err != nil || wake.WakeAt.IsZero() {
		t.Fatalf("status --json of a waiting execution has no wake_at: %v\n%s", err, r)
	}
	r = c.loomAt(wake.WakeAt, "resume", "--due")
	r.exit(t, 0)
	// Only the first timer was due: the second is left for the next run,
	// not waited for (#8, defect 5).
	if rec := c.status("cron"); rec.State != "WAITING" {
		t.Fatalf("after the first resume --due: %s", rec.State)
	}
	r = c.loom("status", "cron", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &wake); err != nil || wake.WakeAt.IsZero() {
		t.Fatalf("status --json: %v\n%s", err, r)
	}
	r = c.loomAt(wake.WakeAt, "resume", "--due")
	r.exit(t, 0)
	if rec := c.status("cron"); rec.State != "COMPLETED" {
		t.Errorf("after resume --due: %s", rec.State)
	} else {
		equal(t, "the output", rec.Output, map[string]any{"slept_long_enough": true})
	}
}

// Several pauses open at once, in map items, resumed by path in any order.
func testMapPauses(t *testing.T) {
	c := newCLI(t)
	r := c.loom("run", "examples/map_pauses.yaml", "--id", "docs", "--input", `{"docs": ["spec.md", "plan.md", "faq.md"]}`)
	r.exit(t, 3)
	r.errContains(t, "--pause 'reviews[0]/review'", "--pause 'reviews[2]/review'")
	if rec := c.status("docs"); rec.pauses() != "reviews[0]/review (review), reviews[1]/review (review), reviews[2]/review (review)" {
		t.Fatalf("pauses %s", rec.pauses())
	}

	// Which pause? Refused, nothing done.
	r = c.loom("resume", "docs", "--input", `{"approved": true}`)
	r.exit(t, 2)
	r.oneLineErr(t, "loom resume: ")
	r = c.loom("resume", "docs", "--pause", "review", "--input", `{"approved": true}`)
	r.exit(t, 2)
	r.oneLineErr(t, "loom resume: ")

	r = c.loom("resume", "docs", "--pause", "reviews[1]/review", "--input", `{"approved": false}`)
	r.exit(t, 3)
	if rec := c.status("docs"); rec.pauses() != "reviews[0]/review (review), reviews[2]/review (review)" {
		t.Fatalf("after the first answer: pauses %s", rec.pauses())
	}
	c.loom("resume", "docs", "--pause", "reviews[1]/review", "--input", `{"approved": true}`).exit(t, 2)
	c.loom("resume", "docs", "--pause", "reviews[0]/review", "--input", `{"approved": true}`).exit(t, 3)
	r = c.loom("resume", "docs", "--pause", "reviews[2]/review", "--input", `{"approved": true}`)
	r.exit(t, 0)
	r.out(t, `{"approved":["spec.md","faq.md"],"rejected":["plan.md"]}`)
	if n := c.count("echo"); n != 3 {
		t.Errorf("echo ran %d times, want once per document", n)
	}
}

func testPauseTimeout(t *testing.T) {
	start := func(t *testing.T, c *cliEnv, id string) time.Time {
		t.Helper()
		r := c.loom("run", "examples/pause_timeout.yaml", "--id", id)
		r.exit(t, 3)
		var rec struct {
			State  string `json:"state"`
			Pauses []struct {
				Path     string    `json:"path"`
				Deadline time.Time `json:"deadline"`
			} `json:"pauses"`
			WakeAt time.Time `json:"wake_at"`
		}
		r = c.loom("status", id, "--json")
		if err := json.Unmarshal([]byte(r.stdout), &rec); err != nil || len(rec.Pauses) != 1 {
			t.Fatalf("status --json: %v\n%s", err, r)
		}
		if rec.Pauses[0].Path != "vote/try/answer" || rec.Pauses[0].Deadline.IsZero() || !rec.WakeAt.Equal(rec.Pauses[0].Deadline) {
			t.Errorf("status --json: pause %+v, wake_at %s; want the pause at vote/try/answer with its deadline, and wake_at the same", rec.Pauses, rec.WakeAt)
		}
		return rec.Pauses[0].Deadline
	}

	t.Run("answered in time", func(t *testing.T) {
		c := newCLI(t)
		start(t, c, "v1")
		r := c.loom("resume", "v1", "--input", `{"choice": "tabs"}`)
		r.exit(t, 0)
		r.out(t, `{"by":"vote","choice":"tabs"}`)
	})

	t.Run("resume --due after the deadline", func(t *testing.T) {
		c := newCLI(t)
		deadline := start(t, c, "v2")
		c.loom("resume", "--due").exit(t, 0)
		if rec := c.status("v2"); rec.State != "PAUSED" {
			t.Fatalf("resume --due before the deadline: %s", rec.State)
		}
		c.loomAt(deadline, "resume", "--due").exit(t, 0)
		if rec := c.status("v2"); rec.State != "COMPLETED" {
			t.Errorf("resume --due after the pause's deadline left it %s (pauses %s); want COMPLETED through the catch", rec.State, rec.pauses())
		} else {
			equal(t, "the output", rec.Output, map[string]any{"by": "PauseTimeout", "choice": "spaces"})
		}
	})

	t.Run("resume ID after the deadline", func(t *testing.T) {
		c := newCLI(t)
		deadline := start(t, c, "v3")
		// A late answer is refused; resuming without one runs the catch.
		r := c.loomAt(deadline, "resume", "v3", "--input", `{"choice": "tabs"}`)
		r.exit(t, 2)
		r.oneLineErr(t, "loom resume: ")
		r.errContains(t, "timed out")
		r = c.loomAt(deadline, "resume", "v3")
		r.exit(t, 0)
		r.out(t, `{"by":"PauseTimeout","choice":"spaces"}`)
	})
}
