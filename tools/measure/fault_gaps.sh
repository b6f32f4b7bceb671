#!/usr/bin/env bash
# How far apart a build's user write faults come, per task: the time from one zero-fill or
# copy-on-write fault of a task to its next (bpftrace on exceptions:page_fault_user with the
# write bit, a histogram of the gaps in microseconds, power-of-two buckets). Each such fault
# is an ASI exit, and both CR3 writes clear NOFLUSH, so what a task refills after an exit is
# what it touches before its next one: a gap of a few microseconds inside a burst of faults
# on fresh memory touches a handful of pages, a long gap the task's whole working set.
# The build is a sample (SAMPLE directories after tinyconfig and prepare) on tmpfs, as in
# posting_build.sh; the distribution is a ratio, a sample measures it.
#
# Usage: bash fault_gaps.sh [OUTDIR]      (as root)
# Env:   TARBALL=/usr/src/linux-source-6.1.tar.xz  SAMPLE="init/ kernel/ mm/"  JOBS=$(nproc)
set -euo pipefail
OUT=$(realpath -m "${1:-/tmp/asi-measure-posting}")
TARBALL=${TARBALL:-/usr/src/linux-source-6.1.tar.xz}
SAMPLE=${SAMPLE:-init/ kernel/ mm/}
JOBS=${JOBS:-$(nproc)}
mkdir -p "$OUT"
source "$(dirname "$0")/common.sh"
kernel_tree_on_tmpfs "$TARBALL" "$JOBS"
cat >"$OUT/fault_gaps.bt" <<'BT'
tracepoint:exceptions:page_fault_user /(args->error_code & 2) && comm != "bpftrace"/
{
  $now = nsecs;
  if (@last[tid]) { @gap_us = hist(($now - @last[tid]) / 1000); @faults = count(); }
  else { @first = count(); }
  @last[tid] = $now;
}
tracepoint:sched:sched_process_exit { delete(@last[tid]); }
END { clear(@last); }
BT
ulimit -l unlimited 2>/dev/null || ulimit -l 8192 2>/dev/null || true  # bpftrace maps
BPFTRACE_MAP_KEYS_MAX=65536 bpftrace -o "$OUT/fault_gaps.txt" "$OUT/fault_gaps.bt" &
BT=$!
sleep 10
TMPDIR="$MNT" make -sj"$JOBS" $SAMPLE >/dev/null 2>&1 || true
kill -INT "$BT"; wait "$BT" || true
cat "$OUT/fault_gaps.txt"
