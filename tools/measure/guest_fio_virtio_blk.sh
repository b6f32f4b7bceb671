#!/usr/bin/env bash
# VM exits of fio inside a KVM guest on a virtio-blk disk (conf/workload/guest_fio_virtio_blk.yaml).
# Run on the KVM HOST, as root; the guest has fio and a spare virtio-blk disk (DISK,
# default /dev/vdb: its contents are only read) backed by a host NVMe (QEMU
# -device virtio-blk-pci,iothread=...,drive=... with aio=native,cache=none):
#   GUEST=user@vm bash guest_fio_virtio_blk.sh [OUTDIR]
# fio: 4 KiB random direct reads, psync, iodepth 1, one job; the host records 30 s of it.
# fio's JSON (guest.log) gives the reads per second, hence base_time = 1e9 / IOPS [ns].
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/kvm_stat.sh"
OUT=$(realpath -m "${1:-/tmp/asi-measure/guest_fio_virtio_blk}")
: "${GUEST:?set GUEST=user@host of the guest}"
DISK=${DISK:-/dev/vdb} SECONDS_REC=${SECONDS_REC:-30}
kvm_stat_around "$OUT" guest_fio_virtio_blk 1 "$SECONDS_REC" \
  ssh "$GUEST" "fio --name=randread --filename=$DISK --readonly --rw=randread --bs=4K \
    --direct=1 --ioengine=psync --iodepth=1 --numjobs=1 --time_based \
    --runtime=$((SECONDS_REC + 20)) --output-format=json"
