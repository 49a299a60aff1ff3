package journal

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"
)

// State is an execution's state.
type State string

// The states of SPEC §3.
const (
	Running   State = "RUNNING"
	Paused    State = "PAUSED"
	Waiting   State = "WAITING"
	Completed State = "COMPLETED"
	Failed    State = "FAILED"
	Cancelled State = "CANCELLED"
)

// Finished reports whether s is a final state.
func (s State) Finished() bool { return s == Completed || s == Failed || s == Cancelled }

// Sentinel errors every backend returns (wrapped or not; test with errors.Is).
var (
	ErrNotFound = errors.New("execution not found")
	ErrExists   = errors.New("execution already exists")
	// ErrConflict: an append's expected sequence is not the execution's last,
	// or one of its events repeats a recorded (Path, Kind, Ordinal).
	ErrConflict = errors.New("journal sequence conflict")
	// ErrBusy: another holder has a live lease on the execution's root.
	ErrBusy = errors.New("execution is held by another runner")
	// ErrFenced: the caller's lease token is no longer the current one.
	ErrFenced = errors.New("lease lost: another runner holds the execution")
	// ErrNotRoot: the operation needs a root execution (a cancel), and this
	// one is a child.
	ErrNotRoot = errors.New("not a root execution")
	// ErrReadOnly: the journal was opened for reading only (a write method
	// of a journal opened by sqlite.OpenReadOnly or postgres.OpenReadOnly).
	ErrReadOnly = errors.New("the journal is open read-only")
	// ErrClosed: the journal was closed; every method called after Close
	// returns it, whatever the backend.
	ErrClosed = errors.New("journal: closed")
)

// NotRootError names the root of a child execution an operation refused.
type NotRootError struct {
	ID, RootID string
}

func (e *NotRootError) Error() string {
	return "execution " + e.ID + " is a child of root " + e.RootID + ": cancel the root, which cancels its whole tree"
}

// Unwrap makes errors.Is(err, ErrNotRoot) true.
func (e *NotRootError) Unwrap() error { return ErrNotRoot }

// Execution is one execution's record. Input, Output, Error and Pauses are
// JSON documents (nil when absent).
type Execution struct {
	ID       string
	Workflow string
	Version  int
	State    State
	ParentID string // "" for a root
	RootID   string // its own ID for a root; leases live on the root
	// ParentPath is the path of the step in the parent that started it.
	ParentPath string

	Input  json.RawMessage
	Output json.RawMessage
	Error  json.RawMessage // {type, message, data, step}
	Pauses json.RawMessage // [{name, path, schema}] while PAUSED

	// Definition is the pinned canonical form of the root's catalog and
	// DefinitionHash its SHA-256 (hex); a child shares its root's.
	Definition     []byte
	DefinitionHash string

	// WakeAt is when a WAITING execution's timer is due (zero otherwise).
	WakeAt time.Time

	// Labels are the string pairs a start gave (SPEC §6): stored and
	// filtered on, never visible to the workflow. Nil when none.
	Labels map[string]string
	// StartedBy names who started the execution (a token's name, "local").
	StartedBy string
	// CancelRequested: RequestCancel asked for the tree to be cancelled; the
	// process that holds or next claims it carries the cancel out.
	CancelRequested bool
	// CancelRequestedBy names who requested the cancel (a token's name,
	// "local"; "" if unknown), so that the process that carries it out
	// journals that actor whichever process was asked.
	CancelRequestedBy string
	// TraceParent is the W3C traceparent of the request that started a
	// root ("" for none, and for a child): the parent of its first drive
	// and the link of its later ones, in whichever process drives them.
	TraceParent string
	// Takeovers counts the claims that took the root over from a holder
	// whose lease had expired. Backends maintain it; Create ignores it.
	Takeovers int
	// LastSeq is the Seq of the execution's last event (0 for none).
	// Backends maintain it; Create ignores it.
	LastSeq int64
	// StalledTakeovers counts the takeovers of a root since its tree last
	// journaled an event (0 after one that found progress); from
	// CrashLoopTakeovers on, the root is crash-looping and CrashLoopUntil
	// is when a takeover may claim it again. Backends maintain both;
	// Create ignores them.
	StalledTakeovers int
	CrashLoopUntil   time.Time

	CreatedAt time.Time
	UpdatedAt time.Time
}

// EventKind is what an event records.
type EventKind string

