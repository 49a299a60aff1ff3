#!/usr/bin/env bash
# bench/compare.sh: the engine benchmarks of ./bench at a base commit and at
# the working tree, in one run, alternately, so that both see the same
# machine (its load drifts; a figure from another run means little). It
# prints benchstat's medians and ratios.
#
#   bench/compare.sh 1f598b9            # the #8 reshaping's baseline
#   ROUNDS=8 bench/compare.sh 1f598b9     # what docs/design.md reports
#
# BENCH=regexp runs only those benchmarks (at -benchtime=${BENCHTIME:-20x});
# SAME_BENCH=1 runs the working tree's ./bench files at the base commit too,
# so a benchmark added since then measures the base's code:
#
#   SAME_BENCH=1 BENCH=Replay10000Events BENCHTIME=10x bench/compare.sh main
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: bench/compare.sh BASE_COMMIT}
rounds=${ROUNDS:-5}
tmp=$(mktemp -d)
cleanup() {
	git worktree remove --force "$tmp/base" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT

git worktree add --detach "$tmp/base" "$base" >/dev/null
if [[ ${SAME_BENCH:-} == 1 ]]; then
	rm -f "$tmp"/base/bench/*.go
	cp bench/*.go "$tmp/base/bench/"
fi
(cd "$tmp/base" && go test -c -o "$tmp/bench-base.test" ./bench)
go test -c -o "$tmp/bench-after.test" ./bench

for i in $(seq "$rounds"); do
	for v in base after; do
		# Each binary runs from its own tree: the benchmarks read examples
		# and testdata relative to the package.
		dir=$PWD/bench
		[[ $v == base ]] && dir=$tmp/base/bench
		if [[ -n ${BENCH:-} ]]; then
			(cd "$dir" && "$tmp/bench-$v.test" -test.run='^$' -test.bench="$BENCH" -test.benchtime="${BENCHTIME:-20x}") >>"$tmp/$v.txt" 2>&1
			continue
		fi
		(cd "$dir" &&
			"$tmp/bench-$v.test" -test.run='^$' -test.bench='OneExecution|Replay10000Events' -test.benchtime=20x &&
			# 20 runs of the 100-step chain are 2,000 steps: mostly warm-up
			# and one GC; 2,000 runs measure the steady state.
			"$tmp/bench-$v.test" -test.run='^$' -test.bench='StepOverhead' -test.benchtime=2000x &&
			"$tmp/bench-$v.test" -test.run='^$' -test.bench='Throughput' -test.benchtime=1x) >>"$tmp/$v.txt" 2>&1
	done
	echo "round $i of $rounds done" >&2
done
go run golang.org/x/perf/cmd/benchstat@latest "$tmp/base.txt" "$tmp/after.txt"
