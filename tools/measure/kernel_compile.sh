#!/usr/bin/env bash
# Event rates of a parallel Linux kernel build, the shape of the published ASI
# compile benchmark: `make tinyconfig; make -j$(nproc) vmlinux`.
#
# Usage: bash kernel_compile.sh [OUTDIR]     (as root; default /tmp/asi-measure)
# Env:   SRC=/tmp/linux-src   kernel tree, extracted from Debian linux-source-6.1
#        JOBS=$(nproc)        make -j
#
# Three builds, each `make clean` then `make -jJOBS vmlinux` on one tinyconfig:
#   warm     : fills the page cache; only its /usr/bin/time -v is kept.
#   measured : THE REPORTED RUN. /usr/bin/time -v (rusage incl. children),
#              perf stat per command (inherited by all children) and
#              system-wide (-a), /proc/vmstat delta, and /proc/<wrapper>/io
#              (after make is reaped it holds the I/O counters of the whole tree).
#   bpftrace : separate, slower run with bpftrace on tracepoints, only for
#              read/write size histograms and a cross-check of CoW copies.
# Writes raw outputs and the summary kernel_compile.yaml to OUTDIR.
set -euo pipefail
OUT=$(realpath -m "${1:-/tmp/asi-measure}")
SRC=${SRC:-/tmp/linux-src}
JOBS=${JOBS:-$(nproc)}
mkdir -p "$OUT"

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq linux-source-6.1 build-essential flex bison bc libelf-dev \
  libssl-dev cpio kmod time linux-perf bpftrace python3 python3-yaml >/dev/null

# Tracepoints need tracefs (not mounted by default on this VM).
mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing

if [ ! -f "$SRC/Makefile" ]; then
  mkdir -p "$SRC"
  tar xf /usr/src/linux-source-6.1.tar.xz -C "$SRC" --strip-components=1
fi
cd "$SRC"
make tinyconfig >/dev/null

# perf events. cycles/instructions only show whether the (virtual) PMU has
# them. The filtered page_fault_* copies count write faults (error_code bit 1)
# and write faults on a present PTE = write-protect faults (bits 0 and 1); a
# write-protect fault ends in a CoW copy (wp_page_copy) or a reuse (vmstat
# pgreuse). The summary parser relies on this order.
PERF_EVENTS=(
  -e cycles,instructions
  -e task-clock,context-switches,cpu-migrations,page-faults,minor-faults,major-faults
  -e raw_syscalls:sys_enter
  -e syscalls:sys_enter_read,syscalls:sys_enter_write
  -e syscalls:sys_enter_pread64,syscalls:sys_enter_pwrite64
  -e syscalls:sys_enter_readv,syscalls:sys_enter_writev
  -e syscalls:sys_enter_clone,syscalls:sys_enter_clone3
  -e syscalls:sys_enter_fork,syscalls:sys_enter_vfork
  -e syscalls:sys_enter_execve,syscalls:sys_enter_execveat
  -e sched:sched_process_fork,sched:sched_process_exec
  -e kmem:mm_page_alloc
  -e exceptions:page_fault_user
  -e exceptions:page_fault_user --filter 'error_code & 2'
  -e exceptions:page_fault_user --filter 'error_code & 1 && error_code & 2'
  -e exceptions:page_fault_kernel
  -e exceptions:page_fault_kernel --filter 'error_code & 1 && error_code & 2'
)

vmstat_delta() {  # $1 = before file, $2 = output; reads /proc/vmstat now
  awk 'NR==FNR {a[$1]=$2; next} {print $1, $2-a[$1]}' "$1" /proc/vmstat >"$2"
  rm "$1"
}

# 1. warm-up build
make clean >/dev/null
/usr/bin/time -v -o "$OUT/kc_warm.time-v.txt" make -j"$JOBS" vmlinux >/tmp/kbuild.log 2>&1

# 2. measured build. The bash wrapper reads its own /proc/$$/io after make
# exits: rchar/wchar/syscr/syscw then include every reaped descendant.
make clean >/dev/null
sync
cat /proc/vmstat >/tmp/vmstat.before
perf stat -a -x, -o "$OUT/kc_measured.perf-system.csv" "${PERF_EVENTS[@]}" -- \
  perf stat -x, -o "$OUT/kc_measured.perf-task.csv" "${PERF_EVENTS[@]}" -- \
  /usr/bin/time -v -o "$OUT/kc_measured.time-v.txt" \
  bash -c 'make -j"$1" vmlinux >/tmp/kbuild.log 2>&1; rc=$?; cat /proc/$$/io >"$2"; exit $rc' \
  _ "$JOBS" "$OUT/kc_measured.proc-io.txt"
