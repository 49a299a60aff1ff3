package builtins_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/loomwork/loom/builtins"
	"github.com/santhosh-tekuri/jsonschema/v5"
)

// tasks is interpreter.Tasks, restated so this test needs no Loom import.
type tasks interface {
	HasTask(name string) bool
	LookupTask(name string) (func(context.Context, json.RawMessage) (any, error), bool)
	TaskNames() []string
}

var _ tasks = builtins.Standard()

// call runs the standard task name with in encoded as its input (a
// json.RawMessage is passed as it is).
func call(t *testing.T, s *builtins.TaskSet, ctx context.Context, name string, in any) (any, error) {
	t.Helper()
	fn, ok := s.LookupTask(name)
	if !ok {
		t.Fatalf("no task %q", name)
	}
	raw, ok := in.(json.RawMessage)
	if !ok {
		var err error
		if raw, err = json.Marshal(in); err != nil {
			t.Fatal(err)
		}
	}
	return fn(ctx, raw)
}

// wantError checks err's type (through ErrorType) and that its message
// holds each of msg.
func wantError(t *testing.T, err error, typ string, msg ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", typ)
	}
	var typed interface{ ErrorType() string }
	if !errors.As(err, &typed) {
		t.Fatalf("error %q has no ErrorType, want %s", err, typ)
	}
	if typed.ErrorType() != typ {
		t.Fatalf("error type %q (%v), want %q", typed.ErrorType(), err, typ)
	}
	for _, m := range msg {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("error %q does not mention %q", err, m)
		}
	}
}

func errorData(t *testing.T, err error) map[string]any {
	t.Helper()
	var d interface{ ErrorData() any }
	if !errors.As(err, &d) {
		t.Fatalf("error %q has no ErrorData", err)
	}
	m, ok := d.ErrorData().(map[string]any)
	if !ok {
		t.Fatalf("error data %#v is not a map", d.ErrorData())
	}
	return m
}

// asJSON renders v canonically, to compare values whatever their Go types.
func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTaskSet(t *testing.T) {
	s := builtins.Standard()
	if got, want := s.TaskNames(), []string{"echo", "exec", "http", "log"}; !reflect.DeepEqual(got, want) {
		t.Errorf("TaskNames() = %v, want %v", got, want)
	}
	for _, n := range s.TaskNames() {
		if !s.HasTask(n) {
			t.Errorf("HasTask(%q) = false", n)
		}
		if fn, ok := s.LookupTask(n); !ok || fn == nil {
			t.Errorf("LookupTask(%q) found nothing", n)
		}
		if s.TaskInputSchema(n) == nil {
			t.Errorf("TaskInputSchema(%q) = nil", n)
		}
	}
	if s.HasTask("fetch_order") {
		t.Error(`HasTask("fetch_order") = true`)
	}
	if _, ok := s.LookupTask("fetch_order"); ok {
		t.Error(`LookupTask("fetch_order") found a task`)
	}
	if s.TaskInputSchema("fetch_order") != nil {
		t.Error(`TaskInputSchema("fetch_order") is not nil`)
	}
}

func TestIdempotencyKey(t *testing.T) {
	ctx := context.Background()
	if k := builtins.IdempotencyKey(ctx); k != "" {
		t.Errorf("IdempotencyKey(background) = %q", k)
	}
	ctx = builtins.WithIdempotencyKey(ctx, "exec-1/order")
	if k := builtins.IdempotencyKey(ctx); k != "exec-1/order" {
		t.Errorf("IdempotencyKey = %q", k)
	}
}

func TestEcho(t *testing.T) {
	s := builtins.Standard()
	for _, in := range []string{`{"a":[1,2.5,"x",true,null]}`, `"text"`, `7`, `null`, `[]`, `12345678901234567`} {
		out, err := call(t, s, context.Background(), "echo", json.RawMessage(in))
		if err != nil {
			t.Fatalf("echo %s: %v", in, err)
		}
		if got := asJSON(t, out); got != in {
			t.Errorf("echo %s = %s", in, got)
		}
	}
	out, err := call(t, s, context.Background(), "echo", json.RawMessage(`{"n": 3}`))
	if err != nil {
		t.Fatal(err)
	}
	if n := out.(map[string]any)["n"]; n != 3 {
		t.Errorf("echo gives n = %#v, want the int 3 (Loom's value model)", n)
	}
	if out, err := call(t, s, context.Background(), "echo", json.RawMessage(nil)); err != nil || out != nil {
		t.Errorf("echo of no input = %v, %v; want nil", out, err)
	}
}

func TestLog(t *testing.T) {
	var buf bytes.Buffer
	s := builtins.Standard(builtins.WithStderr(&buf))
	for _, in := range []any{
		map[string]any{"message": "started"},
		map[string]any{"message": "careful\n", "level": "warn"},
		map[string]any{"message": map[string]any{"n": 1}, "level": "debug"},
		map[string]any{"message": "bad", "level": nil},
	} {
		out, err := call(t, s, context.Background(), "log", in)
		if err != nil || out != nil {
			t.Fatalf("log %v = %v, %v", in, out, err)
		}
	}
	want := "[info] started\n[warn] careful\n[debug] {\"n\":1}\n[info] bad\n"
	if buf.String() != want {
		t.Errorf("log wrote %q, want %q", buf.String(), want)
	}
}

