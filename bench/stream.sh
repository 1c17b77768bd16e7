#!/bin/sh
# Stream fan-out on loopback: one producer to 1, 4 and 8 consumers against
# the raw link ceiling, plus latency at 1000 datums/s, then the same stack
# with metrics on against metrics off (bench/bench_stream.c).
# Usage: sh bench/stream.sh [BUILD] [-q] [-s SIZE] [-k N] [-r RUNS] [-m PAIRS]
set -eu
build=${1:-build}
[ $# -gt 0 ] && shift
exec "$build/bench/bench_stream" "$@"
