#!/bin/sh
# Long fuzzing campaign (make fuzz-long): every fuzz target in BUILD/fuzz,
# one after the other, for FUZZ_SECONDS each (default 3600).
#
#   FUZZ_TARGETS="a b"  only these targets (names as in fuzz/corpus/)
#   FUZZ_JOBS=N         N libFuzzer processes per target (default 1: the
#                       machine is shared, so parallel runs are opt-in)
#   FUZZ_COMMIT=1       add what the run found to fuzz/corpus/<name>
#   FUZZ_CPU_SECONDS=N  run each target until its processes have used N
#                       seconds of CPU (in rounds of FUZZ_SECONDS wall,
#                       default 600 then): a budget that holds on a
#                       shared machine, where wall time would not
#
# The growing corpus lives in BUILD/corpus-long/<name>, seeded from
# fuzz/corpus/<name> and kept between runs, so a campaign can resume.
# At the end each one is minimised (-merge=1 into a fresh directory,
# BUILD/corpus-min/<name>) and a line of figures is printed per target.
# Crashing inputs land in BUILD/artifacts-long/<name>/; any crash makes
# the script fail, after every target has had its turn.
set -eu
build=${1:-build-fuzz}
cpu_budget=${FUZZ_CPU_SECONDS:-0}
if [ "$cpu_budget" -gt 0 ]; then
    secs=${FUZZ_SECONDS:-600}
else
    secs=${FUZZ_SECONDS:-3600}
fi
jobs=${FUZZ_JOBS:-1}
src=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$build" && pwd)

nfiles() { find "$1" -type f | wc -l; }

if [ -n "${FUZZ_TARGETS:-}" ]; then
    names=$FUZZ_TARGETS
else
    names=
    for exe in "$build"/fuzz/fuzz_*; do
        if [ -f "$exe" ] && [ -x "$exe" ]; then
            names="$names ${exe##*/fuzz_}"
        fi
    done
fi
for name in $names; do
    if [ ! -x "$build/fuzz/fuzz_$name" ]; then
        echo "fuzz-long: no target $name in $build/fuzz" >&2
        exit 2
    fi
done

# -jobs forks workers that each write fuzz-<n>.log into the current
# directory; with one process the log is ours and nothing is forked.
par=
if [ "$jobs" -gt 1 ]; then
    par="-jobs=$jobs -workers=$jobs"
fi

summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
status=0
for name in $names; do
    exe=$build/fuzz/fuzz_$name
    corpus=$build/corpus-long/$name
    min=$build/corpus-min/$name
    art=$build/artifacts-long/$name
    logs=$build/logs-long/$name
    mkdir -p "$corpus" "$art"
    rm -rf "$logs" && mkdir -p "$logs"
    if [ -d "$src/corpus/$name" ]; then
        cp -r "$src/corpus/$name/." "$corpus/"
    fi
    before=$(nfiles "$art")
    echo "fuzz-long: $name for ${secs}s ($jobs process(es)), log $logs/run.log"
    # A crash ends this target's run; it is counted, not fatal yet. CPU
    # time is what /usr/bin/time reports for the fuzzer and the workers
    # it waits for; rounds repeat until the CPU budget, if any, is spent.
    rc=0
    cpu=0
    round=0
    while :; do
        round=$((round + 1))
        # shellcheck disable=SC2086 # $par is a list of flags
        (cd "$logs" && /usr/bin/time -f '%U %S' -o "cpu.$round" \
            "$exe" -max_total_time="$secs" -rss_limit_mb=2048 \
            -print_final_stats=1 -artifact_prefix="$art/" $par \
            "$corpus" >"run.$round.log" 2>&1) || rc=$?
        cpu=$(awk -v c="$cpu" 'END { printf "%d", c + $1 + $2 }' "$logs/cpu.$round")
        # Workers rewrite fuzz-<n>.log each round: keep every round's.
        for f in "$logs"/fuzz-*.log; do
            [ -f "$f" ] && mv "$f" "$logs/worker.$round.${f##*/fuzz-}"
        done
        [ "$rc" = 0 ] && [ "$cpu" -lt "$cpu_budget" ] || break
    done
    cat "$logs"/run.*.log >"$logs/run.log"

    # Figures: libFuzzer's final stats (summed over workers), and the
    # last coverage line it printed (cov: edges, ft: features).
    execs=$(cat "$logs"/run.*.log "$logs"/worker.*.log 2>/dev/null | sed -n 's/^stat::number_of_executed_units: *//p' |
        awk '{ s += $1 } END { print s + 0 }')
    covline=$(cat "$logs"/run.*.log "$logs"/worker.*.log 2>/dev/null | grep ' cov: ' | tail -n 1 || true)
    cov=$(echo "$covline" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$covline" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    crashes=$(($(nfiles "$art") - before))
    if [ "$crashes" -gt 0 ] || [ "$rc" != 0 ]; then
        echo "fuzz-long: $name: exit $rc, $crashes new input(s) in $art" >&2
        tail -n 30 "$logs/run.log" >&2
        status=1
    fi

    rm -rf "$min" && mkdir -p "$min"
    if ! (cd "$logs" && "$exe" -merge=1 -rss_limit_mb=2048 \
            -artifact_prefix="$art/" "$min" "$corpus" >merge.log 2>&1); then
        echo "fuzz-long: $name: merge failed, see $logs/merge.log" >&2
        status=1
    fi
    files=$(nfiles "$min")
    bytes=$(find "$min" -type f -exec cat {} + | wc -c)
    printf '%-12s cpu %6ss  execs %-10s cov %-6s ft %-7s corpus %s files/%s bytes  crashes %s\n' \
        "$name" "$cpu" "$execs" "${cov:-?}" "${ft:-?}" "$files" "$bytes" "$crashes" \
        >>"$summary"

    if [ "${FUZZ_COMMIT:-0}" = 1 ]; then
        # Merged into the committed corpus, not copied over it: the seeds
        # and the regression inputs of old crashes stay, and only inputs
        # that add coverage to them are added.
        mkdir -p "$src/corpus/$name"
        n0=$(nfiles "$src/corpus/$name")
        (cd "$logs" && "$exe" -merge=1 -rss_limit_mb=2048 \
            "$src/corpus/$name" "$min" >commit.log 2>&1) || status=1
        echo "fuzz-long: $name: $(($(nfiles "$src/corpus/$name") - n0)) inputs added to fuzz/corpus/$name"
    fi
done

echo "fuzz-long: ${secs}s per target"
cat "$summary"
[ "$status" = 0 ] || echo "fuzz-long: crashes or failures; inputs in $build/artifacts-long/" >&2
exit $status
