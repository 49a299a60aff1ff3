package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/clock"
	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/duration"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/postgres"
	"github.com/loomwork/loom/journal/sqlite"
	"github.com/loomwork/loom/schemas"
	"github.com/loomwork/loom/server"
)

// defaultDB is the journal when neither --db nor $LOOM_DB names one.
const defaultDB = ".loom/loom.db"

func (a *app) validate() error {
	bad := 0
	for _, path := range a.p.args {
		if _, err := a.load(path, !a.p.has("no-task-check")); err != nil {
			var pe *problemsError
			if !errors.As(err, &pe) {
				return err
			}
			bad += pe.n
		}
	}
	if bad > 0 {
		return &problemsError{n: bad, path: "the definitions"}
	}
	return nil
}

func (a *app) schema() error {
	_, err := a.stdout.Write(schemas.Workflow)
	if err == nil && !bytes.HasSuffix(schemas.Workflow, []byte("\n")) {
		_, err = io.WriteString(a.stdout, "\n")
	}
	return err
}

// load loads a definition, printing every problem on stderr as
// file:line:col: message. A file that cannot be read is a refusal.
func (a *app) load(path string, checkTasks bool) (*definition.Catalog, error) {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, refusef("%s: no such file or directory", path)
		}
		return nil, refusef("cannot read %s: %v", path, unwrapPath(err))
	}
	var cat *definition.Catalog
	var err error
	if checkTasks {
		cat, err = interpreter.Load(path, a.tasks, a.secretCheck()...)
	} else {
		cat, err = definition.Load(path, a.secretCheck()...)
	}
	if err == nil {
		return cat, nil
	}
	var list definition.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			fmt.Fprintln(a.stderr, e.Error())
		}
		return nil, &problemsError{n: len(list), path: path}
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(err.Error()), "\n") {
		if line != "" {
			fmt.Fprintln(a.stderr, line)
			n++
		}
	}
	return nil, &problemsError{n: max(n, 1), path: path}
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// dbPath is where the journal is: --db, else $LOOM_DB, else .loom/loom.db.
func (a *app) dbPath() string {
	if p := a.p.get("db"); p != "" {
		return p
	}
	if p := a.getenv("LOOM_DB"); p != "" {
		return p
	}
	return defaultDB
}

// journalName is how messages name the journal: the SQLite file's
// absolute path (a relative one depends on the working directory, which is
// what confuses), or the PostgreSQL URL without its password.
func (a *app) journalName() string {
	db := a.dbPath()
	if isPostgresURL(db) {
		if u, err := url.Parse(db); err == nil {
			if _, ok := u.User.Password(); ok {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
			}
			return u.Redacted()
		}
		return "postgres://…"
	}
	if abs, err := filepath.Abs(db); err == nil {
		return abs
	}
	return db
}

// isPostgresURL reports whether a --db value names a PostgreSQL database
// (postgres://… or postgresql://…) rather than a SQLite file.
func isPostgresURL(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// errNoCgo: this binary cannot open a SQLite journal (see sqliteBuilt).
var errNoCgo = &cliError{kind: kindRefused,
	msg:  "this loom was built without cgo (CGO_ENABLED=0, what Go does when it finds no C compiler), so it cannot open a SQLite journal",
	hint: "install a C compiler (apt install gcc, or xcode-select --install on macOS) and build it again with CGO_ENABLED=1, or pass --db postgres://…"}

// errNoJournal: a reading command found no journal file; it creates none.
var errNoJournal = errors.New("no journal")

// openReader opens the journal for a command that only reads it (list,
// status, show, replay): a SQLite file is opened read-only and never
// migrated, so reads work in a read-only directory and while another
// process holds the write lock. An absent file is errNoJournal.
func (a *app) openReader() (journal.Journal, error) {
	path := a.dbPath()
	a.noteJournal()
	if isPostgresURL(path) {
		return a.openJournal(false)
	}
	if !sqliteBuilt {
		return nil, errNoCgo
	}
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errNoJournal
		}
		return nil, fmt.Errorf("cannot open the journal %s: %v", path, unwrapPath(err))
	}
	j, err := sqlite.OpenReadOnly(path)
	if errors.Is(err, sqlite.ErrUninitialized) {
		return nil, errNoJournal
	}
	if err != nil {
		return nil, fmt.Errorf("cannot open the journal: %w", err)
	}
	return a.sealJournal(j)
}

// noteJournal records which journal the command reads, for the messages
// and records that name it, and says so on stderr with --verbose.
func (a *app) noteJournal() {
	if a.journalUsed != "" {
		return
	}
	a.journalUsed = a.journalName()
	if a.p.has("verbose") {
		fmt.Fprintf(a.stderr, "%s: journal %s\n", a.prog(), a.journalUsed)
	}
}

