package console_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/console"
	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal/sqlite"
	"github.com/loomwork/loom/server"
)

// chromium finds the browser: $LOOM_CHROMIUM, else Debian's chromium.
func chromium(t *testing.T) string {
	for _, p := range []string{os.Getenv("LOOM_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Skip("no chromium binary (install Debian's chromium package, or set LOOM_CHROMIUM): the console's browser tests need a real browser")
	return ""
}

// shotDir is where the tests write screenshots of each page:
// $LOOM_SCREENSHOTS, else a temporary folder the test names in its log.
var (
	shotOnce sync.Once
	shotPath string
)

func shotDir(t *testing.T) string {
	shotOnce.Do(func() {
		shotPath = os.Getenv("LOOM_SCREENSHOTS")
		if shotPath == "" {
			shotPath = filepath.Join(os.TempDir(), fmt.Sprintf("loom-console-screenshots-%d", os.Getpid()))
		}
		if err := os.MkdirAll(shotPath, 0o755); err != nil {
			t.Fatal(err)
		}
	})
	return shotPath
}

// flaky fails the first attempt of every fourth item (0, 4, 8): a map
// with retries to draw.
func flakyTask() func(ctx context.Context, n int) (map[string]int, error) {
	var mu sync.Mutex
	seen := map[int]bool{}
	return func(ctx context.Context, n int) (map[string]int, error) {
		mu.Lock()
		defer mu.Unlock()
		if n%4 == 0 && !seen[n] {
			seen[n] = true
			return nil, interpreter.Errorf("Flaky", "item %d failed once", n)
		}
		return map[string]int{"item": n}, nil
	}
}

// env is a loom serve (the server package with the console mounted) on
// a SQLite journal, behind httptest.
type env struct {
	url string
	db  string // the SQLite file
}

// token names: a token file line per role, the raw tokens by role.
var tokens = map[string]string{"operate": "tok-operate-0123456789", "read": "tok-read-0123456789"}

func newEnv(t *testing.T, withTokens bool) *env {
	t.Helper()
	reg := interpreter.NewRegistry(builtins.Standard())
	interpreter.Register(reg, "flaky", flakyTask())
	cat, err := definition.Load("testdata/e2e.yaml", definition.WithTasks(reg))
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "loom.db")
	j, err := sqlite.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{Catalog: cat, Tasks: reg, Journal: j, Concurrency: 8}
	copts := console.Options{}
	if withTokens {
		file := filepath.Join(t.TempDir(), "tokens")
		var lines []string
		for role, tok := range tokens {
			sum := sha256.Sum256([]byte(tok))
			lines = append(lines, role+"-person "+role+" "+hex.EncodeToString(sum[:]))
		}
		if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		toks, err := server.LoadTokens(file)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Tokens = toks
		copts.Tokens = toks
	}
	con := console.New(copts)
	cfg.Mount = con.Handler()
	if withTokens {
		cfg.Sessions = con
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		hs.Close()
		srv.Close()
		j.Close()
	})
	return &env{url: hs.URL, db: db}
}

// api calls /v1 as a client would (for setting up, and for checking what
// the server refuses); token "" sends none.
func (e *env) api(t *testing.T, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// waitState long-polls the API until the execution leaves RUNNING.
func (e *env) waitState(t *testing.T, id, token, want string) map[string]any {
	t.Helper()
	for i := 0; i < 20; i++ {
		_, rec := e.api(t, "GET", "/v1/executions/"+id+"?wait=5s", token, "")
		if rec["state"] == want {
			return rec
		}
	}
	t.Fatalf("execution %s never reached %s", id, want)
	return nil
}

// browser is one headless Chromium with a fresh profile. Any dialog a
// page opens (an alert from injected markup) fails the test, and so does
// any exception the page's scripts throw.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	mu   sync.Mutex
	bad  []string
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	path := chromium(t)
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.NoFirstRun, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900)}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	// A safety net for a wedged browser, generous for a loaded CI machine.
	ctx, cancelC := context.WithTimeout(ctx, 8*time.Minute)
	t.Cleanup(func() { cancelC(); cancelB(); cancelA() })
	b := &browser{t: t, ctx: ctx, base: base}
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.fail("a dialog opened: " + ev.Message)
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			if m.IsException() {
				b.fail("page exception: " + m.String())
			}
		}
	}()
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, s := range b.bad {
			t.Error(s)
		}
	})
	return b
}

