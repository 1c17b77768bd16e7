#!/bin/sh
# Rotating a committee member under writes: four coalitiond members on
# loopback run one "counter" group with max_voters 3 (three voters, one
# standby). A client writes without pause (`coalition group exec --stdin
# --window 16`); meanwhile the benchmark rotates ROUNDS times: it demotes a
# voter that is not the leader and promotes the standby, each with
# `coalition group demote|promote`, signed with a member's key.
#
# Usage: sh bench/rotation.sh [BUILD]      (ROUNDS, default 5)
#
# Per rotation it prints how long it took (the demote's request to the
# promote's commit, both as the CLI saw them) and the longest gap between
# two acknowledged writes from a second before it to a second after; then
# the longest gap outside rotations, for comparison. Figures are printed,
# never asserted. Data dirs go under BUILD (a real disk).
set -eu
build=${1:-build}
rounds=${ROUNDS:-5}
cli="$build/coalition"
daemon="$build/coalitiond"
for f in "$cli" "$daemon"; do
    [ -x "$f" ] || { echo "rotation: $f is missing (build first)" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "rotation: needs jq" >&2; exit 1; }

dir="$build/bench-rotation-data"
rm -rf "$dir"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

i=0
while [ $i -lt 4 ]; do
    "$cli" keygen --out "$dir/m$i.key" > "$dir/m$i.id"
    i=$((i + 1))
done
cat > "$dir/node.json" <<EOF
{"groups": [{"name": "rot", "root": "bench-rotation", "kind": "counter",
  "voters": ["$(cat "$dir/m0.id")", "$(cat "$dir/m1.id")",
             "$(cat "$dir/m2.id")", "$(cat "$dir/m3.id")"],
  "params": {"election_timeout_ms": 1000, "heartbeat_ms": 50,
             "max_voters": 3}}]}
EOF
boot=""
i=0
while [ $i -lt 4 ]; do
    set -- --listen 127.0.0.1:0 --key "$dir/m$i.key" --data "$dir/m$i.data" \
        --config "$dir/node.json" --quiet
    [ $i -gt 0 ] && set -- "$@" --bootstrap "$boot"
    "$daemon" "$@" > "$dir/m$i.out" 2> "$dir/m$i.log" &
    pids="$pids $!"
    t=0
    until grep -q '"listen"' "$dir/m$i.out" 2>/dev/null; do
        sleep 0.1
        t=$((t + 1))
        [ $t -lt 100 ] || { echo "rotation: member $i did not start" >&2; exit 1; }
    done
    [ $i = 0 ] && boot="$(cat "$dir/m0.id")@$(jq -r .listen "$dir/m0.out" | head -n 1)"
    i=$((i + 1))
done
target="--bootstrap $boot --config $dir/node.json --name rot"

status() {
    # shellcheck disable=SC2086 # $target is a list of options
    "$cli" group status $target --json --timeout 5s 2>/dev/null || true
}
t=0
until [ "$(status | jq -r '[.members[] | select(.online)] | length')" = 4 ]; do
    t=$((t + 1))
    [ $t -lt 30 ] || { echo "rotation: the group did not form" >&2; exit 1; }
    sleep 1
done

# The load: a counter increment per line, as fast as a window of 16 allows.
# shellcheck disable=SC2086
awk 'BEGIN { for (i = 0; ; i++) print i, "1" }' |
    "$cli" group exec $target --stdin --window 16 --timeout 10s \
    > "$dir/acks.jsonl" 2> "$dir/load.err" &
pids="$pids $!"
sleep 3

echo "rotation: 4 members, max_voters 3, writes at window 16; $rounds rotations"
: > "$dir/rotations"
r=0
while [ $r -lt "$rounds" ]; do
    st=$(status)
    leader=$(echo "$st" | jq -r .leader)
    voter=$(echo "$st" | jq -r --arg l "$leader" \
        '[.members[] | select(.role == "voter" and .peer != $l)][0].peer')
    standby=$(echo "$st" | jq -r '[.members[] | select(.role == "standby")][0].peer')
    # Sign with the leader's key (any listed member's would do).
    key=""
    i=0
    while [ $i -lt 4 ]; do
        [ "$(cat "$dir/m$i.id")" = "$leader" ] && key="$dir/m$i.key"
        i=$((i + 1))
    done
    # shellcheck disable=SC2086
    d=$("$cli" group demote $target --key "$key" --json "$voter")
    # shellcheck disable=SC2086
    p=$("$cli" group promote $target --key "$key" --json "$standby")
    if [ "$(echo "$d" | jq -r .status)" != ok ] ||
        [ "$(echo "$p" | jq -r .status)" != ok ]; then
        echo "rotation $r failed: $d $p" >&2
        exit 1
    fi
    echo "$(echo "$d" | jq .t0_us) $(echo "$p" | jq .t_us)" >> "$dir/rotations"
    sleep 2
    r=$((r + 1))
done
sleep 1

# Acknowledged writes' times, then per rotation its duration and the
# longest gap between acknowledgements around it.
jq -r 'select(.status == "ok") | .t_us' "$dir/acks.jsonl" | sort -n > "$dir/t"
acked=$(wc -l < "$dir/t")
awk -v acked="$acked" '
    NR == FNR { a[++n] = $1; b[n] = $2; next }
    { t[++m] = $1 }
    END {
        out = 0
        for (k = 2; k <= m; k++) {
            g = t[k] - t[k - 1]
            inside = 0
            for (j = 1; j <= n; j++)
                if (t[k] >= a[j] - 1e6 && t[k - 1] <= b[j] + 1e6) {
                    inside = 1
                    if (g > gap[j]) gap[j] = g
                }
            if (!inside && g > out) out = g
        }
        for (j = 1; j <= n; j++)
            printf "  rotation %d: %7.1f ms, longest pause in acknowledged writes %6.1f ms\n",
                j, (b[j] - a[j]) / 1000, gap[j] / 1000
        printf "  outside rotations: longest pause %6.1f ms (%d writes acknowledged in all)\n",
            out / 1000, acked
    }' "$dir/rotations" "$dir/t"
