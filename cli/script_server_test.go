package cli_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loomwork/loom/cli"
	"github.com/loomwork/loom/interpreter"
	"github.com/rogpeppe/go-internal/testscript"
)

// The testscript suite both ways (SPEC §6, "The CLI as a client"):
// TestScriptServer runs the scripts again, and there every `exec loom
// run|resume|status|list|show|cancel` talks to a real `loom serve` on the
// script's journal, as $LOOM_SERVER. The scripts are the same files: their
// output and exit codes must be the same both ways. A line that cannot be
// the same is marked [!server] (or [server] for the other side), with the
// reason beside it.
//
// The harness lives in the loom program of the scripts (scriptLoom): for a
// client command it makes sure a serve runs with the command's journal,
// key file, secrets, limits and LOOM_* environment, and, for run, the PATH it
// runs as catalog; it restarts the serve (a drain, then a new process)
// when one of these changes. validate, replay and resume --due stay local,
// as do the commands the API does not cover (resume --definition) and
// those that name a server already.

// serveHarness, set in a script's environment, turns the harness on.
const serveHarness = "LOOM_SCRIPT_SERVE"

// clientCommands are the commands that talk to a server with --server.
var clientCommands = map[string]bool{"run": true, "resume": true, "status": true, "list": true, "show": true, "cancel": true}

// flagsWithValue are the flags of the client commands that take a value
// (the others are switches).
var flagsWithValue = map[string]bool{"db": true, "key-file": true, "secrets-dir": true, "workflow": true, "input": true,
	"input-file": true, "id": true, "pause": true, "definition": true, "state": true, "limit": true, "since": true,
	"server": true, "limits": true}

// scriptLoom is the loom program of the scripts: cli.Main, through a serve
// when the harness is on and the command is a client command.
func scriptLoom(reg func() interpreter.Tasks) int {
	if os.Getenv(serveHarness) != "" {
		if url, err := serveFor(os.Args[1:], reg); err != nil {
			fmt.Fprintf(os.Stderr, "script harness: %v\n", err)
			return 99
		} else if url != "" {
			os.Setenv("LOOM_SERVER", url)
		}
	}
	return cli.Main(reg())
}

// harnessArgs is what the harness reads of a command line.
type harnessArgs struct {
	cmd   string
	args  []string // positional
	flags map[string]string
}

func parseHarnessArgs(argv []string) harnessArgs {
	h := harnessArgs{flags: map[string]string{}}
	if len(argv) > 0 {
		h.cmd = argv[0]
	}
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			h.args = append(h.args, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !hasVal && flagsWithValue[name] && i+1 < len(argv) {
			i++
			val = argv[i]
		}
		h.flags[name] = val
	}
	return h
}

// serveConfig is everything a serve process is started with.
type serveConfig struct {
	Prog    string   `json:"prog"`
	Dir     string   `json:"dir"`
	Catalog string   `json:"catalog"`
	Digest  string   `json:"digest"`
	Args    []string `json:"args"` // --db, --key-file, --secrets-dir
	Env     []string `json:"env"`  // LOOM_* but the harness's and the client's own
}

// sameServer: a command other than run may use any serve of the journal
// with the same settings, whatever its catalog.
func (c serveConfig) sameServer(o serveConfig) bool {
	return c.Prog == o.Prog && slices.Equal(c.Args, o.Args) && slices.Equal(c.Env, o.Env)
}

type serveState struct {
	Config serveConfig `json:"config"`
	PID    int         `json:"pid"`
	URL    string      `json:"url"`
}

// serveFor returns the URL of a serve for this command ("" when it stays
// local), starting or restarting one if needed.
func serveFor(argv []string, reg func() interpreter.Tasks) (string, error) {
	h := parseHarnessArgs(argv)
	_, due := h.flags["due"]
	_, upgrade := h.flags["definition"]
	_, help := h.flags["help"]
	_, server := h.flags["server"]
	if !clientCommands[h.cmd] || due || upgrade || help || server || os.Getenv("LOOM_SERVER") != "" {
		return "", nil
	}
	dir := filepath.Join(os.TempDir(), "loomserve")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return "", err
	}
	defer unlock()

	cwd, _ := os.Getwd()
	prog, _ := os.Executable()
	want := serveConfig{Prog: prog, Dir: cwd}
	db := h.flags["db"]
	if db == "" {
		db = os.Getenv("LOOM_DB")
	}
	if db == "" {
		db = filepath.Join(".loom", "loom.db")
	}
	if !strings.Contains(db, "://") {
		db, _ = filepath.Abs(db)
	}
	want.Args = []string{"--db", db}
	for _, f := range []string{"key-file", "secrets-dir"} {
		if v, ok := h.flags[f]; ok {
			abs, _ := filepath.Abs(v)
			want.Args = append(want.Args, "--"+f, abs)
		}
	}
	if v, ok := h.flags["limits"]; ok && cli.CheckLimits(v) == nil {
		// The command's limits are the serve's: it drives the execution.
		// (A bad one is refused by the client before it asks the server.)
		want.Args = append(want.Args, "--limits", v)
	}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "LOOM_") && k != serveHarness && k != "LOOM_SERVER" && k != "LOOM_TOKEN" {
			want.Env = append(want.Env, kv)
		}
	}
	slices.Sort(want.Env)

	var cur *serveState
	if b, err := os.ReadFile(filepath.Join(dir, "state.json")); err == nil {
		cur = new(serveState)
		if err := json.Unmarshal(b, cur); err != nil {
			return "", err
		}
	}
	if h.cmd == "run" && len(h.args) == 1 {
		// The serve's catalog is the PATH this run runs, if it loads (a
		// bad one is refused by the client before it asks the server).
		if _, err := interpreter.Load(h.args[0], reg()); err == nil {
			want.Catalog, want.Digest = h.args[0], digest(h.args[0])
		}
	}
	if cur != nil && cur.Config.sameServer(want) && (want.Catalog == "" || cur.Config.Catalog == want.Catalog && cur.Config.Dir == want.Dir && cur.Config.Digest == want.Digest) {
		return cur.URL, nil
	}
	if want.Catalog == "" {
		if cur != nil && cur.Config.sameServer(want) {
			return cur.URL, nil
		}
		// Nothing run yet: a catalog of one idle workflow.
		want.Dir = dir
		want.Catalog = filepath.Join(dir, "idle.yaml")
		if err := os.WriteFile(want.Catalog, []byte("name: harness_idle\nsteps:\n  - {id: a, task: echo, with: 1}\n"), 0o644); err != nil {
			return "", err
		}
	}
	if cur != nil {
		if err := stopServe(cur.PID); err != nil {
			return "", err
		}
		os.Remove(filepath.Join(dir, "state.json"))
	}
	st, err := startServe(dir, want)
	if err != nil {
		return "", err
	}
	b, _ := json.Marshal(st)
	return st.URL, os.WriteFile(filepath.Join(dir, "state.json"), b, 0o644)
}

