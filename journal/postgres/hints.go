package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// hintChannel is the NOTIFY channel of journal.Hints. It is per database,
// not per schema: journals in other schemas of one database get each
// other's hints, which cost them only an early look for work.
const hintChannel = "loom_work"

// Hint implements journal.Hints: a NOTIFY through the pool.
func (j *Journal) Hint(ctx context.Context) error {
	if err := j.readable(ctx); err != nil {
		return err
	}
	if _, err := j.pool.Exec(ctx, `SELECT pg_notify('`+hintChannel+`', '')`); err != nil {
		return fmt.Errorf("journal: hint: %w", unavailable(err))
	}
	return nil
}

// ListenHints implements journal.Hints on a connection of its own,
// outside the pool (SPEC §6: the pool's connections plus one for
// LISTEN). Behind a pooler in transaction mode LISTEN may succeed and
// deliver nothing: the hints are lost, and the polls still find the work.
func (j *Journal) ListenHints(ctx context.Context) (<-chan struct{}, error) {
	if err := j.readable(ctx); err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, j.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("journal: listen for hints: %w", unavailable(err))
	}
	if _, err := conn.Exec(ctx, `LISTEN `+hintChannel); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("journal: listen for hints: %w", unavailable(err))
	}
	ch := make(chan struct{}, 1)
	go func() {
		defer close(ch)
		defer conn.Close(context.Background())
		for {
			if _, err := conn.WaitForNotification(ctx); err != nil {
				return
			}
			select {
			case ch <- struct{}{}:
			default: // one wake-up stands for all the hints it missed
			}
		}
	}()
	return ch, nil
}