func (b *browser) fail(s string) {
	b.mu.Lock()
	b.bad = append(b.bad, s)
	b.mu.Unlock()
}

func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatal(err)
	}
}

func (b *browser) open(path string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.base + path))
}

// waitJS waits until a JavaScript condition holds (the page settles
// through network answers, not timers, so the test polls the DOM).
func (b *browser) waitJS(what, cond string) {
	b.t.Helper()
	// The browser re-evaluates cond on every DOM mutation (chromedp.Poll),
	// so nothing here sleeps. A navigation in between (a form that moves
	// to the new execution) ends that poll with an error; the next one
	// runs in the new page.
	deadline := time.Now().Add(20 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		var ok bool
		ok, err = chromedp.Run(b.ctx, chromedp.Poll[bool](cond, chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(time.Until(deadline))))
		if err == nil && ok {
			return
		}
		if err == nil {
			err = fmt.Errorf("still false after 20 s")
		}
	}
	if err != nil {
		b.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		body, _ := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS("main")))
		b.t.Fatalf("waiting for %s: %v\npage text:\n%s", what, err, body)
	}
}

// waitText waits until the element sel holds text.
func (b *browser) waitText(sel, text string) {
	b.t.Helper()
	sj, _ := json.Marshal(sel)
	tj, _ := json.Marshal(text)
	b.waitJS(fmt.Sprintf("%s to show %s", sel, text),
		fmt.Sprintf(`Array.from(document.querySelectorAll(%s)).some(e => e.textContent.includes(%s))`, sj, tj))
}

// fieldError is the message shown next to the field labelled label in
// form.
func (b *browser) fieldError(form, label string) string {
	b.t.Helper()
	id := strings.TrimPrefix(b.fieldByLabel(form, label), "#")
	s, _ := b.eval(fmt.Sprintf(`document.getElementById(%q).textContent`, id+"-err")).(string)
	return s
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatal(err)
	}
	return s
}

func (b *browser) eval(js string) any {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[any](js))
	if err != nil {
		b.t.Fatal(err)
	}
	return v
}

func (b *browser) shot(name string) {
	b.t.Helper()
	buf, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(shotDir(b.t), name+".png")
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		b.t.Error(err)
	}
	b.t.Logf("screenshot: %s", p)
}

// idFromLocation is the execution id of an /executions/{id} address.
func (b *browser) idFromLocation() string {
	b.t.Helper()
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	_, id, ok := strings.Cut(loc, "/executions/")
	if !ok {
		b.t.Fatalf("not on an execution page: %s", loc)
	}
	return id
}

// fieldByLabel is the CSS selector of the control a label names.
func (b *browser) fieldByLabel(scope, label string) string {
	b.t.Helper()
	sj, _ := json.Marshal(scope)
	lj, _ := json.Marshal(label)
	id, _ := b.eval(fmt.Sprintf(`(() => { const l = Array.from(document.querySelectorAll(%s + ' label')).find(l => l.firstChild && l.firstChild.textContent.trim() === %s); return l ? l.htmlFor : ''; })()`, sj, lj)).(string)
	if id == "" {
		b.shot("no-field-" + label)
		b.t.Fatalf("no field labelled %q in %s", label, scope)
	}
	return "#" + id
}

const xss = `<img src=x onerror=alert(1)>`

