package interpreter

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	"github.com/loomwork/loom/builtins"
)

// TaskFunc is a task as the engine calls it: the step's evaluated `with`
// value as JSON in, any JSON-encodable value out. It is an alias of an
// unnamed type so packages that must not import interpreter (builtins) can
// provide tasks.
type TaskFunc = func(ctx context.Context, input json.RawMessage) (any, error)

// Tasks is what the engine and the CLI need of a task registry. *Registry
// implements it, and so does builtins.Standard().
type Tasks interface {
	// HasTask reports whether name is registered (definition.Tasks).
	HasTask(name string) bool
	// LookupTask returns the task registered as name.
	LookupTask(name string) (TaskFunc, bool)
	// TaskNames lists the registered names, sorted.
	TaskNames() []string
}

// Registry maps task names to Go functions. It is safe for concurrent use.
type Registry struct {
	mu      sync.RWMutex
	tasks   map[string]TaskFunc
	schemas map[string][]byte // input JSON Schemas, of tasks that have one
}

// NewRegistry returns a registry holding the tasks of every given set (for
// instance builtins.Standard()); later sets win on a name clash.
func NewRegistry(include ...Tasks) *Registry {
	r := &Registry{tasks: map[string]TaskFunc{}, schemas: map[string][]byte{}}
	for _, set := range include {
		ts, _ := set.(inputSchemas)
		for _, name := range set.TaskNames() {
			fn, _ := set.LookupTask(name)
			r.tasks[name] = fn
			delete(r.schemas, name)
			if ts != nil {
				if sch := ts.TaskInputSchema(name); len(sch) > 0 {
					// Kept, so a catalog loaded against the registry
					// checks literal inputs as it would against the set.
					r.schemas[name] = sch
				}
			}
		}
	}
	return r
}

// Register adds a typed task: the step's `with` value is decoded into In
// with JSON semantics (unknown fields are an error of type "InvalidInput"),
// and the Out it returns is encoded back. Registering a name again replaces it.
func Register[In, Out any](r *Registry, name string, fn func(ctx context.Context, in In) (Out, error)) {
	r.Add(name, func(ctx context.Context, raw json.RawMessage) (any, error) {
		var in In
		if len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&in); err != nil {
				return nil, Errorf("InvalidInput", "task %s: input does not fit %T: %v", name, in, err)
			}
		}
		return fn(ctx, in)
	})
}

// Add registers an untyped task (replacing one of that name, and its
// input schema).
func (r *Registry) Add(name string, fn TaskFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tasks[name] = fn
	delete(r.schemas, name)
}

// inputSchemas is what a task set may add to Tasks: the JSON Schema of a
// task's input (definition checks literal `with` values against it).
type inputSchemas interface {
	TaskInputSchema(name string) []byte
}

// TaskInputSchema returns the input JSON Schema the task name came with
// (from a set such as builtins.Standard()), or nil.
func (r *Registry) TaskInputSchema(name string) []byte {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.schemas[name]
}

// HasTask implements Tasks.
func (r *Registry) HasTask(name string) bool {
	_, ok := r.LookupTask(name)
	return ok
}

// LookupTask implements Tasks.
func (r *Registry) LookupTask(name string) (TaskFunc, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	fn, ok := r.tasks[name]
	return fn, ok
}

// TaskNames implements Tasks.
func (r *Registry) TaskNames() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.tasks))
	for n := range r.tasks {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// TypedError is an error with a type that `retry.errors` and `catch.errors`
// match. Any error with an ErrorType() string method is matched the same
// way; this is the ready-made one.
type TypedError struct {
	Type    string
	Message string
	Data    any
}

// Errorf builds a *TypedError of type typ.
func Errorf(typ, format string, args ...any) error {
	return &TypedError{Type: typ, Message: fmt.Sprintf(format, args...)}
}

func (e *TypedError) Error() string { return e.Message }

// ErrorType returns the error's type.
func (e *TypedError) ErrorType() string { return e.Type }

// ErrorData returns the error's data (any JSON value).
func (e *TypedError) ErrorData() any { return e.Data }

// IdempotencyKey returns the stable key of the task attempt running under
// ctx: "<execution id>/<step path>". It is the same on every run of the same
// step, so a task can pass it to a service to make its effect happen once.
// It is builtins.IdempotencyKey: one context key for both.
func IdempotencyKey(ctx context.Context) string { return builtins.IdempotencyKey(ctx) }
