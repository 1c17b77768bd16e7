#!/bin/sh
# Discovery at cluster scale: N nodes on loopback, one bootstrap;
# convergence time (and its spread over nodes), CPU to converge, idle RSS
# and idle CPU, shutdown time; medians of the runs
# (bench/bench_discovery.c says how each figure is measured).
#
#   sh bench/discovery.sh build                 32 coalitiond, 5 runs
#   sh bench/discovery.sh build -n 128          one coalitiond per node
#   sh bench/discovery.sh build -n 512          the sweep 32..512
#   sh bench/discovery.sh build -n 32,64,128 -k 0   a sweep, one process
#                                               per node
#
# Options (bench_discovery): -n N[,N...] sizes; -k K nodes per nodes_host
# process (0: one coalitiond per node; default 0 up to 128 nodes, else 64);
# -r runs (default 5); -i idle seconds (60); -t seconds to converge before
# a run is given up; -w seconds after convergence to read idle memory (5);
# -s 0|1 serf agents too
# (default: when sweeping and serf is installed: scripts/deps.sh bench).
# "-n N" alone with N > 128 means the sweep 32, 64, ... N.
set -eu
build=${1:-build}
[ $# -gt 0 ] && shift
# -n N past 128 alone: the doubling sweep up to N.
args=""
while [ $# -gt 0 ]; do
    case $1 in
    -n)
        n=$2
        shift 2
        case $n in
        *,*) ;;
        *)
            if [ "$n" -gt 128 ]; then
                s=32 list=""
                while [ $s -lt "$n" ]; do list="$list$s,"; s=$((s * 2)); done
                n="$list$n"
            fi
            ;;
        esac
        args="$args -n $n"
        ;;
    *) args="$args $1"; shift ;;
    esac
done
# shellcheck disable=SC2086
exec "$build/bench/bench_discovery" $args "$build"
