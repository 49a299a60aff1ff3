//go:build !linux

package bench

import (
	"time"

	"github.com/jackc/pgx/v5"
)

// serverCPU is measured from Linux's /proc only: elsewhere ok is false and
// the server's CPU metric is left out.
func serverCPU(*pgx.Conn) (time.Duration, bool) { return 0, false }

// backendCPU: as serverCPU.
func backendCPU(*pgx.Conn) (time.Duration, bool) { return 0, false }
