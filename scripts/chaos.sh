#!/bin/sh
# The chaos campaign (tests/chaos/chaos.c, docs/testing.md): leader kills
# under client load against a 3- and then a 5-member committee, each run
# checked for lost and duplicated writes and a non-linearizable register.
#
#   sh scripts/chaos.sh BUILD [chaos options...]
#   make chaos KILLS=1000 MEMBERS="3 5" CHAOS_BUILD=build-test
#
# BUILD is a configured build directory: build-test (ASan/UBSan, waits
# scaled by TIME_FACTOR=3) or build (release). MEMBERS (default "3 5")
# picks the committee sizes, KILLS (default 20) the kills per size, and
# CHAOS_ARGS, or arguments after BUILD, add options (--netns, --enospc,
# --clients, --window, --rate, --seed, --duration-cap). Exits non-zero if
# any run failed; a failed run keeps its data dir and member logs and
# prints where.
set -u

build=${1:-build}
[ $# -gt 0 ] && shift
members=${MEMBERS:-3 5}
kills=${KILLS:-20}

ninja -C "$build" tests/chaos/chaos coalitiond >/dev/null || exit 2
# A sanitized build runs slower: Raft timing and waits scale by 3.
if grep -q '"name": "sanitized", "value": true' \
    "$build/meson-info/intro-buildoptions.json" 2>/dev/null; then
    : "${TIME_FACTOR:=3}"
fi
export TIME_FACTOR="${TIME_FACTOR:-1}"
export BUILD_DIR="$build"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# chaos removes its namespaces itself, even when a member misbehaves;
# this catches a chaos process that was itself killed.
pid=""
cleanup() {
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' |
        grep "^chs$pid-"); do
        ip netns del "$ns" 2>/dev/null
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

status=0
for m in $members; do
    echo "== chaos: $m members, $kills kills ($build, TIME_FACTOR=$TIME_FACTOR)"
    # shellcheck disable=SC2086 # CHAOS_ARGS is a list of options
    "$build/tests/chaos/chaos" --members "$m" --kills "$kills" \
        ${CHAOS_ARGS:-} "$@" &
    pid=$!
    wait "$pid"
    rc=$?
    pid=""
    case $rc in
    0) ;;
    77) echo "== chaos: skipped ($m members)" ;;
    *) status=1 ;;
    esac
done
exit $status
