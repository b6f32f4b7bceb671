# Sourced by the guest_* recipes (bash, on the KVM HOST, as root).
#   kvm_stat_around OUT WORKLOAD VCPUS SECONDS GUEST_CMD...
#     runs GUEST_CMD (which starts the guest workload, e.g. over ssh) in the background,
#     records every VM's exits for SECONDS with `perf kvm stat record -a sleep SECONDS`,
#     writes `perf kvm stat report --event=vmexit` to OUT/vmexit.txt and a manifest
#     OUT/manifest.yaml for asi-calibrate (its kvm_stat entry names the recording's
#     length and the vCPUs that ran: the report itself gives neither).
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
  perf kvm stat record -a -o "$out/perf.data.kvm" sleep "$seconds"
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
