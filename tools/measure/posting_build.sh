#!/usr/bin/env bash
# Counts per phase of the ephmap posting's "kernel compile" as it was run: the
# compile-kernel script of github.com/bjackman/nixos-flake (commit be42ba326f8a,
# flake.nix), whose timer wraps all of
#   output=$(mktemp -d)            under /tmp, a tmpfs on the measured host
#   tar xJf <kernel source tarball>
#   make -sj tinyconfig
#   make -sj$(nproc) vmlinux
#   rm -rf $output                 (the script's EXIT trap, still inside the timer)
# Here every phase runs in a fresh tmpfs mount, one perf stat (build tree,
# inherited) and one /usr/bin/time -v per phase, so each phase's counts and CPU
# time are its own. Software events and tracepoints count the same on a loaded
# machine; CPU and wall times do not, and the summary records the load.
#
# Usage: bash posting_build.sh [OUTDIR]     (as root; default /tmp/asi-measure-posting)
# Env:   TARBALL=/usr/src/linux-source-6.1.tar.xz   (Debian linux-source-6.1)
#        JOBS=$(nproc)                               make -j of the build phase
set -euo pipefail
OUT=$(realpath -m "${1:-/tmp/asi-measure-posting}")
TARBALL=${TARBALL:-/usr/src/linux-source-6.1.tar.xz}
JOBS=${JOBS:-$(nproc)}
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/common.sh"
mkdir -p "$OUT"

if [ ! -f "$TARBALL" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq linux-source-6.1 build-essential flex bison bc libelf-dev \
    libssl-dev time linux-perf python3 python3-yaml procps >/dev/null
fi
ensure_tracefs
perf_args "$HERE/events/kernel_compile.events" "$HERE/events/new_counts.events" \
  "$HERE/events/switches.events"

MNT=$(mktemp -d /tmp/asi-posting-XXXXXX)
mount -t tmpfs -o size=16G tmpfs "$MNT"
trap 'cd /; umount "$MNT" 2>/dev/null || true; rmdir "$MNT" 2>/dev/null || true' EXIT

# run_phase NAME DIR COMMAND...: perf stat and time -v around one phase, wall time in ns
run_phase() {
  local name=$1 dir=$2; shift 2
  snap "$OUT/$name.snap.before"
  local t0; t0=$(date +%s%N)
  (cd "$dir" && perf stat -x, -o "$OUT/$name.perf-task.csv" "${PERF_ARGS[@]}" -- \
    /usr/bin/time -v -o "$OUT/$name.time-v.txt" "$@" >"$OUT/$name.log" 2>&1)
  echo $(( $(date +%s%N) - t0 )) >"$OUT/$name.wall_ns"
  snap "$OUT/$name.snap.after"
}

echo "before $(clock_probe)" >"$OUT/clock.txt"
# Warm the tarball into the page cache so the untar phase reads no disk (the
# published host read it from the Nix store, warm after the first of its runs).
cat "$TARBALL" >/dev/null
run_phase untar "$MNT" tar xJf "$TARBALL"
SRC=$(find "$MNT" -mindepth 1 -maxdepth 1 -type d | head -1)
run_phase tinyconfig "$SRC" make -sj tinyconfig
run_phase vmlinux "$SRC" make -sj"$JOBS" vmlinux
run_phase cleanup "$MNT" rm -rf "$SRC"
echo "after $(clock_probe)" >>"$OUT/clock.txt"
{ echo "tarball: $TARBALL"; echo "tarball_bytes: $(stat -c %s "$TARBALL")"; echo "jobs: $JOBS";
  echo "gcc: $(gcc --version | head -1)"; echo "perf: $(perf --version)";
  echo "kernel: $(uname -r)"; echo "nproc: $(nproc)"; } >"$OUT/machine.txt"
python3 "$HERE/posting_build_summary.py" "$OUT"
