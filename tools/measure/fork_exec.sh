#!/usr/bin/env bash
# Measure the event rates of a fork-heavy workload: a shell loop that forks
# and execs a small program (fork + touch + exec, as a build or a script does).
# One op = one fork + exec + exit + wait of /bin/true from bash.
# Needs perf (Debian linux-perf) with tracepoints readable (run as root).
# Usage: tools/measure/fork_exec.sh [OUTDIR] [ITERATIONS]
set -euo pipefail
out=${1:-/tmp/asi-measure}
n=${2:-2000}
mkdir -p "$out"
command -v perf >/dev/null || { apt-get update -qq && apt-get install -y -qq linux-perf; }

loop=$(mktemp)
printf '#!/bin/bash\nfor ((i = 0; i < %d; i++)); do /bin/true; done\n' "$n" >"$loop"
chmod +x "$loop"

# Counts: CPU time, switches, faults, syscalls by kind.
perf stat -x, -o "$out/fork_exec.perf_stat.csv" \
  -e task-clock,context-switches,page-faults,minor-faults,major-faults \
  -e raw_syscalls:sys_enter,syscalls:sys_enter_clone,syscalls:sys_enter_execve \
  -e syscalls:sys_enter_read,syscalls:sys_enter_pread64,syscalls:sys_enter_write \
  "$loop"

# Page faults by x86 error code: bit 0 present, bit 1 write, bit 4 instruction fetch.
# Write faults on present pages are copy-on-write (an upper bound: some reuse the
# page); write faults on absent pages allocate a page (zero-fill, or a private copy).
perf record -q -e exceptions:page_fault_user -o "$out/fork_exec.faults.data" "$loop" 2>/dev/null
perf script -i "$out/fork_exec.faults.data" 2>/dev/null |
  grep -o 'error_code=0x[0-9a-f]*' | sort | uniq -c | sort -rn >"$out/fork_exec.fault_codes.txt"
rm -f "$out/fork_exec.faults.data" "$loop"
echo "iterations=$n" >"$out/fork_exec.meta"
uname -r >>"$out/fork_exec.meta"
grep -m1 'model name' /proc/cpuinfo >>"$out/fork_exec.meta"
nproc >>"$out/fork_exec.meta"
cat "$out/fork_exec.perf_stat.csv" "$out/fork_exec.fault_codes.txt"