// openJournal opens the journal. Commands that only read or continue
// executions pass create=false: an absent file is errNoJournal and nothing
// is created. run creates the file and its directory on first use.
func (a *app) openJournal(create bool) (journal.Journal, error) {
	path := a.dbPath()
	a.noteJournal()
	if isPostgresURL(path) {
		var opts []postgres.Option
		if a.dbConns > 0 {
			opts = append(opts, postgres.WithMaxConns(a.dbConns))
		}
		j, err := postgres.Open(a.ctx, path, opts...)
		if err != nil {
			return nil, fmt.Errorf("cannot open the PostgreSQL journal: %w", err)
		}
		return a.sealJournal(j)
	}
	if !sqliteBuilt {
		return nil, errNoCgo
	}
	if _, err := os.Stat(path); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("cannot open the journal %s: %v", path, unwrapPath(err))
		}
		if !create {
			return nil, errNoJournal
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("cannot create the journal's directory: %v", err)
		}
	}
	wait, err := a.lockWait()
	if err != nil {
		return nil, err
	}
	j, err := sqlite.Open(path, sqlite.WithBusyTimeout(wait), sqlite.WithClock(a.clock.Now))
	if err != nil {
		return nil, fmt.Errorf("cannot open the journal: %w", err)
	}
	return a.sealJournal(j)
}

// lockWait is how long a write to a SQLite journal waits for the write lock
// another process holds before the command gives up with exit 5:
// $LOOM_LOCK_WAIT, a duration (default sqlite.DefaultBusyTimeout).
func (a *app) lockWait() (time.Duration, error) {
	s := a.getenv("LOOM_LOCK_WAIT")
	if s == "" {
		return sqlite.DefaultBusyTimeout, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, usagef("$LOOM_LOCK_WAIT=%s is not a duration such as 5s or 500ms", s)
	}
	return d, nil
}

// earlyJournal is a journal being opened in the background.
type earlyJournal struct {
	done chan struct{}
	j    journal.Journal
	err  error
}

// openEarly starts opening the journal if it exists already; nil if not.
func (a *app) openEarly() *earlyJournal {
	if _, err := os.Stat(a.dbPath()); err != nil {
		return nil
	}
	e := &earlyJournal{done: make(chan struct{})}
	go func() {
		defer close(e.done)
		e.j, e.err = a.openJournal(false)
		if e.err == errNoJournal {
			e.j, e.err = nil, nil
		}
	}()
	return e
}

// take returns the opened journal (nil, nil when none was started); the
// caller owns it.
func (e *earlyJournal) take() (journal.Journal, error) {
	if e == nil {
		return nil, nil
	}
	<-e.done
	j, err := e.j, e.err
	e.j, e.err = nil, nil
	return j, err
}

// discard closes the journal unless it was taken.
func (e *earlyJournal) discard() {
	if j, _ := e.take(); j != nil {
		j.Close()
	}
}

// closeJournal closes j, except when the process exits right after: every
// write was committed before the command returned, and SQLite's
// checkpoint on close would only add to every command's time. But a
// process that leaves a SQLite journal unclosed leaves its write-ahead log
// behind, and the next one to open the file rebuilds the log's index from
// every frame in it before its first read (a log of 4 MiB, where SQLite's
// own checkpoints keep it, is ~5 ms of each command's start here): once the
// log is past walCloseSize, the exiting command closes after all, which
// checkpoints it and removes it.
func (a *app) closeJournal(j journal.Journal) {
	if !a.exiting || a.walLarge() {
		j.Close()
	}
}

// walCloseSize is the size of a SQLite journal's write-ahead log from
// which an exiting command closes the journal (closeJournal): a command's
// few commits add ~0.2 MiB to it, so about one in five pays the checkpoint.
const walCloseSize = 1 << 20

// walLarge reports whether the SQLite journal's write-ahead log is at
// least walCloseSize.
func (a *app) walLarge() bool {
	path := a.dbPath()
	if isPostgresURL(path) {
		return false
	}
	fi, err := os.Stat(path + "-wal")
	return err == nil && fi.Size() >= walCloseSize
}

// engineForID opens the journal that must hold execution id and returns an
// engine over it (no catalog: it reads and continues pinned executions) and
// the function that closes the journal.
func (a *app) engineForID(id string) (*interpreter.Engine, func(), error) {
	return a.engineOver(id, a.openForID)
}

