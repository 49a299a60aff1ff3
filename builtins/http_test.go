package builtins_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/loomwork/loom/builtins"
)

// seen is what a test server received.
type seen struct {
	method, path, body string
	header             http.Header
}

func server(t *testing.T, h func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, chan seen) {
	t.Helper()
	got := make(chan seen, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.RequestURI(), string(b), r.Header.Clone()}
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func TestHTTPJSONRoundTrip(t *testing.T) {
	srv, got := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Add("X-Trace", "one")
		w.Header().Add("X-Trace", "two")
		w.WriteHeader(201)
		io.WriteString(w, `{"id": 7, "tags": ["a"], "price": 9.5}`)
	})
	ctx := builtins.WithIdempotencyKey(context.Background(), "ex-1/order")
	out, err := call(t, builtins.Standard(), ctx, "http", map[string]any{
		"method":  "post",
		"url":     srv.URL + "/orders?x=1",
		"headers": map[string]any{"X-Api-Key": "k", "X-Num": 3},
		"body":    map[string]any{"qty": 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.method != "POST" || r.path != "/orders?x=1" || r.body != `{"qty":2}` {
		t.Errorf("server saw %s %s %q", r.method, r.path, r.body)
	}
	for k, want := range map[string]string{
		"Content-Type": "application/json", "X-Api-Key": "k", "X-Num": "3", "Idempotency-Key": "ex-1/order",
	} {
		if v := r.header.Get(k); v != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
	res := out.(map[string]any)
	if res["status"] != 201 {
		t.Errorf("status %#v", res["status"])
	}
	if got := asJSON(t, res["body"]); got != `{"id":7,"price":9.5,"tags":["a"]}` {
		t.Errorf("body %s", got)
	}
	if id := res["body"].(map[string]any)["id"]; id != 7 {
		t.Errorf("body.id is %#v, want the int 7", id)
	}
	h := res["headers"].(map[string]any)
	if h["x-trace"] != "one" || h["content-type"] != "application/json; charset=utf-8" {
		t.Errorf("headers %v", h)
	}
	for k := range h {
		if k != strings.ToLower(k) {
			t.Errorf("header key %q is not lower case", k)
		}
	}
}

func TestHTTPTextAndDefaults(t *testing.T) {
	srv, got := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, `{"looks": "like json"}`)
	})
	out, err := call(t, builtins.Standard(), context.Background(), "http", map[string]any{"url": srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.method != "GET" || r.body != "" || r.header.Get("Idempotency-Key") != "" {
		t.Errorf("server saw %s %q, Idempotency-Key %q", r.method, r.body, r.header.Get("Idempotency-Key"))
	}
	res := out.(map[string]any)
	if res["status"] != 200 || res["body"] != `{"looks": "like json"}` {
		t.Errorf("result %v", res)
	}
}

func TestHTTPStringBodyAndCallerHeaders(t *testing.T) {
	srv, got := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		io.WriteString(w, `{"ok": true}`)
	})
	ctx := builtins.WithIdempotencyKey(context.Background(), "ex-1/pay")
	out, err := call(t, builtins.Standard(), ctx, "http", map[string]any{
		"method":  "PUT",
		"url":     srv.URL,
		"body":    "a=1&b=2",
		"headers": map[string]any{"content-type": "application/x-www-form-urlencoded", "idempotency-key": "mine"},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.body != "a=1&b=2" || r.header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.header.Get("Idempotency-Key") != "mine" {
		t.Errorf("server saw %q with %v", r.body, r.header)
	}
	if asJSON(t, out.(map[string]any)["body"]) != `{"ok":true}` {
		t.Errorf("a +json body is not parsed: %v", out)
	}

	// A JSON body the caller typed otherwise keeps the caller's type.
	_, err = call(t, builtins.Standard(), ctx, "http", map[string]any{
		"method": "POST", "url": srv.URL, "body": []any{1, 2},
		"headers": map[string]any{"Content-Type": "application/vnd.x+json"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := <-got; r.body != "[1,2]" || r.header.Get("Content-Type") != "application/vnd.x+json" {
		t.Errorf("server saw %q with %v", r.body, r.header)
	}
}

func TestHTTPErrorStatus(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/json" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(422)
			io.WriteString(w, `{"error": "qty must be positive"}`)
			return
		}
		http.NotFound(w, r)
	})
	_, err := call(t, builtins.Standard(), context.Background(), "http", map[string]any{"url": srv.URL + "/missing"})
	wantError(t, err, builtins.TypeHTTPError, "GET "+srv.URL+"/missing", "404 Not Found")
	if d := errorData(t, err); d["status"] != 404 || d["body"] != "404 page not found\n" {
		t.Errorf("data %#v", d)
	}
	_, err = call(t, builtins.Standard(), context.Background(), "http", map[string]any{"url": srv.URL + "/json", "method": "POST"})
	wantError(t, err, builtins.TypeHTTPError, "422")
	if d := errorData(t, err); d["status"] != 422 || asJSON(t, d["body"]) != `{"error":"qty must be positive"}` {
		t.Errorf("data %#v", d)
	}
}

func TestHTTPTimeout(t *testing.T) {
	release := make(chan struct{})
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	start := time.Now()
	_, err := call(t, builtins.Standard(), context.Background(), "http", map[string]any{"url": srv.URL, "timeout": "50ms"})
	wantError(t, err, builtins.TypeTimeout, "no response within 50ms")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the request took %v", d)
	}

	// The step's deadline (the caller's context) is a Timeout too.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = call(t, builtins.Standard(), ctx, "http", map[string]any{"url": srv.URL})
	wantError(t, err, builtins.TypeTimeout, "the step's deadline passed")

	// Cancellation is no typed error: the interpreter reports it.
	ctx, cancel = context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err = call(t, builtins.Standard(), ctx, "http", map[string]any{"url": srv.URL})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

func TestHTTPRequestFailed(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	_, err := call(t, builtins.Standard(), context.Background(), "http", map[string]any{"url": url + "/x"})
	wantError(t, err, builtins.TypeHTTPRequestFailed, "GET "+url+"/x", "refused")
}

func TestHTTPClientOption(t *testing.T) {
	var used bool
	client := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		used = true
		return &http.Response{StatusCode: 204, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(""))}, nil
	})}
	out, err := call(t, builtins.Standard(builtins.WithHTTPClient(client)), context.Background(), "http",
		map[string]any{"url": "https://user:secret@example.com/x"})
	if err != nil || !used {
		t.Fatalf("out %v, err %v, client used %v", out, err, used)
	}
	if got := asJSON(t, out); got != `{"body":"","headers":{},"status":204}` {
		t.Errorf("result %s", got)
	}
}

