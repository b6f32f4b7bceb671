#!/usr/bin/env bash
# CPU time per build only: REPS more timing builds (nothing attached) of the
# tree kernel_compile.sh prepared, each after waiting for a quiet machine, with
# the load and the effective core clock around each. For when the timing build
# of kernel_compile.sh ran on a busy machine.
#
# Usage: bash kernel_compile_timing.sh [OUTDIR]   (as root; default /tmp/asi-measure)
# Env:   SRC=/tmp/linux-src  JOBS=$(nproc)  REPS=2  QUIET_MAX_S=600  QUIET_BUSY=0.10
# Writes kc_timing_extra{1..REPS}.{time-v.txt,snap.before,snap.after}, kc_timing_extra.log
# (quiet gate and clock) and the summary kc_timing_extra.yaml to OUTDIR.
set -euo pipefail
OUT=$(realpath -m "${1:-/tmp/asi-measure}")
SRC=${SRC:-/tmp/linux-src}
JOBS=${JOBS:-$(nproc)}
REPS=${REPS:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/common.sh"
mkdir -p "$OUT"
cd "$SRC"
[ -f .config ] || { echo "run kernel_compile.sh first (no configured tree in $SRC)" >&2; exit 1; }
: >"$OUT/kc_timing_extra.log"
for r in $(seq "$REPS"); do
  make clean >/dev/null; sync
  wait_quiet "$OUT/kc_timing_extra.log" "timing_extra$r"
  echo "timing_extra$r before $(clock_probe)" >>"$OUT/kc_timing_extra.log"
  snap "$OUT/kc_timing_extra$r.snap.before"
  /usr/bin/time -v -o "$OUT/kc_timing_extra$r.time-v.txt" make -j"$JOBS" vmlinux >/tmp/kbuild.log 2>&1
  snap "$OUT/kc_timing_extra$r.snap.after"
  echo "timing_extra$r after $(clock_probe)" >>"$OUT/kc_timing_extra.log"
done
python3 - "$OUT" "$REPS" "$HERE" <<'EOF'
import os, sys, yaml
out, reps, here = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sys.path.insert(0, here)
import measure_common as mc
p = lambda f: os.path.join(out, f)
runs = []
for r in range(1, reps + 1):
    t = mc.time_v(p('kc_timing_extra%d.time-v.txt' % r))
    load, irqs, soft, _ = mc.window(p('kc_timing_extra%d.snap.before' % r), p('kc_timing_extra%d.snap.after' % r),
                                    t['cpu_s'])
    runs.append({'time_v': t, 'load': load, 'interrupts_per_s_per_cpu': irqs, 'softirqs_per_s_per_cpu': soft})
s = {'note': 'extra timing builds (tools/measure/kernel_compile_timing.sh), nothing attached',
     'log': open(p('kc_timing_extra.log')).read().splitlines(), 'machine': mc.machine(), 'runs': runs}
yaml.safe_dump(s, open(p('kc_timing_extra.yaml'), 'w'), sort_keys=False, width=120)
print(yaml.safe_dump([{k: r['time_v'][k] for k in ('user_s', 'sys_s', 'cpu_s', 'wall_s')} for r in runs]))
EOF
