#!/bin/sh
# The public boundary: code that stands where an integrator stands sees
# include/ and nothing under src/, the way a program on libraft sees
# raft.h and not its sources. Every #include in the directories held to
# it must name a header that is not one of src/'s own, must not climb
# out of its directory with "../", and must not name libraft, which the
# substrate keeps to itself.
#
# Held: include/ (the headers themselves), tools/, examples/, bench/.
# Not held: src/ (it is the inside), tests/ and fuzz/ (unit tests, the
# simulator and fuzz targets exist to drive internals: a decoder, the
# exactly-once adapter, a state machine without a network).
#
# A file that truly needs the inside is listed in ALLOW with the reason;
# its meson target is then the only one of its directory to keep privinc.
# Fails naming each offending file and line.
#
# Run: SOURCE_DIR=. sh tests/test_boundary.sh
set -u

src=${SOURCE_DIR:-.}
cd "$src" || exit 1

ALLOW='
bench/bench_link.c     times the frame codec alone (mosaik/frame.h)
bench/bench_blake3.c   times each hashing kernel (mosaik/blake3/blake3_impl.h)
bench/bench_modules.c  builds a signed Chronicle history offline to time the verifier
bench/bench_compute.c  registers fake providers and sends raw Compute commands
bench/bench_group.c    times raw libraft next to a group (raft.h only)
'

allowed() {
    printf '%s\n' "$ALLOW" | awk -v f="$1" '$1 == f { ok = 1 } END { exit !ok }'
}

bad=0
checked=0
for dir in include tools examples bench; do
    files=$(find "$dir" -type f \( -name '*.c' -o -name '*.h' \) | sort)
    for f in $files; do
        checked=$((checked + 1))
        allowed "$f" && continue
        # "N:header" for every #include, quoted or angled.
        hits=$(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]' "$f" |
               sed 's/^\([0-9]*\):[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]\([^">]*\)[">].*/\1:\2/')
        for h in $hits; do
            line=${h%%:*}
            hdr=${h#*:}
            why=
            case $hdr in
            ../* | */../* | src/* | */src/*)
                why="reaches outside its directory" ;;
            raft.h | raft/*)
                why="names libraft, which only src/ may use" ;;
            *)
                if [ -f "src/$hdr" ] && [ ! -f "include/$hdr" ]; then
                    why="is a src/-only header"
                fi ;;
            esac
            if [ -n "$why" ]; then
                echo "$f:$line: #include \"$hdr\" $why"
                bad=$((bad + 1))
            fi
        done
    done
done

if [ "$checked" -eq 0 ]; then
    echo "no files found under $src: is SOURCE_DIR right?"
    exit 1
fi
if [ "$bad" -ne 0 ]; then
    echo "$bad include(s) cross the public boundary (see tests/test_boundary.sh)"
    exit 1
fi
echo "boundary: $checked files hold to include/"
