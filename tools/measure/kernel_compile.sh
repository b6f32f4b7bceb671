#!/usr/bin/env bash
# Counts per build of a parallel Linux kernel build, the shape of the published
# ASI compile benchmark: `make tinyconfig; make -j$(nproc) vmlinux`.
# One op = ONE BUILD: every count in the summary is a total per build.
#
# Usage: bash kernel_compile.sh [OUTDIR]     (as root; default /tmp/asi-measure)
# Env:   SRC=/tmp/linux-src   kernel tree, extracted from Debian linux-source-6.1
#        JOBS=$(nproc)        make -j
#        BASELINE_S=30        idle seconds for the background rates (whole machine)
#        BPFTRACE=1           0 skips the bpftrace build (read/write sizes, CoW cross-check)
#        QUIET_MAX_S=600      before the timing, measured and bpftrace builds, wait up to
#        QUIET_BUSY=0.10      this long for the machine to be quiet (busy share below this);
#                             kc_quiet.log says whether each run started quiet
#
# Runs, each build `make clean` then `make -jJOBS vmlinux` on one tinyconfig:
#   baseline : BASELINE_S idle seconds, new_counts events system-wide: the
#              background to subtract from whole-machine counts.
#   warm     : fills the page cache; only its /usr/bin/time -v is kept.
#   timing   : no tracing at all: CPU time (user, sys) and wall time per build,
#              interrupts and softirqs per second from /proc, and the load.
#   measured : THE REPORTED COUNTS. perf stat per command (inherited by the
#              whole tree) and system-wide (-a) with events/kernel_compile.events
#              and events/new_counts.events, /usr/bin/time -v, /proc/<wrapper>/io
#              (after make is reaped it holds the I/O of the whole tree), snapshots.
#   bpftrace : separate build with bpftrace on tracepoints: read/write size
#              histograms, a cross-check of CoW copies, TLB flushes by (reason, pages).
# Every run records the load (common.sh snap before and after: loadavg,
# /proc/pressure/cpu, /proc/stat, /proc/interrupts, /proc/softirqs, /proc/vmstat),
# and kc_clock.txt the effective core clock before and after (common.sh clock_probe).
# Writes small text outputs and the summary kernel_compile.yaml to OUTDIR.
set -euo pipefail
OUT=$(realpath -m "${1:-/tmp/asi-measure}")
SRC=${SRC:-/tmp/linux-src}
JOBS=${JOBS:-$(nproc)}
BASELINE_S=${BASELINE_S:-30}
BPFTRACE=${BPFTRACE:-1}
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/common.sh"
mkdir -p "$OUT"

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq linux-source-6.1 build-essential flex bison bc libelf-dev \
  libssl-dev cpio kmod time linux-perf bpftrace python3 python3-yaml procps >/dev/null
ensure_tracefs

if [ ! -f "$SRC/Makefile" ]; then
  mkdir -p "$SRC"
  tar xf /usr/src/linux-source-6.1.tar.xz -C "$SRC" --strip-components=1
fi
cd "$SRC"
make tinyconfig >/dev/null

EVENTS_NEW=("$HERE/events/new_counts.events" "$HERE/events/switches.events")
: >"$OUT/kc_quiet.log"
echo "before $(clock_probe)" >"$OUT/kc_clock.txt"

# 0. idle baseline (whole machine)
wait_quiet "$OUT/kc_quiet.log" baseline
snap "$OUT/kc_baseline.snap.before"
baseline "$OUT/kc_baseline.perf-system.csv" "$BASELINE_S" "${EVENTS_NEW[@]}"
snap "$OUT/kc_baseline.snap.after"

# 1. warm-up build
make clean >/dev/null
/usr/bin/time -v -o "$OUT/kc_warm.time-v.txt" make -j"$JOBS" vmlinux >/tmp/kbuild.log 2>&1

# 2. timing build: nothing attached
make clean >/dev/null; sync
wait_quiet "$OUT/kc_quiet.log" timing
snap "$OUT/kc_timing.snap.before"
/usr/bin/time -v -o "$OUT/kc_timing.time-v.txt" make -j"$JOBS" vmlinux >/tmp/kbuild.log 2>&1
snap "$OUT/kc_timing.snap.after"

