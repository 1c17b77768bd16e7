#!/bin/sh
# shellcheck disable=SC2317 # cleanup runs through the trap
# What `make install` leaves behind is usable on its own:
#
#   1. `meson install --destdir` puts the programs, both flavours of both
#      libraries, the headers, the pkg-config files, the man pages, the
#      unit and the bash completion where they belong;
#   2. examples/integrator.c, copied away from the source tree, compiles
#      with nothing but `cc $(pkg-config --cflags --libs coalition)`
#      against the staged tree and runs on the staged shared libraries;
#   3. it reads a live coalition, three staged coalitiond members hosting
#      the demo coalition (examples/demo.json), and reports every module
#      answered, no gap and a verified chronicle;
#   3b. examples/provider.c, built the same way, registers with that
#      coalition's Compute as its only provider, runs one real grant (a
#      script submitted by the staged `coalition compute submit`, whose
#      output and exit status come back through the committee) and exits
#      once its signed log is committed;
#   4. the staged programs report the version pkg-config does;
#   5. both man pages render (man -l) with their NAME section, the unit
#      passes systemd-analyze verify (skipped, with a message, when
#      systemd-analyze is absent), and the completion offers commands and
#      a command's options.
#
# Run: BUILD_DIR=build SOURCE_DIR=. sh tests/integration/test_install.sh [CC [CFLAGS [man|noman]]]
# CC (default $CC or cc) and CFLAGS (meson.build passes the sanitizer
# flags of a sanitized build) choose how the integrator is compiled;
# noman says the build has no man pages (-Dman=disabled, or no scdoc).
set -u

build=${BUILD_DIR:-build}
src=${SOURCE_DIR:-.}
tf=${TIME_FACTOR:-1}
cc=${1:-${CC:-cc}}
extra=${2:-}
man=${3:-man}