vmstat_delta /tmp/vmstat.before "$OUT/kc_measured.vmstat.delta"

# 3. bpftrace build (kprobes and function tracing are unavailable on this
# kernel, so wp_page_copy cannot be probed directly). A CoW copy is estimated
# as a write-protect fault followed by an order-0 page allocation in the same
# thread before that thread's next syscall or fault. Exact read/write bytes
# come from the syscall exit tracepoints.
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
END { clear(@pending); }
EOF
make clean >/dev/null
ulimit -l unlimited 2>/dev/null || true  # not permitted here; bpftrace copes
BPFTRACE_MAP_KEYS_MAX=65536 bpftrace -o "$OUT/kc_bpftrace.txt" /tmp/kernel_compile.bt &
BT=$!
sleep 15  # let bpftrace attach
cat /proc/vmstat >/tmp/vmstat.before
/usr/bin/time -v -o "$OUT/kc_bpftrace.time-v.txt" make -j"$JOBS" vmlinux >/tmp/kbuild.log 2>&1
vmstat_delta /tmp/vmstat.before "$OUT/kc_bpftrace.vmstat.delta"
kill -INT "$BT"; wait "$BT" || true

# 4. summary: raw totals and rates per CPU-second (user+sys of the build).
python3 - "$OUT" "make tinyconfig; make -j$JOBS vmlinux" <<'EOF'
import datetime, os, platform, re, subprocess, sys, yaml
out, recipe = sys.argv[1:3]
rd = lambda f: open(os.path.join(out, f)).read()

def time_v(f):
    t = dict(l.strip().rsplit(': ', 1) for l in rd(f).splitlines() if ': ' in l)
    h, m, s = ([0, 0] + t['Elapsed (wall clock) time (h:mm:ss or m:ss)'].split(':'))[-3:]
    return {'wall_s': int(h) * 3600 + int(m) * 60 + float(s),
            'user_s': float(t['User time (seconds)']), 'sys_s': float(t['System time (seconds)']),
            'voluntary_ctx_switches': int(t['Voluntary context switches']),
            'involuntary_ctx_switches': int(t['Involuntary context switches']),
            'minor_faults': int(t['Minor (reclaiming a frame) page faults']),
            'major_faults': int(t['Major (requiring I/O) page faults']),
            'max_rss_kb': int(t['Maximum resident set size (kbytes)'])}

# label -> expected perf event name, in the order of PERF_EVENTS
EVENTS = [('cycles', 'cycles'), ('instructions', 'instructions'), ('task-clock', 'task-clock'),
          ('context-switches', 'context-switches'), ('cpu-migrations', 'cpu-migrations'),
          ('page-faults', 'page-faults'), ('minor-faults', 'minor-faults'), ('major-faults', 'major-faults'),
          ('syscalls', 'raw_syscalls:sys_enter')] + [
          (n, 'syscalls:sys_enter_' + n) for n in ('read', 'write', 'pread64', 'pwrite64', 'readv', 'writev',
          'clone', 'clone3', 'fork', 'vfork', 'execve', 'execveat')] + [
          ('sched_process_fork', 'sched:sched_process_fork'), ('sched_process_exec', 'sched:sched_process_exec'),
          ('mm_page_alloc_events', 'kmem:mm_page_alloc'),
          ('page_fault_user', 'exceptions:page_fault_user'), ('page_fault_user_write', 'exceptions:page_fault_user'),
          ('page_fault_user_wp', 'exceptions:page_fault_user'), ('page_fault_kernel', 'exceptions:page_fault_kernel'),
          ('page_fault_kernel_wp', 'exceptions:page_fault_kernel')]

def perf(f):
    rows = [l.split(',') for l in rd(f).splitlines() if l and not l.startswith('#')]
    assert [r[2] for r in rows] == [e for _, e in EVENTS], f
    res, unsupported = {}, []
    for (lab, ev), r in zip(EVENTS, rows):
        if r[0].startswith('<'):
            unsupported.append(ev); continue
        res[lab] = float(r[0]) if lab == 'task-clock' else int(float(r[0]))
    return res, unsupported

