package console

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fileTokens is a token file in memory: hash → name and role.
type fileTokens struct {
	mu sync.Mutex
	m  map[string][2]string
}

func (f *fileTokens) ByHash(h string) (string, string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.m[h]
	return e[0], e[1], ok
}

func (f *fileTokens) add(token, name, role string) {
	sum := sha256.Sum256([]byte(token))
	f.mu.Lock()
	f.m[hex.EncodeToString(sum[:])] = [2]string{name, role}
	f.mu.Unlock()
}

func (f *fileTokens) remove(token string) {
	sum := sha256.Sum256([]byte(token))
	f.mu.Lock()
	delete(f.m, hex.EncodeToString(sum[:]))
	f.mu.Unlock()
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func setup(t *testing.T) (*Console, *fileTokens, *clock) {
	toks := &fileTokens{m: map[string][2]string{}}
	toks.add("tok-op", "alice", "operate")
	toks.add("tok-read", "bob", "read")
	clk := &clock{t: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
	return New(Options{Tokens: toks, Now: clk.now}), toks, clk
}

func do(t *testing.T, h http.Handler, method, target, body string, hdr map[string]string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	for _, c := range cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

var jsonOrigin = map[string]string{"Content-Type": "application/json", "Origin": "http://example.com"}

func signIn(t *testing.T, c *Console, token string) (*http.Cookie, sessionInfo) {
	t.Helper()
	w := do(t, c.Handler(), "POST", "/console/session", `{"token":"`+token+`"}`, jsonOrigin)
	if w.Code != 200 {
		t.Fatalf("sign-in: %d %s", w.Code, w.Body)
	}
	var info sessionInfo
	if err := json.Unmarshal(w.Body.Bytes(), &info); err != nil {
		t.Fatal(err)
	}
	for _, ck := range w.Result().Cookies() {
		if ck.Name == CookieName {
			return ck, info
		}
	}
	t.Fatal("no session cookie")
	return nil, info
}

func TestPagesAndHeaders(t *testing.T) {
	c := New(Options{})
	for _, p := range []string{"/", "/pauses", "/executions/abc", "/workflows", "/workflows/order", "/assets/js/app.js", "/assets/console.css", "/console/session"} {
		w := do(t, c.Handler(), "GET", p, "", nil)
		if w.Code != 200 {
			t.Errorf("GET %s: %d", p, w.Code)
		}
		h := w.Header()
		if got := h.Get("Content-Security-Policy"); got != "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'" {
			t.Errorf("GET %s: CSP %q", p, got)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("GET %s: headers %v", p, h)
		}
	}
	for _, p := range []string{"/nosuch", "/executions/a/b", "/assets/", "/assets/js/", "/assets/index.html"} {
		if w := do(t, c.Handler(), "GET", p, "", nil); w.Code != 404 {
			t.Errorf("GET %s: %d, want 404", p, w.Code)
		}
	}
	if ct := do(t, c.Handler(), "GET", "/assets/js/app.js", "", nil).Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Errorf("app.js Content-Type %q", ct)
	}
}

// TestNoInlineScript: the page has no inline script, no eval and no
// innerHTML anywhere in the console's code (SPEC §7).
func TestNoInlineScript(t *testing.T) {
	page, _ := assets.ReadFile("assets/index.html")
	if regexp.MustCompile(`<script>|<style|\sstyle=|\son[a-z]+=`).Match(page) {
		t.Error("index.html has inline script, style or event handler")
	}
	entries, err := assets.ReadDir("assets/js")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		src, _ := assets.ReadFile("assets/js/" + e.Name())
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "new Function", "document.write", "localStorage", "sessionStorage", "setAttribute('style'"} {
			if strings.Contains(string(src), bad) {
				t.Errorf("%s uses %s", e.Name(), bad)
			}
		}
	}
}