// readerForID is engineForID over a journal opened read-only (openReader),
// for the commands that only read.
func (a *app) readerForID(id string) (*interpreter.Engine, func(), error) {
	return a.engineOver(id, func(id string) (journal.Journal, error) {
		if err := journal.CheckID(id); err != nil {
			return nil, err
		}
		j, err := a.openReader()
		if err == errNoJournal {
			return nil, a.noJournalFor(id)
		}
		return j, err
	})
}

func (a *app) engineOver(id string, open func(string) (journal.Journal, error)) (*interpreter.Engine, func(), error) {
	j, err := open(id)
	if err != nil {
		return nil, nil, err
	}
	eng, _ := a.engine(nil, j)
	return eng, func() { a.closeJournal(j) }, nil
}

// openForID opens the journal to act on execution id; an absent journal
// means there is no such execution.
func (a *app) openForID(id string) (journal.Journal, error) {
	if err := journal.CheckID(id); err != nil {
		return nil, err
	}
	j, err := a.openJournal(false)
	if err == errNoJournal {
		return nil, a.noJournalFor(id)
	}
	return j, err
}

func (a *app) noJournalFor(id string) error {
	return &cliError{kind: kindRefused,
		msg:  fmt.Sprintf("no execution with id %q: there is no journal at %s", id, a.journalName()),
		hint: "pass --db or set $LOOM_DB to the journal that holds it"}
}

// engine builds an engine for the command; progress is shown on a
// terminal unless --quiet.
func (a *app) engine(cat *definition.Catalog, j journal.Journal) (*interpreter.Engine, *progressView) {
	// resume --due continues what is due now and exits: a timer that is
	// not due yet is left for a later run (cron), never waited out.
	opts := append([]interpreter.Option{interpreter.WithTimerWait(!a.p.has("no-wait") && !a.p.has("due"), 0)}, a.secretOptions()...)
	// A bad --limits was refused when the input was read; here it parses.
	if lim, err := a.limits(); err == nil {
		opts = append(opts, interpreter.WithLimits(lim.engine))
	}
	var pv *progressView
	if !a.p.has("quiet") && isTerminal(a.stderr) {
		pv = newProgressView(a.stderr, clock.System{}, 500*time.Millisecond, 100*time.Millisecond)
		opts = append(opts, interpreter.WithProgress(pv.update), interpreter.WithStepObserver(pv.reached))
	}
	return interpreter.New(cat, a.tasks, j, append(opts, interpreter.WithClock(a.clock))...), pv
}

// input reads --input or --input-file; given is false when neither is set.
// An input larger than the input limit or not UTF-8 is refused: it would be
// journaled, and a replaced character would be a silent change.
func (a *app) input() (v any, given bool, err error) {
	hasIn, hasFile := a.p.has("input"), a.p.has("input-file")
	lim, err := a.limits()
	if err != nil {
		return nil, false, err
	}
	var data []byte
	var src string
	switch {
	case hasIn && hasFile:
		return nil, false, usagef("give --input or --input-file, not both")
	case hasIn:
		data, src = []byte(a.p.get("input")), "the --input value"
	case hasFile:
		f := a.p.get("input-file")
		var r io.Reader
		if f == "-" {
			if a.stdin == nil {
				return nil, false, refusef("--input-file - reads stdin, but there is none")
			}
			r, src = a.stdin, "the input on stdin"
		} else {
			src = "input file " + f
			fh, err := os.Open(f)
			if err != nil {
				return nil, false, refusef("cannot read %s: %v", src, unwrapPath(err))
			}
			defer fh.Close()
			r = fh
		}
		// Read one byte past the limit, never the whole of a huge file.
		data, err = io.ReadAll(io.LimitReader(r, int64(lim.input)+1))
		if err != nil {
			return nil, false, refusef("cannot read %s: %v", src, unwrapPath(err))
		}
	default:
		return nil, false, nil
	}
	if len(data) > lim.input {
		return nil, false, sizeLimitError(src, lim.input)
	}
	if !utf8.Valid(data) {
		return nil, false, &cliError{kind: kindRefused, msg: fmt.Sprintf("%s is not valid UTF-8 (at byte %d)", src, invalidUTF8At(data)+1),
			hint: "nothing was done; JSON text is UTF-8"}
	}
	v, err = parseJSON(data)
	if err != nil {
		return nil, false, &cliError{kind: kindRefused, msg: fmt.Sprintf("%s is not valid JSON: %v", src, err),
			hint: `nothing was done; quote JSON for the shell, e.g. --input '{"name": "x"}'`}
	}
	return v, true, nil
}

// invalidUTF8At is the offset of the first byte of data that is not UTF-8.
func invalidUTF8At(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(data)
}

