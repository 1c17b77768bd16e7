#!/bin/sh
# Remote writes as a new user drives them from the shell: `coalition group
# exec --stdin --window W` pipes 64-byte commands into a 3-member committee
# (three coalitiond processes running a "log" group), and `coalition group
# status --json` tells how many raft entries and proposals they cost. This
# is the measurement the committee-load issue was filed with; its table
# reads the same.
#
# Usage: sh bench/group_exec.sh [BUILD] [WINDOWS...]   (default 64 256 1024 4096)
# Environment: EXEC_N commands per window (10000).
# A row: window, acknowledged of N, elapsed, writes/s, raft entries per
# acknowledged command (leader's commit index before/after) and commands
# proposed per acknowledged one (members' commands_proposed counters: 1.000
# means no command was proposed twice). Figures are printed, never asserted.
set -eu

build=${1:-build}
[ $# -gt 0 ] && shift
windows=${*:-64 256 1024 4096}
n=${EXEC_N:-10000}
cli="$build/coalition"
daemon="$build/coalitiond"
for f in "$cli" "$daemon"; do
    [ -x "$f" ] || { echo "group_exec: $f is missing (build first)" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "group_exec: needs jq" >&2; exit 1; }

dir="$build/bench-group-exec-data"
rm -rf "$dir"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
members=""
trap 'for p in $members; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [ -n "${EXEC_KEEP:-}" ] || rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM

i=0
while [ $i -lt 3 ]; do
    "$cli" keygen --out "$dir/m$i.key" > "$dir/m$i.id"
    i=$((i + 1))
done
cat > "$dir/node.json" <<EOF
{"groups": [{"name": "bench", "root": "bench-group-exec", "kind": "log",
  "voters": ["$(cat "$dir/m0.id")", "$(cat "$dir/m1.id")", "$(cat "$dir/m2.id")"]}]}
EOF
boot=""
i=0
while [ $i -lt 3 ]; do
    set -- --listen 127.0.0.1:0 --key "$dir/m$i.key" --data "$dir/m$i.data" \
        --config "$dir/node.json" --quiet
    [ $i -gt 0 ] && set -- "$@" --bootstrap "$boot"
    "$daemon" "$@" > "$dir/m$i.out" 2> "$dir/m$i.log" &
    members="$members $!"
    t=0
    until grep -q '"listen"' "$dir/m$i.out" 2>/dev/null; do
        sleep 0.1
        t=$((t + 1))
        [ $t -lt 100 ] || { echo "group_exec: member $i did not start" >&2; exit 1; }
    done
    [ $i = 0 ] && boot="$(cat "$dir/m0.id")@$(jq -r .listen "$dir/m0.out" | head -n 1)"
    i=$((i + 1))
done

status() {
    "$cli" group status --bootstrap "$boot" --config "$dir/node.json" \
        --name bench --json --timeout 10s 2>/dev/null || echo '{}'
}
counters() {
    status | jq -r '[.commit_index // 0,
                     ([.members[]?.commands_proposed // 0] | add // 0)] | @tsv'
}
t=0
until [ "$(status | jq -r '[.members[]? | select(.online)] | length')" = 3 ]; do
    t=$((t + 1))
    [ $t -lt 30 ] || { echo "group_exec: no leader" >&2; exit 1; }
    sleep 1
done

# 64-byte commands: "ID" then the text, as --stdin reads them.
awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i++)
    printf "c%d %060d\n", i, i }' > "$dir/lines"

printf '%8s %12s %9s %10s %9s %10s\n' window acknowledged "elapsed s" writes/s \
    entries/ack props/ack
for w in $windows; do
    set -- $(counters)
    c0=$1 p0=$2
    t0=$(date +%s.%N)
    cat "$dir/lines" | "$cli" group exec --bootstrap "$boot" \
        --config "$dir/node.json" --name bench --stdin --window "$w" \
        > "$dir/out.$w" 2> "$dir/err.$w" || true
    t1=$(date +%s.%N)
    acked=$(grep -c '"status":"ok"' "$dir/out.$w" || true)
    set -- $(counters)
    c1=$1 p1=$2
    awk -v w="$w" -v a="$acked" -v n="$n" -v t0="$t0" -v t1="$t1" \
        -v dc=$((c1 - c0)) -v dp=$((p1 - p0)) 'BEGIN {
        el = t1 - t0
        rate = (el > 0) ? a / el : 0
        printf "%8d %6d/%-5d %9.2f %10.0f %9.3f %10.3f\n", w, a, n, el,
            rate, (a ? dc / a : 0), (a ? dp / a : 0) }'
done
