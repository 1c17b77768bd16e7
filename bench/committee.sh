#!/bin/sh
# Remote writes into a 3-member committee (three coalitiond processes
# running a "map" group) against a 3-member etcd cluster, side by side on
# loopback with data dirs on the same disk (under BUILD, not a tmpfs), so
# both pay the same fsync.
#
# Usage: sh bench/committee.sh [BUILD] [--quick]
#
# Each cell runs C client processes at once (bench/bench_committee.c, and
# bench/bench_etcd.c for etcd), each writing N/C distinct keys with a
# window of W in flight; all start together after a warm-up write. A row:
#   writes/s   acknowledged writes of all clients / (last end - first start)
#   p50, p99   median of the clients' p50, max of their p99 (ms)
#   ent/ack    raft entries committed per acknowledged write (the leader's
#              commit index before and after; etcd: its raftIndex)
#   ent/cmd    entries per command the leaders proposed (the members'
#              entries_proposed / commands_proposed): the group commit
#   RSS        each member's peak RSS during the cell (VmHWM, reset first)
#   failed     writes refused, timed out, or unanswered at the end
#   unsent     writes not submitted within COMMITTEE_FOR seconds
# When etcd (Debian's etcd-server) is absent its column is skipped.
# Figures are printed, never asserted. Environment: COMMITTEE_N (writes per
# cell; by default 20,000 but at least 1,000 per client, so a 64-client cell
# lasts long enough that one client's late start or stall does not decide
# it), COMMITTEE_FOR (seconds a cell may submit for), COMMITTEE_CELLS
# ("C:W:S ..." to run only those cells, e.g. "8:4096:64").
set -eu

build=build
quick=0
for a in "$@"; do
    case $a in
    --quick) quick=1 ;;
    -*) echo "usage: sh bench/committee.sh [BUILD] [--quick]" >&2; exit 2 ;;
    *) build=$a ;;
    esac
done

if [ $quick = 1 ]; then
    # A diagonal of the matrix: every client count, window and size once.
    cells="1:1:64 8:64:1024 64:4096:64"
    n=${COMMITTEE_N:-2000}
    secs=${COMMITTEE_FOR:-5}
else
    cells=""
    for c in 1 8 64; do
        for w in 1 64 4096; do
            for s in 64 1024; do
                cells="$cells $c:$w:$s"
            done
        done
    done
    n=${COMMITTEE_N:-20000}
    secs=${COMMITTEE_FOR:-30}
fi
cells=${COMMITTEE_CELLS:-$cells}

cli="$build/coalition"
daemon="$build/coalitiond"
ours="$build/bench/bench_committee"
theirs="$build/bench/bench_etcd"
for f in "$cli" "$daemon" "$ours"; do
    [ -x "$f" ] || { echo "committee: $f is missing (build first)" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "committee: needs jq" >&2; exit 1; }

dir="$build/bench-committee-data"
rm -rf "$dir"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
members=""  # pids of the running cluster
clients=""  # pids of a cell's clients

stop_all() {
    for p in $clients $members; do kill "$p" 2>/dev/null || true; done
    for p in $clients $members; do wait "$p" 2>/dev/null || true; done
    clients=""
    members=""
}
trap 'stop_all; rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM

