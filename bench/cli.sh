#!/usr/bin/env bash
# bench/cli.sh: wall time of `loom run` of a 10-task echo workflow as a
# process (start, load, journal, run, exit), the median of N runs, next to
# two baselines measured in the same run: /bin/true (process start) and
# `loom schema` (the loom binary's own start, no journal). Target: the run
# under 30 ms.
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

# median CMD…: runs CMD N times, prints the median wall time in
# microseconds. $EPOCHREALTIME (bash 5) is read directly: a $(…) or a date
# would fork and count a process start of its own.
median() {
	local times=() i s e
	for ((i = 0; i < N; i++)); do
		s=${EPOCHREALTIME/./}
		"$@" >/dev/null
		e=${EPOCHREALTIME/./}
		times+=($((10#$e - 10#$s)))
	done
	printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((N + 1) / 2))p"
}

true_us=$(median /bin/true)
schema_us=$(median "$tmp/loom" schema)
run_us=$(median "$tmp/loom" run "$tmp/ten.yaml" --quiet)

ms() { awk -v u="$1" 'BEGIN { printf "%.2f ms", u / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else print "n/a" }'; }
echo "median of $N runs, $(nproc) cores"
echo "  /bin/true                  $(ms "$true_us")"
echo "  loom schema                $(ms "$schema_us")"
echo "  loom run (10 echo tasks)   $(ms "$run_us")   = $(ratio "$run_us" "$schema_us") loom schema, $(ratio "$run_us" "$true_us") /bin/true"
if ((run_us < 30000)); then echo "  target < 30 ms: met"; else echo "  target < 30 ms: NOT met"; fi
