package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgFloor is the bare SQL a PostgreSQL journal must run for n executions
// of a steps-task chain, without Loom: the same rows the journal writes
// (each execution's record and lease inserted; per step one event
// inserted and the record's last seq and update time set; the last step's
// append also the finish event, the record's state and output, and the
// lease deleted) in the same number of transactions (commits), each one
// round trip from one connection (BEGIN, one multi-row statement per
// table and kind of write, joined from arrays with unnest, COMMIT). The
// writes are the journal's a step at a time, in the order the concurrent
// run makes them (every execution's create, then every execution's first
// append, ...), cut into commits of equal size. It leaves out what the
// journal adds to be correct with several writers and callers: the row
// locks and the fencing-token and seq checks, the per-append results, the
// refusals; and the reads (Run reads each record back at its end).
type pgFloor struct {
	n, steps, commits int
	definition        []byte
	hash              string
}

// floorOp is one of the journal's writes: execution exec's create
// (step -1), or its append of step step (1-based; the last also
// finishes).
type floorOp struct{ exec, step int }

// run writes the rows into the journal tables of schema (made by
// postgres.Open, empty) through conn, and returns the time taken.
func (f pgFloor) run(ctx context.Context, conn *pgx.Conn) (time.Duration, error) {
	ids := make([]string, f.n)
	for i := range ids {
		ids[i] = uuid()
	}
	var ops []floorOp
	for s := -1; s <= f.steps; s++ {
		if s == 0 {
			continue
		}
		for e := range f.n {
			ops = append(ops, floorOp{e, s})
		}
	}
	start := time.Now()
	for c := range f.commits {
		lo, hi := c*len(ops)/f.commits, (c+1)*len(ops)/f.commits
		if err := f.commit(ctx, conn, ids, ops[lo:hi]); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// commit writes ops in one transaction, one round trip.
func (f pgFloor) commit(ctx context.Context, conn *pgx.Conn, ids []string, ops []floorOp) error {
	now := timeText(time.Now())
	expires := timeText(time.Now().Add(time.Minute))
	var (
		cIDs                                []string
		eIDs, ePaths, eKinds, eNames, eData []string
		eSeqs                               []int64
		uIDs                                []string
		uLast                               []int64
		uStates, uOutputs                   []*string
		rIDs                                []string
		completed, finishData               = "COMPLETED", `{"state":"COMPLETED","output":` + strconv.Itoa(f.steps-1) + `}`
	)
	for _, o := range ops {
		id := ids[o.exec]
		if o.step < 0 {
			cIDs = append(cIDs, id)
			continue
		}
		step := fmt.Sprintf(`{"output":%d,"started_at":"%s"}`, o.step-1, now)
		eIDs, eSeqs = append(eIDs, id), append(eSeqs, int64(o.step))
		ePaths, eKinds, eNames, eData = append(ePaths, "s"+strconv.Itoa(o.step-1)), append(eKinds, "step.completed"), append(eNames, "task:echo"), append(eData, step)
		uIDs, uLast = append(uIDs, id), append(uLast, int64(o.step))
		var state, output *string
		if o.step == f.steps {
			eIDs, eSeqs = append(eIDs, id), append(eSeqs, int64(o.step+1))
			ePaths, eKinds, eNames, eData = append(ePaths, ""), append(eKinds, "execution.finished"), append(eNames, completed), append(eData, finishData)
			uLast[len(uLast)-1]++
			out := strconv.Itoa(f.steps - 1)
			state, output = &completed, &out
			rIDs = append(rIDs, id)
		}
		uStates, uOutputs = append(uStates, state), append(uOutputs, output)
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	if len(cIDs) > 0 {
		b.Queue(`INSERT INTO executions (id, workflow, version, state, root_id, parent_path, input, definition, definition_hash, created_at, updated_at)
			SELECT u.id, 'chain', 1, 'RUNNING', u.id, '', 'null', $2, $3, $4, $4 FROM unnest($1::text[]) AS u(id)`,
			cIDs, f.definition, f.hash, now)
		b.Queue(`INSERT INTO leases (root_id, token, holder_id, holder_host, holder_pid, holder_node, expires)
			SELECT u.id, nextval('lease_tokens'), 'floor', 'host', 1, 'node', $2 FROM unnest($1::text[]) AS u(id)`, cIDs, expires)
	}
	if len(eIDs) > 0 {
		b.Queue(`INSERT INTO events (execution_id, seq, path, kind, name, ordinal, data, time)
			SELECT u.id, u.seq, u.path, u.kind, u.name, 0, u.data, $7
			FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[]) AS u(id, seq, path, kind, name, data)`,
			eIDs, eSeqs, ePaths, eKinds, eNames, eData, now)
		b.Queue(`UPDATE executions e SET last_seq = u.last, updated_at = $5,
			state = coalesce(u.state, e.state), output = coalesce(u.output, e.output)
			FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[]) AS u(id, last, state, output)
			WHERE e.id = u.id`, uIDs, uLast, uStates, uOutputs, now)
	}
	if len(rIDs) > 0 {
		b.Queue(`DELETE FROM leases l USING unnest($1::text[]) AS u(id) WHERE l.root_id = u.id`, rIDs)
	}
	b.Queue("COMMIT")
	return conn.SendBatch(ctx, b).Close()
}

// timeText is t as the journal stores times (RFC 3339 UTC, nine
// fractional digits).
func timeText(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z") }

// uuid is a random UUID (version 4), as the interpreter's execution ids.
func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
