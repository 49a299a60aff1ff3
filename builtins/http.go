package builtins

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/loomwork/loom/duration"
)

const (
	defaultHTTPTimeout = 30 * time.Second
	// maxResponse bounds the response body kept: it is journaled.
	maxResponse = 16 << 20
)

type httpInput struct {
	method  string
	url     *url.URL
	headers http.Header
	body    []byte // nil: no body
	timeout time.Duration
}

func parseHTTPInput(in json.RawMessage) (*httpInput, error) {
	f, err := decodeObject("http", in, "method", "url", "headers", "body", "timeout")
	if err != nil {
		return nil, err
	}
	x := &httpInput{method: http.MethodGet, timeout: defaultHTTPTimeout, headers: http.Header{}}
	if m, err := optString("http", "method", f); err != nil {
		return nil, err
	} else if m != "" {
		if !isToken(m) {
			return nil, invalidInput("http", "`method` %q is not an HTTP method", m)
		}
		x.method = strings.ToUpper(m)
	}
	raw, ok := f["url"]
	if !ok || isAbsent(raw) {
		return nil, invalidInput("http", "`url` is required")
	}
	s, err := optString("http", "url", f)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, invalidInput("http", "`url` %q is not an http or https URL", s)
	}
	x.url = u
	hs, err := stringMap("http", "headers", f["headers"])
	if err != nil {
		return nil, err
	}
	for k, v := range hs {
		if !isToken(k) {
			return nil, invalidInput("http", "`headers` has an invalid name %q", k)
		}
		x.headers.Set(k, v)
	}
	if raw, ok := f["body"]; ok && !isAbsent(raw) {
		if jsonKind(raw) == "a string" {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, invalidInput("http", "`body` is not JSON: %v", err)
			}
			x.body = []byte(s)
		} else {
			var b bytes.Buffer
			if err := json.Compact(&b, raw); err != nil {
				return nil, invalidInput("http", "`body` is not JSON: %v", err)
			}
			x.body = b.Bytes()
			if x.headers.Get("Content-Type") == "" {
				x.headers.Set("Content-Type", "application/json")
			}
		}
	}
	if t, err := optString("http", "timeout", f); err != nil {
		return nil, err
	} else if t != "" {
		d, err := duration.Parse(t)
		if err != nil || d <= 0 {
			return nil, invalidInput("http", "`timeout` %q is not a positive duration like 30s or 2m", t)
		}
		x.timeout = d
	}
	return x, nil
}

// isToken reports whether s is an HTTP token (a method or a header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}

// httpTask sends one request (SPEC §5) and returns {status, headers, body}.
func (s *TaskSet) httpTask(ctx context.Context, in json.RawMessage) (any, error) {
	x, err := parseHTTPInput(in)
	if err != nil {
		return nil, err
	}
	if key := IdempotencyKey(ctx); key != "" && x.headers.Get("Idempotency-Key") == "" {
		x.headers.Set("Idempotency-Key", key)
	}
	if fn, ok := ctx.Value(headersKey{}).(func(http.Header)); ok {
		fn(x.headers)
	}
	what := x.method + " " + x.url.Redacted()

	rctx, cancel := context.WithTimeout(ctx, x.timeout)
	defer cancel()
	var body io.Reader
	if x.body != nil {
		body = bytes.NewReader(x.body)
	}
	req, err := http.NewRequestWithContext(rctx, x.method, x.url.String(), body)
	if err != nil {
		return nil, invalidInput("http", "cannot build the request %s: %v", what, err)
	}
	req.Header = x.headers
	if h := x.headers.Get("Host"); h != "" {
		req.Host = h
	}

	fail := func(err error) error {
		switch {
		case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
			return &TaskError{Type: TypeTimeout, Message: fmt.Sprintf("http %s: the step's deadline passed", what), Err: ctx.Err()}
		case ctx.Err() != nil:
			return fmt.Errorf("http %s: %w", what, ctx.Err())
		case rctx.Err() != nil:
			return &TaskError{Type: TypeTimeout, Message: fmt.Sprintf("http %s: no response within %s", what, x.timeout), Err: rctx.Err()}
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return &TaskError{Type: TypeHTTPRequestFailed, Message: fmt.Sprintf("http %s: %v", what, err), Err: err}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fail(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, fail(err)
	}
	if len(raw) > maxResponse {
		return nil, &TaskError{Type: TypeHTTPRequestFailed, Message: fmt.Sprintf("http %s: the response body is larger than %d MiB", what, maxResponse>>20)}
	}
	headers := make(map[string]any, len(resp.Header))
	for k, v := range resp.Header {
		if len(v) > 0 {
			headers[strings.ToLower(k)] = v[0]
		}
	}
	respBody := responseBody(resp.Header.Get("Content-Type"), raw)
	if resp.StatusCode >= 400 {
		return nil, &TaskError{
			Type:    TypeHTTPError,
			Message: fmt.Sprintf("http %s: %s", what, statusText(resp)),
			Data:    map[string]any{"status": resp.StatusCode, "body": respBody},
		}
	}
	return map[string]any{"status": resp.StatusCode, "headers": headers, "body": respBody}, nil
}

// responseBody is the body parsed when its media type is JSON
// (application/json or any +json) and parses, else its text.
func responseBody(contentType string, raw []byte) any {
	if mt, _, err := mime.ParseMediaType(contentType); err == nil &&
		(mt == "application/json" || strings.HasSuffix(mt, "+json")) {
		if v, err := decodeValue(raw); err == nil {
			return v
		}
	}
	return string(raw)
}

func statusText(resp *http.Response) string {
	if t := http.StatusText(resp.StatusCode); t != "" {
		return strconv.Itoa(resp.StatusCode) + " " + t
	}
	return strconv.Itoa(resp.StatusCode)
}
