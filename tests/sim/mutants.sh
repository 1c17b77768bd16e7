#!/bin/sh
# Shows that the simulator's invariants can fail: each mutant is a scratch
# copy of one source file with one deliberate bug (sed), compiled with the
# build's own flags and linked into a scratch `sim` ahead of the
# libraries. The tree is never touched. A mutant passes the test when the
# simulator FAILS on it.
#
#   sh tests/sim/mutants.sh [build-test]
set -u
B=${1:-build-test}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$SRC/$B" || exit 2
ninja tests/sim/sim >/dev/null || exit 2
link=$(ninja -t commands tests/sim/sim | tail -1)
caught=0 missed=0

# mutant NAME FILE SED MACHINE: FILE relative to the source root; the
# object is compiled with the command ninja uses for FILE.
mutant() {
    name=$1 file=$2 expr=$3 machine=$4
    sed "$expr" "$SRC/$file" > "$T/m.c"
    if cmp -s "$SRC/$file" "$T/m.c"; then
        echo "mutant $name: the edit did not apply"; missed=$((missed + 1))
        return
    fi
    cc_cmd=$(ninja -t commands | grep -F -- "-c ../$file" | head -1 |
             sed "s# -o [^ ]* -c ../$file# -o $T/m.o -c $T/m.c#; s#-MD -MQ [^ ]* -MF [^ ]*##")
    # The copy includes its siblings by their directory.
    cc_cmd="$cc_cmd -I$SRC/$(dirname "$file")"
    if ! sh -c "$cc_cmd" 2>"$T/err"; then
        echo "mutant $name: does not compile"; cat "$T/err"; missed=$((missed + 1))
        return
    fi
    sh -c "$(echo "$link" | sed "s# -o tests/sim/sim # -o $T/sim $T/m.o #")" \
        2>"$T/err" || { echo "mutant $name: does not link"; cat "$T/err";
                        missed=$((missed + 1)); return; }
    out=$("$T/sim" --seeds 1..40 --machine "$machine" --faults 0x6fd 2>/dev/null)
    if [ $? -ne 0 ]; then
        echo "mutant $name: caught — $(echo "$out" | grep FAILED | head -1)"
        caught=$((caught + 1))
    else
        echo "mutant $name: MISSED ($(echo "$out" | tail -1))"
        missed=$((missed + 1))
    fi
}

# The adapter: a retry of an applied command is applied again.
mutant dedup src/mosaik/group_fsm.c \
    's/if (e.seq <= floor) {/if (e.seq <= s->ack) {/; s/if (e.seq != floor + 1) {/if (e.seq > floor + 1) {/' counter
# The adapter: a gap is applied instead of refused.
mutant gap src/mosaik/group_fsm.c \
    's/if (e.seq != floor + 1) {/if (e.seq < floor + 1) {/' log
# Collections: Vec swap does nothing.
mutant vec-swap src/mosaik/coll_vec.c \
    's/if (a >= v->len || b >= v->len || a == b)/if (1)/' vec
# Almanac: a tick that skips numbers is accepted.
mutant almanac-skip src/coalition/almanac_fsm.c \
    's/ok = seq == a->latest.seq + 1;/ok = seq >= a->latest.seq + 1;/' almanac
# Atlas: every card counts as verified.
mutant atlas-verified src/coalition/atlas_fsm.c \
    's/it->verified = co_majority_signed(/it->verified = 1 || co_majority_signed(/' atlas
# Chronicle: entries are not linked to their predecessor.
mutant chronicle-link src/coalition/chronicle_fsm.c \
    's/e->prev = c->v\[c->n - 1\].hash;/(void)0;/' chronicle
# Compute: a request is matched without checking free capacity.
mutant compute-overcommit src/coalition/compute_fsm.c \
    's/if (!fits(&f, &q->min))/if (0 \&\& !fits(\&f, \&q->min))/' compute

echo "$caught caught, $missed missed"
[ "$missed" -eq 0 ]