# Peak RSS of a pid in MiB, and a reset of it (clear_refs 5) so the next
# reading is the peak of one cell.
hwm() { awk '/^VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"; }
hwm_reset() { echo 5 > "/proc/$1/clear_refs" 2>/dev/null || true; }

# Runs one cell's clients: $1 label (ours|etcd), $2 clients, $3 window,
# $4 size, then the client command line without per-client options.
# Calls before_go_<label> once every client has warmed up, so counters
# and peaks cover the measured writes only. Leaves $dir/cell/c*.json.
run_clients() {
    label=$1 c=$2 w=$3 s=$4
    shift 4
    rm -rf "$dir/cell"
    mkdir -p "$dir/cell"
    per=$(( n / c ))
    [ $per -gt 0 ] || per=1
    if [ -z "${COMMITTEE_N:-}" ] && [ $quick = 0 ] && [ $per -lt 1000 ]; then
        per=1000
    fi
    clients=""
    i=0
    while [ $i -lt "$c" ]; do
        "$@" --n $per --window "$w" --size "$s" --client $i --for "$secs" \
            --ready "$dir/cell/r$i" --go "$dir/cell/go" \
            > "$dir/cell/c$i.json" 2> "$dir/cell/c$i.log" &
        clients="$clients $!"
        i=$((i + 1))
    done
    # Start barrier: every client has done its warm-up write (at most 60 s;
    # a client that is not ready by then still gets the go).
    t=0
    while [ "$(ls "$dir/cell" | grep -c '^r')" -lt "$c" ] && [ $t -lt 600 ]; do
        sleep 0.1
        t=$((t + 1))
    done
    "before_go_$label"
    touch "$dir/cell/go"
    for p in $clients; do wait "$p" || true; done
    clients=""
}

# Aggregates the clients' JSON lines: "writes/s p50_ms p99_ms acked failed
# unsent" (failed: refused, timed out or unanswered at the end; unsent: not
# submitted within COMMITTEE_FOR seconds).
aggregate() {
    cat "$dir"/cell/c*.json | jq -s -r '
        map(select(.start_us > 0)) as $ok
        | ($ok | map(.acknowledged) | add // 0) as $acked
        | ($ok | map(.start_us) | min // 0) as $t0
        | ($ok | map(.end_us) | max // 0) as $t1
        | ($ok | map(.p50_us) | sort) as $p50s
        | [ (if $t1 > $t0 then $acked * 1e6 / ($t1 - $t0) else 0 end),
            (if ($p50s | length) > 0 then $p50s[(($p50s | length) / 2 | floor)] / 1000 else 0 end),
            (($ok | map(.p99_us) | max // 0) / 1000),
            $acked,
            (map(.failed) | add // 0),
            (map(.not_sent) | add // 0) ]
        | @tsv'
}

header() {
    printf '%-22s %9s %8s %8s %7s %7s %14s %7s %7s\n' \
        "$1 clients/window/size" "writes/s" "p50 ms" "p99 ms" "ent/ack" \
        "ent/cmd" "RSS MiB" "failed" "unsent"
}

# ---- ours ------------------------------------------------------------------

boot=""
start_committee() {
    i=0
    while [ $i -lt 3 ]; do
        "$cli" keygen --out "$dir/m$i.key" > "$dir/m$i.id"
        i=$((i + 1))
    done
    v0=$(cat "$dir/m0.id") v1=$(cat "$dir/m1.id") v2=$(cat "$dir/m2.id")
    # libraft's and etcd's default timing (heartbeat 100 ms, election
    # 1000 ms); a window as large as etcd lets proposals wait.
    cat > "$dir/node.json" <<EOF
{"groups": [{"name": "bench", "root": "bench-committee", "kind": "map",
  "voters": ["$v0", "$v1", "$v2"],
  "params": {"election_timeout_ms": 1000, "heartbeat_ms": 100${COMMITTEE_PARAMS:-}}}]}
EOF
    i=0
    while [ $i -lt 3 ]; do
        set -- --listen 127.0.0.1:0 --key "$dir/m$i.key" \
            --data "$dir/m$i.data" --config "$dir/node.json" --quiet
        [ $i -gt 0 ] && set -- "$@" --bootstrap "$boot"
        "$daemon" "$@" > "$dir/m$i.out" 2> "$dir/m$i.log" &
        members="$members $!"
        t=0
        until grep -q '"listen"' "$dir/m$i.out" 2>/dev/null; do
            sleep 0.1
            t=$((t + 1))
            [ $t -lt 100 ] || { echo "committee: member $i did not start" >&2; cat "$dir/m$i.log" >&2; exit 1; }
        done
        if [ $i = 0 ]; then
            boot="$v0@$(jq -r .listen "$dir/m0.out" | head -n 1)"
        fi
        i=$((i + 1))
    done
}

status() {
    "$cli" group status --bootstrap "$boot" --config "$dir/node.json" \
        --name bench --json --timeout 10s 2>/dev/null || true
}

# "commit entries commands" of the committee now.
counters() {
    status | jq -r '[.commit_index // 0,
                     ([.members[].entries_proposed // 0] | add // 0),
                     ([.members[].commands_proposed // 0] | add // 0)] | @tsv'
}

before_go_ours() {
    set -- $(counters) 0 0 0
    commit0=$1 ent0=$2 cmd0=$3
    for p in $members; do hwm_reset "$p"; done
}

run_ours() {
    start_committee
    t=0
    until [ "$(status | jq -r '[.members[] | select(.online)] | length')" = 3 ]; do
        t=$((t + 1))
        [ $t -lt 30 ] || { echo "committee: no leader" >&2; exit 1; }
        sleep 1
    done
    gid=$(status | jq -r .group)
    echo "committee: 3 coalitiond members, group $gid"
    header ours
    for cell in $cells; do
        IFS=: read -r c w s <<EOF
$cell
EOF
        run_clients ours "$c" "$w" "$s" "$ours" --bootstrap "$boot" --group "$gid"
        rss=""
        for p in $members; do rss="$rss${rss:+/}$(hwm "$p")"; done
        set -- $(counters) 0 0 0
        commit1=$1 ent1=$2 cmd1=$3
        set -- $(aggregate) 0 0 0 0 0 0
        tput=$1 p50=$2 p99=$3 acked=$4 failed=$5 unsent=$6
        entack=$(awk -v d=$((commit1 - commit0)) -v a="$acked" 'BEGIN { if (a > 0) printf "%.3f", d / a; else print "-" }')
        entcmd=$(awk -v e=$((ent1 - ent0)) -v m=$((cmd1 - cmd0)) 'BEGIN { if (m > 0) printf "%.3f", e / m; else print "-" }')
        printf '%-22s %9.0f %8.2f %8.2f %7s %7s %14s %7s %7s\n' \
            "ours $c/$w/$s" "$tput" "$p50" "$p99" "$entack" "$entcmd" "$rss" \
            "$failed" "$unsent"
        echo "$cell $tput $p50 $p99 $rss" >> "$dir/ours.txt"
    done
    stop_all
}

# ---- etcd ------------------------------------------------------------------

# Each endpoint's "member_id leader raftIndex" (the ids exceed 2^53, so
# they are read as text, not through jq's doubles).
etcd_status() {
    ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$1" --command-timeout 5s \
        endpoint status -w json 2>/dev/null |
        sed -n 's/.*"member_id":\([0-9]*\).*"leader":\([0-9]*\),"raftIndex":\([0-9]*\).*/\1 \2 \3/p'
}

etcd_leader_port=""
find_etcd_leader() {
    etcd_leader_port=""
    for port in $eports; do
        set -- $(etcd_status "$port") x x x
        [ "$1" != x ] && [ "$1" = "$2" ] && etcd_leader_port=$port
    done
    [ -n "$etcd_leader_port" ]
}

before_go_etcd() {
    set -- $(etcd_status "$etcd_leader_port") 0 0 0
    idx0=$3
    for p in $members; do hwm_reset "$p"; done
}

run_etcd() {
    # Ports from the pid, as bench_group.c does, so parallel runs differ;
    # below the kernel's ephemeral range (32768 up), where our clients'
    # closed connections sit in TIME_WAIT and a member failed to bind.
    base=$((10000 + $$ % 22000))
    cluster="e0=http://127.0.0.1:$((base + 10)),e1=http://127.0.0.1:$((base + 11)),e2=http://127.0.0.1:$((base + 12))"
    eports=""
    i=0
    while [ $i -lt 3 ]; do
        cport=$((base + i)) pport=$((base + 10 + i))
        etcd --name "e$i" --data-dir "$dir/e$i.data" \
            --listen-client-urls "http://127.0.0.1:$cport" \
            --advertise-client-urls "http://127.0.0.1:$cport" \
            --listen-peer-urls "http://127.0.0.1:$pport" \
            --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
            --initial-cluster "$cluster" --initial-cluster-state new \
            --initial-cluster-token "bench-$$" \
            --logger zap --log-level error > "$dir/e$i.log" 2>&1 &
        members="$members $!"
        eports="$eports $cport"
        i=$((i + 1))
    done
    t=0
    until find_etcd_leader; do
        t=$((t + 1))
        [ $t -lt 30 ] || { echo "committee: etcd elected no leader" >&2; cat "$dir/e0.log" >&2; exit 1; }
        sleep 1
    done
    alive=0
    for p in $members; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
    [ $alive = 3 ] || echo "committee: only $alive of 3 etcd members are running (see $dir/e*.log)" >&2
    echo "etcd $(etcd --version | head -n 1 | sed 's/etcd Version: //'): $alive members running, leader at 127.0.0.1:$etcd_leader_port"
    header etcd
    for cell in $cells; do
        IFS=: read -r c w s <<EOF
$cell
EOF
        find_etcd_leader || true
        run_clients etcd "$c" "$w" "$s" "$theirs" --endpoint "127.0.0.1:$etcd_leader_port"
        rss=""
        for p in $members; do rss="$rss${rss:+/}$(hwm "$p")"; done
        set -- $(etcd_status "$etcd_leader_port") 0 0 0
        idx1=$3
        set -- $(aggregate) 0 0 0 0 0 0
        tput=$1 p50=$2 p99=$3 acked=$4 failed=$5 unsent=$6
        entack=$(awk -v d=$((idx1 - idx0)) -v a="$acked" 'BEGIN { if (a > 0) printf "%.3f", d / a; else print "-" }')
        printf '%-22s %9.0f %8.2f %8.2f %7s %7s %14s %7s %7s\n' \
            "etcd $c/$w/$s" "$tput" "$p50" "$p99" "$entack" "-" "$rss" \
            "$failed" "$unsent"
        echo "$cell $tput $p50 $p99 $rss" >> "$dir/etcd.txt"
    done
    stop_all
}

floor=""
[ -z "${COMMITTEE_N:-}" ] && [ $quick = 0 ] && floor=", at least 1000 per client"
echo "committee benchmark: $n writes per cell (split among the clients$floor)," \
    "at most ${secs}s of submitting per cell; data under $dir"
run_ours
echo
missing=""
command -v etcd >/dev/null || missing="$missing etcd (etcd-server)"
command -v etcdctl >/dev/null || missing="$missing etcdctl (etcd-client)"
[ -x "$theirs" ] || missing="$missing $theirs (libnghttp2-dev, then reconfigure)"
if [ -z "$missing" ]; then
    run_etcd
    echo
    echo "ours / etcd        writes/s   p50      p99      peak RSS (max member)"
    while read -r cell tput p50 p99 rss; do
        set -- $(grep "^$cell " "$dir/etcd.txt")
        awk -v cell="$cell" -v a="$tput" -v b="$2" -v c="$p50" -v d="$3" \
            -v e="$p99" -v f="$4" -v g="$rss" -v h="$5" '
            function ratio(x, y) { return y > 0 ? sprintf("%.2f", x / y) : "-" }
            function peak(list,    v, i, m) {
                split(list, v, "/"); m = 0
                for (i in v) if (v[i] + 0 > m) m = v[i] + 0
                return m
            }
            BEGIN {
                printf "%-18s %8s %8s %8s %8s\n", cell, ratio(a, b),
                    ratio(c, d), ratio(e, f), ratio(peak(g), peak(h))
            }'
    done < "$dir/ours.txt"
    echo "etcd client: bench_etcd, gRPC KV.Put over one HTTP/2 connection" \
        "per process, W streams in flight (Debian ships no etcd benchmark tool)"
else
    echo "etcd: skipped, missing:$missing (sh scripts/deps.sh bench installs them)"
fi
