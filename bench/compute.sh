#!/bin/sh
# Compute: blob fetch MB/s (verified, over TLS) against plain TCP in the
# same run; submit -> grant and submit -> first output latency on a
# three-member committee with a provider; grants committed per second
# with 100 providers registered (bench/bench_compute.c).
# Usage: sh bench/compute.sh [BUILD] [bench_compute options: --mib N
#        --runs N --jobs N --providers N --requests N --window N
#        --blobs-only (the first figure alone, no committee)]
# The data go under BUILD (the project's disk, like bench/group.sh).
set -eu
build=${1:-build}
[ $# -gt 0 ] && shift
dir="$build/bench-compute-data"
rm -rf "$dir"
status=0
BUILD_DIR="$build" "$build/bench/bench_compute" --dir "$dir" "$@" || status=$?
rm -rf "$dir"
exit $status
