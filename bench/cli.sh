#!/usr/bin/env bash
# bench/cli.sh: wall time of `loom run` of a 10-task echo workflow as a
# process (start, load, journal, run, exit), the median of N runs, next to
# two baselines measured alternately with it in the same run: /bin/true
# (process start) and `loom schema` (the loom binary's own start, no
# journal). Targets: the run at most 1.5x loom schema, and under 30 ms.
#
#   bench/cli.sh          # N=21 runs each
#   N=51 bench/cli.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-21}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

go build -o "$tmp/loom" ./cmd/loom

{
	echo "name: ten_echoes"
	echo "steps:"
	for i in 1 2 3 4 5 6 7 8 9 10; do
		printf '  - id: s%d\n    task: echo\n    with: {n: %d}\n' "$i" "$i"
	done
} >"$tmp/ten.yaml"
export LOOM_DB="$tmp/loom.db"
"$tmp/loom" validate "$tmp/ten.yaml"
"$tmp/loom" run "$tmp/ten.yaml" --quiet >/dev/null # creates the journal; later runs append to it

# The three commands run alternately, N rounds: a load that drifts during
# the run weighs on each alike. $EPOCHREALTIME (bash 5) is read directly:
# a $(…) or a date would fork and count a process start of its own.
true_t=() schema_t=() run_t=()
timed() { # timed ARRAY CMD…: appends CMD's wall time in microseconds
	local -n out=$1
	shift
	local s e
	s=${EPOCHREALTIME/./}
	"$@" >/dev/null
	e=${EPOCHREALTIME/./}
	out+=($((10#$e - 10#$s)))
}
for ((i = 0; i < N; i++)); do
	timed true_t /bin/true
	timed schema_t "$tmp/loom" schema
	timed run_t "$tmp/loom" run "$tmp/ten.yaml" --quiet
done
median() { printf '%s\n' "$@" | sort -n | sed -n "$(((N + 1) / 2))p"; }
true_us=$(median "${true_t[@]}")
schema_us=$(median "${schema_t[@]}")
run_us=$(median "${run_t[@]}")

ms() { awk -v u="$1" 'BEGIN { printf "%.2f ms", u / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'; }
echo "median of $N alternating runs, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
echo "  /bin/true                  $(ms "$true_us")"
echo "  loom schema                $(ms "$schema_us")"
echo "  loom run (10 echo tasks)   $(ms "$run_us")   = $(ratio "$run_us" "$schema_us") loom schema, $(ratio "$run_us" "$true_us") /bin/true"
if awk -v a="$run_us" -v b="$schema_us" 'BEGIN { exit !(a <= 1.5 * b) }'; then
	echo "  target run <= 1.5x loom schema: met"
else
	echo "  target run <= 1.5x loom schema: NOT met"
fi
if ((run_us < 30000)); then echo "  target < 30 ms: met"; else echo "  target < 30 ms: NOT met"; fi
