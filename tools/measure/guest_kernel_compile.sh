#!/usr/bin/env bash
# VM exits of a kernel build inside a KVM guest (conf/workload/guest_kernel_compile.yaml).
# Run on the KVM HOST, as root, with the guest up and reachable over ssh and a kernel tree
# in it (e.g. Debian's linux-source-6.1 unpacked in ~/linux):
#   GUEST=user@vm VCPUS=2 [QEMU_PID=<the guest's qemu pid>] bash guest_kernel_compile.sh [OUTDIR]
# (QEMU_PID adds the host's own work around the guest: kvm_stat.sh says what it records)
# The guest builds `make -j$VCPUS vmlinux` of a tinyconfig tree, page cache warm (a first
# build warms it); the host records `perf kvm stat record -a sleep $SECONDS` over the
# middle of the second build and reports `perf kvm stat report --event=vmexit`.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/kvm_stat.sh"
OUT=$(realpath -m "${1:-/tmp/asi-measure/guest_kernel_compile}")
: "${GUEST:?set GUEST=user@host of the guest}"
VCPUS=${VCPUS:-2} SECONDS_REC=${SECONDS_REC:-60} TREE=${TREE:-linux}
ssh "$GUEST" "cd $TREE && make -s tinyconfig && make -s -j$VCPUS vmlinux && make -s clean"
kvm_stat_around "$OUT" guest_kernel_compile "$VCPUS" "$SECONDS_REC" \
  ssh "$GUEST" "cd $TREE && make -s tinyconfig && /usr/bin/time -v make -s -j$VCPUS vmlinux"
