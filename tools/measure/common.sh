# Sourced by the measurement recipes in tools/measure (bash, as root).
#   perf_args FILE...      fills the array PERF_ARGS from events files (label|event|filter)
#   snap OUTFILE           one text snapshot of the machine's counters: time, loadavg,
#                          /proc/pressure/cpu, /proc/stat, /proc/interrupts, /proc/softirqs,
#                          /proc/vmstat and the top CPU users (measure_common.py parses it)
#   ensure_tracefs         mounts tracefs if needed (tracepoint events for perf and bpftrace)
#   kernel_tree_on_tmpfs TARBALL JOBS
#                          a fresh tmpfs mount (MNT, unmounted when the script exits), the
#                          tarball unpacked in it, `make tinyconfig` and `make prepare` done,
#                          and the shell in the tree: a build's sample starts here
MEASURE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

ensure_tracefs() {
  mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing
  [ -r /sys/kernel/tracing/events/tlb/tlb_flush/format ] ||
    { echo "tracepoint tlb:tlb_flush not available" >&2; return 1; }
}

kernel_tree_on_tmpfs() {  # $1 = tarball, $2 = make -j
  MNT=$(mktemp -d /tmp/asi-kbuild-XXXXXX)
  mount -t tmpfs -o size=16G tmpfs "$MNT"
  trap 'cd /; umount "$MNT" 2>/dev/null || true; rmdir "$MNT" 2>/dev/null || true' EXIT
  cd "$MNT"
  tar xJf "$1"
  cd "$(find "$MNT" -mindepth 1 -maxdepth 1 -type d | head -1)"
  make -sj tinyconfig >/dev/null
  # the build's own prerequisites (scripts, generated headers), outside any sample
  make -sj"$2" prepare >/dev/null 2>&1
}

perf_args() {
  PERF_ARGS=()
  local f lab ev flt
  for f in "$@"; do
    while IFS='|' read -r lab ev flt; do
      case $lab in ''|'#'*) continue ;; esac
      PERF_ARGS+=(-e "$ev")
      [ -n "$flt" ] && PERF_ARGS+=(--filter "$flt")
    done <"$f"
  done
}

snap() {
  {
    echo "==> time <=="; date +%s.%N
    echo "==> loadavg <=="; cat /proc/loadavg
    echo "==> pressure_cpu <=="; cat /proc/pressure/cpu 2>/dev/null || echo none
    echo "==> stat <=="; grep '^cpu' /proc/stat
    echo "==> interrupts <=="; cat /proc/interrupts
    echo "==> softirqs <=="; cat /proc/softirqs
    echo "==> vmstat <=="; cat /proc/vmstat
    echo "==> top <=="; ps -eo pid,pcpu,cputimes,comm --sort=-cputimes 2>/dev/null | head -8 ||
      ps -eo pid,pcpu,time,comm --sort=-time | head -8
  } >"$1"
}

# Idle baseline: the same events system-wide for SECONDS with nothing of ours
# running, so whole-machine counts can be corrected for the background.
baseline() {  # $1 = output csv, $2 = seconds, rest = events files
  local out=$1 s=$2; shift 2
  perf_args "$@"
  perf stat -a -x, -o "$out" "${PERF_ARGS[@]}" -- sleep "$s"
}

# Wait until the machine is quiet: whole-machine busy CPU (/proc/stat user nice
# system irq softirq) below QUIET_BUSY (share of all CPUs, default 0.10) over
# two consecutive 5 s samples, for at most QUIET_MAX_S seconds (default 600).
# Appends one line to $1 (label, seconds waited, last busy share, quiet or not);
# a run that starts without quiet says so there and in its load record.
wait_quiet() {  # $1 = log file, $2 = label
  local log=$1 label=$2 max=${QUIET_MAX_S:-600} thr=${QUIET_BUSY:-0.10} t0=$SECONDS ok=0 share= hz
  hz=$(getconf CLK_TCK)
  while :; do
    share=$(awk -v n="$(nproc)" -v hz="$hz" 'NR==FNR && /^cpu /{a=$2+$3+$4+$7+$8; next} /^cpu /{printf "%.3f", ($2+$3+$4+$7+$8-a)/(5*n*hz)}' \
      /proc/stat <(sleep 5; cat /proc/stat))
    if awk -v s="$share" -v t="$thr" 'BEGIN{exit !(s < t)}'; then ok=$((ok + 1)); else ok=0; fi
    [ "$ok" -ge 2 ] && break
    [ $((SECONDS - t0)) -ge "$max" ] && break
  done
  echo "$label waited_s=$((SECONDS - t0)) last_busy_share=$share quiet=$([ "$ok" -ge 2 ] && echo yes || echo no) threshold=$thr" >>"$log"
}

# Effective core clock: a chain of dependent IMULs (latency 3 cycles on Intel
# cores since Nehalem and on AMD Zen, per Agner Fog's instruction tables and
# uops.info) retires one per 3 cycles, so 3 x IMULs per ns = GHz while the loop
# has a CPU. (Not add-immediate chains: Golden Cove folds those at rename and
# retires several per cycle.) Prints the best and the median of 9 runs of
# about 0.4 s each. Needs gcc.
clock_probe() {
  local src bin
  src=$(mktemp --suffix=.c) bin=$(mktemp)
  cat >"$src" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static int cmp(const void *a, const void *b) { double x = *(double *)a, y = *(double *)b; return (x > y) - (x < y); }
int main(void) {
  double g[9]; unsigned long x = 1, y = 3; long n = 4000000;
  for (int r = 0; r < 9; r++) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) __asm__ volatile(".rept 100\n\timul %1, %0\n\t.endr" : "+r"(x) : "r"(y));
    clock_gettime(CLOCK_MONOTONIC, &b);
    g[r] = 3.0 * n * 100.0 / ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec));
  }
  qsort(g, 9, sizeof g[0], cmp);
  printf("clock_probe_ghz_best=%.3f clock_probe_ghz_median=%.3f\n", g[8], g[4]);
  return x == 1;
}
CEOF
  gcc -O2 -o "$bin" "$src" && "$bin"
  rm -f "$src" "$bin"
}
