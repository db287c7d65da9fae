#!/usr/bin/env bash
# `make bench`: libjail against runc and crun on one bundle, on this machine. Prints the table and
# writes $BENCH_DIR/results.json (default _build/bench). Needs root. Bounded: about 2-4 minutes.
#
# Knobs (environment): BENCH_DIR, LIFECYCLE_RUNS (in-process runs, >= 200), CLI_ROUNDS,
# EXEC_ROUNDS, MEM_CONTAINERS, MICRO_TIME (go test -benchtime of the micro-benchmarks).
set -euo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}
D=${BENCH_DIR:-_build/bench}
LIFECYCLE_RUNS=${LIFECYCLE_RUNS:-300}
CLI_ROUNDS=${CLI_ROUNDS:-100}
EXEC_ROUNDS=${EXEC_ROUNDS:-100}
MEM_CONTAINERS=${MEM_CONTAINERS:-200}
MICRO_TIME=${MICRO_TIME:-0.5s}

if [ "$(id -u)" != 0 ]; then
	echo "make bench: needs root (containers, cgroups)" >&2
	exit 1
fi

# runc and crun from Debian, installed once.
missing=""
for p in runc crun util-linux; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "installing:$missing"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
fi

mkdir -p "$D"
D=$(cd "$D" && pwd)
B=$D/bin
mkdir -p "$B"
rm -f "$D"/*.json "$D"/gobench-*.txt
cat /proc/loadavg >"$D/loadavg-start"

# runc, in the hybrid layout, enables controllers in the unified hierarchy's root (its cgroup
# creation writes every parent's cgroup.subtree_control, the root's included): that cgroup is the
# machine's, not ours, so put back what runc added when we are done.
unified=/sys/fs/cgroup/unified
root_controllers_before=$(cat "$unified/cgroup.subtree_control" 2>/dev/null || true)
restore_unified_root() {
	[ -f "$unified/cgroup.subtree_control" ] || return 0
	local c
	for c in $(cat "$unified/cgroup.subtree_control"); do
		case " $root_controllers_before " in *" $c "*) ;; *) echo "-$c" >"$unified/cgroup.subtree_control" 2>/dev/null || true ;; esac
	done
}
cleanup() {
	# Containers, state and cgroups named libjail-bench-*, even after a failure.
	[ -x "$B/libjail-bench" ] && "$B/libjail-bench" cleanup || true
	rm -rf "$D"/libjail-bench-state-* "$D"/bundle-sleep-*
	restore_unified_root # once no cgroup of ours uses what runc enabled
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

echo "== building"
$GO build -o "$B/libjail-bench" ./internal/bench/cmd/libjail-bench
$GO build -o "$B/run" ./examples/run
OCI=""
if [ -d examples/ociruntime ]; then
	$GO build -o "$B/ociruntime" ./examples/ociruntime
	OCI=$B/ociruntime
else
	echo "   examples/ociruntime does not exist yet: skipped"
fi
"$B/libjail-bench" bundle -dir "$D"

echo "== in-process lifecycle, without seccomp, and Container.Exec ($LIFECYCLE_RUNS runs each), Go benchmarks"
LIBJAIL_BENCH_BUNDLE=$D/bundle LIBJAIL_BENCH_OUT=$D \
	$GO test -count=1 -run '^$' -bench '^Benchmark(Lifecycle|LifecycleNoSeccomp|Exec)$' -benchtime "${LIFECYCLE_RUNS}x" -timeout 10m . |
	tee "$D/gobench-lifecycle.txt" | grep -E '^(Benchmark|ok|FAIL|---)' || true
grep -q '^BenchmarkLifecycle' "$D/gobench-lifecycle.txt" || { cat "$D/gobench-lifecycle.txt"; exit 1; }

echo "== micro-benchmarks: planning, sealing, seccomp compile (uncached, cached), device programs"
LIBJAIL_BENCH_BUNDLE=$D/bundle $GO test -count=1 -run '^$' -bench '^Benchmark(NewPlan|SealExecutable)$' -benchtime "$MICRO_TIME" . >"$D/gobench-root.txt"
$GO test -count=1 -run '^$' -bench . -benchtime "$MICRO_TIME" ./seccomp >"$D/gobench-seccomp.txt"
$GO test -count=1 -run '^$' -bench . -benchtime "$MICRO_TIME" ./devices >"$D/gobench-devices.txt"

echo "== \`run\` by command line, interleaved ($CLI_ROUNDS rounds)"
"$B/libjail-bench" cli -dir "$D" -rounds "$CLI_ROUNDS" -run "$B/run" -ociruntime "$OCI"

echo "== exec by command line, interleaved ($EXEC_ROUNDS rounds)"
"$B/libjail-bench" exec -dir "$D" -rounds "$EXEC_ROUNDS" -ociruntime "$OCI"

echo "== agent memory with $MEM_CONTAINERS live containers"
"$B/libjail-bench" memory -dir "$D" -n "$MEM_CONTAINERS"

echo
"$B/libjail-bench" report -dir "$D" | tee "$D/table.txt"
echo
echo "results: $D/results.json"
