package builtins

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
)

// The error types the standard tasks fail with, as `retry.errors` and
// `catch.errors` name them.
const (
	TypeInvalidInput      = "InvalidInput"      // the `with` value has the wrong shape
	TypeExecFailed        = "ExecFailed"        // exec: non-zero exit, or the command could not start
	TypeHTTPError         = "HTTPError"         // http: the response status is 400 or more
	TypeHTTPRequestFailed = "HTTPRequestFailed" // http: no response (connection refused, TLS, DNS, …)
	TypeTimeout           = "Timeout"           // http: its `timeout` passed; exec or http: the step's deadline passed
)

// TaskError is the error a standard task fails with. The interpreter reads
// its type and data through the ErrorType and ErrorData methods, so the
// error is matched without builtins importing any Loom package.
type TaskError struct {
	Type    string
	Message string
	Data    any   // a JSON value, or nil
	Err     error // the cause, if any (context.DeadlineExceeded for a Timeout)
}

func (e *TaskError) Error() string { return e.Message }

// ErrorType returns the error's type.
func (e *TaskError) ErrorType() string { return e.Type }

// ErrorData returns the error's data.
func (e *TaskError) ErrorData() any { return e.Data }

// Unwrap returns the cause.
func (e *TaskError) Unwrap() error { return e.Err }

func invalidInput(task, format string, args ...any) error {
	return &TaskError{Type: TypeInvalidInput, Message: task + ": " + fmt.Sprintf(format, args...)}
}

type idemKey struct{}

// WithIdempotencyKey returns a context carrying key, the stable key of one
// task attempt. The interpreter calls it before running a task; the http
// task sends the key as an Idempotency-Key header.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idemKey{}, key)
}

type maskKey struct{}

// WithMask gives the tasks run with ctx a function that masks secret
// values in what they print (the log task's line): what a task returns is
// masked by the engine before it is journaled, but a task's own output
// reaches the terminal first.
func WithMask(ctx context.Context, mask func(string) string) context.Context {
	return context.WithValue(ctx, maskKey{}, mask)
}

// Masked returns s masked by the function WithMask put in ctx (s itself
// when there is none).
func Masked(ctx context.Context, s string) string {
	if f, ok := ctx.Value(maskKey{}).(func(string) string); ok {
		return f(s)
	}
	return s
}

type headersKey struct{}

// WithOutgoingHeaders returns a context whose http task requests get the
// headers fn sets (the service sets a traceparent, so the called service's
// spans join the step's trace). fn must not remove the request's own.
func WithOutgoingHeaders(ctx context.Context, fn func(http.Header)) context.Context {
	return context.WithValue(ctx, headersKey{}, fn)
}

// IdempotencyKey returns the key WithIdempotencyKey put in ctx, or "".
func IdempotencyKey(ctx context.Context) string {
	s, _ := ctx.Value(idemKey{}).(string)
	return s
}

// TaskSet is the set of standard tasks. It satisfies interpreter.Tasks and
// definition's task checks through methods whose signatures use only
// standard types. It is safe for concurrent use.
type TaskSet struct {
	stderr   io.Writer
	stderrMu sync.Mutex
	client   *http.Client
	tasks    map[string]func(context.Context, json.RawMessage) (any, error)
}

// Option configures Standard.
type Option func(*TaskSet)

// WithStderr sets where `log` writes (default os.Stderr).
func WithStderr(w io.Writer) Option { return func(s *TaskSet) { s.stderr = w } }

// WithHTTPClient sets the client `http` sends requests with (default: a
// client on http.DefaultTransport). Its Timeout, if any, applies on top of
// each step's `timeout`.
func WithHTTPClient(c *http.Client) Option { return func(s *TaskSet) { s.client = c } }

// Standard returns the standard tasks of SPEC §5: echo, exec, http and log.
func Standard(opts ...Option) *TaskSet {
	s := &TaskSet{stderr: os.Stderr, client: &http.Client{}}
	for _, o := range opts {
		o(s)
	}
	s.tasks = map[string]func(context.Context, json.RawMessage) (any, error){
		"echo": echoTask,
		"exec": s.exec,
		"http": s.httpTask,
		"log":  s.logTask,
	}
	return s
}

// HasTask reports whether name is a standard task.
func (s *TaskSet) HasTask(name string) bool {
	_, ok := s.tasks[name]
	return ok
}

// LookupTask returns the standard task called name.
func (s *TaskSet) LookupTask(name string) (func(context.Context, json.RawMessage) (any, error), bool) {
	fn, ok := s.tasks[name]
	return fn, ok
}

