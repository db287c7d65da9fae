#!/usr/bin/env bash
# Where the in-process lifecycle's time goes (issue 10, item 2). Needs root; perf is optional.
# Writes $BENCH_DIR/profile/: pprof of the agent side (cpu.prof, pprof-top.txt; an execution trace trips the
# test binary's fd-leak check), and
# with perf: where CPU goes by process and object (perf-dso.txt) and the child's step timeline
# from tracepoints (timeline.txt).
set -euo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}
D=${BENCH_DIR:-_build/bench}
RUNS=${PROFILE_RUNS:-200}
mkdir -p "$D/profile" "$D/bin"
D=$(cd "$D" && pwd)
P=$D/profile
trap '[ -x "$D/bin/libjail-bench" ] && "$D/bin/libjail-bench" cleanup || true' EXIT

$GO build -o "$D/bin/libjail-bench" ./internal/bench/cmd/libjail-bench
[ -f "$D/bundle/config.json" ] || "$D/bin/libjail-bench" bundle -dir "$D"
$GO test -c -o "$P/libjail.test" .
export LIBJAIL_BENCH_BUNDLE=$D/bundle
bench=(-test.run '^$' -test.bench '^BenchmarkLifecycle$' -test.benchtime "${RUNS}x")

echo "== pprof of the agent side ($RUNS runs)"
"$P/libjail.test" "${bench[@]}" -test.cpuprofile "$P/cpu.prof" | grep '^Benchmark'
$GO tool pprof -top -cum "$P/libjail.test" "$P/cpu.prof" 2>/dev/null |
	grep -E 'Duration|Total|libjail|forkExec|Syscall' | head -40 | tee "$P/pprof-top.txt" || true

if ! command -v perf >/dev/null || ! (perf list 2>/dev/null | grep sched:sched_process_exec >/dev/null); then
	echo "perf or its tracepoints unavailable: no child-side profile"
	exit 0
fi
echo "== perf: CPU by process and object, agent and children"
perf record -q -F 2999 -g -o "$P/perf.data" "$P/libjail.test" "${bench[@]}" | grep '^Benchmark'
# The child's comm is its fd number (it runs /proc/self/fd/N): addresses in memfd:libjail-init
# resolve against libjail.test (`go tool addr2line`), which is the same file.
perf report -i "$P/perf.data" --no-children --sort comm,dso --stdio -g none 2>/dev/null |
	grep -v '^#' | grep -v '^$' | head -20 | tee "$P/perf-dso.txt" || true

echo "== perf tracepoints: the child's steps"
perf record -q -o "$P/tp.data" -e sched:sched_process_fork -e sched:sched_process_exec \
	-e syscalls:sys_enter_sendmsg -e syscalls:sys_enter_exit_group \
	"$P/libjail.test" "${bench[@]}" | grep '^Benchmark'
perf script -i "$P/tp.data" -F comm,tid,time,event,trace 2>/dev/null >"$P/tp.txt"
"$D/bin/libjail-bench" timeline -in "$P/tp.txt" | tee "$P/timeline.txt"
