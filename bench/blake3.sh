#!/bin/sh
# BLAKE3 throughput, one thread: our SIMD paths against
# `b3sum --num-threads 1`, in memory and on a 1 GiB file in $TMPDIR (made
# here, removed on exit; needs 1 GiB of disk and about 2 GiB of memory).
#
#   sh bench/blake3.sh [BUILD_DIR]      (default: build)
set -eu

build=${1:-build}
exe=$build/bench/bench_blake3
if [ ! -x "$exe" ]; then
    # Not an error for bench/run.sh: the build may not include it yet.
    echo "blake3.sh: $exe is not built (bench/blake3.meson); skipped" >&2
    exit 0
fi
command -v b3sum >/dev/null 2>&1 ||
    echo "blake3.sh: b3sum not found (Debian package b3sum); ours only" >&2

file=$(mktemp "${TMPDIR:-/tmp}/mk-blake3-bench.XXXXXX")
trap 'rm -f "$file" "$file.1m" "$file.0"' EXIT
trap 'exit 130' INT TERM
"$exe" "$file"