// TestConsoleFlow is the path of a person through the console with no
// token file: start from the form, find the pause in the inbox, a refused
// payload, a valid one that completes live, a failed execution, a map
// with retries, a cancel; values that look like markup stay text.
func TestConsoleFlow(t *testing.T) {
	e := newEnv(t, false)
	b := newBrowser(t, e.url)

	// The executions list, empty, says there is no authentication.
	b.open("/")
	b.waitText("#banner", "No authentication")
	b.waitText("main", "No executions match")

	// Start from the workflow's form, with markup in the input. An input
	// the schema refuses first: the API's details put the schema's
	// message next to the field it names.
	b.open("/workflows/approval")
	b.waitText("h1", "approval")
	b.do(chromedp.SendKeys(chromedp.CSS(b.fieldByLabel(".start-form", "order_id")), xss),
		chromedp.SendKeys(chromedp.CSS(b.fieldByLabel(".start-form", "amount")), "-1"))
	b.do(chromedp.Click(chromedp.CSS(".start-form button[type=submit]")))
	b.waitText(".start-form .field-error", "must be >= 0")
	if s := b.fieldError(".start-form", "amount"); s != "must be >= 0 but found -1" {
		t.Errorf("amount's message is %q; want the schema's, from the API's details", s)
	}
	b.do(chromedp.SetValue(chromedp.CSS(b.fieldByLabel(".start-form", "amount")), "12"))
	b.shot("workflow")
	b.do(chromedp.Click(chromedp.CSS(".start-form button[type=submit]")))
	b.waitJS("the execution page", `location.pathname.startsWith('/executions/')`)
	id := b.idFromLocation()
	b.waitText(".status-line", "PAUSED")
	b.waitText("#resume h3", "approve")
	if got := b.text(".value"); !strings.Contains(got, `"order_id": "`+xss+`"`) {
		t.Errorf("input shown as %q", got)
	}
	if n := b.eval(`document.querySelectorAll('main img').length`); n != float64(0) {
		t.Errorf("the input became %v img element(s)", n)
	}

	// The list says the run waits for a person.
	b.open("/")
	b.waitText(fmt.Sprintf(`tr[data-id=%q] td.waiting`, id), "waits for a person: approve")
	b.shot("executions")

	// A payload the schema refuses: the engine's message next to the field.
	b.open("/executions/" + id)
	b.waitText("#resume h3", "approve")
	b.do(chromedp.Click(chromedp.CSS(b.fieldByLabel(".resume-form", "approved"))),
		chromedp.SendKeys(chromedp.CSS(b.fieldByLabel(".resume-form", "reason")), "no"))
	b.do(chromedp.Click(chromedp.CSS(".resume-form button[type=submit]")))
	b.waitText(".resume-form .field-error", "3")
	if s := b.fieldError(".resume-form", "reason"); s != "length must be >= 3, but got 2" {
		t.Errorf("reason's message is %q; want the schema's minLength message, from the API's details", s)
	}
	b.shot("resume-invalid")
	if st, rec := e.api(t, "GET", "/v1/executions/"+id, "", ""); st != 200 || rec["state"] != "PAUSED" {
		t.Fatalf("after a refused payload: %d %v", st, rec["state"])
	}

	// A valid payload: COMPLETED with its output, on the same page, live.
	b.eval(`window.__samePage = true`)
	b.do(chromedp.SendKeys(chromedp.CSS(b.fieldByLabel(".resume-form", "reason")), " way, ship"))
	b.shot("resume-form")
	b.do(chromedp.Click(chromedp.CSS(".resume-form button[type=submit]")))
	b.waitText(".status-line", "COMPLETED")
	b.waitText("#output", `"reason": "no way, ship"`)
	if b.eval(`window.__samePage === true`) != true {
		t.Error("the page reloaded to show the outcome")
	}
	b.waitJS("the graph's done steps", `document.querySelector('.node[data-path=approve]').dataset.status === 'done'`)
	b.shot("execution-completed")

	// A failed execution: the failing step stands out in the graph, and
	// its message is text, not a link.
	_, rec := e.api(t, "POST", "/v1/executions", "", `{"workflow":"failing","input":{"note":"`+strings.ReplaceAll(xss, `"`, `\"`)+`"}}`)
	fid := rec["id"].(string)
	e.waitState(t, fid, "", "FAILED")
	b.open("/executions/" + fid)
	b.waitText("#error .error-message", "javascript:alert(1)")
	b.waitJS("the failing step", `document.querySelector('.node.failing[data-path=check]') !== null`)
	if n := b.eval(`Array.from(document.querySelectorAll('main a')).filter(a => a.getAttribute('href').startsWith('javascript')).length`); n != float64(0) {
		t.Errorf("%v javascript: links on the page", n)
	}
	if s := b.text(`.node[data-path=check] .n-status`); !strings.Contains(s, "failed") || !strings.Contains(s, "failing step") {
		t.Errorf("failing node says %q", s)
	}
	b.shot("execution-failed")

	// A map with retried items: counts on the map node, its items listed.
	_, rec = e.api(t, "POST", "/v1/executions", "", `{"workflow":"fanout","input":{}}`)
	mid := rec["id"].(string)
	e.waitState(t, mid, "", "COMPLETED")
	b.open("/executions/" + mid)
	b.waitText(`.node[data-path=items] .n-status`, "12 done")
	if s := b.text(`.node[data-path=items] .n-status`); !strings.Contains(s, "12 done · 3 retried") {
		t.Errorf("map node says %q; want its 12 items done, 3 of them retried", s)
	}
	b.do(chromedp.Click(chromedp.CSS(`.node[data-path=items]`)))
	b.waitText(".items h3", "Items of items (12")
	b.waitText(".tl-row[data-path='items[4]'] .tl-info", "2 attempts")
	b.shot("execution-map-retry")

	// Cancel, with a confirmation that says what happens.
	_, rec = e.api(t, "POST", "/v1/executions", "", `{"workflow":"approval","input":{"order_id":"c-1"}}`)
	cid := rec["id"].(string)
	e.waitState(t, cid, "", "PAUSED")
	b.open("/executions/" + cid)
	b.waitText("#cancel-btn", "Cancel")
	b.do(chromedp.Click(chromedp.CSS("#cancel-btn")))
	b.waitText("dialog.confirm", "compensations will run")
	b.waitText("dialog.confirm .cancel-children", "no running child executions")
	b.shot("cancel-confirm")
	b.do(chromedp.Click(chromedp.CSS("dialog.confirm button.danger")))
	b.waitText(".status-line", "CANCELLED")
	b.shot("execution-cancelled")

	// Rerun the cancelled execution: a new one, which reuses what the old
	// one recorded and so waits at the same pause; the page goes to it.
	b.waitText("#rerun-btn", "Rerun")
	b.do(chromedp.Click(chromedp.CSS("#rerun-btn")))
	b.waitJS("the rerun's page", fmt.Sprintf(`location.pathname.startsWith('/executions/') && location.pathname !== '/executions/%s'`, cid))
	rid := b.idFromLocation()
	b.waitText(".status-line", "PAUSED")
	b.waitText("#resume h3", "approve")
	if st, rec := e.api(t, "GET", "/v1/executions/"+rid+"/events?limit=1", "", ""); st != 200 || !strings.Contains(fmt.Sprint(rec["events"]), "rerun.of") || !strings.Contains(fmt.Sprint(rec["events"]), cid) {
		t.Errorf("the rerun's journal does not begin with rerun.of %s: %d %v", cid, st, rec)
	}
	b.shot("execution-rerun")
	b.open("/executions/" + fid)
	b.waitText("#rerun-btn", "Rerun")

	// A scheduled workflow's page says when it fires next, in its zone.
	b.open("/workflows/leapday")
	b.waitText("#schedule", "0 3 29 2 *")
	next := b.eval(`Array.from(document.querySelectorAll('#schedule .next-fires time')).map(t => t.getAttribute('datetime')).join(' ')`)
	if !regexp.MustCompile(`^(20\d\d-02-29T03:00:00\+01:00 ){4}20\d\d-02-29T03:00:00\+01:00$`).MatchString(fmt.Sprint(next)) {
		t.Errorf("leapday's next fire times are %q; want five 29 Februaries at 03:00 Paris time", next)
	}
	if s := b.text("#schedule"); !strings.Contains(s, "Last slot") || !strings.Contains(s, "none yet") || !strings.Contains(s, "skip") {
		t.Errorf("the schedule section says %q", s)
	}
	b.shot("workflow-schedule")
	b.open("/workflows/approval")
	b.waitText("h1", "approval")
	if n := b.eval(`document.querySelectorAll('#schedule').length`); n != float64(0) {
		t.Errorf("a workflow with no schedule shows %v schedule sections", n)
	}

	// The list, live through the list stream (not the 5 s polling it
	// falls back to): a new execution appears without a reload.
	b.open("/")
	b.waitText("main", mid)
	b.waitText("p.live", "Updates live.")
	b.eval(`window.__samePage = true`)
	_, rec = e.api(t, "POST", "/v1/executions", "", `{"workflow":"approval","input":{"order_id":"live-1"}}`)
	b.waitJS("the new row", fmt.Sprintf(`!!document.querySelector('tr[data-id=%q]')`, rec["id"]))
	if b.eval(`window.__samePage === true`) != true {
		t.Error("the list reloaded the page")
	}
	if s := b.text("p.live"); s != "Updates live." {
		t.Errorf("the list says %q; its stream closed", s)
	}
	b.shot("executions-live")

	// The inbox, live too: a pause opened while it is shown appears, with
	// its age and no deadline.
	b.open("/pauses")
	b.waitText("p.live", "Updates live.")
	b.eval(`window.__samePage = true`)
	_, rec = e.api(t, "POST", "/v1/executions", "", `{"workflow":"approval","input":{"order_id":"live-2"}}`)
	id = rec["id"].(string)
	b.waitJS("the pause in the inbox", fmt.Sprintf(`!!document.querySelector('tr[data-execution=%q]')`, id))
	if b.eval(`window.__samePage === true`) != true {
		t.Error("the inbox reloaded the page")
	}
	row := b.text(fmt.Sprintf(`tr[data-execution=%q]`, id))
	for _, want := range []string{"approval", "approve", "no deadline"} {
		if !strings.Contains(row, want) {
			t.Errorf("inbox row %q lacks %q", row, want)
		}
	}
	b.shot("inbox")

	// A value over 64 KiB is collapsed, to be shown on request or
	// downloaded.
	_, rec = e.api(t, "POST", "/v1/executions", "", `{"workflow":"approval","input":{"order_id":"`+strings.Repeat("x", 70*1024)+`"}}`)
	big := rec["id"].(string)
	b.open("/executions/" + big)
	b.waitText(".collapsed", "This value is 70 KiB.")
	if n := b.eval(`document.querySelectorAll('.collapsed a[download][href^="blob:"]').length`); n == float64(0) {
		t.Error("the collapsed value has no download link")
	}
	b.do(chromedp.Click(chromedp.CSS(".collapsed button")))
	b.waitJS("the value shown", `(document.querySelector('.collapsed pre').textContent.match(/x/g) || []).length === 70 * 1024`)

	// Every page shows the markup input as text.
	for _, p := range []string{"/", "/pauses", "/executions/" + id, "/workflows", "/workflows/approval"} {
		b.open(p)
		b.waitJS("the page", `document.querySelector('main h1') !== null`)
		if p == "/workflows" {
			b.waitText("main", "approval")
			b.shot("workflows")
		}
		if n := b.eval(`document.querySelectorAll('main img, main script').length`); n != float64(0) {
			t.Errorf("%s: %v img/script elements", p, n)
		}
	}

	// A record the journal cannot read is named on the list, not left out
	// silently: told by the list stream to the page already shown.
	b.open("/")
	b.waitText("p.live", "Updates live.")
	b.eval(`window.__samePage = true`)
	db, err := sql.Open("sqlite3", e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE executions SET created_at = 'garbage' WHERE id = ?`, big); err != nil {
		t.Fatal(err)
	}
	b.waitText(".damaged", "The journal is damaged: 1 execution could not be read")
	if s := b.text(".damaged li"); !strings.HasPrefix(s, big+": its creation time: ") {
		t.Errorf("the damaged record is named %q", s)
	}
	if b.eval(`window.__samePage === true`) != true {
		t.Error("the list reloaded the page")
	}
	b.shot("executions-damaged")
}

// TestConsoleRoles signs in with tokens: the read role sees the pause but
// no resume button, and the server refuses its resume anyway; the operate
// role resumes.
func TestConsoleRoles(t *testing.T) {
	e := newEnv(t, true)
	st, rec := e.api(t, "POST", "/v1/executions", tokens["operate"], `{"workflow":"approval","input":{"order_id":"r-1"}}`)
	if st != 201 {
		t.Fatalf("start: %d %v", st, rec)
	}
	id := rec["id"].(string)
	e.waitState(t, id, tokens["operate"], "PAUSED")

	b := newBrowser(t, e.url)
	b.open("/")
	b.waitJS("the sign-in form", `!!document.getElementById('token')`)
	if b.eval(`document.getElementById('banner').hidden`) != true {
		t.Error("the no-authentication banner shows with tokens")
	}
	b.shot("sign-in")
	// A wrong token: the message, and no cookie.
	b.do(chromedp.SendKeys(chromedp.ID("token"), "wrong"), chromedp.Click(chromedp.CSS(".signin button")))
	b.waitText("#token-error", "not in the server's token file")
	b.eval(`document.getElementById('token').value = ''`)
	b.do(chromedp.SendKeys(chromedp.ID("token"), tokens["read"]), chromedp.Click(chromedp.CSS(".signin button")))
	b.waitText("#who", "read-person")
	if cookie := b.eval(`document.cookie`); cookie != "" {
		t.Errorf("the session cookie is visible to scripts: %v", cookie)
	}
	b.open("/executions/" + id)
	b.waitText("#resume", "cannot resume")
	if n := b.eval(`document.querySelectorAll('.resume-form, #cancel-btn').length`); n != float64(0) {
		t.Errorf("a read session sees %v resume/cancel controls", n)
	}
	b.shot("execution-read-role")
	// Nor a rerun button on a FAILED execution.
	st, rec = e.api(t, "POST", "/v1/executions", tokens["operate"], `{"workflow":"failing","input":{}}`)
	if st != 201 {
		t.Fatalf("start failing: %d %v", st, rec)
	}
	fid := rec["id"].(string)
	e.waitState(t, fid, tokens["operate"], "FAILED")
	b.open("/executions/" + fid)
	b.waitText("#error .error-message", "javascript:alert(1)")
	if n := b.eval(`document.querySelectorAll('#rerun-btn, #rerun').length`); n != float64(0) {
		t.Errorf("a read session sees %v rerun controls", n)
	}
	// The server refuses a read session's resume, CSRF token and all.
	got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](fmt.Sprintf(`(async () => {
		const s = await (await fetch('/console/session')).json();
		const r = await fetch('/v1/executions/%s/resume', {method: 'POST', headers: {'Content-Type': 'application/json', 'X-Loom-CSRF': s.csrf}, body: '{"payload":{"approved":true,"reason":"sneaky"}}'});
		return r.status + ' ' + (await r.json()).error.code;
	})()`, id), chromedp.EvalAwaitPromise))
	if err != nil || got != "403 forbidden" {
		t.Errorf("read session's resume: %q %v, want 403 forbidden", got, err)
	}
	// Without the CSRF header the cookie is not enough.
	got, err = chromedp.Run(b.ctx, chromedp.Evaluate[string](fmt.Sprintf(`(async () => {
		const r = await fetch('/v1/executions/%s/cancel', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'});
		return r.status + ' ' + (await r.json()).error.code;
	})()`, id), chromedp.EvalAwaitPromise))
	if err != nil || got != "403 csrf" {
		t.Errorf("cookie without CSRF header: %q %v, want 403 csrf", got, err)
	}

	// Sign out, sign in as operate, resume.
	b.do(chromedp.Click(chromedp.CSS("#who button")))
	b.waitJS("the sign-in form", `!!document.getElementById('token')`)
	b.do(chromedp.SendKeys(chromedp.ID("token"), tokens["operate"]), chromedp.Click(chromedp.CSS(".signin button")))
	b.waitText("#who", "operate-person")
	b.open("/executions/" + id)
	b.waitText("#resume h3", "approve")
	b.do(chromedp.Click(chromedp.CSS(b.fieldByLabel(".resume-form", "approved"))),
		chromedp.SendKeys(chromedp.CSS(b.fieldByLabel(".resume-form", "reason")), "looks right"))
	b.do(chromedp.Click(chromedp.CSS(".resume-form button[type=submit]")))
	b.waitText(".status-line", "COMPLETED")
	_, rec = e.api(t, "GET", "/v1/executions/"+id, tokens["read"], "")
	if rec["state"] != "COMPLETED" {
		t.Errorf("state %v", rec["state"])
	}
}
