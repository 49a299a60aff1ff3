package server

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/loomwork/loom/console"
)

// TestRateLimit: each client may make Rate requests per second with bursts
// of twice that; beyond it 429 rate_limited with Retry-After, and the
// bucket refills with the clock. Without tokens the client is its address.
func TestRateLimit(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Rate = 2 })
	for i := range 4 { // the burst: twice the rate
		if st, _, body := h.do("GET", "/v1/workflows", ""); st != 200 {
			t.Fatalf("request %d: %d %v", i, st, body)
		}
	}
	st, hdr, body := h.do("GET", "/v1/workflows", "")
	wantError(t, "over the rate", st, body, 429, "rate_limited")
	if hdr.Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q", hdr.Get("Retry-After"))
	}
	if st, _, _ := h.do("GET", "/healthz", ""); st != 200 {
		t.Errorf("healthz is not limited: %d", st)
	}
	h.clock.Advance(500 * time.Millisecond) // one request's worth
	if st, _, body := h.do("GET", "/v1/workflows", ""); st != 200 {
		t.Fatalf("after the refill: %d %v", st, body)
	}
	st, _, body = h.do("GET", "/v1/workflows", "")
	wantError(t, "over the rate again", st, body, 429, "rate_limited")
}

// TestRateLimitPerToken: with tokens each token has its own bucket, and a
// client that keeps sending bad tokens is refused for a while even with a
// good one (guessing tokens is slow).
func TestRateLimitPerToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	aTok, aLine, _ := NewToken("a", "read")
	bTok, bLine, _ := NewToken("b", "read")
	if err := writeFile(path, aLine+"\n"+bLine+"\n"); err != nil {
		t.Fatal(err)
	}
	toks, err := LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *Config) { c.Tokens = toks; c.Rate = 1 })
	for range 2 {
		if st, _, body := h.do("GET", "/v1/workflows", "", "Authorization", "Bearer "+aTok); st != 200 {
			t.Fatalf("a: %d %v", st, body)
		}
	}
	st, _, body := h.do("GET", "/v1/workflows", "", "Authorization", "Bearer "+aTok)
	wantError(t, "token a over its rate", st, body, 429, "rate_limited")
	if msg := body["error"].(map[string]any)["message"]; msg != "token a is making more requests than this server allows; slow down" {
		t.Errorf("message %q", msg)
	}
	if st, _, body := h.do("GET", "/v1/workflows", "", "Authorization", "Bearer "+bTok); st != 200 {
		t.Fatalf("b has its own bucket: %d %v", st, body)
	}

	h.clock.Advance(time.Minute)
	for i := range badAuthRate {
		st, _, body := h.do("GET", "/v1/workflows", "", "Authorization", "Bearer guess")
		wantError(t, "a bad token", st, body, 401, "unauthenticated")
		_ = i
	}
	st, hdr, body := h.do("GET", "/v1/workflows", "", "Authorization", "Bearer "+bTok)
	wantError(t, "a good token from an address that guessed", st, body, 429, "rate_limited")
	if hdr.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	h.clock.Advance(time.Second)
	if st, _, body := h.do("GET", "/v1/workflows", "", "Authorization", "Bearer "+bTok); st != 200 {
		t.Fatalf("a second later: %d %v", st, body)
	}
}

// TestMaxStreams: long polls and streams beyond MaxStreams get 503
// too_many_streams with Retry-After; a plain GET still answers.
func TestMaxStreams(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxStreams = 1 })
	closed := make(chan struct{}, 100)
	h.srv.testStreamClosed = func() { closed <- struct{}{} }
	if st, _, body := h.do("POST", "/v1/executions?wait=60s", `{"workflow": "approval", "id": "p1"}`); st != 201 {
		t.Fatalf("start: %d %v", st, body)
	}
	// A stream's slot is given back after its answer is sent; each
	// release signals closed once the count is down.
	idle := func() {
		for h.srv.streamsOpen.Load() != 0 {
			<-closed
		}
	}
	idle()
	// One event stream holds the only slot (the execution is paused: it
	// stays open).
	req, _ := http.NewRequest("GET", h.http.URL+"/v1/executions/p1/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	st, hdr, body := h.do("GET", "/v1/executions/p1?wait=30s", "")
	wantError(t, "a long poll over the cap", st, body, 503, "too_many_streams")
	if hdr.Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q", hdr.Get("Retry-After"))
	}
	if st, _, body := h.do("GET", "/v1/executions/p1", "", "Accept", "application/json"); st != 200 {
		t.Errorf("a plain GET: %d %v", st, body)
	}
	resp.Body.Close()
	idle() // the handler saw the client go
	if st, _, body := h.do("GET", "/v1/executions/p1?wait=1ms", ""); st != 200 {
		t.Errorf("after the stream closed: %d %v", st, body)
	}
}

// TestCORS: no CORS headers unless the origin is listed; a listed origin
// gets them and its preflight is answered, and without tokens it passes
// the cross-origin check that refuses any other.
func TestCORS(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.CORSOrigins = []string{"https://ops.example"} })
	st, hdr, _ := h.do("GET", "/v1/workflows", "", "Origin", "https://ops.example")
	if st != 200 || hdr.Get("Access-Control-Allow-Origin") != "https://ops.example" || hdr.Get("Vary") != "Origin" {
		t.Errorf("listed origin: %d %v", st, hdr)
	}
	st, hdr, body := h.do("GET", "/v1/workflows", "", "Origin", "https://evil.example")
	wantError(t, "another origin", st, body, 403, "csrf")
	if hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("another origin got CORS headers: %v", hdr)
	}
	st, hdr, _ = h.do("OPTIONS", "/v1/executions", "", "Origin", "https://ops.example", "Access-Control-Request-Method", "POST")
	if st != 204 || hdr.Get("Access-Control-Allow-Methods") != "GET, POST" || hdr.Get("Access-Control-Allow-Headers") == "" {
		t.Errorf("preflight: %d %v", st, hdr)
	}

	plain := newHarness(t)
	if _, hdr, _ := plain.do("GET", "/v1/workflows", "", "Origin", "https://ops.example"); hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS headers without --cors-origin: %v", hdr)
	}
}

