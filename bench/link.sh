#!/bin/sh
# Link throughput, TLS against plain TCP on loopback (bench/bench_link.c).
# Usage: sh bench/link.sh [BUILD] [bench_link options: -n runs -m MiB]
set -eu
build=${1:-build}
[ $# -gt 0 ] && shift
exec "$build/bench/bench_link" "$@"
