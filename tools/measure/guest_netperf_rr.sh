#!/usr/bin/env bash
# VM exits of netperf TCP_RR inside a KVM guest through vhost-net (conf/workload/guest_netperf_rr.yaml).
# Run on the KVM HOST, as root; the guest has netperf and a virtio-net NIC backed by
# vhost-net (QEMU -netdev tap,vhost=on), the peer runs netserver (PEER, another machine
# or the host itself):
#   GUEST=user@vm PEER=10.0.0.1 bash guest_netperf_rr.sh [OUTDIR]
# netperf's transactions per second (guest.log) give base_time = 1e9 / rate [ns].
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/kvm_stat.sh"
OUT=$(realpath -m "${1:-/tmp/asi-measure/guest_netperf_rr}")
: "${GUEST:?set GUEST=user@host of the guest}" "${PEER:?set PEER=the netserver address}"
SECONDS_REC=${SECONDS_REC:-30}
kvm_stat_around "$OUT" guest_netperf_rr 1 "$SECONDS_REC" \
  ssh "$GUEST" "netperf -H $PEER -t TCP_RR -l $((SECONDS_REC + 20)) -- -r 1,1"
