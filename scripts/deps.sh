#!/bin/sh
# Installs the Debian packages the build needs, and only those that are missing.
# Run as root on a fresh Debian 12 machine; as another user it only reports.
#
#   sh scripts/deps.sh          what `make`, `make test`, `make demo` and
#                               `make install` need (scdoc builds the man
#                               pages; man-db and systemd let the install
#                               test render them and verify the unit)
#   sh scripts/deps.sh browser  that, plus chromium, with which
#                               tests/integration/test_http.c renders the
#                               dashboard headless; `make test` installs it
#                               (the test says so and skips without it)
#   sh scripts/deps.sh bench    that, plus what only `make bench` uses: etcd
#                               (server and etcdctl) for bench/committee.sh to
#                               compare against, libnghttp2-dev for its etcd
#                               client, jq for its figures, serf for
#                               bench/discovery.sh to compare against
set -eu

need="meson ninja-build pkg-config gcc clang libclang-rt-14-dev \
libuv1-dev libraft-dev libssl-dev libsodium-dev libjansson-dev libcmocka-dev \
scdoc b3sum iproute2 procps man-db systemd prometheus"

case ${1:-} in
"") ;;
bench) need="$need etcd-server etcd-client libnghttp2-dev jq serf" ;;
browser) need="$need chromium" ;;
*) echo "usage: sh scripts/deps.sh [bench|browser]" >&2; exit 2 ;;
esac

missing=""
for p in $need; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing Debian packages:$missing" >&2
    echo "deps: run 'make deps' as root, or install them with apt-get" >&2
    exit 1
fi

echo "deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2 || true
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >&2
