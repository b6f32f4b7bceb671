#!/usr/bin/env bash
# Which file descriptors the build's read and write calls go to, on a sample of the build:
# regular files on tmpfs (reads the ephmap converts; writes, which it does not) versus pipes
# (make's jobserver tokens, $(shell ...) output: pipe buffers, user data the ephmap never
# maps). posting_build.sh counts calls per phase; this splits them by target, with
# strace -f -y (each fd decoded to its path or "pipe:[inode]") on SAMPLE, a few top-level
# directories built after `make tinyconfig` in a fresh tmpfs tree (a whole build under strace
# takes too long on a small machine; the split is a ratio, a sample measures it).
#
# Usage: bash posting_build_fd_split.sh [OUTDIR]      (as root)
# Env:   TARBALL=/usr/src/linux-source-6.1.tar.xz  SAMPLE="init/ kernel/"  JOBS=$(nproc)
set -euo pipefail
OUT=$(realpath -m "${1:-/tmp/asi-measure-posting}")
TARBALL=${TARBALL:-/usr/src/linux-source-6.1.tar.xz}
SAMPLE=${SAMPLE:-init/ kernel/}
JOBS=${JOBS:-$(nproc)}
mkdir -p "$OUT"
command -v strace >/dev/null || apt-get install -y -qq strace >/dev/null
source "$(dirname "$0")/common.sh"
kernel_tree_on_tmpfs "$TARBALL" "$JOBS"
TMPDIR="$MNT" strace -f -y -qq -e trace=read,pread64,write -o "$OUT/fd_split.strace" \
  make -sj"$JOBS" $SAMPLE >/dev/null 2>&1 || true
# classify: call, target kind (pipe, tmpfs file, other file, other), count
python3 - "$OUT/fd_split.strace" "$MNT" >"$OUT/fd_split.txt" <<'PY'
import collections, re, sys
counts, mnt = collections.Counter(), sys.argv[2]
for line in open(sys.argv[1], errors="replace"):
    m = re.search(r"\b(read|pread64|write)\(\d+<([^>]*)>", line)
    if m:
        path = m.group(2)
        kind = ("pipe" if path.startswith("pipe:") else "tmpfs_file" if path.startswith(mnt)
                else "other_file" if path.startswith("/") else "other")
        counts[m.group(1), kind] += 1
for (call, kind), n in sorted(counts.items()):
    print(call, kind, n)
PY
rm -f "$OUT/fd_split.strace"
cat "$OUT/fd_split.txt"
