package builtins

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

const (
	// maxStdout bounds what exec keeps of a command's stdout: the output is
	// journaled, and a journal is no place for bulk data.
	maxStdout = 16 << 20
	// maxStderr bounds the stderr carried in an ExecFailed error (its end,
	// where the reason usually is).
	maxStderr = 4 << 10
	// execWaitDelay bounds how long exec waits, after the command exits or
	// is killed, for descendants that still hold its stdout or stderr.
	execWaitDelay = 2 * time.Second
)

type execInput struct {
	argv  []string
	stdin []byte // nil: no stdin
	env   []string
	dir   string
}

func parseExecInput(in json.RawMessage) (*execInput, error) {
	f, err := decodeObject("exec", in, "command", "input", "env", "dir")
	if err != nil {
		return nil, err
	}
	x := &execInput{}
	raw, ok := f["command"]
	if !ok || isAbsent(raw) {
		return nil, invalidInput("exec", "`command` is required: a list like [sh, -c, \"echo hi\"]")
	}
	var items []json.RawMessage
	if jsonKind(raw) != "a list" || json.Unmarshal(raw, &items) != nil {
		return nil, invalidInput("exec", "`command` must be a list of arguments like [sh, -c, \"echo hi\"], not %s", jsonKind(raw))
	}
	if len(items) == 0 {
		return nil, invalidInput("exec", "`command` must not be empty")
	}
	for i, it := range items {
		s, ok := scalarText(it)
		if !ok {
			return nil, invalidInput("exec", "`command[%d]` must be a string, not %s", i, jsonKind(it))
		}
		x.argv = append(x.argv, s)
	}
	if x.argv[0] == "" {
		return nil, invalidInput("exec", "`command[0]` (the program) must not be empty")
	}
	if raw, ok := f["input"]; ok {
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			return nil, invalidInput("exec", "`input` is not JSON: %v", err)
		}
		b.WriteByte('\n')
		x.stdin = b.Bytes()
	}
	env, err := stringMap("exec", "env", f["env"])
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return nil, invalidInput("exec", "`env` has an invalid variable name %q", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	x.env = cleanEnv()
	for _, k := range keys {
		x.env = append(x.env, k+"="+env[k]) // later entries win
	}
	if x.dir, err = optString("exec", "dir", f); err != nil {
		return nil, err
	}
	return x, nil
}

// inheritedEnv names the only variables a command inherits from Loom's
// environment (SPEC §5): enough to find programs and behave like a login
// shell, and nothing of Loom's own settings ($LOOM_DB may hold a database
// password, $LOOM_SECRET_* are secrets) or the operator's.
var inheritedEnv = []string{"PATH", "HOME", "LANG", "TZ"}