// The event kinds (docs/design.md, "Journal").
const (
	// StepCompleted: Data {"output": V, "started_at": T, "compensate": C?}.
	StepCompleted EventKind = "step.completed"
	// StepFailed: Data {"error": {type, message, data, step}, "started_at": T}.
	StepFailed EventKind = "step.failed"
	// Builtin: a journaled function's value. Name is the function,
	// Ordinal the call order within the path. Data {"value": V}.
	Builtin EventKind = "builtin"
	// PauseOpened: Name is the pause name; Data {"schema": S, "deadline": T?}.
	PauseOpened EventKind = "pause.opened"
	// TimerSet: a durable timer. Data {"wake_at": T}.
	TimerSet EventKind = "timer.set"
	// ChildStarted: Data {"id": childID, "workflow": W}.
	ChildStarted EventKind = "child.started"
	// ExecutionFinished: the final outcome; Data {"state", "output", "error"}.
	ExecutionFinished EventKind = "execution.finished"
	// CancelRequested: a cancel was asked for.
	CancelRequested EventKind = "cancel.requested"
	// TimedOut: the workflow's timeout passed; the clock decided it once.
	TimedOut EventKind = "timed_out"
)

// Event is one journal entry. Events are matched on replay by
// (Path, Kind, Ordinal), never by Seq, which only orders appends.
type Event struct {
	Seq     int64 // per execution, from 1, assigned by Append
	Path    string
	Kind    EventKind
	Name    string // what was at Path: "task:fetch", "pause:approve", "now", …
	Ordinal int    // order among events of the same (Path, Kind)
	Data    json.RawMessage
	Time    time.Time
}

// Update changes an execution's record together with an append.
// Nil fields are left as they are.
type Update struct {
	State  *State
	Output json.RawMessage
	Error  json.RawMessage
	Pauses json.RawMessage // "null" clears
	WakeAt *time.Time      // zero time clears
}

// Append is one atomic write: events after ExpectedSeq, and an optional
// change to the record, under the lease token of the execution's root.
type Append struct {
	ExecutionID string
	// Token is the lease token of the root; the append is refused with
	// ErrFenced unless it is the root's current token.
	Token int64
	// ExpectedSeq is the Seq of the last event the writer knows of (0 for
	// none); anything else is ErrConflict.
	ExpectedSeq int64
	Events      []Event
	Update      *Update
	// Release gives the lease up in the same transaction, after the write:
	// a runner's last write and its release cost one commit.
	Release bool
	// Stamp, when not nil, receives on success the UpdatedAt this append
	// gave the record, from a backend that knows it without a read
	// (memory, SQLite, PostgreSQL); it stays zero otherwise, and when the append left
	// the record as it was. A runner's last write uses it to return the
	// record it holds rather than read it back.
	Stamp *time.Time
}

// Filter selects executions for List. Zero fields match all.
type Filter struct {
	State    State
	Workflow string
	ParentID string
	// RootsOnly leaves children out.
	RootsOnly bool
	// Due selects the executions due at it, as the function Due defines:
	// WAITING or PAUSED ones whose WakeAt has come, RUNNING ones whose root
	// lease is absent or expired at it (the runner died).
	Due time.Time
	// Limit caps the number of records (0: all of them).
	Limit int
	// Labels selects executions that carry every one of these pairs.
	Labels map[string]string
	// After is a cursor (CursorAt of the last record of the previous page):
	// only executions after that position in List's order are listed. A
	// record created after the first page never shifts later pages. A
	// malformed cursor fails List with ErrBadCursor.
	After string
	// Order is the order of the records (the zero Order: newest created
	// first). After must be a cursor of the same Order.
	Order Order
}

// Order is an order List returns records in.
type Order int

const (
	// NewestCreated lists by CreatedAt, then ID, newest first: the
	// executions list. It is the zero Order.
	NewestCreated Order = iota
	// OldestUpdated lists by UpdatedAt, then ID, oldest first. With State
	// Paused it is the inbox: a paused record's UpdatedAt is when it last
	// paused, so the executions that have waited longest for a person come
	// first. Backends index that case (PAUSED records by UpdatedAt), so a
	// page of the inbox costs its rows; with another State it is a sort.
	OldestUpdated
)

// ClaimReason says why a dispatcher claimed an execution. The reasons are
// SPEC §6's classes of claimable executions.
type ClaimReason string

