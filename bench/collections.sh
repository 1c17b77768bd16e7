#!/bin/sh
# Collection state machines: apply, snapshot and restore speed per kind
# (bench/bench_collections.c). Usage: sh bench/collections.sh [BUILD] [-n items] [-r runs]
set -eu
build=${1:-build}
[ $# -gt 0 ] && shift
exec "$build/bench/bench_collections" "$@"
