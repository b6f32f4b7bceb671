#!/usr/bin/env bash
# The untar phase of the posting's build (posting_build.sh) without perf attached: its CPU
# time (tracepoints on every syscall inflate sys time), the bytes its processes read and
# wrote (/proc/<pid>/io of a wrapper that reaps them, as kernel_compile.sh does), and the
# critical path of the xz | tar pipeline: xz's calls in the pipeline (strace -c), xz alone into
# a file, and tar alone on the uncompressed archive, each timed. Usage: bash posting_untar_timing.sh [OUTDIR]  (as root)
set -euo pipefail
OUT=$(realpath -m "${1:-/tmp/asi-measure-posting}")
TARBALL=${TARBALL:-/usr/src/linux-source-6.1.tar.xz}
mkdir -p "$OUT"
MNT=$(mktemp -d /tmp/asi-untar-XXXXXX)
mount -t tmpfs -o size=16G tmpfs "$MNT"
trap 'cd /; umount "$MNT" 2>/dev/null || true; rmdir "$MNT" 2>/dev/null || true' EXIT
cat "$TARBALL" >/dev/null
cd "$MNT"
/usr/bin/time -v -o "$OUT/untar_timing.time-v.txt" \
  bash -c 'tar xJf "$1"; rc=$?; cat /proc/$$/io >"$2"; exit $rc' _ "$TARBALL" "$OUT/untar_timing.proc-io.txt"
rm -rf "$MNT"/*
# xz's side of the pipeline, the critical path the benchmark times (kbuild_untar_xz_tmpfs): its calls
(cd "$MNT" && strace -c -o "$OUT/untar_xz_side.strace.txt" xz -dc "$TARBALL" | tar xf -)
rm -rf "$MNT"/*
/usr/bin/time -v -o "$OUT/untar_xz_only.time-v.txt" xz -dc "$TARBALL" >"$MNT/src.tar"
/usr/bin/time -v -o "$OUT/untar_tar_only.time-v.txt" tar xf "$MNT/src.tar"
grep -E "User time|System time|Elapsed" "$OUT"/untar_timing.time-v.txt "$OUT"/untar_xz_only.time-v.txt "$OUT"/untar_tar_only.time-v.txt
cat "$OUT/untar_timing.proc-io.txt"
