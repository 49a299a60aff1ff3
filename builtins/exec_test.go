//go:build unix

package builtins_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/loomwork/loom/builtins"
)

// sh runs script with /bin/sh through the exec task; with adds other keys.
func sh(t *testing.T, ctx context.Context, script string, with map[string]any) (any, error) {
	t.Helper()
	in := map[string]any{"command": []string{"/bin/sh", "-c", script}}
	for k, v := range with {
		in[k] = v
	}
	return call(t, builtins.Standard(), ctx, "exec", in)
}

func TestExecOutput(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name, script string
		with         map[string]any
		want         string // the output as JSON
	}{
		{"json object", `echo '{"total": 3, "items": ["a"]}'`, nil, `{"items":["a"],"total":3}`},
		{"json number", `echo 42`, nil, `42`},
		{"text trimmed", `printf '  hello world \n\n'`, nil, `"hello world"`},
		{"not quite json", `echo '{"a": 1} trailing'`, nil, `"{\"a\": 1} trailing"`},
		{"empty stdout", `true`, nil, `""`},
		{"stdin is the input as json", `cat`, map[string]any{"input": map[string]any{"n": 1, "s": "x"}}, `{"n":1,"s":"x"}`},
		{"null input is written", `cat`, map[string]any{"input": nil}, `null`},
		{"no input means empty stdin", `wc -c < /dev/stdin | tr -d ' '`, nil, `0`},
		{"env added to the inherited PATH and HOME", `printf '%s %s %s %s' "$LOOM_A" "$LOOM_N" "${HOME:+home}" "${PATH:+path}"`, map[string]any{"env": map[string]any{"LOOM_A": "x y", "LOOM_N": 3}}, `"x y 3 home path"`},
		{"env overrides", `printf %s "$HOME"`, map[string]any{"env": map[string]any{"HOME": "/nowhere"}}, `"/nowhere"`},
		{"dir", `pwd`, map[string]any{"dir": "/"}, `"/"`},
		{"exit 0 error object is output", `echo '{"error": {"type": "Nope", "message": "m"}}'`, nil, `{"error":{"message":"m","type":"Nope"}}`},
		{"stderr ignored on success", `echo oops >&2; echo ok`, nil, `"ok"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := sh(t, ctx, c.script, c.with)
			if err != nil {
				t.Fatal(err)
			}
			if got := asJSON(t, out); got != c.want {
				t.Errorf("output %s, want %s", got, c.want)
			}
		})
	}
}

// TestExecCleanEnvironment checks that a command sees PATH, HOME, LANG, TZ
// and what its step's env names, never the rest of Loom's environment: not
// the journal's DSN, not a secret, not an arbitrary variable of the parent.
func TestExecCleanEnvironment(t *testing.T) {
	t.Setenv("LOOM_DB", "postgres://loom:hunter2@db/loom")
	t.Setenv("LOOM_SECRET_TOKEN", "s3cr3t")
	t.Setenv("SOME_PARENT_VARIABLE", "visible?")
	t.Setenv("HOME", "/home/loom")
	t.Setenv("LANG", "C.UTF-8")
	t.Setenv("TZ", "Europe/Paris")
	out, err := sh(t, context.Background(), `env | sort`, map[string]any{"env": map[string]any{"STEP_VAR": "mine", "LOOM_DB": "given"}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(out.(string), "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "PWD", "SHLVL", "_": // set by the shell itself
			continue
		case "PATH":
			v = "…"
		}
		names = append(names, k+"="+v)
	}
	want := "HOME=/home/loom LANG=C.UTF-8 LOOM_DB=given PATH=… STEP_VAR=mine TZ=Europe/Paris"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("the command's environment is\n%s\nwant\n%s", got, want)
	}
}

func TestExecArgvScalars(t *testing.T) {
	out, err := call(t, builtins.Standard(), context.Background(), "exec",
		json.RawMessage(`{"command": ["/bin/sh", "-c", "echo \"$0 $1\"", 7, true]}`))
	if err != nil {
		t.Fatal(err)
	}
	if out != "7 true" {
		t.Errorf("output %#v, want \"7 true\"", out)
	}
}

func TestExecNonZeroExit(t *testing.T) {
	_, err := sh(t, context.Background(), `echo partial; echo 'first line' >&2; echo '  disk full  ' >&2; exit 3`, nil)
	wantError(t, err, builtins.TypeExecFailed, `exec "/bin/sh" exited with code 3: disk full`)
	d := errorData(t, err)
	if d["exit_code"] != 3 || d["stderr"] != "first line\n  disk full" {
		t.Errorf("data %#v", d)
	}
}

func TestExecStderrCapped(t *testing.T) {
	_, err := sh(t, context.Background(), `i=0; while [ $i -lt 2000 ]; do echo "line $i of noise" >&2; i=$((i+1)); done; exit 1`, nil)
	wantError(t, err, builtins.TypeExecFailed, "line 1999 of noise")
	s := errorData(t, err)["stderr"].(string)
	if len(s) > 4<<10+len("…") || !strings.HasPrefix(s, "…") || !strings.HasSuffix(s, "line 1999 of noise") {
		t.Errorf("stderr of %d bytes, from %q to %q", len(s), s[:20], s[len(s)-20:])
	}
}

func TestExecErrorProtocol(t *testing.T) {
	_, err := sh(t, context.Background(), `echo '{"error": {"type": "PaymentDeclined", "message": "card expired", "data": {"code": 51}}}'; echo ignored >&2; exit 1`, nil)
	wantError(t, err, "PaymentDeclined", "card expired")
	if d := errorData(t, err); d["code"] != 51 {
		t.Errorf("data %#v", d)
	}

	_, err = sh(t, context.Background(), `echo '{"error": {"type": "Busy"}}'; exit 2`, nil)
	wantError(t, err, "Busy", "Busy")
	var d interface{ ErrorData() any }
	if errors.As(err, &d); d.ErrorData() != nil {
		t.Errorf("data %#v, want nil", d.ErrorData())
	}

	// Not the protocol's shape: a plain failure.
	for _, out := range []string{`{"error": "text"}`, `{"error": {"type": 3}}`, `{"error": {"message": "m"}}`, `[1]`} {
		_, err = sh(t, context.Background(), `echo '`+out+`'; exit 4`, nil)
		wantError(t, err, builtins.TypeExecFailed, "code 4")
	}
}

func TestExecCannotStart(t *testing.T) {
	_, err := call(t, builtins.Standard(), context.Background(), "exec", map[string]any{"command": []string{"loom-no-such-program"}})
	wantError(t, err, builtins.TypeExecFailed, `exec "loom-no-such-program" could not start`, "not found")
	if d := errorData(t, err); d["exit_code"] != -1 {
		t.Errorf("data %#v", d)
	}
	_, err = call(t, builtins.Standard(), context.Background(), "exec", map[string]any{"command": []string{"true"}, "dir": "/no/such/dir"})
	wantError(t, err, builtins.TypeExecFailed, "could not start")
}

func TestExecSignal(t *testing.T) {
	_, err := sh(t, context.Background(), `kill -9 $$`, nil)
	wantError(t, err, builtins.TypeExecFailed, "ended by a signal", "killed")
	if d := errorData(t, err); d["exit_code"] != -1 {
		t.Errorf("data %#v", d)
	}
}

// TestExecCancel checks that cancelling kills the whole process group: the
// script's child would otherwise live on and keep the pipes open.
func TestExecCancel(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := sh(t, ctx, `sleep 60 & echo $! > '`+pidFile+`.tmp'; mv '`+pidFile+`.tmp' '`+pidFile+`'; wait`, nil)
		done <- err
	}()
	var pid int
	for start := time.Now(); pid == 0; {
		select {
		case err := <-done:
			t.Fatalf("exec ended before cancel: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		if b, err := os.ReadFile(pidFile); err == nil {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("the script never started")
		}
	}
	cancelled := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("exec did not return after cancel")
	}
	// Returning before the wait delay means the pipes closed: the child died.
	if d := time.Since(cancelled); d > time.Second {
		t.Errorf("exec took %v to return after cancel", d)
	}
	for start := time.Now(); alive(pid); {
		if time.Since(start) > 5*time.Second {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the script's child %d outlived the cancel", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether pid runs (a zombie, dead but not yet reaped by
// whoever adopted it, does not count).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !os.IsNotExist(err) // no /proc: trust kill
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}

func TestExecDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := sh(t, ctx, `sleep 60`, nil)
	wantError(t, err, builtins.TypeTimeout, "deadline")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%v does not wrap DeadlineExceeded", err)
	}
}

func TestExecInvalidInput(t *testing.T) {
	for _, c := range []struct {
		in  string
		msg string
	}{
		{`null`, "`command` is required"},
		{`{}`, "`command` is required"},
		{`{"command": "ls -l"}`, "`command` must be a list of arguments like [sh, -c, \"echo hi\"], not a string"},
		{`{"command": []}`, "`command` must not be empty"},
		{`{"command": [""]}`, "`command[0]` (the program) must not be empty"},
		{`{"command": ["ls", {"a": 1}]}`, "`command[1]` must be a string, not a mapping"},
		{`{"command": ["ls"], "env": ["A=b"]}`, "`env` must be a mapping of names to strings, not a list"},
		{`{"command": ["ls"], "env": {"A": null}}`, "`env.A` must be a string, number or boolean, not null"},
		{`{"command": ["ls"], "env": {"A=B": "c"}}`, "invalid variable name"},
		{`{"command": ["ls"], "dir": 3}`, "`dir` must be a string, not a number"},
		{`{"command": ["ls"], "args": []}`, `unknown key "args" (expected command, input, env, dir)`},
		{`[1]`, "the input must be a mapping"},
	} {
		_, err := call(t, builtins.Standard(), context.Background(), "exec", json.RawMessage(c.in))
		wantError(t, err, builtins.TypeInvalidInput, "exec: ", c.msg)
	}
}

func TestExecStdoutTooLarge(t *testing.T) {
	_, err := sh(t, context.Background(), `head -c 17000000 /dev/zero | tr '\0' x; echo done >&2`, nil)
	wantError(t, err, builtins.TypeExecFailed, "more than 16 MiB to stdout")
	if d := errorData(t, err); d["exit_code"] != 0 || d["stderr"] != "done" {
		t.Errorf("data %#v", d)
	}
}

// TestExecBackgroundChild: a child left running in the background with the
// pipes open does not hold the step past the wait delay.
func TestExecBackgroundChild(t *testing.T) {
	start := time.Now()
	out, err := sh(t, context.Background(), `sleep 8 & echo started`, nil)
	if err != nil || out != "started" {
		t.Fatalf("out %v, err %v", out, err)
	}
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("exec returned after %v", d)
	}
}

// TestExecIgnoresUnreadInput: a command that exits without reading a large
// input succeeds (the broken pipe is not its failure).
func TestExecIgnoresUnreadInput(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	out, err := sh(t, context.Background(), `echo fine`, map[string]any{"input": big})
	if err != nil || out != "fine" {
		t.Fatalf("out %v, err %v", out, err)
	}
}

func TestExecLongStderrLine(t *testing.T) {
	_, err := sh(t, context.Background(), `i=0; while [ $i -lt 300 ]; do printf 'é' >&2; i=$((i+1)); done; exit 1`, nil)
	wantError(t, err, builtins.TypeExecFailed, "code 1: éé")
	if !utf8.ValidString(err.Error()) || !strings.HasSuffix(err.Error(), "é…") || len(err.Error()) > 260 {
		t.Errorf("message %q", err)
	}
	if s := errorData(t, err)["stderr"]; s != strings.Repeat("é", 300) {
		t.Errorf("stderr %q", s)
	}
}
