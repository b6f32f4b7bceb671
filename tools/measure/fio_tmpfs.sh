#!/usr/bin/env bash
# Native fio baseline on tmpfs, the shape of the published ASI fio benchmark:
# 4K random psync reads at iodepth 1 from a 1G file on tmpfs, 10 s, with
# numjobs=1 and numjobs=2 (group_reporting).
#
# Usage: bash fio_tmpfs.sh [OUTDIR]     (as root; default /tmp/asi-measure)
# Env:   DIR=/dev/shm/fio   tmpfs directory for the data files (removed after)
#        QUIET_MAX_S=600, QUIET_BUSY=0.10: before each run, wait this long at most
#        for a quiet machine (common.sh wait_quiet; fio_quiet.log)
# Runs: numjobs=1 and numjobs=2 with nothing attached (throughput, CPU, and
# common.sh snapshots: interrupts and softirqs per second per CPU, the load),
# then numjobs=1 again under perf stat (per command and -a) with
# events/new_counts.events and events/switches.events: TLB flushes, mm setups,
# interrupts and context switches per I/O.
# Writes fio_tmpfs_numjobs{1,2}.{json,busy_ticks}, fio_numjobs*.snap.*,
# fio_perf.* and the summary fio_tmpfs.yaml to OUTDIR.
set -euo pipefail
OUT=$(realpath -m "${1:-/tmp/asi-measure}")
DIR=${DIR:-/dev/shm/fio}
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/common.sh"
mkdir -p "$OUT" "$DIR"
[ "$(stat -f -c %T "$DIR")" = tmpfs ] || { echo "$DIR is not on tmpfs" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq fio linux-perf procps gcc python3 python3-yaml >/dev/null
ensure_tracefs

CMD="fio --name=randread_tmpfs --rw=randread --size=1G --blocksize=4K --directory=$DIR \
--ioengine=psync --iodepth=1 --time_based --runtime=10 --output-format=json"
# Lay out the data files first, so file creation is outside the measured runs.
$CMD --numjobs=2 --create_only=1 >/dev/null
# Busy CPU ticks of the whole machine (user nice system irq softirq steal),
# to see how much CPU other processes took while fio ran.
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
run() {  # $1 = numjobs, rest = extra fio options
  local nj=$1 b; shift
  wait_quiet "$OUT/fio_quiet.log" "numjobs$nj"
  b=$(busy)
  snap "$OUT/fio_numjobs$nj.snap.before"
  $CMD --numjobs="$nj" "$@" >"$OUT/fio_tmpfs_numjobs$nj.json"
  snap "$OUT/fio_numjobs$nj.snap.after"
  echo $(( $(busy) - b )) >"$OUT/fio_tmpfs_numjobs$nj.busy_ticks"
}
: >"$OUT/fio_quiet.log"
echo "before $(clock_probe)" >"$OUT/fio_clock.txt"
run 1
run 2 --group_reporting
# Counts per I/O: numjobs=1 under perf stat (the fio tree, and the whole machine).
perf_args "$HERE/events/new_counts.events" "$HERE/events/switches.events"
wait_quiet "$OUT/fio_quiet.log" perf
snap "$OUT/fio_perf.snap.before"
perf stat -a -x, -o "$OUT/fio_perf.perf-system.csv" "${PERF_ARGS[@]}" -- \
  perf stat -x, -o "$OUT/fio_perf.perf-task.csv" "${PERF_ARGS[@]}" -- \
  $CMD --numjobs=1 >"$OUT/fio_perf.json"
snap "$OUT/fio_perf.snap.after"
rm -rf "$DIR"
echo "after $(clock_probe)" >>"$OUT/fio_clock.txt"

# Summary. fio's usr_cpu/sys_cpu are % of one CPU over a job's runtime (with
# group_reporting, over the summed runtime of the jobs), so CPU ns per I/O =
# cpu% / 100 * job_runtime / total I/Os; at numjobs=1 that is cpu% / 100 * 1e9 / IOPS.
python3 - "$OUT" "$CMD" "$HERE" <<'EOF'
import datetime, json, os, platform, re, subprocess, sys, yaml
out, cmd, here = sys.argv[1:4]
sys.path.insert(0, here)
import measure_common as mc
cpuinfo = open('/proc/cpuinfo').read()
virt = subprocess.run(['systemd-detect-virt'], capture_output=True, text=True).stdout.strip()
summary = {
  'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
  'machine': mc.machine(),
  'recipe': {'script': 'tools/measure/fio_tmpfs.sh', 'command': cmd + ' --numjobs=N [--group_reporting]'},
  'quiet_gate': open(os.path.join(out, 'fio_quiet.log')).read().splitlines(),
  'clock_probe': open(os.path.join(out, 'fio_clock.txt')).read().splitlines(),
  'runs': {},
}
for nj in (1, 2):
    d = json.load(open(os.path.join(out, 'fio_tmpfs_numjobs%d.json' % nj)))
    j = d['jobs'][0]
    r = j['read']
    pct = r['clat_ns']['percentile']
    ios = r['total_ios']
    runtime_ns = j['job_runtime'] * 1e6          # ms, summed over jobs when grouped
    busy_s = int(open(os.path.join(out, 'fio_tmpfs_numjobs%d.busy_ticks' % nj)).read()) / os.sysconf('SC_CLK_TCK')
    fio_s = (j['usr_cpu'] + j['sys_cpu']) / 100 * runtime_ns / 1e9
    summary['fio_version'] = d['fio version']
    summary['runs']['numjobs%d' % nj] = {
      'numjobs': nj,
      'iops': round(r['iops'], 1),
      'iops_per_job': round(r['iops'] / nj, 1),
      'total_ios': ios,
      'bw_KiB_s': r['bw'],
      'job_runtime_ms_summed': j['job_runtime'],
      'clat_ns': {'mean': round(r['clat_ns']['mean'], 1), 'stddev': round(r['clat_ns']['stddev'], 1),
                  'p50': pct['50.000000'], 'p90': pct['90.000000'], 'p99': pct['99.000000'],
                  'p99.9': pct['99.900000'], 'p99.99': pct['99.990000']},
      'lat_ns_mean': round(r['lat_ns']['mean'], 1),
      'usr_cpu_pct': j['usr_cpu'], 'sys_cpu_pct': j['sys_cpu'],
      'ctx': j['ctx'], 'majf': j['majf'], 'minf': j['minf'],
      'machine_busy_cpu_s_during_fio': busy_s,
      'fio_jobs_cpu_s': round(fio_s, 2),
      'other_cpu_s_during_fio': round(busy_s - fio_s, 2),
      'load': mc.window(os.path.join(out, 'fio_numjobs%d.snap.before' % nj),
                        os.path.join(out, 'fio_numjobs%d.snap.after' % nj), fio_s)[0],
      'interrupts_per_s_per_cpu': mc.window(os.path.join(out, 'fio_numjobs%d.snap.before' % nj),
                                            os.path.join(out, 'fio_numjobs%d.snap.after' % nj))[1],
      'softirqs_per_s_per_cpu': mc.window(os.path.join(out, 'fio_numjobs%d.snap.before' % nj),
                                          os.path.join(out, 'fio_numjobs%d.snap.after' % nj))[2],
      'derived': {
        'ns_per_io_wall_per_job': round(1e9 * nj / r['iops'], 1),
        'user_ns_per_io': round(j['usr_cpu'] / 100 * runtime_ns / ios, 1),
        'sys_ns_per_io': round(j['sys_cpu'] / 100 * runtime_ns / ios, 1),
        'ctx_per_io': round(j['ctx'] / ios, 6),
      },
    }
EV = mc.events('new_counts.events', 'switches.events')
pt, _ = mc.perf(os.path.join(out, 'fio_perf.perf-task.csv'), EV)
ps, _ = mc.perf(os.path.join(out, 'fio_perf.perf-system.csv'), EV)
d = json.load(open(os.path.join(out, 'fio_perf.json')))
ios = d['jobs'][0]['read']['total_ios']
summary['counts_per_io'] = {
  'note': 'numjobs=1 under perf stat; per I/O = count / total_ios (%d); fio tree = tasks of the fio command '
          '(perf per command), whole machine = perf -a (includes other work on a shared machine)' % ios,
  'iops_under_perf': round(d['jobs'][0]['read']['iops'], 1),
  'tlb_fio_tree': mc.tlb_summary(pt, ios, 6),
  'tlb_whole_machine': mc.tlb_summary(ps, ios, 6),
  'mm_fio_tree': mc.mm_summary(pt, ios, 6),
  'interrupts_in_fio_context_per_io': mc.irq_task_summary(pt, ios, 6),
  'tlb_fio_tree_totals': mc.tlb_summary(pt),
  'tlb_whole_machine_totals': mc.tlb_summary(ps),
  'load': mc.window(os.path.join(out, 'fio_perf.snap.before'), os.path.join(out, 'fio_perf.snap.after'))[0],
  'context_switches_per_s_per_cpu_whole_machine': mc.switch_summary(
      ps, mc.window(os.path.join(out, 'fio_perf.snap.before'), os.path.join(out, 'fio_perf.snap.after'))[0]['wall_s'],
      os.cpu_count()),
  'context_switches_fio_tree_per_io': {k: round(pt[k] / ios, 6) for k, _, _ in mc.events('switches.events')},
  'raw_perf_task': pt, 'raw_perf_system': ps,
}
with open(os.path.join(out, 'fio_tmpfs.yaml'), 'w') as f:
    yaml.safe_dump(summary, f, sort_keys=False, width=120)
print(yaml.safe_dump(summary['runs'], sort_keys=False, width=120))
EOF