func TestHTTPRedactsPasswords(t *testing.T) {
	client := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		return nil, errors.New("boom")
	})}
	_, err := call(t, builtins.Standard(builtins.WithHTTPClient(client)), context.Background(), "http",
		map[string]any{"url": "https://user:secret@example.com/x"})
	wantError(t, err, builtins.TypeHTTPRequestFailed, "boom", "user:xxxxx@example.com")
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error %q shows the password", err)
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestHTTPInvalidInput(t *testing.T) {
	for _, c := range []struct {
		in  string
		msg string
	}{
		{`null`, "`url` is required"},
		{`{"method": "GET"}`, "`url` is required"},
		{`{"url": 3}`, "`url` must be a string, not a number"},
		{`{"url": "example.com/x"}`, `"example.com/x" is not an http or https URL`},
		{`{"url": "ftp://example.com"}`, "not an http or https URL"},
		{`{"url": "http://x", "method": "GET /"}`, `"GET /" is not an HTTP method`},
		{`{"url": "http://x", "timeout": "soon"}`, "`timeout` \"soon\" is not a positive duration"},
		{`{"url": "http://x", "timeout": "-1s"}`, "not a positive duration"},
		{`{"url": "http://x", "timeout": 30}`, "`timeout` must be a string, not a number"},
		{`{"url": "http://x", "headers": {"Bad Name": "v"}}`, `invalid name "Bad Name"`},
		{`{"url": "http://x", "headers": {"X": [1]}}`, "`headers.X` must be a string, number or boolean, not a list"},
		{`{"url": "http://x", "query": {}}`, `unknown key "query" (expected method, url, headers, body, timeout)`},
	} {
		_, err := call(t, builtins.Standard(), context.Background(), "http", json.RawMessage(c.in))
		wantError(t, err, builtins.TypeInvalidInput, "http: ", c.msg)
	}
}

// The http task reads its timeout with the language's one duration
// grammar: days anywhere, as a workflow timeout takes them.
func TestHTTPTimeoutIsALoomDuration(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {})
	for _, d := range []string{"2d", "12h1d", "1d12h", "1.5d"} {
		if _, err := call(t, builtins.Standard(), context.Background(), "http", map[string]any{"url": srv.URL, "timeout": d}); err != nil {
			t.Errorf("timeout %s: %v", d, err)
		}
	}
}