# 3. measured build. The bash wrapper reads its own /proc/$$/io after make
# exits: rchar/wchar/syscr/syscw then include every reaped descendant.
perf_args "$HERE/events/kernel_compile.events" "${EVENTS_NEW[@]}"
make clean >/dev/null; sync
wait_quiet "$OUT/kc_quiet.log" measured
snap "$OUT/kc_measured.snap.before"
perf stat -a -x, -o "$OUT/kc_measured.perf-system.csv" "${PERF_ARGS[@]}" -- \
  perf stat -x, -o "$OUT/kc_measured.perf-task.csv" "${PERF_ARGS[@]}" -- \
  /usr/bin/time -v -o "$OUT/kc_measured.time-v.txt" \
  bash -c 'make -j"$1" vmlinux >/tmp/kbuild.log 2>&1; rc=$?; cat /proc/$$/io >"$2"; exit $rc' \
  _ "$JOBS" "$OUT/kc_measured.proc-io.txt"
snap "$OUT/kc_measured.snap.after"

# 4. bpftrace build (kprobes and function tracing are unavailable on the VMs
# this was written on, so wp_page_copy cannot be probed directly). A CoW copy
# is estimated as a write-protect fault followed by an order-0 page allocation
# in the same thread before that thread's next syscall or fault. Exact
# read/write bytes come from the syscall exit tracepoints.
if [ "$BPFTRACE" = 1 ]; then
cat >/tmp/kernel_compile.bt <<'EOF'
tracepoint:exceptions:page_fault_user, tracepoint:exceptions:page_fault_kernel
/comm != "bpftrace"/
{ @faults[args->error_code & 3] = count(); @pending[tid] = (args->error_code & 3) + 1; }
tracepoint:kmem:mm_page_alloc /@pending[tid] && args->order == 0/
{ @fault_then_alloc[@pending[tid] - 1] = count(); delete(@pending[tid]); }
tracepoint:raw_syscalls:sys_enter /@pending[tid]/ { delete(@pending[tid]); }
tracepoint:sched:sched_process_exit /@pending[tid]/ { delete(@pending[tid]); }
tracepoint:syscalls:sys_exit_read, tracepoint:syscalls:sys_exit_pread64
/args->ret > 0 && comm != "bpftrace"/
{ @read_bytes = sum(args->ret); @read_calls_positive = count(); @read_size = hist(args->ret); }
tracepoint:syscalls:sys_exit_write, tracepoint:syscalls:sys_exit_pwrite64
/args->ret > 0 && comm != "bpftrace"/
{ @write_bytes = sum(args->ret); @write_calls_positive = count(); @write_size = hist(args->ret); }
tracepoint:tlb:tlb_flush /comm != "bpftrace"/ { @tlb[args->reason, (int64)args->pages] = count(); }
END { clear(@pending); }
EOF
make clean >/dev/null
ulimit -l unlimited 2>/dev/null || true  # may not be permitted; bpftrace copes
BPFTRACE_MAP_KEYS_MAX=65536 bpftrace -o "$OUT/kc_bpftrace.txt" /tmp/kernel_compile.bt &
BT=$!
sleep 15  # let bpftrace attach
wait_quiet "$OUT/kc_quiet.log" bpftrace
snap "$OUT/kc_bpftrace.snap.before"
/usr/bin/time -v -o "$OUT/kc_bpftrace.time-v.txt" make -j"$JOBS" vmlinux >/tmp/kbuild.log 2>&1
snap "$OUT/kc_bpftrace.snap.after"
kill -INT "$BT"; wait "$BT" || true
fi

echo "after $(clock_probe)" >>"$OUT/kc_clock.txt"

# 5. summary: totals per build
python3 "$HERE/kernel_compile_summary.py" "$OUT" "make tinyconfig; make -j$JOBS vmlinux" "$BASELINE_S"
