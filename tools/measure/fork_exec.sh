#!/usr/bin/env bash
# Counts per op of a fork-heavy workload: a shell loop that forks and execs a
# small program (fork + touch + exec, as a build or a script does).
# One op = one fork + exec + exit + wait of /bin/true from bash.
#
# Usage: bash fork_exec.sh [OUTDIR] [ITERATIONS]   (as root; default /tmp/asi-measure, 2000)
# Env:   REPS=3         timing runs (the median CPU time per op is reported)
#        BASELINE_S=20  idle seconds for the background rates (whole machine)
#        QUIET_MAX_S=600, QUIET_BUSY=0.10: before each run, wait this long at most
#                       for a quiet machine (common.sh wait_quiet; fe_quiet.log)
#
# Runs: baseline (idle, new_counts events system-wide) -> REPS timing runs
# (nothing attached: /usr/bin/time -v, /proc snapshots for interrupts and the
# load) -> measured run (perf stat per command and -a with events/fork_exec.events
# and events/new_counts.events). Writes small text outputs and fork_exec.yaml.
set -euo pipefail
OUT=$(realpath -m "${1:-/tmp/asi-measure}")
N=${2:-2000}
REPS=${REPS:-3}
BASELINE_S=${BASELINE_S:-20}
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/common.sh"
mkdir -p "$OUT"
export DEBIAN_FRONTEND=noninteractive
command -v perf >/dev/null && [ -x /usr/bin/time ] && python3 -c 'import yaml' 2>/dev/null ||
  { apt-get update -qq && apt-get install -y -qq linux-perf time python3-yaml procps gcc >/dev/null; }
ensure_tracefs

loop=$(mktemp /tmp/fork_exec_loop.XXXXXX)
printf '#!/bin/bash\nfor ((i = 0; i < %d; i++)); do /bin/true; done\n' "$N" >"$loop"
chmod +x "$loop"
"$loop"  # warm: bash, ld.so, libc and /bin/true in the page cache

: >"$OUT/fe_quiet.log"
echo "before $(clock_probe)" >"$OUT/fe_clock.txt"
wait_quiet "$OUT/fe_quiet.log" baseline
snap "$OUT/fe_baseline.snap.before"
baseline "$OUT/fe_baseline.perf-system.csv" "$BASELINE_S" "$HERE/events/new_counts.events" "$HERE/events/switches.events"
snap "$OUT/fe_baseline.snap.after"

for r in $(seq "$REPS"); do
  wait_quiet "$OUT/fe_quiet.log" "timing$r"
  snap "$OUT/fe_timing$r.snap.before"
  /usr/bin/time -v -o "$OUT/fe_timing$r.time-v.txt" "$loop"
  snap "$OUT/fe_timing$r.snap.after"
done

perf_args "$HERE/events/fork_exec.events" "$HERE/events/new_counts.events" "$HERE/events/switches.events"
wait_quiet "$OUT/fe_quiet.log" measured
snap "$OUT/fe_measured.snap.before"
perf stat -a -x, -o "$OUT/fe_measured.perf-system.csv" "${PERF_ARGS[@]}" -- \
  perf stat -x, -o "$OUT/fe_measured.perf-task.csv" "${PERF_ARGS[@]}" -- \
  /usr/bin/time -v -o "$OUT/fe_measured.time-v.txt" "$loop"
snap "$OUT/fe_measured.snap.after"
rm -f "$loop"
echo "after $(clock_probe)" >>"$OUT/fe_clock.txt"

python3 "$HERE/fork_exec_summary.py" "$OUT" "$N" "$REPS" "$BASELINE_S"