// TestClientAddrBehindProxy: X-Forwarded-For counts only from a proxy.
func TestClientAddrBehindProxy(t *testing.T) {
	_, n, _ := net.ParseCIDR("10.0.0.0/8")
	s := &Server{cfg: Config{Proxies: []*net.IPNet{n}}}
	for _, tc := range []struct{ remote, xff, want string }{
		{"192.0.2.1:5000", "203.0.113.9", "192.0.2.1"},
		{"10.1.1.1:5000", "203.0.113.9", "203.0.113.9"},
		{"10.1.1.1:5000", "198.51.100.7, 203.0.113.9, 10.2.2.2", "203.0.113.9"},
		{"10.1.1.1:5000", "", "10.1.1.1"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := s.clientAddr(r); got != tc.want {
			t.Errorf("%s via %q: %s, want %s", tc.remote, tc.xff, got, tc.want)
		}
	}
}

// TestSignInSharesTheBadTokenLimit: failed console sign-ins and bad API
// tokens count against one budget per client address (SPEC §6: 10 a
// second); past it both answer 429 with Retry-After, the right token too.
func TestSignInSharesTheBadTokenLimit(t *testing.T) {
	tok, toks := operateToken(t)
	con := console.New(console.Options{Tokens: toks})
	h := newHarness(t, func(c *Config) { c.Tokens, c.Mount, c.Sessions = toks, con.Handler(), con })
	signIn := func(token string) (int, http.Header, map[string]any) {
		return h.do("POST", "/console/session", `{"token": "`+token+`"}`, "Origin", h.http.URL)
	}
	for i := range badAuthRate {
		if st, _, body := signIn("wrong"); st != 401 {
			t.Fatalf("failed sign-in %d: %d %v", i+1, st, body)
		}
	}
	st, hdr, body := signIn(tok)
	if st != 429 || hdr.Get("Retry-After") == "" {
		t.Errorf("a sign-in past the limit: %d %v (Retry-After %q)", st, body, hdr.Get("Retry-After"))
	}
	st, _, body = h.do("GET", "/v1/executions", "", "Authorization", "Bearer "+tok)
	wantError(t, "a token after the failed sign-ins", st, body, 429, "rate_limited")

	h.clock.Advance(time.Second)
	if st, _, body := signIn(tok); st != 200 || body["name"] != "ops" {
		t.Fatalf("a sign-in a second later: %d %v", st, body)
	}
	for i := range badAuthRate {
		st, _, body := h.do("GET", "/v1/executions", "", "Authorization", "Bearer wrong")
		wantError(t, fmt.Sprintf("bad token %d", i+1), st, body, 401, "unauthenticated")
	}
	if st, _, body := signIn(tok); st != 429 {
		t.Errorf("a sign-in after %d bad tokens: %d %v", badAuthRate, st, body)
	}
}

// operateToken is a token file holding one operate token, named ops, and
// that token.
func operateToken(t *testing.T) (string, *Tokens) {
	t.Helper()
	tok, line, _ := NewToken("ops", "operate")
	path := filepath.Join(t.TempDir(), "tokens")
	if err := writeFile(path, line+"\n"); err != nil {
		t.Fatal(err)
	}
	toks, err := LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	return tok, toks
}

// TestMaxInput: an input or resume payload past the input limit
// (Config.MaxInput, loom serve --limits input=) is refused with 413
// limit_exceeded, below --max-body, and nothing is written; one at the
// limit is accepted.
func TestMaxInput(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxInput = 20 })
	st, _, rec := h.do("POST", "/v1/executions", `{"workflow": "hello", "id": "big", "input": {"name": "0123456789abcdef"}}`)
	wantError(t, "a start past the input limit", st, rec, 413, "limit_exceeded")
	if msg := rec["error"].(map[string]any)["message"]; msg != "the input is larger than this server's input limit of 20 bytes; nothing was done" {
		t.Errorf("the refusal says %q", msg)
	}
	if st, _, _ := h.do("GET", "/v1/executions/big", ""); st != 404 {
		t.Errorf("a refused start was written: GET answers %d", st)
	}
	if st, _, rec := h.do("POST", "/v1/executions?wait=60s", `{"workflow": "hello", "id": "ok", "input": {"name": "0123456"}}`); st != 201 {
		t.Fatalf("a start at the input limit: %d %v", st, rec)
	}
	if st, _, rec := h.do("POST", "/v1/executions?wait=60s", `{"workflow": "approval", "id": "a1"}`); st != 201 || rec["state"] != "PAUSED" {
		t.Fatalf("start: %d %v", st, rec)
	}
	st, _, rec = h.do("POST", "/v1/executions/a1/resume", `{"payload": {"approved": true, "note": "0123456789"}}`)
	wantError(t, "a resume past the input limit", st, rec, 413, "limit_exceeded")
	if rec := h.settle("a1"); rec["state"] != "PAUSED" {
		t.Errorf("after a refused resume: %v", rec)
	}
}
