# Sourced by the guest_* recipes (bash, on the KVM HOST, as root).
#   kvm_stat_around OUT WORKLOAD VCPUS SECONDS GUEST_CMD...
#     runs GUEST_CMD (which starts the guest workload, e.g. over ssh) in the background,
#     records every VM's exits for SECONDS with `perf kvm stat record -a sleep SECONDS`,
#     writes `perf kvm stat report --event=vmexit` to OUT/vmexit.txt and a manifest
#     OUT/manifest.yaml for asi-calibrate (its kvm_stat entry names the recording's
#     length and the vCPUs that ran: the report itself gives neither).
# With QEMU_PID set (the guest's QEMU process), the same window also records the host's
# work around the guest that the model prices (conf/workload/guest_*.yaml, the
# GUEST_HOST_PARAMS of model/params.py), into OUT/host.perf-stat.csv:
#   kvm:kvm_userspace_exit   returns of KVM_RUN to QEMU        -> kvm_run_returns_per_s
#   kvm:kvm_vcpu_wakeup      blocked (waited) vs polled halts  -> cpu.costs.vmexit_share_hlt
#   QEMU's pread/pwrite(v) syscalls on its image and 9p files  -> vmm_io_syscalls_per_s
#   QEMU's context switches (all its threads)                   -> vmm_thread_switches_per_s
#   kvm:kvm_page_fault, and the asi:* tracepoints where the host kernel has them (asi=on)
# Start recording once the workload is warm and stop before it ends: the rates are
# per second of the recording, per vCPU. Run one guest with nothing else on the host.
kvm_stat_around() {
  local out=$1 workload=$2 vcpus=$3 seconds=$4
  shift 4
  mkdir -p "$out"
  command -v perf >/dev/null || { echo "perf not found (linux-perf / linux-tools)" >&2; return 1; }
  [ -e /dev/kvm ] || { echo "no /dev/kvm: run this on the KVM host" >&2; return 1; }
  "$@" >"$out/guest.log" 2>&1 &
  local guest=$!
  sleep "${WARMUP_S:-10}"
  local host_stat=""
  if [ -n "${QEMU_PID:-}" ]; then
    local events=(-e kvm:kvm_userspace_exit -e kvm:kvm_vcpu_wakeup -e kvm:kvm_page_fault)
    for sc in pread64 pwrite64 preadv pwritev preadv2 pwritev2; do
      events+=(-e "syscalls:sys_enter_$sc")
    done
    events+=(-e context-switches)
    perf list 2>/dev/null | grep -q '^ *asi:' && events+=(-e 'asi:*')
    perf stat -x, -o "$out/host.perf-stat.csv" -p "$QEMU_PID" "${events[@]}" -- sleep "$seconds" &
    host_stat=$!
  fi
  perf kvm stat record -a -o "$out/perf.data.kvm" sleep "$seconds"
  [ -n "$host_stat" ] && wait "$host_stat"
  perf kvm stat report -i "$out/perf.data.kvm" --event=vmexit >"$out/vmexit.txt" 2>/dev/null
  wait "$guest" || echo "note: the guest command exited with $?" >&2
  cat >"$out/manifest.yaml" <<YAML
# Written by tools/measure/kvm_stat.sh on $(hostname) at $(date -u +%FT%TZ)
# ($(uname -r); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')).
# Add the runs or published points of $workload that these VM exits apply to, then:
#   asi-calibrate measurements=$out calibrate.name=<name>
workload: $workload
kvm_stat:
  - {file: vmexit.txt, seconds: $seconds, vcpus: $vcpus}
YAML
  echo "wrote $out/vmexit.txt and $out/manifest.yaml"
}
