#!/usr/bin/env bash
# A revision of the package as an importable tree beside the working one, for timing two
# versions in one device call (the GPU host's copy of the working tree has no git history).
# Here, before the call:   tools/device/ab_tree.sh 3bdee93        (-> .ab/3bdee93, git-ignored)
# Carry `.ab` with the call; there, the benchmark against that revision:
#   PYTHONPATH=$PWD/.ab/3bdee93:$PYTHONPATH python benchmarks/bench_attention.py ...
# (after `. tools/device/setup.sh`, whose wheels stay on PYTHONPATH). The working tree's own
# package is the editable install; the revision's comes first on the path.
set -euo pipefail
rev=${1:?usage: tools/device/ab_tree.sh REV}
cd "$(dirname "$0")/../.."
out=.ab/$rev
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git archive "$rev" | tar -x -C "$tmp"
rm -rf "$out" && mkdir -p "$out"
cp -r "$tmp/ecc_tensor" "$out/"
# The package's ecc_tensor.ops and ecc_tensor.integrations live at the repository's top level.
cp -r "$tmp/ops" "$out/ecc_tensor/ops"
cp -r "$tmp/integrations" "$out/ecc_tensor/integrations"
rm -rf "$out/ecc_tensor/evaluation/reference"  # the reference models (tens of MiB): not needed to time kernels
echo "$out ($(du -sh "$out" | cut -f1)): PYTHONPATH=\$PWD/$out:\$PYTHONPATH"