// digest is a hash of the files at path, so that a catalog edited by the
// script is served anew.
func digest(path string) string {
	h := sha256.New()
	filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			fmt.Fprintf(h, "%s %d\n", p, len(b))
			h.Write(b)
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))
}

func startServe(dir string, c serveConfig) (*serveState, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	logf, err := os.CreateTemp(dir, "serve-*.log")
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	args := append([]string{"serve", c.Catalog, "--listen", addr, "--drain", "5s"}, c.Args...)
	cmd := exec.Command(c.Prog, args...)
	cmd.Dir = c.Dir
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, serveHarness+"=") || strings.HasPrefix(kv, "LOOM_SERVER=")
	})
	// Its own process group: it outlives this command, and the script's
	// end stops it (stopScriptServe).
	cmd.Stdout, cmd.Stderr = logf, logf
	detach(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	url := "http://" + addr
	for range 600 {
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logf.Name())
			return nil, fmt.Errorf("loom serve %s exited (%v):\n%s", strings.Join(args, " "), err, b)
		default:
		}
		if resp, err := http.Get(url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return &serveState{Config: c, PID: cmd.Process.Pid, URL: url}, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill()
	return nil, fmt.Errorf("loom serve %s did not become ready in 30 s", strings.Join(args, " "))
}

// stopScriptServe stops the serve a script's commands started, at the
// script's end.
func stopScriptServe(work string) error {
	b, err := os.ReadFile(filepath.Join(work, ".tmp", "loomserve", "state.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var st serveState
	if err := json.Unmarshal(b, &st); err != nil {
		return err
	}
	return stopServe(st.PID)
}

// serverScripts are the scripts TestScriptServer runs with
// LOOM_SCRIPT_SERVER=1 (as .ci/run does): each client command and its
// refusals, in a fraction of the time of all of them. LOOM_SCRIPT_SERVER=all
// runs every script that uses a client command. Without the variable it
// is skipped: ./cli's race run is near go test's 10-minute default on a
// busy machine already.
var serverScripts = map[string]bool{"badinput": true, "busy": true, "cancel": true, "damage": true, "ids": true, "inspect": true,
	"pause": true, "rerun": true, "run": true, "secrets": true, "showfull": true, "statusholder": true}

// TestScriptServer runs the scripts that use a client command again, with
// those commands going through a real loom serve (above). It starts a
// serve process per script.
func TestScriptServer(t *testing.T) {
	mode := os.Getenv("LOOM_SCRIPT_SERVER")
	if testing.Short() || mode == "" {
		t.Skip("the scripts again through loom serve processes: set LOOM_SCRIPT_SERVER=1 (twelve scripts) or all")
	}
	all := mode == "all"
	p := scriptParams(true)
	p.Dir = ""
	files, err := filepath.Glob("testdata/script/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if usesClient(string(b)) && (all || serverScripts[strings.TrimSuffix(filepath.Base(f), ".txtar")]) {
			p.Files = append(p.Files, f)
		}
	}
	setup := p.Setup
	p.Setup = func(env *testscript.Env) error {
		if err := setup(env); err != nil {
			return err
		}
		env.Setenv(serveHarness, "1")
		env.Defer(func() {
			if err := stopScriptServe(env.WorkDir); err != nil {
				env.T().Fatal(err)
			}
		})
		return nil
	}
	testscript.Run(t, p)
}

// usesClient: the script runs a client command, and no serve of its own.
func usesClient(script string) bool {
	client := false
	for _, line := range strings.Split(script, "\n") {
		f := strings.Fields(line)
		for i := 0; i+2 < len(f); i++ {
			if f[i] == "exec" && (f[i+1] == "loom" || f[i+1] == "loom-teams") {
				if f[i+2] == "serve" {
					return false
				}
				client = client || clientCommands[f[i+2]]
			}
		}
		if strings.HasPrefix(line, "-- ") {
			break
		}
	}
	return client
}
