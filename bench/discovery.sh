#!/bin/sh
# Discovery at cluster scale: 32 coalitiond on loopback, one bootstrap;
# convergence time (and its spread over nodes), idle RSS and idle CPU per
# node (over 60 s, last run), shutdown time; medians of 5 runs
# (bench/bench_discovery.c).
# Usage: sh bench/discovery.sh [BUILD] [bench_discovery options:
#        -n nodes -r runs -i idle-seconds]
set -eu
build=${1:-build}
[ $# -gt 0 ] && shift
exec "$build/bench/bench_discovery" "$@" "$build"