func TestLogInvalidInput(t *testing.T) {
	var buf bytes.Buffer
	s := builtins.Standard(builtins.WithStderr(&buf))
	for _, c := range []struct {
		in  any
		msg string
	}{
		{map[string]any{"message": "x", "level": "verbose"}, "`level` must be one of debug, info, warn, error"},
		{map[string]any{"message": "x", "level": 3}, "`level` must be one of"},
		{map[string]any{"level": "info"}, "`message` is required"},
		{nil, "`message` is required"},
		{map[string]any{"message": "x", "color": "red"}, `unknown key "color"`},
		{"hello", "the input must be a mapping with keys message, level, not a string"},
	} {
		_, err := call(t, s, context.Background(), "log", c.in)
		wantError(t, err, builtins.TypeInvalidInput, "log: ", c.msg)
	}
	if buf.Len() != 0 {
		t.Errorf("invalid log calls wrote %q", buf.String())
	}
}

// TestInputSchemas validates `with` values as written in a definition
// against each task's schema, the way definition does.
func TestInputSchemas(t *testing.T) {
	s := builtins.Standard()
	compiled := map[string]*jsonschema.Schema{}
	for _, n := range s.TaskNames() {
		c := jsonschema.NewCompiler()
		c.Draft = jsonschema.Draft7
		url := "mem://" + n + ".json"
		if err := c.AddResource(url, bytes.NewReader(s.TaskInputSchema(n))); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		sch, err := c.Compile(url)
		if err != nil {
			t.Fatalf("schema of %s does not compile: %v", n, err)
		}
		compiled[n] = sch
	}
	for _, c := range []struct {
		task, with string
		problem    string // "" when valid
	}{
		{"echo", `{"anything": [1, 2]}`, ""},
		{"echo", `null`, ""},
		{"log", `{"message": "hi"}`, ""},
		{"log", `{"message": {"n": 1}, "level": "error"}`, ""},
		{"log", `{"message": "hi", "level": "${ input.level }"}`, ""},
		{"log", `"${ input.log }"`, ""},
		{"log", `{"message": "hi", "level": "verbose"}`, "value must be one of"},
		{"log", `{"level": "info"}`, "missing properties: 'message'"},
		{"log", `{"message": "hi", "colour": "red"}`, "additionalProperties 'colour' not allowed"},
		{"log", `null`, "expected object, but got null"},
		{"exec", `{"command": ["sh", "-c", "echo hi"], "input": {"a": 1}, "env": {"A": "b", "N": 3}, "dir": "/tmp"}`, ""},
		{"exec", `{"command": ["sleep", "${ input.n }"]}`, ""},
		{"exec", `{"command": "${ input.argv }"}`, ""},
		{"exec", `{"command": "ls -l"}`, "expected array, but got string"},
		{"exec", `{"command": []}`, "minimum 1 items required"},
		{"exec", `{"input": 1}`, "missing properties: 'command'"},
		{"exec", `{"command": ["ls"], "env": {"A": {"b": 1}}}`, "expected string or number or boolean, but got object"},
		{"exec", `{"command": ["ls"], "stdin": "x"}`, "additionalProperties 'stdin' not allowed"},
		{"http", `{"url": "https://example.com/x", "method": "post", "headers": {"X-N": 1}, "body": {"a": 1}, "timeout": "1m30s"}`, ""},
		{"http", `{"url": "${ input.base }/orders", "timeout": "2d"}`, ""},
		{"http", `{"url": "${ input.base }/orders", "timeout": "12h1d"}`, ""},
		{"http", `{"url": "https://example.com", "timeout": "-1s"}`, "does not match pattern"},
		{"http", `{"url": "HTTP://example.com", "timeout": "${ vars.t }"}`, ""},
		{"http", `{"method": "GET"}`, "missing properties: 'url'"},
		{"http", `{"url": "example.com"}`, "does not match pattern"},
		{"http", `{"url": "https://example.com", "timeout": "30 seconds"}`, "does not match pattern"},
		{"http", `{"url": "https://example.com", "timeout": 30}`, "expected string, but got number"},
		{"http", `{"url": "https://example.com", "method": "GET /"}`, "does not match pattern"},
		{"http", `{"url": "https://example.com", "data": 1}`, "additionalProperties 'data' not allowed"},
	} {
		var v any
		if err := json.Unmarshal([]byte(c.with), &v); err != nil {
			t.Fatal(err)
		}
		err := compiled[c.task].Validate(v)
		switch {
		case c.problem == "" && err != nil:
			t.Errorf("%s %s: %v", c.task, c.with, err)
		case c.problem != "" && err == nil:
			t.Errorf("%s %s: valid, want %q", c.task, c.with, c.problem)
		case c.problem != "" && !strings.Contains(fmtAll(err), c.problem):
			t.Errorf("%s %s: %v\nwant %q", c.task, c.with, fmtAll(err), c.problem)
		}
	}
}

func fmtAll(err error) string {
	var ve *jsonschema.ValidationError
	if errors.As(err, &ve) {
		return ve.GoString()
	}
	return err.Error()
}
