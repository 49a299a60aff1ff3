//go:build linux

package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// clockTick is Linux's USER_HZ, the unit of /proc/PID/stat's times (100 on
// every architecture Go supports).
const clockTick = 10 * time.Millisecond

// serverCPU is the CPU time (user and system) the PostgreSQL server c is
// connected to has used so far: the postmaster's own and that of its
// children, exited (reaped: the postmaster's cutime and cstime) and live
// (backends, the WAL writer, the checkpointer). ok is false when the
// server does not run on this machine or /proc cannot be read. A backend
// adds its time to the postmaster's when it exits, so read it after the
// connections measured have closed.
func serverCPU(c *pgx.Conn) (cpu time.Duration, ok bool) {
	var backend int
	if err := c.QueryRow(context.Background(), `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		return 0, false
	}
	self, err := procStat(backend)
	if err != nil || self.comm != "postgres" {
		return 0, false
	}
	pm, err := procStat(self.ppid)
	if err != nil || pm.comm != "postgres" {
		return 0, false
	}
	total := pm.utime + pm.stime + pm.cutime + pm.cstime
	for _, s := range serverChildren(self.ppid) {
		total += s.utime + s.stime
	}
	return time.Duration(total) * clockTick, true
}

// backendCPU is the CPU time the live client backends of the server c is
// connected to have used so far (c's own included): read before the
// connections measured close, it is their work alone, without the
// server's background processes (autovacuum, the checkpointer, the WAL
// writer) and without the backends of other connections that exited
// meanwhile, which serverCPU counts.
func backendCPU(c *pgx.Conn) (cpu time.Duration, ok bool) {
	var backend int
	if err := c.QueryRow(context.Background(), `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		return 0, false
	}
	self, err := procStat(backend)
	if err != nil || self.comm != "postgres" {
		return 0, false
	}
	var total int64
	for _, s := range serverChildren(self.ppid) {
		// A client backend's title is "postgres: USER DB HOST(PORT) …"
		// (or "[local]"); a background process's names its role.
		title, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", s.pid))
		if err == nil && (strings.Contains(string(title), "(") || strings.Contains(string(title), "[local]")) {
			total += s.utime + s.stime
		}
	}
	return time.Duration(total) * clockTick, true
}

// serverChildren are the live processes of the postmaster pm.
func serverChildren(pm int) []procTimes {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return nil
	}
	var out []procTimes
	for _, d := range dirs {
		pid, _ := strconv.Atoi(filepath.Base(d))
		if s, err := procStat(pid); err == nil && s.ppid == pm {
			out = append(out, s)
		}
	}
	return out
}

type procTimes struct {
	comm                         string
	pid, ppid                    int
	utime, stime, cutime, cstime int64
}

// procStat reads /proc/PID/stat (proc(5)): the command in parentheses,
// then space-separated fields from the state (field 3) on.
func procStat(pid int) (procTimes, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procTimes{}, err
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return procTimes{}, fmt.Errorf("/proc/%d/stat: no command", pid)
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 15 {
		return procTimes{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	p := procTimes{comm: s[open+1 : end], pid: pid}
	var errs [5]error
	p.ppid, errs[0] = strconv.Atoi(f[1])
	p.utime, errs[1] = strconv.ParseInt(f[11], 10, 64)
	p.stime, errs[2] = strconv.ParseInt(f[12], 10, 64)
	p.cutime, errs[3] = strconv.ParseInt(f[13], 10, 64)
	p.cstime, errs[4] = strconv.ParseInt(f[14], 10, 64)
	for _, err := range errs {
		if err != nil {
			return procTimes{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
	}
	return p, nil
}
