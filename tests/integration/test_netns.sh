#!/bin/sh
# shellcheck disable=SC2317 # helpers run through until_true and the trap
# Discovery across hosts, simulated with network namespaces: three
# coalitiond "hosts" and a client host on one bridge, each listening on
# 0.0.0.0 at the same port (so an entry that advertised loopback would
# send a peer to itself), none reachable over loopback from the others.
#
#   1. the three discover each other, and advertise their bridge address,
#      never 127.0.0.1;
#   2. `coalition net peers` from a fourth namespace sees all three;
#   3. a host cut off (its link set down) is purged by the others, and it
#      purges them, after --purge-after; healed, it is known again;
#   4. a host that departs (SIGTERM) is dropped by the others at once,
#      well before purge_after.
#
# The bridge lives in a namespace of its own, so the host's network is
# never touched; everything is removed on exit, whatever the outcome.
# Needs root and `ip netns`; otherwise it skips (exit 77, which Meson
# reports as SKIP). Run: BUILD_DIR=build sh tests/integration/test_netns.sh
set -u

build=${BUILD_DIR:-build}
tf=${TIME_FACTOR:-1}
port=7000
net=10.213.7 # private, and only ever inside our namespaces
p=cn$$        # short: interface and namespace names stay unique per run

skip() {
    echo "SKIP: $*"
    exit 77
}
fail() {
    echo "FAIL: $*"
    for n in a b c; do
        [ -f "$tmp/$n.log" ] || continue
        echo "---- $n.log"
        cat "$tmp/$n.log"
    done
    exit 1
}
# Seconds scaled by TIME_FACTOR (sanitized builds are slower).
scaled() {
    awk -v s="$1" -v f="$tf" 'BEGIN { printf "%d", s * f + 0.999 }'
}

[ "$(id -u 2>/dev/null)" = 0 ] || skip "needs root for network namespaces"
command -v ip >/dev/null 2>&1 || skip "no ip(8) (iproute2)"
for exe in coalitiond coalition; do
    [ -x "$build/$exe" ] || fail "$build/$exe is not built"
