#!/bin/sh
# Groups: commit throughput and latency through mk_group against raw
# libraft over plain TCP, leader failover and replica lag, in one run on
# a 3-member committee on loopback, then our stack with metrics on against
# metrics off (bench/bench_group.c).
# Usage: sh bench/group.sh [BUILD] [bench_group options: --n N --lat N
#        --election MS --rounds R]
# The data dirs go under BUILD (the project's disk, not a tmpfs), so both
# stacks pay the same fsync.
set -eu
build=${1:-build}
[ $# -gt 0 ] && shift
dir="$build/bench-group-data"
rm -rf "$dir"
"$build/bench/bench_group" --dir "$dir" "$@"
status=$?
rm -rf "$dir"
exit $status
