package postgres

import (
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/loomwork/loom/journal"
)

// unavailable marks errors that mean the server cannot be reached or cannot
// work now (connection refused or lost, shut down, out of disk or
// connections, an I/O error) as journal.ErrUnavailable.
func unavailable(err error) error {
	if err == nil || errors.Is(err, journal.ErrUnavailable) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			strings.HasPrefix(pe.Code, "53"),  // insufficient resources: disk full, out of memory, too many connections
			strings.HasPrefix(pe.Code, "57P"), // admin or crash shutdown, cannot connect now
			strings.HasPrefix(pe.Code, "58"),  // system error: I/O
			pe.Code == "25006":                // read-only transaction (a standby)
			return &journal.UnavailableError{Err: err}
		}
		return err
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		pgconn.SafeToRetry(err) || strings.Contains(err.Error(), "conn closed") {
		return &journal.UnavailableError{Err: err}
	}
	return err
}