// TaskNames lists the standard tasks, sorted.
func (s *TaskSet) TaskNames() []string {
	names := make([]string, 0, len(s.tasks))
	for n := range s.tasks {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// TaskInputSchema returns the JSON Schema (draft-07) of the `with` value of
// the standard task name, or nil when there is no such task. A string
// holding `${` is accepted wherever a value is expected, since an
// expression's value is known only at run time.
func (s *TaskSet) TaskInputSchema(name string) []byte {
	b, ok := inputSchemas[name]
	if !ok {
		return nil
	}
	return bytes.Clone(b)
}

func echoTask(_ context.Context, in json.RawMessage) (any, error) {
	if isAbsent(in) {
		return nil, nil
	}
	v, err := decodeValue(in)
	if err != nil {
		return nil, invalidInput("echo", "the input is not JSON: %v", err)
	}
	return v, nil
}

var logLevels = []string{"debug", "info", "warn", "error"}

func (s *TaskSet) logTask(ctx context.Context, in json.RawMessage) (any, error) {
	f, err := decodeObject("log", in, "message", "level")
	if err != nil {
		return nil, err
	}
	msgRaw, ok := f["message"]
	if !ok {
		return nil, invalidInput("log", "`message` is required")
	}
	msg, err := render(msgRaw)
	if err != nil {
		return nil, invalidInput("log", "`message` is not JSON: %v", err)
	}
	level := "info"
	if raw, ok := f["level"]; ok && !isAbsent(raw) {
		if err := json.Unmarshal(raw, &level); err != nil || !contains(logLevels, level) {
			return nil, invalidInput("log", "`level` must be one of %s, not %s", strings.Join(logLevels, ", "), raw)
		}
	}
	line := "[" + level + "] " + strings.TrimRight(msg, "\r\n") + "\n"
	s.stderrMu.Lock()
	defer s.stderrMu.Unlock()
	_, err = io.WriteString(s.stderr, Masked(ctx, line))
	return nil, err
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// isAbsent reports whether a JSON value is missing or null.
func isAbsent(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || bytes.Equal(t, []byte("null"))
}

// decodeObject reads a task's `with` value as an object whose keys are all
// in known. A missing or null input is an empty object.
func decodeObject(task string, in json.RawMessage, known ...string) (map[string]json.RawMessage, error) {
	f := map[string]json.RawMessage{}
	if isAbsent(in) {
		return f, nil
	}
	if kind := jsonKind(in); kind != "a mapping" {
		return nil, invalidInput(task, "the input must be a mapping with keys %s, not %s", strings.Join(known, ", "), kind)
	}
	if err := json.Unmarshal(in, &f); err != nil {
		return nil, invalidInput(task, "the input is not JSON: %v", err)
	}
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !contains(known, k) {
			return nil, invalidInput(task, "unknown key %q (expected %s)", k, strings.Join(known, ", "))
		}
	}
	return f, nil
}

// jsonKind names the kind of a JSON value for messages.
func jsonKind(raw json.RawMessage) string {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '{':
		return "a mapping"
	case '[':
		return "a list"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// decodeValue decodes JSON into Loom's value model: integral numbers that
// fit become int, other numbers float64.
func decodeValue(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("more than one JSON value")
	}
	return numbers(v), nil
}

func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil && i >= math.MinInt && i <= math.MaxInt {
			return int(i)
		}
		f, _ := x.Float64()
		return f
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	}
	return v
}

// render turns a JSON value into text: a string as it is, anything else as
// its JSON.
func render(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return "", err
	}
	return b.String(), nil
}

// scalarText renders a string, number or boolean as text (argv items, env
// values, header values); ok is false for anything else.
func scalarText(raw json.RawMessage) (string, bool) {
	switch jsonKind(raw) {
	case "a string":
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	case "a number", "a boolean":
		return string(bytes.TrimSpace(raw)), true
	}
	return "", false
}

// stringMap decodes a mapping of scalars (env, headers).
func stringMap(task, key string, raw json.RawMessage) (map[string]string, error) {
	if isAbsent(raw) {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if jsonKind(raw) != "a mapping" || json.Unmarshal(raw, &m) != nil {
		return nil, invalidInput(task, "`%s` must be a mapping of names to strings, not %s", key, jsonKind(raw))
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		s, ok := scalarText(v)
		if !ok {
			return nil, invalidInput(task, "`%s.%s` must be a string, number or boolean, not %s", key, k, jsonKind(v))
		}
		out[k] = s
	}
	return out, nil
}

// optString decodes an optional string field.
func optString(task, key string, f map[string]json.RawMessage) (string, error) {
	raw, ok := f[key]
	if !ok || isAbsent(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", invalidInput(task, "`%s` must be a string, not %s", key, jsonKind(raw))
	}
	return s, nil
}
