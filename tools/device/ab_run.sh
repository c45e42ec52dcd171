#!/usr/bin/env bash
# On the GPU device, from the repository root: one command under two trees, alternating, so that
# both see the same GPU, clocks and neighbours. "base" is a revision made importable beside the
# working tree by `tools/device/ab_tree.sh REV` here (carry `.ab/REV` with the call), "new" the
# working tree itself. Each output line is prefixed with its tree and round.
#   ROUNDS=2 bash tools/device/ab_run.sh ab26748 python3 benchmarks/bench_codecs.py --codecs hamming84 --ops decode
#   bash tools/device/ab_run.sh ab26748 python3 tools/channel_keys_ratio.py --codecs golay24
set -uo pipefail
rev=${1:?usage: tools/device/ab_run.sh REV COMMAND...}
shift
[ $# -gt 0 ] || { echo "usage: tools/device/ab_run.sh REV COMMAND..." >&2; exit 2; }
base=$PWD/.ab/$rev
[ -d "$base/ecc_tensor" ] || { echo "$base/ecc_tensor is missing: run tools/device/ab_tree.sh $rev here and carry .ab/$rev" >&2; exit 2; }
. tools/device/setup.sh || exit 1  # prints the GPU and the versions
for round in $(seq "${ROUNDS:-1}"); do
  for tree in base new; do
    if [ "$tree" = base ]; then path=$base${PYTHONPATH:+:$PYTHONPATH}; else path=${PYTHONPATH:-}; fi
    PYTHONPATH=$path "$@" 2>&1 | grep -v -i "warn" | sed "s/^/$tree $round  /"
  done
done