fail() {
    echo "FAIL: $*"
    for f in "$tmp"/*.log; do
        [ -f "$f" ] || continue
        echo "---- $f"
        tail -n 30 "$f"
    done
    exit 1
}
# Seconds scaled by TIME_FACTOR (sanitized builds are slower).
scaled() {
    awk -v s="$1" -v f="$tf" 'BEGIN { printf "%d", s * f + 0.999 }'
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/co-install-XXXXXX")
pids=""
cleanup() {
    for pid in $pids; do
        kill "$pid" 2>/dev/null
    done
    for pid in $pids; do
        wait "$pid" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# ---- 1. install, and what it installed ------------------------------------
dest=$tmp/root
meson install -C "$build" --no-rebuild --destdir "$dest" --quiet \
    >"$tmp/install.log" 2>&1 || fail "meson install failed"

pc=$(find "$dest" -name coalition.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$pc" ] || fail "no coalition.pc installed"
pcdir=$(dirname "$pc")
[ -f "$pcdir/mosaik.pc" ] || fail "no mosaik.pc beside coalition.pc"
PKG_CONFIG_PATH=$pcdir
export PKG_CONFIG_PATH
# The prefix as configured: the sysroot set below would be folded in.
prefix=$(pkg-config --variable=prefix coalition) ||
    fail "pkg-config cannot read coalition.pc"
PKG_CONFIG_SYSROOT_DIR=$dest
export PKG_CONFIG_SYSROOT_DIR
root=$dest$prefix
libdir=$(dirname "$pcdir")

for f in bin/coalition bin/coalitiond \
    include/coalition/version.h include/coalition/atlas.h \
    include/mosaik/version.h include/mosaik/node.h \
    lib/systemd/system/coalitiond.service \
    share/bash-completion/completions/coalition; do
    [ -e "$root/$f" ] || fail "$prefix/$f was not installed"
done
for l in coalition mosaik; do
    [ -f "$libdir/lib$l.a" ] || fail "no static lib$l.a in $libdir"
    [ -e "$libdir/lib$l.so" ] || fail "no shared lib$l.so in $libdir"
done
# Nothing of the source tree may leak: a private header installed would
# hide an example that still reaches for one.
if find "$root/include" -name '*_internal.h' | grep -q .; then
    fail "internal headers were installed"
fi

# ---- 2. an integrator built against the staged tree alone -----------------
mkdir "$tmp/app"
cp "$src/examples/integrator.c" "$src/examples/provider.c" \
    "$src/examples/demo_coalition.h" "$tmp/app/"
flags=$(pkg-config --cflags --libs coalition) ||
    fail "pkg-config --cflags --libs coalition failed"
LD_LIBRARY_PATH=$libdir
export LD_LIBRARY_PATH
for app in integrator provider; do
    # shellcheck disable=SC2086 # the flags are words
    "$cc" $extra -o "$tmp/app/$app" "$tmp/app/$app.c" $flags \
        >"$tmp/cc.log" 2>&1 || fail "$app.c does not compile: $(cat "$tmp/cc.log")"
    ldd "$tmp/app/$app" | grep -q "=> $libdir/libcoalition.so" ||
        fail "the $app does not load the staged libcoalition: $(ldd "$tmp/app/$app")"
done

# ---- 4. versions -----------------------------------------------------------
version=$(pkg-config --modversion coalition)
[ "$(pkg-config --modversion mosaik)" = "$version" ] ||
    fail "mosaik.pc and coalition.pc disagree on the version"
for p in coalition coalitiond; do
    want="$p $version (libcoalition $version, libmosaik $version)"
    got=$("$root/bin/$p" --version) || fail "$p --version failed"
    [ "$got" = "$want" ] || fail "$p --version: '$got', expected '$want'"
done

# ---- 3. a live coalition, read by the staged integrator -------------------
coalition=$root/bin/coalition
boot=""
for i in 0 1 2; do
    "$coalition" keygen --seed "coalition.demo/member/$i" \
        --out "$tmp/m$i.key" >/dev/null || fail "keygen failed"
    set -- --listen 127.0.0.1:0 --key "$tmp/m$i.key" --data "$tmp/m$i" \
        --coalition "$src/examples/demo.json" --quiet
    [ -n "$boot" ] && set -- "$@" --bootstrap "$boot"
    "$root/bin/coalitiond" "$@" >"$tmp/m$i.out" 2>"$tmp/m$i.log" &
    pids="$pids $!"
    if [ -z "$boot" ]; then
        # The first member's address, from the line it prints once
        # listening; the others join through it.
        n=0
        while ! grep -q listen "$tmp/m0.out" 2>/dev/null; do
            n=$((n + 1))
            [ "$n" -lt "$(scaled 100)" ] || fail "member 0 never listened"
            sleep 0.1
        done
        boot=$(sed -n 's/.*"peer_id":"\([0-9a-f]*\)","listen":"\([^"]*\)".*/\1@\2/p' \
            "$tmp/m0.out")
        [ -n "$boot" ] || fail "member 0 printed no address: $(cat "$tmp/m0.out")"
    fi
done

# Committees elect and the hosts record the config in the Chronicle within
# seconds; until then the integrator may see an unsigned head, so it is
# retried until a deadline.
deadline=$(($(date +%s) + $(scaled 90)))
while :; do
    "$tmp/app/integrator" --bootstrap "$boot" --follow 2 \
        --timeout "$(scaled 10)" >"$tmp/report.json" 2>"$tmp/integrator.log"
    status=$?
    [ "$status" -eq 0 ] && break
    [ "$(date +%s)" -lt "$deadline" ] ||
        fail "integrator exit $status: $(cat "$tmp/report.json")"
    sleep 1
done
report=$(cat "$tmp/report.json")
id=$("$coalition" id --json "$src/examples/demo.json" |
    sed -n 's/.*"coalition_id": *"\([0-9a-f]*\)".*/\1/p')
[ -n "$id" ] || fail "coalition id --json printed no coalition_id"
for want in "\"coalition_id\":\"$id\"" \
    '"atlas":{"status":"ok"' '"almanac":{"status":"ok"' \
    '"chronicle":{"status":"ok"' '"gaps":0' '"verified":true'; do
    case $report in
    *"$want"*) ;;
    *) fail "report lacks $want: $report" ;;
    esac
done

# ---- 3b. one real grant, run by the staged example provider ---------------
# The demo coalition has no other provider here, so the grant is its.
"$tmp/app/provider" --bootstrap "$boot" --data "$tmp/prov" --grants 1 \
    --timeout "$(scaled 120)" >"$tmp/provider.out" 2>"$tmp/provider.log" &