// parseJSON decodes exactly one JSON value into Loom's value model.
func parseJSON(data []byte) (any, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("it is empty")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%s (at byte %d)", se.Error(), se.Offset)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errors.New("it ends too early")
		}
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("there is more after the value (at byte %d)", dec.InputOffset())
	}
	return interpreter.Normalize(v)
}

// pickWorkflow chooses the workflow of a catalog to run.
func pickWorkflow(cat *definition.Catalog, name, path string) (string, error) {
	names := cat.Names()
	if name != "" {
		if cat.Workflow(name) == nil {
			return "", refusef("%s has no workflow named %q (it has %s)", path, name, strings.Join(names, ", "))
		}
		return name, nil
	}
	switch len(names) {
	case 0:
		return "", refusef("%s holds no workflow", path)
	case 1:
		return names[0], nil
	}
	return "", usagef("%s holds %d workflows (%s); choose one with --workflow NAME", path, len(names), strings.Join(names, ", "))
}

// runArgs reads what `run` is given, run here (local) or by a server: the
// catalog at path (checked against this binary's tasks and secrets when
// local; a server checks its own), the workflow to run, a well-formed --id
// and the input.
func (a *app) runArgs(path string, local bool) (cat *definition.Catalog, name string, in any, err error) {
	if cat, err = a.load(path, local); err != nil {
		return nil, "", nil, err
	}
	if name, err = pickWorkflow(cat, a.p.get("workflow"), path); err != nil {
		return nil, "", nil, err
	}
	if local {
		if err = a.checkRunSecrets(cat, name, path); err != nil {
			return nil, "", nil, err
		}
	}
	if a.p.has("id") {
		if err = journal.CheckID(a.p.get("id")); err != nil {
			return nil, "", nil, err
		}
	}
	if in, _, err = a.input(); err != nil {
		return nil, "", nil, err
	}
	return cat, name, in, nil
}

// existsError refuses a run whose --id is taken.
func (a *app) existsError() error {
	return &cliError{kind: kindRefused, msg: fmt.Sprintf("an execution with id %q exists already", a.p.get("id")),
		hint: "nothing was started; choose another --id, or see it with " + a.command("status", a.p.get("id"))}
}

func (a *app) runCmd() error {
	path := a.p.args[0]
	// An existing journal opens while the definition loads (they take
	// about as long); a new one is created only once the run is accepted.
	early := a.openEarly()
	defer early.discard()
	cat, name, in, err := a.runArgs(path, true)
	if err != nil {
		return err
	}
	// Checked here as well as by the engine so that a refused input
	// creates nothing, not even the journal file.
	if wf := cat.Workflow(name); wf != nil {
		if _, err := interpreter.CheckInput(wf, in); err != nil {
			return err
		}
		if err := interpreter.CheckWriteOnly(wf, a.keyFile() != ""); err != nil {
			return err
		}
	}
	j, err := early.take()
	if j == nil && err == nil {
		j, err = a.openJournal(true)
	}
	if err != nil {
		return err
	}
	defer a.closeJournal(j)
	eng, pv := a.engine(cat, j)
	// The id is chosen here, not by the engine, so that an interrupted
	// run can still say which execution to resume.
	id := a.p.get("id")
	if !a.p.has("id") {
		id = builtins.UUID4(builtins.CryptoRandom{})
	}
	ex, err := eng.Run(a.ctx, name, in, interpreter.WithExecutionID(id))
	if errors.Is(err, journal.ErrExists) {
		return a.existsError()
	}
	pv.stop()
	if err != nil {
		return a.interrupted(id, err, j)
	}
	return a.report(ex)
}

func (a *app) resume() error {
	if a.p.has("due") {
		for _, f := range []string{"input", "input-file", "pause", "definition"} {
			if a.p.has(f) {
				return usagef("--due continues every due execution; it takes no --%s", f)
			}
		}
		if len(a.p.args) > 0 {
			return usagef("--due continues every due execution; it takes no ID")
		}
		return a.resumeDue()
	}
	if len(a.p.args) != 1 {
		return usagef("usage: loom resume ID [--input JSON | --input-file FILE] [--pause NAME_OR_PATH] [--definition PATH] (or loom resume --due)")
	}
	id := a.p.args[0]
	payload, _, err := a.input()
	if err != nil {
		return err
	}
	var opts []interpreter.ResumeOption
	if def := a.p.get("definition"); def != "" {
		cat, err := a.load(def, true)
		if err != nil {
			return err
		}
		opts = append(opts, interpreter.WithDefinition(cat))
	}
	j, err := a.openForID(id)
	if err != nil {
		return err
	}
	defer a.closeJournal(j)
	eng, pv := a.engine(nil, j)
	// A resume at a terminal is journaled as by "local", as the service
	// journals one without tokens (SPEC §6 Actor).
	opts = append(opts, interpreter.By("local"))
	ex, err := eng.ResumePause(a.ctx, id, a.p.get("pause"), payload, opts...)
	pv.stop()
	if err != nil {
		return a.interrupted(id, err, j)
	}
	return a.report(ex)
}

