#!/usr/bin/env bash
# Install the Debian packages the test suite needs: fio (tests run it for a
# couple of seconds to produce genuine JSON for asi-calibrate) and chromium
# (the browser test opens asi-report's page in it, driven by playwright; no
# browser is ever downloaded by playwright itself).
#
# Idempotent and safe to run on every `make test`:
#   - does nothing when every package is already installed;
#   - runs `apt-get update` only when apt does not know a package yet;
#   - skips with a clear message (exit 0) when not root, when apt-get is
#     missing or when the install fails; the tests needing them skip, saying why.
# Usage: bash tools/install-system-deps.sh
set -euo pipefail

read -ra PACKAGES <<<"${SYSDEPS_PACKAGES:-fio chromium}"  # override only to test this script

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing=()
for pkg in "${PACKAGES[@]}"; do
    if command -v dpkg-query >/dev/null 2>&1; then
        installed "$pkg" || missing+=("$pkg")
    else
        command -v "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-system-deps: already installed: ${PACKAGES[*]}"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-deps: apt-get not found; install ${missing[*]} with your package manager (tests needing them will be skipped)" >&2
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-system-deps: not root; run: sudo apt-get install -y ${missing[*]} (tests needing them will be skipped)" >&2
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
known() { apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [^(]'; }
for pkg in "${missing[@]}"; do
    if ! known "$pkg"; then
        echo "install-system-deps: apt-get update (apt does not know $pkg yet)"
        apt-get update -qq
        break
    fi
done
echo "install-system-deps: apt-get install ${missing[*]}"
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
    echo "install-system-deps: WARNING: could not install ${missing[*]} (see apt's message above); tests needing them will be skipped" >&2
fi
