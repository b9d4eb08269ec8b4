#!/usr/bin/env bash
# Downloads the wheels the GPU machine lacks (benchmarks/gpu/wheels.txt: one pinned version each)
# for Python 3.12 on manylinux x86-64, without dependencies, into benchmarks/gpu/wheelhouse/
# (ignored by git, carried to the machine by the `run` call), then prints the wheelhouse's size
# and what the call would send: the working tree (tracked and untracked-not-ignored files) plus
# the wheelhouse, against the 64 MiB limit. Run it here, on the CPU machine, before the call.
#
#   benchmarks/gpu/wheels.sh                      # uses python3's pip; PYTHON=... to choose
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HOUSE="$ROOT/benchmarks/gpu/wheelhouse"
LIST="$ROOT/benchmarks/gpu/wheels.txt"
LIMIT_MIB=64         # what one `run` call may send
WARN_MIB=48          # "well under": past this, the tree has grown and needs a look
PYTHON=${PYTHON:-python3}

mapfile -t pins < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$LIST" | grep -v '^$')
for pin in "${pins[@]}"; do
    [[ "$pin" =~ ^[A-Za-z0-9._-]+==[A-Za-z0-9.+!_-]+$ ]] || { echo "wheels.sh: $LIST: '$pin' is not NAME==VERSION" >&2; exit 2; }
done

rm -rf "$HOUSE"      # one version of each: two wheels of one package would stop the install there
mkdir -p "$HOUSE"
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$p")
done
"$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp "${platforms[@]}" -d "$HOUSE" "${pins[@]}"

count=$(find "$HOUSE" -name '*.whl' | wc -l)
if [ "$count" -ne "${#pins[@]}" ]; then
    echo "wheels.sh: expected ${#pins[@]} wheels (one per line of $LIST), found $count in $HOUSE" >&2
    exit 1
fi
git -C "$ROOT" rev-parse HEAD >"$HOUSE/REVISION"    # the commit the wheels were taken for

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
house=$(du -cb "$HOUSE"/* | tail -1 | cut -f1)
# what `run` sends besides the carried wheelhouse: tracked and untracked files git does not ignore,
# and a shared/ folder inside the checkout, ignored or not
tree=$(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard -- ':(exclude)shared' |
       { du -cb --files0-from=- 2>/dev/null || true; } | tail -1 | cut -f1)   # a deleted tracked file: skipped
if [ -d "$ROOT/shared" ]; then
    tree=$(( tree + $(du -sb "$ROOT/shared" | cut -f1) ))
fi
total=$(( house + tree ))
ls -1 "$HOUSE"
echo "wheelhouse: $count wheels, $(mib "$house") MiB in benchmarks/gpu/wheelhouse"
echo "sent by the call: tree $(mib "$tree") MiB + wheelhouse $(mib "$house") MiB = $(mib "$total") MiB of ${LIMIT_MIB} MiB"
if [ "$total" -gt $(( LIMIT_MIB * 1048576 )) ]; then
    echo "wheels.sh: over the ${LIMIT_MIB} MiB a call may send: the call would be refused" >&2
    exit 1
elif [ "$total" -gt $(( WARN_MIB * 1048576 )) ]; then
    echo "wheels.sh: warning: over ${WARN_MIB} MiB; look for large files in the tree" >&2
fi