// cleanEnv is the environment a command starts from: the inheritedEnv
// variables that are set in Loom's environment.
func cleanEnv() []string {
	env := make([]string, 0, len(inheritedEnv))
	for _, k := range inheritedEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// maxForward bounds the stderr of a successful command that is forwarded
// (its end is kept).
const maxForward = 64 << 10

// exec is the exec task: execTask, with a successful command's stderr
// forwarded to the task set's stderr, each line prefixed with the step's
// path, so print-debugging works. A failed command's stderr is in its
// error instead.
func (s *TaskSet) exec(ctx context.Context, in json.RawMessage) (any, error) {
	return execTask(ctx, in, func(text string) {
		path := IdempotencyKey(ctx) // "<execution id>/<path>"; ids hold no "/"
		if _, p, ok := strings.Cut(path, "/"); ok {
			path = p
		}
		var b strings.Builder
		for _, line := range strings.Split(text, "\n") {
			b.WriteString("[" + path + "] " + strings.TrimRight(line, "\r") + "\n")
		}
		s.stderrMu.Lock()
		defer s.stderrMu.Unlock()
		_, _ = io.WriteString(s.stderr, b.String())
	})
}

// execTask runs a command (SPEC §5): the step's `input` on stdin as JSON,
// stdout back as the output (JSON when it parses, else trimmed text). A
// successful command's stderr, if any, is given to forward.
func execTask(ctx context.Context, in json.RawMessage, forward func(stderr string)) (any, error) {
	x, err := parseExecInput(in)
	if err != nil {
		return nil, err
	}
	name := x.argv[0]
	cmd := exec.CommandContext(ctx, name, x.argv[1:]...)
	cmd.Env = x.env // never nil: nil would mean Loom's whole environment
	cmd.Dir = x.dir
	if x.stdin != nil {
		cmd.Stdin = bytes.NewReader(x.stdin)
	}
	var stdout capWriter
	stdout.max = maxStdout
	var stderr, fwd tailWriter
	stderr.max, fwd.max = maxStderr, maxForward
	cmd.Stdout, cmd.Stderr = &stdout, io.MultiWriter(&stderr, &fwd)
	cmd.WaitDelay = execWaitDelay
	killGroup(cmd)

	unlock := lockThread()
	runErr := cmd.Run()
	unlock()
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, &TaskError{Type: TypeTimeout, Message: fmt.Sprintf("exec %q was killed: the step's deadline passed", name), Err: ctx.Err()}
		}
		return nil, fmt.Errorf("exec %q was killed: %w", name, ctx.Err())
	}
	if errors.Is(runErr, exec.ErrWaitDelay) {
		runErr = nil // the command itself succeeded; a descendant kept a pipe open
	}
	var exitErr *exec.ExitError
	if runErr != nil && !errors.As(runErr, &exitErr) {
		return nil, &TaskError{
			Type:    TypeExecFailed,
			Message: fmt.Sprintf("exec %q could not start: %v", name, unwrapAll(runErr)),
			Data:    map[string]any{"exit_code": -1, "stderr": ""},
			Err:     runErr,
		}
	}
	if stdout.overflow {
		return nil, &TaskError{
			Type:    TypeExecFailed,
			Message: fmt.Sprintf("exec %q wrote more than %d MiB to stdout", name, maxStdout>>20),
			Data:    map[string]any{"exit_code": exitCode(exitErr), "stderr": stderr.text()},
		}
	}
	out := bytes.TrimSpace(stdout.buf.Bytes())
	var value any
	var isJSON bool
	if len(out) > 0 && json.Valid(out) {
		if v, err := decodeValue(out); err == nil {
			value, isJSON = v, true
		}
	}
	if !isJSON {
		value = string(out)
	}
	if exitErr == nil {
		if t := fwd.text(); t != "" && forward != nil {
			forward(t)
		}
		return value, nil
	}
	if isJSON {
		if e := protocolError(value); e != nil {
			return nil, e
		}
	}
	code := exitCode(exitErr)
	errText := stderr.text()
	msg := fmt.Sprintf("exec %q exited with code %d", name, code)
	if code < 0 {
		msg = fmt.Sprintf("exec %q was ended by a signal (%v)", name, exitErr)
	}
	if last := lastLine(errText); last != "" {
		msg += ": " + last
	}
	return nil, &TaskError{
		Type:    TypeExecFailed,
		Message: msg,
		Data:    map[string]any{"exit_code": code, "stderr": errText},
		Err:     exitErr,
	}
}

// protocolError reads stdout of the form {"error": {"type": T, "message":
// M, "data": D}}: how a command in any language fails with a typed error.
func protocolError(v any) error {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	e, ok := obj["error"].(map[string]any)
	if !ok {
		return nil
	}
	typ, ok := e["type"].(string)
	if !ok || typ == "" {
		return nil
	}
	msg, _ := e["message"].(string)
	if msg == "" {
		msg = "the command failed with " + typ
	}
	return &TaskError{Type: typ, Message: msg, Data: e["data"]}
}

func exitCode(e *exec.ExitError) int {
	if e == nil {
		return 0
	}
	return e.ExitCode()
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[i+1:])
	}
	if len(s) > 200 {
		s = truncateUTF8(s, 200) + "…"
	}
	return s
}

func truncateUTF8(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// unwrapAll returns the innermost error, whose text is the reason without
// the wrapping "exec: …" prefixes.
func unwrapAll(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// capWriter keeps the first max bytes and drains the rest, so a chatty
// command never blocks on a full pipe.
type capWriter struct {
	buf      bytes.Buffer
	max      int
	overflow bool
}

func (w *capWriter) Write(p []byte) (int, error) {
	if room := w.max - w.buf.Len(); room < len(p) {
		w.overflow = true
		if room > 0 {
			w.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return w.buf.Write(p)
}

// tailWriter keeps the last max bytes written.
type tailWriter struct {
	buf []byte
	max int
	cut bool
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	if len(w.buf) > 2*w.max {
		w.buf = append(w.buf[:0], w.buf[len(w.buf)-w.max:]...)
		w.cut = true
	}
	return len(p), nil
}

// text is the kept tail, trimmed, starting at a character boundary and
// marked with "…" when the start was cut.
func (w *tailWriter) text() string {
	b := w.buf
	cut := w.cut
	if len(b) > w.max {
		b, cut = b[len(b)-w.max:], true
	}
	if cut {
		for len(b) > 0 && !utf8.RuneStart(b[0]) {
			b = b[1:]
		}
	}
	s := strings.TrimSpace(string(b))
	if cut {
		s = "…" + s
	}
	return s
}