// The claim reasons, in the order Claim takes them.
const (
	ClaimCancel   ClaimReason = "cancel"   // a cancel was requested
	ClaimResume   ClaimReason = "resume"   // a resume made it runnable (RUNNING, events, no holder)
	ClaimTimer    ClaimReason = "timer"    // a timer, pause deadline or workflow timeout is due
	ClaimTakeover ClaimReason = "takeover" // its holder's lease expired
	ClaimStart    ClaimReason = "start"    // new: RUNNING with no event and no holder
)

// LabelPath is the JSON path of label key k in a stored labels object
// ($."k"), as SQLite's json_extract reads it.
func LabelPath(k string) string {
	b, _ := json.Marshal(k)
	return "$." + string(b)
}

// ClaimOrder is the rank of a reason in claim order (0 first).
func ClaimOrder(r ClaimReason) int {
	switch r {
	case ClaimCancel:
		return 0
	case ClaimResume, ClaimTimer:
		return 1 // one class: oldest due (or resume) time first
	case ClaimTakeover:
		return 2
	}
	return 3
}

// ClaimRequest asks Claim for work.
type ClaimRequest struct {
	Holder Holder
	TTL    time.Duration // of the leases taken (≤ 0: DefaultLeaseTTL)
	Limit  int           // at most this many claims (≤ 0 claims none)
	// Exclude names roots this holder must not claim (it lacks one of
	// their tasks, say).
	Exclude []string
	// Gone, when set, is asked about each other process that holds a live
	// lease and has Holder's Node (a process of this host and PID
	// namespace); the roots of those it reports gone are taken over at
	// once, as takeovers, instead of when their leases expire.
	Gone func(Holder) bool
}

// Claim is one root execution claimed: its lease is held by the claimer.
type Claim struct {
	Lease  Lease
	Reason ClaimReason
	// Stalled is the root's StalledTakeovers after this claim: from
	// CrashLoopTakeovers on, this takeover found it crash-looping.
	Stalled int
}

// CrashLoopTakeovers is how many takeovers without a new journal event
// make an execution crash-looping (SPEC §6): a process dies each time it
// drives it, so it is claimed again only after CrashLoopBackoff.
const CrashLoopTakeovers = 3

// CrashLoopBackoff is how long after its takeover a crash-looping root
// whose takeovers since its last event are stalled (≥ CrashLoopTakeovers)
// waits before another takeover: 1 min, then 2, 4 … up to 1 h. It is
// never failed automatically: a person may fix the task or the host.
func CrashLoopBackoff(stalled int) time.Duration {
	d := time.Minute
	for i := CrashLoopTakeovers; i < stalled && d < time.Hour; i++ {
		d *= 2
	}
	return min(d, time.Hour)
}

// ClaimResult is what Claim took, and when the next known timer falls due.
type ClaimResult struct {
	Claims []Claim
	// NextWake is the earliest wake-up time of an unfinished root that is
	// not due yet (zero when none), so a dispatcher can wake for it.
	NextWake time.Time
}

// DefaultLeaseTTL is the lease duration Acquire and Renew use when given a
// ttl ≤ 0.
const DefaultLeaseTTL = 30 * time.Second

// LeaseTTL is ttl, or DefaultLeaseTTL when ttl ≤ 0: how every backend reads
// the ttl of Acquire and Renew.
func LeaseTTL(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		return DefaultLeaseTTL
	}
	return ttl
}

// CrashLoopUntil is when a root taken over with stalled takeovers since
// its last event may be taken over again (zero: at once, it is not
// crash-looping).
func CrashLoopUntil(stalled int, takenOver time.Time) time.Time {
	if stalled < CrashLoopTakeovers {
		return time.Time{}
	}
	return takenOver.Add(CrashLoopBackoff(stalled))
}

// SameNode reports whether holder h runs on self's host and in its PID
// namespace (both Nodes known and equal) as another process than self: a
// process that can probe h's PID and see whether it is gone.
func SameNode(self, h Holder) bool {
	return self.Node != "" && h.Node == self.Node && h.PID != self.PID
}

// Holder identifies a runner: a process on a host.
type Holder struct {
	ID   string // unique per runner instance
	Host string
	PID  int
	// Node names the boot of the host and the PID namespace the process
	// runs in ("" when unknown), so that a PID can be probed only by a
	// process that sees the same PIDs: a hostname alone is not enough,
	// containers share hostnames.
	Node string
}

// Lease is a held lease on a root execution.
type Lease struct {
	RootID  string
	Token   int64 // fencing token: grows with every acquisition
	Holder  Holder
	Expires time.Time
}