done
# Some containers have ip(8) but may not create namespaces.
ip netns add "$p-hub" 2>/dev/null || skip "cannot create a network namespace"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/co-netns-XXXXXX")
pids=""
cleanup() {
    for pid in $pids; do
        kill -9 "$pid" 2>/dev/null
    done
    for pid in $pids; do
        wait "$pid" 2>/dev/null
    done
    for n in a b c d hub; do
        ip netns del "$p-$n" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# ---- the network: hub (bridge) + a, b, c (daemons) + d (client) ---------
ip -n "$p-hub" link add br0 type bridge || fail "no bridge support"
ip -n "$p-hub" link set br0 up
ip -n "$p-hub" link set lo up
i=1
for n in a b c d; do
    ip netns add "$p-$n" || fail "cannot create namespace $p-$n"
    ip -n "$p-hub" link add "v$n" type veth peer name eth0 netns "$p-$n" ||
        fail "cannot create a veth pair"
    ip -n "$p-hub" link set "v$n" master br0 up
    ip -n "$p-$n" addr add "$net.$i/24" dev eth0
    ip -n "$p-$n" link set eth0 up
    ip -n "$p-$n" link set lo up
    i=$((i + 1))
done
addr_a=$net.1

# ---- helpers ------------------------------------------------------------
# Silent peers are forgotten after this; scaled, so that a slow
# (sanitized) run does not purge live peers between announcements.
purge=$(scaled 6)
# start NAME [coalitiond args...]: runs coalitiond in namespace NAME.
start() {
    n=$1
    shift
    "$build/coalition" keygen --out "$tmp/$n.key" >"$tmp/$n.id" ||
        fail "keygen"
    ip netns exec "$p-$n" "$build/coalitiond" --listen "0.0.0.0:$port" \
        --key "$tmp/$n.key" --data "$tmp/$n.data" \
        --announce-interval 1s --purge-after "${purge}s" "$@" \
        >"$tmp/$n.out" 2>"$tmp/$n.log" &
    pids="$pids $!"
    last_pid=$!
    waited=0
    until grep -q '"listen"' "$tmp/$n.out" 2>/dev/null; do
        [ $waited -ge "$(scaled 100)" ] && fail "coalitiond in $n did not start"
        sleep 0.1
        waited=$((waited + 1))
    done
}
id_of() { cat "$tmp/$1.id"; }
# Peers in NAME's catalog (peers.json lists them under "peers"; the file
# also names the node itself once).
count() {
    f="$tmp/$1.data/peers.json"
    [ -f "$f" ] || { echo 0; return; }
    echo $(($(grep -c '"peer_id"' "$f") - 1))
}
knows() { grep -q "\"$2\"" "$tmp/$1.data/peers.json" 2>/dev/null; }
# until_true SECONDS WHAT COMMAND...: polls every 0.2 s.
until_true() {
    secs=$(scaled "$1")
    what=$2
    shift 2
    t=0
    until "$@"; do
        [ $t -ge $((secs * 5)) ] && fail "$what (after ${secs}s)"
        sleep 0.2
        t=$((t + 1))
    done
}
all_know_two() {
    [ "$(count a)" = 2 ] && [ "$(count b)" = 2 ] && [ "$(count c)" = 2 ]
}

# ---- 1. discovery across namespaces -------------------------------------
start a
# What a prints as its address must be one a peer can dial.
grep -q "\"listen\":\"$addr_a:$port\"" "$tmp/a.out" ||
    fail "a reports $(cat "$tmp/a.out"), not $addr_a:$port"
boot="$(id_of a)@$addr_a:$port"
start b --bootstrap "$boot"
pid_b=$last_pid
start c --bootstrap "$boot"
until_true 15 "a, b and c did not discover each other" all_know_two
for n in a b c; do
    cat=$tmp/$n.data/peers.json
    if grep -q '127\.0\.0\.1' "$cat"; then
        fail "$n's catalog holds a loopback address: $(cat "$cat")"
    fi
done
echo "ok 1 - three namespaces discover each other over the bridge"

# ---- 2. net peers from a fourth namespace --------------------------------
out=$(ip netns exec "$p-d" "$build/coalition" net peers --bootstrap "$boot" \
    --wait 3 --timeout "$(scaled 10)s" --json 2>"$tmp/d.err") ||
    fail "net peers from d: exit $? $(cat "$tmp/d.err")"
for n in a b c; do
    echo "$out" | grep -q "$(id_of "$n")" || fail "net peers did not list $n"
done
echo "ok 2 - coalition net peers from a fourth namespace"

# ---- 3. partition and heal ----------------------------------------------
id_c=$(id_of c)
ip -n "$p-c" link set eth0 down
neither_knows_c() { ! knows a "$id_c" && ! knows b "$id_c"; }
c_alone() { [ "$(count c)" = 0 ]; }
# purge_after, plus the 1 s idle tick and the catalog write.
until_true 15 "a and b still list c after its link went down" neither_knows_c
until_true 15 "c still lists peers after its link went down" c_alone
echo "ok 3 - a cut-off host is purged on both sides"
ip -n "$p-c" link set eth0 up
until_true 20 "c was not discovered again after the link came back" \
    all_know_two
echo "ok 4 - healed, it is discovered again"

# ---- 4. graceful departure ----------------------------------------------
id_b=$(id_of b)
kill -TERM "$pid_b"
gone_b() { ! knows a "$id_b" && ! knows c "$id_b"; }
# Before b's entry could have been purged (announced at most 1.5 s
# before the SIGTERM, dropped at the first 1 s tick after purge_after),
# so that the departure did it and not the purge. Not a speed bound.
limit=$(((purge - 2) * 5))
t=0
until gone_b; do
    [ $t -ge $limit ] &&
        fail "b's departure was not seen within $((purge - 2)) s"
    sleep 0.2
    t=$((t + 1))
done
echo "ok 5 - a departure is seen before purge_after"
exit 0
