package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/loomwork/loom/clock"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/sealed"
)

// Main runs the loom command named by os.Args over tasks and returns the
// exit status: os.Exit(cli.Main(reg)) is a whole loom binary. An interrupt
// (Ctrl-C) or SIGTERM stops a running execution cleanly; it stays RUNNING
// and `loom resume` continues it.
func Main(tasks interpreter.Tasks) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second interrupt kills at once
	}()
	return run(ctx, tasks, progName(os.Args[0]), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv, true)
}

// progName is the name the binary was called by, for the commands it
// prints ("loom resume …"); a custom binary prints its own name.
func progName(arg0 string) string {
	name := strings.TrimSuffix(filepath.Base(arg0), ".exe")
	if name == "" || name == "." || name == string(filepath.Separator) {
		return "loom"
	}
	return name
}

// Run runs one loom command line (without the program name) over tasks and
// returns its exit status. It is Main without the process: tests and
// embedding programs give it their own streams and environment.
func Run(tasks interpreter.Tasks, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string, opts ...Option) int {
	return run(context.Background(), tasks, "loom", args, stdin, stdout, stderr, getenv, false, opts...)
}

// Option changes how Run runs a command.
type Option func(*app)

// WithClock runs the command on clk instead of the system's clock: the
// journal's time stamps and lease expiries, the engine's timers and
// deadlines, and what counts as due. Tests of a program that embeds the
// CLI use it to be at a pause's deadline without waiting for it.
func WithClock(clk clock.Clock) Option { return func(a *app) { a.clock = clk } }

func run(ctx context.Context, tasks interpreter.Tasks, prog string, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string, exiting bool, opts ...Option) (code int) {
	if tasks == nil {
		tasks = interpreter.NewRegistry()
	}
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	a := &app{ctx: ctx, tasks: tasks, name: prog, exiting: exiting, stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv,
		clock: clock.System{}}
	for _, o := range opts {
		o(a)
	}
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "%s: internal error: %v; this is a bug in loom, please report it with the command line that caused it\n", prog, r)
			code = ExitFailed
		}
	}()
	return a.dispatch(args)
}

// app is one invocation: its streams, environment and parsed command line.
type app struct {
	ctx            context.Context
	tasks          interpreter.Tasks
	name           string // the program's name, "loom" unless a custom binary
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// exiting: the process ends when the command returns (Main).
	exiting bool

	cmd *command
	p   parsed
	// view is the journal a view command (status, show, list) reads
	// through, which knows what it could not decrypt.
	view *sealed.Journal
	// journalUsed names the journal the command opened ("" before it
	// opens one), for messages and records.
	journalUsed string
	// viaServer: the command talks to a loom serve (--server), not a journal.
	viaServer bool
	// clock is the time the command runs at (WithClock; the system's).
	clock clock.Clock
	// dbConns caps a PostgreSQL journal's connections (serve's --db-conns;
	// 0: the pool's default).
	dbConns int
}

// command is one loom subcommand.
type command struct {
	name    string
	usage   string // after "loom "
	summary string
	help    string
	flags   []flagSpec
	// minArgs/maxArgs bound the positional arguments (maxArgs < 0: no bound).
	minArgs, maxArgs int
	// local: the command opens no journal, so it takes no --db.
	local bool
	run   func(a *app) error
}

var (
	flagDB    = flagSpec{"db", "PATH", "the journal (default $LOOM_DB, else .loom/loom.db)"}
	flagJSON  = flagSpec{"json", "", "print JSON instead of text"}
	flagHelp  = flagSpec{"help", "", "show this help"}
	flagVerb  = flagSpec{"verbose", "", "say which journal is read (-v)"}
	flagQuiet = flagSpec{"quiet", "", "print no progress or status on stderr (errors still)"}
	flagInput = flagSpec{"input", "JSON", "the input as a JSON value"}
	flagFile  = flagSpec{"input-file", "FILE", "read the input from FILE (- for stdin)"}
)

// commands is the command table, in the order the usage lists them. The
// core commands are registered below; each further command registers
// itself from the init of its own file (cmd_NAME.go: register(&command{…})),
// so commands added in parallel never touch the same lines.
var commands []*command

