#!/bin/sh
# Coalition modules on three coalitiond members on loopback: Atlas publish
# -> visible latency and local reads/s, Almanac tick jitter, Chronicle
# appends/s and offline verification MB/s (bench/bench_modules.c).
# Usage: sh bench/modules.sh [BUILD] [bench_modules options: --cards N
#        --ticks N --cadence MS --appends N --window N --offline]
# The data dirs go under BUILD (the project's disk, like bench/group.sh).
set -eu
build=${1:-build}
[ $# -gt 0 ] && shift
dir="$build/bench-modules-data"
rm -rf "$dir"
status=0
BUILD_DIR="$build" "$build/bench/bench_modules" --dir "$dir" "$@" || status=$?
rm -rf "$dir"
exit $status
