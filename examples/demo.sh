#!/bin/sh
# `make demo`: the main job. Derives the example coalition from its JSON
# file with the CLI, then runs the integrator program that compiles the
# same coalition in as a static const: both must print the same id.
set -eu
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)

echo "== coalition id examples/superchain.json"
"$build/coalition" id "$here/superchain.json"
echo
echo "== examples/superchain (the same coalition, compiled in)"
"$build/examples/superchain"

from_file=$("$build/coalition" id --json "$here/superchain.json" |
    sed -n 's/.*"coalition_id": "\([0-9a-f]*\)".*/\1/p')
compiled=$("$build/examples/superchain" | sed -n 's/^coalition_id //p')
if [ "$from_file" != "$compiled" ]; then
    echo "demo: the JSON file and the compiled config disagree" >&2
    exit 1
fi
echo
echo "the published file and the compiled-in config agree: $compiled"