// register adds commands to the table, giving each the flags every command
// shares (--db unless it is local, and --help).
func register(cs ...*command) {
	for _, c := range cs {
		if !c.local {
			c.flags = append(c.flags, flagDB, flagVerb)
		}
		c.flags = append(c.flags, flagHelp)
		commands = append(commands, c)
	}
}

func init() {
	register(
		&command{name: "validate", usage: "validate PATH... [--no-task-check]", minArgs: 1, maxArgs: -1,
			summary: "check workflow files and print every problem",
			help: `Checks each file or directory (a catalog of its *.yaml and *.yml files) and
prints every problem on stderr as file:line:col: message. Prints nothing and
exits 0 when all are valid; exits 2 when any problem is found.

Task names are checked against the tasks of this binary; --no-task-check
skips that for definitions meant for a binary with other tasks.`,
			flags: []flagSpec{{"no-task-check", "", "do not check task names against this binary's tasks"}},
			run:   (*app).validate},
		&command{name: "run", usage: "run PATH [--workflow NAME] [--input JSON | --input-file FILE] [--id ID] [--no-wait] [--json] [--quiet]", minArgs: 1, maxArgs: 1,
			summary: "start an execution and drive it until it completes, fails or pauses",
			help: `Starts an execution of the only workflow in PATH (a file or a directory), or
of the one --workflow names, and drives it in this process until it completes,
fails, pauses or waits on a timer. It waits out sleep timers itself unless
--no-wait, which journals the timer and returns (state WAITING). --id names
the execution (refused if the id is taken, so a retried start runs once);
by default it gets a new random id.

On completion only the workflow's output is printed on stdout, as one line of
JSON; status and progress go to stderr. --json prints the whole execution
record instead, whatever the outcome.

Exit status: 0 completed, 1 failed or cancelled, 2 refused with nothing done
(usage, definition, input), 3 paused, waiting or interrupted (loom resume
continues it), 4 busy.`,
			flags: []flagSpec{{"workflow", "NAME", "the workflow to run when PATH holds several"}, flagInput, flagFile,
				{"id", "ID", "the execution's id (default: a new random one)"},
				{"no-wait", "", "do not wait out sleep timers: return with the execution WAITING"}, flagLimit, flagJSON, flagQuiet},
			run: (*app).runCmd},
		&command{name: "resume", usage: "resume ID [--input JSON | --input-file FILE] [--pause NAME_OR_PATH] [--definition PATH] [--json]\n       loom resume --due [--json]", minArgs: 0, maxArgs: 1,
			summary: "continue a paused, waiting or interrupted execution",
			help: `Continues execution ID: delivers the payload (--input or --input-file) to its
open pause, or continues it when it waits on a timer or its runner died.
--pause picks the pause (by name or path) when several are open. --definition
moves the execution to a new definition: its journal is replayed against it
first, and nothing is written if they diverge. A finished execution is
reported again, running nothing.

--due continues every execution whose timer is due or whose runner is gone
(for cron); executions another runner holds are skipped.

Output and exit status are those of loom run.`,
			flags: []flagSpec{flagInput, flagFile, {"pause", "NAME_OR_PATH", "the pause to resume when several are open"},
				{"definition", "PATH", "upgrade the execution to this definition"},
				{"due", "", "continue every due or orphaned execution"},
				{"no-wait", "", "do not wait out sleep timers"}, flagLimit, flagJSON, flagQuiet},
			run: (*app).resume},
		&command{name: "status", usage: "status ID [--json]", minArgs: 1, maxArgs: 1,
			summary: "print an execution's state",
			help: `Prints the state of execution ID: its workflow, state, open pauses, output or
error. Exits 0 whatever the state, 2 for an unknown id.`,
			flags: []flagSpec{flagJSON}, run: (*app).status},
		&command{name: "list", usage: "list [--state S] [--workflow W] [--since DURATION] [--all] [--limit N] [--json]", minArgs: 0, maxArgs: 0,
			summary: "list executions, newest first",
			help: `Lists executions, newest first, as a table (id, workflow, state, updated):
the newest 50 unless --limit says otherwise (--limit 0 lists all). Child
executions (of call and map) are left out unless --all. An absent journal
lists nothing.`,
			flags: []flagSpec{{"state", "S", "only executions in state S (RUNNING, PAUSED, WAITING, COMPLETED, FAILED, CANCELLED)"},
				{"workflow", "W", "only executions of workflow W"}, {"all", "", "include child executions"},
				{"limit", "N", "list at most N executions (default 50; 0 lists all)"},
				{"since", "DURATION", "only executions created in the last DURATION (1h, 7d) or since an RFC 3339 time"}, flagJSON},
			run: (*app).list},
		&command{name: "show", usage: "show ID [--full] [--json]", minArgs: 1, maxArgs: 1,
			summary: "print an execution's journal as a timeline",
			help: `Prints the journal of execution ID as a timeline: time, step path, event,
duration and the value, cut to fit a line unless --full; then the child
executions (of call and map) with their ids. --json prints the events whole.`,
			flags: []flagSpec{{"full", "", "show whole values, not cut"}, flagJSON}, run: (*app).show},
		&command{name: "replay", usage: "replay ID [--json]", minArgs: 1, maxArgs: 1,
			summary: "re-derive an execution from its journal and check it",
			help: `Re-derives the outcome of execution ID from its definition and journal alone,
running no task, and checks it matches what was recorded. Exits 0 when it
matches, 1 when it does not (each difference is printed).`,
			flags: []flagSpec{flagJSON}, run: (*app).replay},
		&command{name: "cancel", usage: "cancel ID [--json]\n       loom cancel --state S [--workflow W] [--dry-run]", minArgs: 0, maxArgs: 1,
			summary: "cancel an execution and run its compensations",
			help: `Cancels execution ID (and its children): the compensations recorded so far
run in reverse order and it becomes CANCELLED. Refused (exit 2) for a
finished execution.

--state S (RUNNING, PAUSED or WAITING) cancels every root execution in that
state, of --workflow W only if given; --dry-run lists them and cancels
nothing.`,
			flags: []flagSpec{{"state", "S", "bulk: cancel every root execution in state S"},
				{"workflow", "W", "bulk: only executions of workflow W"},
				{"dry-run", "", "bulk: list what would be cancelled, cancel nothing"}, flagJSON},
			run: (*app).cancel},
		testCommand,
		checkCommand,
		rerunCommand,
		pruneCommand,
		vacuumCommand,
		schedulesCommand,
		&command{name: "schema", usage: "schema", minArgs: 0, maxArgs: 0,
			summary: "print the workflow definition JSON Schema",
			help: `Prints the JSON Schema of workflow files, for editors: put
# yaml-language-server: $schema=PATH at the top of a workflow file.`,
			local: true, run: (*app).schema},
		graphCommand,
		doctorCommand,
		serveCommand,
		tokenCommand,
		&command{name: "help", usage: "help [COMMAND | TOPIC]", minArgs: 0, maxArgs: 1,
			summary: "show help for loom, one command, or a reference page",
			local:   true, run: (*app).helpCmd},
	)
}

func lookupCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (a *app) dispatch(args []string) int {
	if len(args) == 0 {
		a.usage(a.stderr)
		return ExitRefused
	}
	name := args[0]
	switch name {
	case "-h", "--help", "-help":
		a.usage(a.stdout)
		return ExitOK
	case "--version", "-version":
		name = "version"
	}
	a.cmd = lookupCommand(name)
	if a.cmd == nil {
		msg := fmt.Sprintf("unknown command %q", name)
		if s := suggest(name); s != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", s)
		}
		return a.fail(usagef("%s", msg))
	}
	p, err := parseArgs(a.cmd.name, a.cmd.flags, args[1:])
	if err != nil {
		return a.fail(err)
	}
	a.p = p
	if p.has("help") {
		a.commandHelp(a.stdout, a.cmd)
		return ExitOK
	}
	if n := len(p.args); n < a.cmd.minArgs || (a.cmd.maxArgs >= 0 && n > a.cmd.maxArgs) {
		if !(a.cmd.name == "resume" && p.has("due")) {
			return a.fail(usagef("usage: loom %s", strings.SplitN(a.cmd.usage, "\n", 2)[0]))
		}
	}
	err = a.cmd.run(a)
	a.noteEncrypted()
	return a.fail(err)
}

// fail prints err as one line on stderr and returns its exit status. A
// *statusError carries a status whose reason was printed already.
func (a *app) fail(err error) int {
	if err == nil {
		return ExitOK
	}
	if s, ok := err.(*statusError); ok {
		return s.code
	}
	cmd := ""
	prefix := a.prog() + ": "
	if a.cmd != nil {
		cmd = a.cmd.name
		prefix = a.prog() + " " + cmd + ": "
	}
	msg := strings.TrimSpace(err.Error())
	var ue *journal.UnavailableError
	if errors.As(err, &ue) && !errors.As(err, new(*outageError)) {
		msg = ue.Error() // what is unavailable, without the layers that wrapped it
	}
	if _, ok := err.(*problemsError); ok && a.cmd != nil && a.cmd.name == "validate" {
		return exitCode(err) // validate already printed every problem
	}
	h := hint(a.prog(), cmd, err)
	if a.journalUsed != "" && (errors.Is(err, interpreter.ErrNotFound) || errors.Is(err, journal.ErrNotFound)) {
		h = "looked in the journal " + a.journalUsed + " (--db or $LOOM_DB names another); `" + a.prog() + " list` shows its executions"
		if a.viaServer {
			h = "asked the server " + a.journalUsed + "; `" + a.prog() + " list` shows its executions"
		}
	}
	if h != "" {
		msg += "; " + h
	}
	fmt.Fprintln(a.stderr, prefix+safe(oneLine(msg)))
	return exitCode(err)
}