// Journal is the durable store of executions and their events. Every method
// is safe for concurrent use. Implementations: journal/sqlite, journal/memory.
type Journal interface {
	// Create stores a new execution (Seq 0, no events). ErrExists if the ID is taken.
	Create(ctx context.Context, e *Execution) error
	// CreateHeld is Create of a root execution and Acquire of its lease by h,
	// in one commit: starting an execution costs one write.
	CreateHeld(ctx context.Context, e *Execution, h Holder, ttl time.Duration) (Lease, error)
	// Append writes atomically; it returns the Seq of the last event written
	// (ExpectedSeq when none). Concurrent appends may share a transaction,
	// but each returns only after its own commit.
	Append(ctx context.Context, a Append) (int64, error)
	// Events returns the events of an execution with Seq > after, in Seq order.
	Events(ctx context.Context, id string, after int64) ([]Event, error)
	// Get returns an execution's record, or ErrNotFound.
	Get(ctx context.Context, id string) (*Execution, error)
	// List returns records matching f in f.Order (by default newest
	// CreatedAt, then ID, first), at most f.Limit of them from the position
	// f.After. Its records leave
	// Definition nil (Get reads it): a page costs its rows, not the
	// journal's size.
	List(ctx context.Context, f Filter) ([]*Execution, error)

	// Acquire takes the lease of root for ttl. If it is held, unexpired, by
	// anyone — the same holder included: a lease belongs to one drive, and
	// a second drive of the same runner must not run beside it — it fails
	// with ErrBusy (wrapping a *BusyError naming the holder) unless
	// takeover equals the current token (the caller has established the
	// holder is dead). Each acquisition gets a new token.
	Acquire(ctx context.Context, rootID string, h Holder, ttl time.Duration, takeover int64) (Lease, error)
	// Renew extends a held lease; ErrFenced if the token is not current.
	Renew(ctx context.Context, l Lease, ttl time.Duration) (Lease, error)
	// Release gives the lease up; ErrFenced if the token is not current.
	Release(ctx context.Context, l Lease) error
	// LeaseOf returns the current lease of root (zero Lease if none).
	LeaseOf(ctx context.Context, rootID string) (Lease, error)

	// Claim takes, in one transaction, the leases of up to r.Limit root
	// executions that are claimable at the journal's clock: unfinished, not
	// held by a live lease, and with a cancel requested, runnable (RUNNING),
	// or a wake-up time that has come. They are taken in the order of the
	// ClaimReason constants, oldest first within each (by request, due,
	// expiry and creation time). Two claimers never get the same root.
	Claim(ctx context.Context, r ClaimRequest) (ClaimResult, error)
	// RequestCancel marks an unfinished root execution CancelRequested,
	// by the actor by (CancelRequestedBy; a repeated request keeps the
	// first one's), and returns its record; a no-op on a finished one.
	// ErrNotFound if there is none; ErrNotRoot (wrapped in a
	// *NotRootError) for a child.
	RequestCancel(ctx context.Context, id, by string) (*Execution, error)

	// Prune deletes, in one short transaction, up to r.Limit finished root
	// executions (COMPLETED, FAILED or CANCELLED, or r.States) whose record
	// was last updated (they finished) before r.FinishedBefore, with their
	// children and every event and lease of theirs. A root whose tree
	// holds an unfinished execution is never touched. Callers loop until
	// a call prunes no root, so a large prune never holds the writer long.
	// Their ids may then be used again.
	Prune(ctx context.Context, r PruneRequest) (PruneResult, error)

	Schedules
	Telemetry

	// Heartbeat records that the serve process w.ID is alive, as of the
	// journal's clock (w.SeenAt is ignored), replacing its previous row;
	// rows not seen for WorkerForget are deleted on the way.
	Heartbeat(ctx context.Context, w Worker) error
	// Workers returns the serve processes whose last heartbeat is within
	// the last `within` of the journal's clock, by ID.
	Workers(ctx context.Context, within time.Duration) ([]Worker, error)
	// ForgetWorker deletes the row of serve process id (it stopped).
	ForgetWorker(ctx context.Context, id string) error

	Close() error
}

