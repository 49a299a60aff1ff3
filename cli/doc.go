// Package cli is the loom command set as a library: flag parsing, printing
// and exit codes over any task registry, so a team builds its own loom with
// its Go tasks in five lines (os.Exit(cli.Main(reg))); cmd/loom is that over
// the standard tasks.
//
// Decisions where SPEC §5 is silent:
//
//   - Flags take one or two dashes and may come anywhere among the
//     arguments; "--" ends them.
//   - Commands that only read or continue executions (status, list, show,
//     replay, cancel, resume) never create a journal: with no journal file
//     an id is unknown (exit 2) and list prints nothing. run creates the
//     file and its directory on first use, and only once the definition and
//     the input were accepted, so a refused run leaves nothing behind.
//   - run --id ID names the execution; a taken id is refused (exit 2), so a
//     retried start runs once.
//   - A run or resume stopped by Ctrl-C or SIGTERM leaves the execution
//     RUNNING, says which command continues it, and exits 3 ("not finished;
//     resume continues it"), like a pause or a timer.
//   - A completed run prints one status line on stderr (the id), unless
//     --quiet; a failure is always reported.
//   - resume --due continues WAITING executions whose timer is due, RUNNING
//     ones nobody holds (a dead or interrupted runner), and PAUSED ones with
//     a pause past its deadline (which then fails with PauseTimeout). It
//     never delivers a payload, skips executions other runners hold, and
//     exits 0 unless one could not be driven.
//   - list leaves child executions out unless --all.
//   - All exit statuses and the hints printed with errors come from exit.go.
package cli
