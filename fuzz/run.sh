#!/bin/sh
# Runs every fuzz target in BUILD/fuzz for FUZZ_SECONDS each, starting from
# its seed corpus (copied, so runs never rewrite the committed corpus).
# A crash fails the run and leaves the input as crash-* in the build dir.
set -eu
build=${1:-build-fuzz}
secs=${FUZZ_SECONDS:-10}
src=$(cd "$(dirname "$0")" && pwd)
status=0
build=$(cd "$build" && pwd)
for exe in "$build"/fuzz/fuzz_*; do
    [ -f "$exe" ] || continue
    [ -x "$exe" ] || continue
    name=${exe##*/fuzz_}
    work=$(mktemp -d)
    [ -d "$src/corpus/$name" ] && cp -r "$src/corpus/$name/." "$work/"
    echo "fuzz: $name for ${secs}s"
    if ! (cd "$build" && "$exe" -max_total_time="$secs" -rss_limit_mb=2048 \
            -print_final_stats=0 "$work" >"$build/fuzz-$name.log" 2>&1); then
        echo "fuzz: $name FAILED, see $build/fuzz-$name.log" >&2
        tail -40 "$build/fuzz-$name.log" >&2
        status=1
    else
        grep -E '^#[0-9]+.*DONE' "$build/fuzz-$name.log" | tail -1 || true
    fi
    rm -rf "$work"
done
exit $status