func (a *app) prog() string { return a.name }

// statusError ends a command with an exit status whose reason was already
// printed (an execution's outcome).
type statusError struct{ code int }

func (e *statusError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func exitWith(code int) error {
	if code == ExitOK {
		return nil
	}
	return &statusError{code}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

func (a *app) usage(w io.Writer) {
	fmt.Fprint(w, `loom runs durable YAML workflows.

Usage:
  loom COMMAND [ARGS] [FLAGS]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-*s %s\n", nameWidth(), c.name, c.summary)
	}
	topicsUsage(w)
	fmt.Fprint(w, `
Flags may come before or after the arguments. The journal is --db PATH, else
$LOOM_DB, else .loom/loom.db. "loom help COMMAND" shows a command's usage.
`)
}

// nameWidth is the width of the name column in the usage: the longest
// command or page name.
func nameWidth() int {
	w := 0
	for _, c := range commands {
		w = max(w, len(c.name))
	}
	for _, t := range topicNames() {
		w = max(w, len(t))
	}
	return w
}

func (a *app) commandHelp(w io.Writer, c *command) {
	fmt.Fprintf(w, "Usage: loom %s\n\n", c.usage)
	if c.help != "" {
		fmt.Fprintf(w, "%s\n\n", c.help)
	} else {
		fmt.Fprintf(w, "%s.\n\n", upperFirst(c.summary))
	}
	if len(c.flags) > 0 {
		fmt.Fprintln(w, "Flags:")
		for _, f := range c.flags {
			left := "--" + f.name
			if f.arg != "" {
				left += " " + f.arg
			}
			fmt.Fprintf(w, "  %-28s %s\n", left, f.help)
		}
	}
}

func (a *app) helpCmd() error {
	if len(a.p.args) == 0 {
		a.usage(a.stdout)
		return nil
	}
	c := lookupCommand(a.p.args[0])
	if c == nil {
		return a.printPage(a.p.args[0])
	}
	a.commandHelp(a.stdout, c)
	return nil
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// suggest returns the command closest to a mistyped name, if any is close.
func suggest(name string) string {
	names := make([]string, 0, len(commands))
	for _, c := range commands {
		names = append(names, c.name)
	}
	return closest(name, names)
}

// closest returns the name nearest to a mistyped one (at most two edits
// away, and fewer than the word's length), or "".
func closest(name string, names []string) string {
	best, bestD := "", min(3, len(name))
	names = append([]string(nil), names...)
	sort.Strings(names)
	for _, n := range names {
		if d := distance(name, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