// resumeDue continues every root execution that is due (Engine.Due: its
// timer came, or its runner is gone). Executions another runner took
// meanwhile are skipped, and so are those whose definition uses
// a task this binary lacks. Timers not yet due are not waited for. It exits
// 0 when every one it took was driven (whatever its outcome), 1 when any
// could not be, 2 when some were left for a binary with their tasks.
func (a *app) resumeDue() error {
	j, err := a.openJournal(false)
	if err == errNoJournal {
		if a.p.has("json") {
			return a.printJSON([]any{})
		}
		return nil
	}
	if err != nil {
		return err
	}
	defer a.closeJournal(j)
	eng, pv := a.engine(nil, j)
	defer pv.stop()
	due, err := eng.Due(a.ctx)
	if err != nil {
		return err
	}
	records := []record{}
	busy, failed, refused := 0, 0, 0
	for _, ex := range due {
		var got *interpreter.Execution
		var err error
		if ex.State == journal.Paused {
			got, err = a.fireDeadline(eng, ex)
			if got == nil && err == nil {
				continue
			}
		} else {
			got, err = eng.Resume(a.ctx, ex.ID, nil, interpreter.OnlyDue())
		}
		switch {
		case errors.Is(err, journal.ErrBusy):
			busy++
			continue
		case errors.Is(err, interpreter.ErrMissingTask):
			// Left, untouched, for the binary that registers the task.
			refused++
			fmt.Fprintf(a.stderr, "%s resume: execution %s: %s\n", a.prog(), safe(ex.ID), safe(oneLine(err.Error())))
			continue
		case err != nil:
			failed++
			fmt.Fprintf(a.stderr, "%s resume: execution %s: %s\n", a.prog(), safe(ex.ID), safe(oneLine(err.Error())))
			continue
		}
		records = append(records, a.recordOf(got))
		if !a.p.has("quiet") {
			a.statusLine(got)
		}
	}
	if !a.p.has("quiet") {
		msg := fmt.Sprintf("%s: continued %d due execution(s)", a.prog(), len(records))
		if busy > 0 {
			msg += fmt.Sprintf("; %d held by other runners were skipped", busy)
		}
		fmt.Fprintln(a.stderr, msg)
	}
	if a.p.has("json") {
		if err := a.printJSON(records); err != nil {
			return err
		}
	}
	if failed > 0 {
		return exitWith(ExitFailed)
	}
	if refused > 0 {
		return exitWith(ExitRefused)
	}
	return nil
}

// fireDeadline drives a PAUSED execution that has something due — a pause
// past its deadline (it fails with PauseTimeout, which the workflow may
// catch) or the workflow's timeout — delivering nothing. It returns nil,
// nil when nothing is due.
func (a *app) fireDeadline(eng *interpreter.Engine, ex *interpreter.Execution) (*interpreter.Execution, error) {
	now := a.clock.Now()
	due := !ex.WakeAt.IsZero() && !now.Before(ex.WakeAt)
	for _, p := range ex.Pauses {
		if p.Deadline != nil && !now.Before(*p.Deadline) {
			due = true
		}
	}
	if !due {
		return nil, nil
	}
	return eng.Resume(a.ctx, ex.ID, nil, interpreter.OnlyDue())
}

func (a *app) status() error {
	id := a.p.args[0]
	eng, done, err := a.readerForID(id)
	if err != nil {
		return err
	}
	defer done()
	ex, err := eng.Get(a.ctx, id)
	if err != nil {
		return err
	}
	var holder *server.Holder
	if ex.State == journal.Running {
		if holder, err = a.holderOf(id); err != nil {
			return err
		}
	}
	if a.p.has("json") {
		r := a.recordOf(ex)
		r.Holder = holder
		return a.printJSON(r)
	}
	a.printStatus(ex, holder)
	return nil
}

