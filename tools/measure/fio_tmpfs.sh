#!/usr/bin/env bash
# Native fio baseline on tmpfs, the shape of the published ASI fio benchmark:
# 4K random psync reads at iodepth 1 from a 1G file on tmpfs, 10 s, with
# numjobs=1 and numjobs=2 (group_reporting).
#
# Usage: bash fio_tmpfs.sh [OUTDIR]     (as root; default /tmp/asi-measure)
# Env:   DIR=/dev/shm/fio   tmpfs directory for the data files (removed after)
# Writes fio_tmpfs_numjobs{1,2}.{json,busy_ticks} and the summary fio_tmpfs.yaml to OUTDIR.
set -euo pipefail
OUT=$(realpath -m "${1:-/tmp/asi-measure}")
DIR=${DIR:-/dev/shm/fio}
mkdir -p "$OUT" "$DIR"
[ "$(stat -f -c %T "$DIR")" = tmpfs ] || { echo "$DIR is not on tmpfs" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq fio python3 python3-yaml >/dev/null

CMD="fio --name=randread_tmpfs --rw=randread --size=1G --blocksize=4K --directory=$DIR \
--ioengine=psync --iodepth=1 --time_based --runtime=10 --output-format=json"
# Lay out the data files first, so file creation is outside the measured runs.
$CMD --numjobs=2 --create_only=1 >/dev/null
# Busy CPU ticks of the whole machine (user nice system irq softirq steal),
# to see how much CPU other processes took while fio ran.
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
run() {  # $1 = numjobs, rest = extra fio options
  local nj=$1 b; shift; b=$(busy)
  $CMD --numjobs="$nj" "$@" >"$OUT/fio_tmpfs_numjobs$nj.json"
  echo $(( $(busy) - b )) >"$OUT/fio_tmpfs_numjobs$nj.busy_ticks"
}
run 1
run 2 --group_reporting
rm -rf "$DIR"

# Summary. fio's usr_cpu/sys_cpu are % of one CPU over a job's runtime (with
# group_reporting, over the summed runtime of the jobs), so CPU ns per I/O =
# cpu% / 100 * job_runtime / total I/Os; at numjobs=1 that is cpu% / 100 * 1e9 / IOPS.
python3 - "$OUT" "$CMD" <<'EOF'
import datetime, json, os, platform, re, subprocess, sys, yaml
out, cmd = sys.argv[1:3]
cpuinfo = open('/proc/cpuinfo').read()
virt = subprocess.run(['systemd-detect-virt'], capture_output=True, text=True).stdout.strip()
summary = {
  'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
  'machine': {
    'kernel': platform.release(),
    'cpu_model': re.search(r'model name\s*: (.*)', cpuinfo)[1],
    'nproc': os.cpu_count(),
    'is_vm': ' hypervisor' in cpuinfo,
    'vm_evidence': 'cpuinfo hypervisor flag=%s; systemd-detect-virt=%s' % (' hypervisor' in cpuinfo, virt or 'none'),
  },
  'recipe': {'script': 'tools/measure/fio_tmpfs.sh', 'command': cmd + ' --numjobs=N [--group_reporting]'},
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
      'derived': {
        'ns_per_io_wall_per_job': round(1e9 * nj / r['iops'], 1),
        'user_ns_per_io': round(j['usr_cpu'] / 100 * runtime_ns / ios, 1),
        'sys_ns_per_io': round(j['sys_cpu'] / 100 * runtime_ns / ios, 1),
        'ctx_per_io': round(j['ctx'] / ios, 6),
      },
    }
with open(os.path.join(out, 'fio_tmpfs.yaml'), 'w') as f:
    yaml.safe_dump(summary, f, sort_keys=False, width=120)
print(yaml.safe_dump(summary['runs'], sort_keys=False, width=120))
EOF
