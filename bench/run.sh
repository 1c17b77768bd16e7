#!/bin/sh
# `make bench`: runs every benchmark script in bench/ against BUILD.
# Benchmarks print figures; none of them asserts on time.
set -eu
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
for b in "$here"/*.sh; do
    [ "$b" = "$here/run.sh" ] && continue
    echo "== ${b##*/}"
    sh "$b" "$build"
done