func TestNoTokensMeansLocal(t *testing.T) {
	c := New(Options{})
	w := do(t, c.Handler(), "GET", "/console/session", "", nil)
	if got := strings.TrimSpace(w.Body.String()); got != `{"auth":false,"signed_in":true,"name":"local","role":"operate"}` {
		t.Errorf("session: %s", got)
	}
	w = do(t, c.Handler(), "POST", "/console/session", `{"token":"x"}`, jsonOrigin)
	if w.Code != 400 || !strings.Contains(w.Body.String(), "sign-in is off") {
		t.Errorf("sign-in without tokens: %d %s", w.Code, w.Body)
	}
	if _, ok, _ := c.Session(httptest.NewRequest("GET", "/v1/executions", nil)); ok {
		t.Error("a session without tokens")
	}
}

func TestSignIn(t *testing.T) {
	c, _, _ := setup(t)
	ck, info := signIn(t, c, "tok-op")
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Secure {
		t.Errorf("cookie %+v", ck)
	}
	if ck.Value == "tok-op" || strings.Contains(ck.Value, "tok") || len(ck.Value) < 40 {
		t.Errorf("cookie value %q is not a random session id", ck.Value)
	}
	if info.Name != "alice" || info.Role != "operate" || len(info.CSRF) < 40 {
		t.Errorf("info %+v", info)
	}
	// The same request over HTTPS gets a Secure cookie.
	r := httptest.NewRequest("POST", "https://example.com/console/session", strings.NewReader(`{"token":"tok-op"}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Origin", "https://example.com")
	w := httptest.NewRecorder()
	c.Handler().ServeHTTP(w, r)
	if cks := w.Result().Cookies(); w.Code != 200 || len(cks) != 1 || !cks[0].Secure {
		t.Errorf("https sign-in: %d %v", w.Code, cks)
	}
	// whoami with the cookie.
	w = do(t, c.Handler(), "GET", "/console/session", "", nil, ck)
	var again sessionInfo
	json.Unmarshal(w.Body.Bytes(), &again)
	if !again.SignedIn || again.Name != "alice" || again.CSRF != info.CSRF {
		t.Errorf("whoami %s", w.Body)
	}

	for _, tc := range []struct {
		name, body string
		hdr        map[string]string
		code       int
		want       string
	}{
		{"bad token", `{"token":"nope"}`, jsonOrigin, 401, `{"error":{"code":"unauthenticated","message":"that token is not in the server's token file"}}`},
		{"no origin", `{"token":"tok-op"}`, map[string]string{"Content-Type": "application/json"}, 403, `{"error":{"code":"csrf","message":"sign-in must come from the console's own page (same-origin Origin)"}}`},
		{"cross origin", `{"token":"tok-op"}`, map[string]string{"Content-Type": "application/json", "Origin": "http://evil.test"}, 403, `"code":"csrf"`},
		{"form post", `token=tok-op`, map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://example.com"}, 415, `"code":"unsupported_media_type"`},
		{"empty", `{}`, jsonOrigin, 400, `{"error":{"code":"bad_request","message":"the body must be {\"token\": \"…\"} with a token"}}`},
	} {
		w := do(t, c.Handler(), "POST", "/console/session", tc.body, tc.hdr)
		if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.want) {
			t.Errorf("%s: %d %s", tc.name, w.Code, w.Body)
		}
		if len(w.Result().Cookies()) != 0 {
			t.Errorf("%s: set a cookie", tc.name)
		}
	}
}

func TestSignInRateLimit(t *testing.T) {
	c, _, clk := setup(t)
	codes := []int{}
	for i := 0; i < 12; i++ {
		codes = append(codes, do(t, c.Handler(), "POST", "/console/session", `{"token":"bad"}`, jsonOrigin).Code)
	}
	if codes[9] != 401 || codes[10] != 429 || codes[11] != 429 {
		t.Errorf("codes %v: want 10 × 401 then 429", codes)
	}
	if w := do(t, c.Handler(), "POST", "/console/session", `{"token":"tok-op"}`, jsonOrigin); w.Code != 429 || w.Header().Get("Retry-After") != "1" {
		t.Errorf("a good token within the limited second: %d", w.Code)
	}
	clk.add(time.Second)
	if w := do(t, c.Handler(), "POST", "/console/session", `{"token":"tok-op"}`, jsonOrigin); w.Code != 200 {
		t.Errorf("next second: %d", w.Code)
	}
}

func TestSessionCSRF(t *testing.T) {
	c, _, _ := setup(t)
	ck, info := signIn(t, c, "tok-op")
	req := func(method, csrf, origin string) *http.Request {
		r := httptest.NewRequest(method, "http://example.com/v1/executions", nil)
		r.AddCookie(ck)
		if csrf != "" {
			r.Header.Set(CSRFHeader, csrf)
		}
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		return r
	}
	if id, ok, err := c.Session(req("GET", "", "")); !ok || err != nil || id != (Identity{"alice", "operate"}) {
		t.Errorf("GET: %v %v %v", id, ok, err)
	}
	if _, ok, err := c.Session(req("POST", info.CSRF, "http://example.com")); !ok || err != nil {
		t.Errorf("POST with csrf: %v %v", ok, err)
	}
	for _, r := range []*http.Request{
		req("POST", "", "http://example.com"),
		req("POST", "wrong", "http://example.com"),
		req("POST", info.CSRF, ""),
		req("POST", info.CSRF, "http://evil.test"),
		req("POST", info.CSRF, "https://example.com"),
		req("DELETE", "", "http://example.com"),
	} {
		if _, _, err := c.Session(r); err != ErrCSRF {
			t.Errorf("%s csrf=%q origin=%q: err %v, want ErrCSRF", r.Method, r.Header.Get(CSRFHeader), r.Header.Get("Origin"), err)
		}
	}
	// Sign-out needs the CSRF token too, then the session is gone.
	if w := do(t, c.Handler(), "DELETE", "/console/session", "", map[string]string{"Origin": "http://example.com"}, ck); w.Code != 403 {
		t.Errorf("sign-out without csrf: %d", w.Code)
	}
	w := do(t, c.Handler(), "DELETE", "/console/session", "", map[string]string{"Origin": "http://example.com", CSRFHeader: info.CSRF}, ck)
	if w.Code != 204 {
		t.Errorf("sign-out: %d %s", w.Code, w.Body)
	}
	if _, ok, _ := c.Session(req("GET", "", "")); ok {
		t.Error("session alive after sign-out")
	}
}

func TestSessionEnds(t *testing.T) {
	c, toks, clk := setup(t)
	get := func(ck *http.Cookie) bool {
		r := httptest.NewRequest("GET", "/v1/executions", nil)
		r.AddCookie(ck)
		_, ok, _ := c.Session(r)
		return ok
	}
	// Idle for an hour.
	ck, _ := signIn(t, c, "tok-op")
	clk.add(59 * time.Minute)
	if !get(ck) {
		t.Fatal("ended before 1 h idle")
	}
	clk.add(59 * time.Minute)
	if !get(ck) {
		t.Fatal("use renews the idle time")
	}
	clk.add(time.Hour)
	if get(ck) {
		t.Error("alive after 1 h idle")
	}
	// 12 hours, however busy.
	ck, _ = signIn(t, c, "tok-op")
	for i := 0; i < 23; i++ {
		clk.add(30 * time.Minute)
		if !get(ck) {
			t.Fatalf("ended at %d min", (i+1)*30)
		}
	}
	clk.add(30 * time.Minute)
	if get(ck) {
		t.Error("alive after 12 h")
	}
	// Its token leaves the file.
	ck, _ = signIn(t, c, "tok-read")
	toks.remove("tok-read")
	if get(ck) {
		t.Error("alive after its token left the file")
	}
	toks.add("tok-read", "bob", "read")
	if get(ck) {
		t.Error("a session came back with its token")
	}
	// A made-up cookie is no session.
	if get(&http.Cookie{Name: CookieName, Value: "made-up"}) {
		t.Error("made-up cookie accepted")
	}
}

func TestAssetsHaveNoCDN(t *testing.T) {
	for _, name := range []string{"assets/index.html", "assets/console.css"} {
		b, _ := assets.ReadFile(name)
		if strings.Contains(string(b), "http://") || strings.Contains(string(b), "https://") {
			t.Errorf("%s names a network address", name)
		}
	}
	w := do(t, New(Options{}).Handler(), "GET", "/", "", nil)
	body, _ := io.ReadAll(w.Body)
	if !strings.Contains(string(body), `<script type="module" src="/assets/js/app.js"></script>`) {
		t.Error("page does not load the app module")
	}
}