// holderOf reads who holds the lease on the root of execution id (nil
// when nobody does), as a server's record says it.
func (a *app) holderOf(id string) (*server.Holder, error) {
	j, err := a.openReader()
	if err != nil {
		return nil, err
	}
	defer a.closeJournal(j)
	rec, err := j.Get(a.ctx, id)
	if err != nil {
		return nil, err
	}
	l, err := j.LeaseOf(a.ctx, rec.RootID)
	if errors.Is(err, journal.ErrNotFound) || err == nil && l.Token == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ws, err := server.LiveWorkers(a.ctx, j)
	if err != nil {
		return nil, err
	}
	return server.HolderOf(l, ws), nil
}

var states = []journal.State{journal.Running, journal.Paused, journal.Waiting, journal.Completed, journal.Failed, journal.Cancelled}

func (a *app) list() error {
	f, limit, since, err := a.listOptions()
	if err != nil {
		return err
	}
	if limit > 0 {
		f.Limit = limit + 1 // one more tells whether some were left out
	}
	var exs []*interpreter.Execution
	var damaged *journal.DamagedRowsError // listed after what could be read
	j, err := a.openReader()
	switch {
	case err == errNoJournal:
		a.journalUsed = ""
	case err != nil:
		return err
	default:
		defer a.closeJournal(j)
		eng, _ := a.engine(nil, j)
		exs, err = listSince(a, eng, f, since)
		if err != nil && !errors.As(err, &damaged) {
			return err
		}
	}
	more := limit > 0 && len(exs) > limit
	if more {
		exs = exs[:limit]
	}
	return a.showList(exs, more, limit, damaged, a.recordOf)
}

// showList prints loom list's answer, local or through a server: the rows
// (or their records with --json, each made by rec), a note when more were
// left out, and then the records that could not be read, named by the
// error returned (exit 1).
func (a *app) showList(exs []*interpreter.Execution, more bool, limit int, damaged *journal.DamagedRowsError, rec func(*interpreter.Execution) record) error {
	if a.p.has("json") {
		out := make([]record, 0, len(exs))
		for _, ex := range exs {
			out = append(out, rec(ex))
		}
		if err := a.printJSON(out); err != nil {
			return err
		}
	} else {
		a.printList(exs)
		if more {
			fmt.Fprintf(a.stderr, "%s: the newest %d shown; --limit N shows more, --limit 0 all\n", a.prog(), limit)
		}
	}
	if damaged != nil {
		return damaged
	}
	return nil
}

// listOptions reads list's flags: the filter, how many to show (0: all)
// and --since; the local and the --server list share them.
func (a *app) listOptions() (f journal.Filter, limit int, since time.Time, err error) {
	f = journal.Filter{RootsOnly: !a.p.has("all"), Workflow: a.p.get("workflow")}
	if s := a.p.get("state"); s != "" {
		for _, st := range states {
			if strings.EqualFold(s, string(st)) {
				f.State = st
			}
		}
		if f.State == "" {
			names := make([]string, len(states))
			for i, st := range states {
				names[i] = string(st)
			}
			return f, 0, since, usagef("unknown state %q for --state (one of %s)", s, strings.Join(names, ", "))
		}
	}
	limit = defaultListLimit
	if a.p.has("limit") {
		n, err := strconv.Atoi(a.p.get("limit"))
		if err != nil || n < 0 {
			return f, 0, since, usagef("--limit wants a whole number of executions, 0 for all; got %q", a.p.get("limit"))
		}
		limit = n
	}
	since, err = a.since()
	return f, limit, since, err
}

// defaultListLimit is how many executions `loom list` shows without
// --limit: a screenful, and a journal of millions answers at once.
const defaultListLimit = 50