// Hints is what a journal shared by several processes may offer beyond
// Journal: a hint from one process to the others that work may have
// become claimable (a start, a cancel request, a released lease), so that
// they claim it before their next poll. A hint may be lost; it never
// replaces the poll. PostgreSQL has it (LISTEN/NOTIFY).
type Hints interface {
	// Hint tells every listening process, this one included, that work
	// may be claimable.
	Hint(ctx context.Context) error
	// ListenHints receives a value for hints, coalesced, on one
	// connection of its own, until ctx is done or the connection fails:
	// then the channel is closed.
	ListenHints(ctx context.Context) (<-chan struct{}, error)
}

// HintsOf returns the Hints of j, looking through wrappers that have an
// Unwrap() Journal method (sealed): ok false when j has none.
func HintsOf(j Journal) (Hints, bool) {
	for {
		if h, ok := j.(Hints); ok {
			return h, true
		}
		u, ok := j.(interface{ Unwrap() Journal })
		if !ok {
			return nil, false
		}
		j = u.Unwrap()
	}
}

// Worker is a serve process as its heartbeats describe it (GET /v1/workers).
type Worker struct {
	ID          string
	Host        string
	PID         int
	Node        string // as Holder.Node
	Version     string
	StartedAt   time.Time
	SeenAt      time.Time // the journal's clock at its last heartbeat
	Draining    bool
	Concurrency int      // the most execution trees it drives at once
	InUse       int      // the trees it drives now
	Tasks       []string // the tasks it registers, sorted
}

// Holder is the process w as a lease holder (its leases carry its ID).
func (w Worker) Holder() Holder { return Holder{ID: w.ID, Host: w.Host, PID: w.PID, Node: w.Node} }

// WorkerTasks is tasks sorted, never nil: how a backend stores a
// Worker's tasks.
func WorkerTasks(tasks []string) []string {
	out := append([]string{}, tasks...)
	slices.Sort(out)
	return out
}

// WorkerForget is how long a serve process's row outlives its last
// heartbeat: long enough to read who last served, short enough that the
// table stays the size of the fleet.
const WorkerForget = time.Hour

// PruneRequest selects the finished roots one Prune call deletes.
type PruneRequest struct {
	FinishedBefore time.Time
	// States are the finished states to prune; empty means all three.
	// Others are ignored: an open execution is never pruned.
	States []State
	// Limit caps the roots of this call; ≤ 0 means DefaultPruneBatch.
	Limit int
}

// PruneResult counts what one Prune call deleted.
type PruneResult struct {
	Roots      int // root executions
	Executions int // roots and their children
	Events     int
	// Definitions counts pinned definitions deleted because no execution
	// uses them any more (a backend that stores each once: SQLite).
	Definitions int
}

// Add counts o into r: the totals of a prune made of several calls.
func (r *PruneResult) Add(o PruneResult) {
	r.Roots += o.Roots
	r.Executions += o.Executions
	r.Events += o.Events
	r.Definitions += o.Definitions
}

// DefaultPruneBatch is how many roots one Prune call deletes unless told:
// small enough that the transaction is short next to the appends of
// running executions waiting on the same writer.
const DefaultPruneBatch = 100

// PruneStates returns the finished states r selects, in a stable order.
func (r PruneRequest) PruneStates() []State {
	var out []State
	for _, st := range []State{Completed, Failed, Cancelled} {
		if len(r.States) == 0 || slices.Contains(r.States, st) {
			out = append(out, st)
		}
	}
	return out
}

// PruneLimit is r.Limit, or DefaultPruneBatch when it is not positive.
func (r PruneRequest) PruneLimit() int {
	if r.Limit <= 0 {
		return DefaultPruneBatch
	}
	return r.Limit
}

// BusyError says who holds a lease.
type BusyError struct {
	Lease Lease
}

func (e *BusyError) Error() string {
	return "execution " + e.Lease.RootID + " is held by another runner (" + e.Lease.Holder.Host + ", pid " + itoa(e.Lease.Holder.PID) + ") until " + e.Lease.Expires.UTC().Format(time.RFC3339)
}

// Unwrap makes errors.Is(err, ErrBusy) true.
func (e *BusyError) Unwrap() error { return ErrBusy }

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// DefinitionUpgraded: a resume moved the execution to a new definition;
// Data {"definition": canonical source, "hash": its SHA-256}. It is not a
// step event and is kept apart from the list above so backends need not
// know it.
const DefinitionUpgraded EventKind = "definition.upgraded"

// RerunOf is the first event of an execution started by a rerun, at path
// "": it links to the execution it reuses the outcomes of. Data:
// RerunOfData.
const RerunOf EventKind = "rerun.of"