tv, warm, btv = time_v('kc_measured.time-v.txt'), time_v('kc_warm.time-v.txt'), time_v('kc_bpftrace.time-v.txt')
pt, unsup = perf('kc_measured.perf-task.csv')
ps, _ = perf('kc_measured.perf-system.csv')
io = dict((k, int(v)) for k, v in (l.split(': ') for l in rd('kc_measured.proc-io.txt').splitlines()))
vm = dict((k, int(v)) for k, v in (l.split() for l in rd('kc_measured.vmstat.delta').splitlines()))
bt = {}
for l in rd('kc_bpftrace.txt').splitlines():
    m = re.match(r'^@(\w+)(?:\[(\d+)\])?: (\d+)$', l)
    if m: bt[m[1] + ('' if m[2] is None else '_' + m[2])] = int(m[3])
btvm = dict((k, int(v)) for k, v in (l.split() for l in rd('kc_bpftrace.vmstat.delta').splitlines()))

cpu = tv['user_s'] + tv['sys_s']
rate = lambda x: round(x / cpu, 1)
pgalloc = sum(vm.get(k, 0) for k in ('pgalloc_dma', 'pgalloc_dma32', 'pgalloc_normal', 'pgalloc_movable'))
# vmstat is whole-machine, and the machine was shared, so per-build figures use
# the per-command perf counts; vmstat only supplies ratios.
pages_per_alloc = pgalloc / ps['mm_page_alloc_events']           # pages per mm_page_alloc event
wp_sys = ps['page_fault_user_wp'] + ps['page_fault_kernel_wp']
copy_share = 1 - vm['pgreuse'] / wp_sys                            # wp faults that were not reuses
wp_task = pt['page_fault_user_wp'] + pt['page_fault_kernel_wp']
cow_est = wp_task * copy_share
bt_copy_share = bt['fault_then_alloc_3'] / bt['faults_3']
clones = sum(pt[k] for k in ('clone', 'clone3', 'fork', 'vfork'))
execve_calls = pt['execve'] + pt['execveat']  # attempts, incl. failed PATH lookups
rw = pt['read'] + pt['write'] + pt['pread64'] + pt['pwrite64'] + pt['readv'] + pt['writev']
sh = lambda *c: subprocess.run(c, capture_output=True, text=True).stdout.strip()
cpuinfo = open('/proc/cpuinfo').read()