// since reads --since: a duration back from now (1h, 7d) or an RFC 3339
// time; zero without the flag.
func (a *app) since() (time.Time, error) {
	v := a.p.get("since")
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := duration.Parse(v); err == nil && d > 0 {
		return a.clock.Now().Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	return time.Time{}, usagef("--since wants a duration back from now (90m, 7d) or an RFC 3339 time (2026-01-02T15:04:05Z); got %q", v)
}

// listSince lists the executions of f created at or after since (all of
// f's when since is zero), newest first: it pages through the journal with
// cursors until it reaches an older execution or f.Limit records.
func listSince(a *app, eng *interpreter.Engine, f journal.Filter, since time.Time) ([]*interpreter.Execution, error) {
	if since.IsZero() {
		return eng.List(a.ctx, f)
	}
	want := f.Limit
	const page = 200
	f.Limit = page
	var out []*interpreter.Execution
	for {
		exs, err := eng.List(a.ctx, f)
		if err != nil {
			return nil, err
		}
		for _, ex := range exs {
			if ex.CreatedAt.Before(since) || (want > 0 && len(out) == want) {
				return out, nil
			}
			out = append(out, ex)
		}
		if len(exs) < page {
			return out, nil
		}
		last := exs[len(exs)-1]
		f.After = journal.CursorAt(&journal.Execution{ID: last.ID, CreatedAt: last.CreatedAt})
	}
}

func (a *app) show() error {
	id := a.p.args[0]
	eng, done, err := a.readerForID(id)
	if err != nil {
		return err
	}
	defer done()
	ex, err := eng.Get(a.ctx, id)
	if err != nil {
		return err
	}
	evs, err := eng.Events(a.ctx, id)
	if err != nil {
		return err
	}
	if a.p.has("json") {
		return a.printJSON(nonNil(evs))
	}
	children, err := eng.List(a.ctx, journal.Filter{ParentID: id})
	if err != nil {
		return err
	}
	// oldest first, as in the timeline
	sort.SliceStable(children, func(i, j int) bool { return children[i].CreatedAt.Before(children[j].CreatedAt) })
	a.printTimeline(ex, evs, children)
	return nil
}

func (a *app) replay() error {
	id := a.p.args[0]
	eng, done, err := a.readerForID(id)
	if err != nil {
		return err
	}
	defer done()
	res, err := eng.Replay(a.ctx, id)
	if errors.Is(err, interpreter.ErrNonDeterminism) {
		if a.p.has("json") {
			_ = a.printJSON(map[string]any{"id": id, "match": false, "diff": []string{oneLine(err.Error())}})
		}
		return &mismatchError{msg: fmt.Sprintf("execution %s does not replay: %s", id, oneLine(err.Error()))}
	}
	if err != nil {
		return err
	}
	if a.p.has("json") {
		diff := res.Diff
		if diff == nil {
			diff = []string{}
		}
		if err := a.printJSON(map[string]any{"id": id, "match": res.Match, "diff": diff,
			"recorded": a.recordOf(res.Recorded), "derived": a.recordOf(res.Derived)}); err != nil {
			return err
		}
	} else if res.Match {
		fmt.Fprintf(a.stdout, "execution %s replays to its recorded outcome (%s)\n", id, res.Recorded.State)
	} else {
		for _, d := range res.Diff {
			fmt.Fprintln(a.stdout, safe(d))
		}
	}
	if !res.Match {
		return &mismatchError{msg: fmt.Sprintf("execution %s does not replay to its recorded outcome (%d difference(s))", id, len(res.Diff))}
	}
	return nil
}

// cancellable are the states loom cancel --state takes.
var cancellable = []journal.State{journal.Running, journal.Paused, journal.Waiting}

func (a *app) cancel() error {
	if a.p.has("state") {
		if len(a.p.args) > 0 {
			return usagef("--state cancels every execution in that state; it takes no ID")
		}
		return a.bulk("cancel", cancellable, func(eng *interpreter.Engine, j journal.Journal, id string) (string, error) {
			if _, err := j.RequestCancel(a.ctx, id, "local"); err != nil {
				return "", err
			}
			ex, err := eng.Cancel(a.ctx, id, interpreter.By("local"))
			if err != nil {
				return "", err
			}
			return string(ex.State), nil
		})
	}
	if len(a.p.args) != 1 || a.p.has("dry-run") || a.p.has("workflow") {
		return usagef("usage: loom cancel ID (or loom cancel --state S [--workflow W] [--dry-run])")
	}
	id := a.p.args[0]
	j, err := a.openForID(id)
	if err != nil {
		return err
	}
	defer a.closeJournal(j)
	eng, _ := a.engine(nil, j)
	// The request is durable first (SPEC §6): a loom serve that holds the
	// tree, or next claims it, carries it out even if this process cannot.
	var nr *journal.NotRootError
	_, err = j.RequestCancel(a.ctx, id, "local")
	if errors.As(err, &nr) {
		_, err = j.RequestCancel(a.ctx, nr.RootID, "local")
	}
	if err != nil && !errors.Is(err, journal.ErrNotFound) {
		return err
	}
	ex, err := eng.Cancel(a.ctx, id, interpreter.By("local"))
	if errors.Is(err, journal.ErrBusy) {
		ex, err = a.awaitServeCancel(eng, id, err)
	}
	if err != nil {
		return err
	}
	if a.p.has("json") {
		if err := a.printJSON(a.recordOf(ex)); err != nil {
			return err
		}
	}
	fmt.Fprintf(a.stderr, "%s: execution %s is %s\n", a.prog(), safe(ex.ID), safe(string(ex.State)))
	return nil
}

// cancelPoll is how often loom cancel looks whether the loom serve that
// holds an execution has carried its cancel request out.
const cancelPoll = 100 * time.Millisecond

// awaitServeCancel answers a cancel refused busy (err). A loom serve that
// holds the execution carries the recorded request out within 1 s (SPEC
// §6): the command waits for that and reports the outcome, as loom cancel
// --server does. A runner at a terminal looks for no request: busy (exit
// 4), the request left for a serve.
func (a *app) awaitServeCancel(eng *interpreter.Engine, id string, err error) (*interpreter.Execution, error) {
	for {
		h, herr := a.holderOf(id)
		if herr != nil {
			return nil, herr
		}
		if h != nil && !h.Worker {
			return nil, cancelBusy(err)
		}
		if h != nil {
			t := a.clock.NewTimer(cancelPoll)
			select {
			case <-a.ctx.Done():
				t.Stop()
				return nil, context.Cause(a.ctx)
			case <-t.C():
			}
			if ex, gerr := eng.Get(a.ctx, id); gerr != nil || ex.State.Finished() {
				return ex, gerr
			}
		}
		ex, cerr := eng.Cancel(a.ctx, id, interpreter.By("local"))
		switch {
		case errors.Is(cerr, interpreter.ErrFinished):
			return eng.Get(a.ctx, id) // the serve finished it meanwhile
		case !errors.Is(cerr, journal.ErrBusy):
			return ex, cerr
		}
		err = cerr
	}
}

// cancelBusy is loom cancel's refusal of an execution another runner
// holds (exit 4): the request stays recorded.
func cancelBusy(err error) error {
	return fmt.Errorf("%w; the cancel request is recorded for the loom serve that holds it or next claims it", err)
}

// interrupted turns the error of a drive stopped by a signal, a journal
// outage or a lost lease into the message that says what happened and how
// to continue.
func (a *app) interrupted(id string, err error, j journal.Journal) error {
	if a.ctx.Err() != nil {
		return &interruptedError{id: id, resume: "`" + a.command("resume", id) + "`"}
	}
	if errors.Is(err, journal.ErrFenced) {
		return &leaseLostError{err: err, holder: leaseHolder(context.WithoutCancel(a.ctx), j, id), status: "`" + a.command("status", id) + "`"}
	}
	if errors.Is(err, journal.ErrUnavailable) {
		if !runningNow(context.WithoutCancel(a.ctx), j, id) {
			return err // nothing was written: "nothing was changed; try again"
		}
		return &outageError{err: err, resume: "`" + a.command("resume", id) + "`"}
	}
	return err
}

// runningNow reports whether execution id is RUNNING in the journal, or
// cannot be read: after an outage, whether a resume is what continues it.
// A run refused before its record was written left none; a resume refused
// before it wrote left the execution PAUSED or WAITING, for the same
// command (with its payload) to be tried again.
func runningNow(ctx context.Context, j journal.Journal, id string) bool {
	rec, err := j.Get(ctx, id)
	switch {
	case errors.Is(err, journal.ErrNotFound):
		return false
	case err != nil:
		return true
	}
	return rec.State == journal.Running
}

// leaseHolder names the runner that holds the lease of execution id's
// root now, or "another runner" when it cannot be read (or was released).
func leaseHolder(ctx context.Context, j journal.Journal, id string) string {
	root := id
	if rec, err := j.Get(ctx, id); err == nil && rec.RootID != "" {
		root = rec.RootID
	}
	l, err := j.LeaseOf(ctx, root)
	if err != nil || l.Holder.ID == "" {
		return "another runner"
	}
	return fmt.Sprintf("runner %s (pid %d on %s)", l.Holder.ID, l.Holder.PID, l.Holder.Host)
}

// report prints what a run or resume got to and returns its exit status:
// on stdout the output alone (or the whole record with --json), on stderr
// the state and what to do next.
func (a *app) report(ex *interpreter.Execution) error {
	if a.p.has("json") {
		if err := a.printJSON(a.recordOf(ex)); err != nil {
			return err
		}
	} else if ex.State == journal.Completed {
		if err := a.printJSON(ex.Output); err != nil {
			return err
		}
	} else if a.p.has("quiet") && (ex.State == journal.Paused || ex.State == journal.Waiting) {
		// so that ID=$(loom run … --quiet) has the id to resume
		fmt.Fprintln(a.stdout, ex.ID)
	}
	// A failure is an error: it is reported even with --quiet.
	if !a.p.has("quiet") || ex.State == journal.Failed {
		a.statusLine(ex)
	}
	return exitWith(stateCode(ex.State))
}

// sortedPauses returns pauses in path order, for stable output.
func sortedPauses(ps []interpreter.Pause) []interpreter.Pause {
	out := append([]interpreter.Pause(nil), ps...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}