prov_pid=$!
pids="$pids $prov_pid"
# A request no registered provider could hold is rejected at once: submit
# only once the card is committed.
deadline=$(($(date +%s) + $(scaled 60)))
while :; do
    "$coalition" compute providers --coalition "$src/examples/demo.json" \
        --bootstrap "$boot" --json >"$tmp/providers.json" 2>/dev/null &&
        grep -q '"alive": *true' "$tmp/providers.json" && break
    [ "$(date +%s)" -lt "$deadline" ] ||
        fail "the example provider never registered: $(cat "$tmp/providers.json")"
    sleep 1
done
# shellcheck disable=SC2016 # the workload expands them, not us
printf '#!/bin/sh\necho "hello from $COMPUTE_REQUEST_ID attempt $COMPUTE_ATTEMPT"\nexit 7\n' \
    >"$tmp/job.sh"
"$coalition" compute submit --coalition "$src/examples/demo.json" \
    --bootstrap "$boot" --image "$tmp/job.sh" --for 60s \
    --timeout "$(scaled 120)s" >"$tmp/submit.out" 2>"$tmp/submit.log"
status=$?
[ "$status" -eq 7 ] ||
    fail "submit exit $status, expected the workload's 7: $(cat "$tmp/submit.out" "$tmp/submit.log")"
grep -q '^hello from [0-9a-f]\{64\} attempt 1$' "$tmp/submit.out" ||
    fail "the workload's output did not come back: $(cat "$tmp/submit.out")"
wait "$prov_pid"
status=$?
[ "$status" -eq 0 ] || fail "the example provider exited $status"
grep -q '"committed":true,"exit":"exited","code":7' "$tmp/provider.out" ||
    fail "the example provider logged no run: $(cat "$tmp/provider.out")"

# ---- 5. man pages, unit, completion ---------------------------------------
pages="man1/coalition.1 man8/coalitiond.8"
if [ "$man" = noman ]; then
    echo "SKIP (part): this build has no man pages (scdoc, -Dman)"
    pages=""
fi
for page in $pages; do
    [ -f "$root/share/man/$page" ] || fail "$prefix/share/man/$page was not installed"
    name=$(basename "$page" | cut -d. -f1)
    MANWIDTH=80 man -l "$root/share/man/$page" >"$tmp/page.txt" 2>&1 ||
        fail "man -l $page failed: $(cat "$tmp/page.txt")"
    grep -q '^NAME' "$tmp/page.txt" || fail "$page has no NAME section"
    grep -q "^ *$name - " "$tmp/page.txt" || fail "$page does not name $name"
    grep -q "$version" "$tmp/page.txt" || fail "$page does not say $version"
done

if command -v systemd-analyze >/dev/null 2>&1; then
    # The unit names the installed program; verify checks it exists and is
    # executable, so it is pointed into the staging tree, and MANPATH lets
    # verify find the pages the unit's Documentation= names.
    sed "s|$prefix/bin/coalitiond|$root/bin/coalitiond|" \
        "$root/lib/systemd/system/coalitiond.service" \
        >"$tmp/coalitiond.service"
    MANPATH=$root/share/man systemd-analyze verify --man="$([ "$man" = man ] && echo yes || echo no)" \
        "$tmp/coalitiond.service" >"$tmp/verify.log" 2>&1 ||
        fail "systemd-analyze verify: $(cat "$tmp/verify.log")"
    # verify exits 0 on a setting it ignores, and only says so.
    [ ! -s "$tmp/verify.log" ] ||
        fail "systemd-analyze verify: $(cat "$tmp/verify.log")"
    grep -q '^ProtectSystem=strict' "$tmp/coalitiond.service" ||
        fail "the unit is not sandboxed"
else
    echo "SKIP (part): no systemd-analyze; the unit was not verified"
fi

if command -v bash >/dev/null 2>&1; then
    out=$(PATH="$root/bin:$PATH" bash -c '
        . "$1"
        COMP_WORDS=(coalition alm); COMP_CWORD=1; _coalition
        echo "${COMPREPLY[*]}"
        COMP_WORDS=(coalition demo --js); COMP_CWORD=2; _coalition
        echo "${COMPREPLY[*]}"' sh \
        "$root/share/bash-completion/completions/coalition" 2>&1)
    [ "$out" = "almanac
--json" ] || fail "bash completion offered: $out"
fi

echo "ok: installed under $prefix, integrator built and ran ($report), provider ran one grant ($(cat "$tmp/provider.out"))"