summary = {
  'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
  'machine': {
    'kernel': platform.release(),
    'cpu_model': re.search(r'model name\s*: (.*)', cpuinfo)[1],
    'nproc': os.cpu_count(),
    'is_vm': ' hypervisor' in cpuinfo,
    'vm_evidence': 'cpuinfo hypervisor flag=%s; systemd-detect-virt=%s' % (
        ' hypervisor' in cpuinfo, sh('systemd-detect-virt') or 'none'),
    'mem_total_kb': int(re.search(r'MemTotal:\s+(\d+)', open('/proc/meminfo').read())[1]),
  },
  'recipe': {
    'command': recipe,
    'script': 'tools/measure/kernel_compile.sh',
    'source': 'Debian linux-source-6.1 ' + sh('dpkg-query', '-W', '-f=${Version}', 'linux-source-6.1'),
    'config': 'tinyconfig (x86_64)',
    'compiler': sh('gcc', '--version').splitlines()[0],
    'perf': sh('perf', '--version'),
    'reported_run': 'measured: second build after `make clean`, page cache warm (warm-up build before it)',
    'counters_scope': 'time -v, perf-task, proc-io: the build process tree only; vmstat, perf-system and bpftrace: '
                      'whole machine, which other users shared during the run (see foreign_activity)',
  },
  'unsupported': {
    'perf_events': unsup,
    'other': ['kprobes (CONFIG_KPROBES unset): no perf probe on do_wp_page/wp_page_copy',
              'ftrace function tracer: writing set_ftrace_filter gives Operation not permitted (cause not confirmed; kernel has LOCK_DOWN_KERNEL_FORCE_INTEGRITY=y)',
              'bpftrace 0.17 kfunc/fentry: "not available for your kernel version"'],
  },
  'warm_up_run_time_v': warm,
  'measured_run': {
    'time_v': tv,
    'perf_task': pt,
    'perf_system': ps,
    'proc_io': io,
    'vmstat_delta': {k: vm[k] for k in ('pgfault', 'pgmajfault', 'pgalloc_dma', 'pgalloc_dma32',
                     'pgalloc_normal', 'pgalloc_movable', 'pgfree', 'pgreuse', 'thp_fault_alloc') if k in vm},
  },
  'bpftrace_run': {
    'note': 'separate build with bpftrace attached (slower); counts are whole-machine',
    'time_v': btv,
    'counts': bt,
    'vmstat_pgreuse': btvm.get('pgreuse'),
    'fault_type_key': '0=read not-present, 1=read protection, 2=write not-present, 3=write protection (wp fault)',
  },
  'foreign_activity': {
    'note': 'whole-machine minus build-tree counts during the measured run (other processes on the shared machine)',
    'syscalls': ps['syscalls'] - pt['syscalls'],
    'page_faults': ps['page-faults'] - pt['page-faults'],
    'context_switches': ps['context-switches'] - pt['context-switches'],
    'build_cpu_utilisation': round(cpu / tv['wall_s'], 3),
  },
  'derived_per_cpu_second': {
    'cpu_seconds': round(cpu, 2),
    'user_fraction': round(tv['user_s'] / cpu, 4),
    'sys_fraction': round(tv['sys_s'] / cpu, 4),
    'syscalls_per_s': rate(pt['syscalls']),
    'read_write_syscalls_per_s': rate(rw),
    'read_syscalls_per_s': rate(pt['read'] + pt['pread64'] + pt['readv']),
    'write_syscalls_per_s': rate(pt['write'] + pt['pwrite64'] + pt['writev']),
    'voluntary_ctx_switches_per_s': rate(tv['voluntary_ctx_switches']),
    'involuntary_ctx_switches_per_s': rate(tv['involuntary_ctx_switches']),
    'perf_context_switches_per_s': rate(pt['context-switches']),
    'minor_faults_per_s': rate(tv['minor_faults']),
    'major_faults_per_s': rate(tv['major_faults']),
    'page_allocations_per_s': rate(pt['mm_page_alloc_events'] * pages_per_alloc),
    'page_allocations_note': 'build tree kmem:mm_page_alloc events (%s/s) x whole-machine pages per event from vmstat '
                             'pgalloc_* (%.4f)' % (rate(pt['mm_page_alloc_events']), pages_per_alloc),
    'cow_faults_per_s_estimate': rate(cow_est),
    'cow_faults_is_estimate': True,
    'cow_faults_method': 'ESTIMATE, not a direct count (no kprobes/function tracing): write-protect faults of the build '
                         'tree (exceptions:page_fault_user+kernel with error_code present+write, perf per command: %d) '
                         'x share of write-protect faults that were not reuses, whole machine: 1 - vmstat pgreuse / '
                         'wp faults = %.4f. Cross-check, bpftrace run (whole machine): share of wp faults followed by an '
                         'order-0 page allocation = %.4f. Excludes CoW of private file pages first touched by a write '
                         '(do_cow_fault, a not-present write fault).' % (wp_task, copy_share, bt_copy_share),
    'write_protect_faults_per_s': rate(wp_task),
    'write_faults_user_share': round(pt['page_fault_user_write'] / pt['page_fault_user'], 4),
    'clone_fork_syscalls_per_s': rate(clones),
    'tasks_created_per_s': rate(pt['sched_process_fork']),
    'tasks_created_note': 'sched:sched_process_fork (every new process or thread)',
    'execs_per_s': rate(pt['sched_process_exec']),
    'execs_note': 'sched:sched_process_exec = successful execs; execve/execveat syscalls incl. failed attempts = %s/s'
                  % rate(execve_calls),
    'avg_read_bytes': round(io['rchar'] / io['syscr'], 1),
    'avg_write_bytes': round(io['wchar'] / io['syscw'], 1),
    'avg_size_note': '/proc/<wrapper>/io rchar/syscr and wchar/syscw (all read-/write-family syscalls incl. 0-byte reads); '
                     'bpftrace run: mean of positive read/pread64 returns = %s, write/pwrite64 = %s' % (
        round(bt['read_bytes'] / bt['read_calls_positive'], 1) if bt.get('read_calls_positive') else None,
        round(bt['write_bytes'] / bt['write_calls_positive'], 1) if bt.get('write_calls_positive') else None),
    'read_bytes_per_s': rate(io['rchar']),
    'write_bytes_per_s': rate(io['wchar']),
  },
}
with open(os.path.join(out, 'kernel_compile.yaml'), 'w') as f:
    yaml.safe_dump(summary, f, sort_keys=False, width=120)
print(yaml.safe_dump(summary['derived_per_cpu_second'], sort_keys=False, width=120))
EOF
