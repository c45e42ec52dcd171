# On the GPU device, from the repository root: verify the fused attention and codec kernels
# (the CUDA-marked tests and the attention suite, compiled), then time decode attention with
# the given arguments (e.g. --write). Logs land in $OUT (or /tmp).
#   bash tools/device/attention_suite.sh --write
. tools/device/setup.sh || exit 1
out=${OUT:-/tmp}
timeout ${TEST_TIMEOUT:-400} python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py tests/test_attention.py 2>&1 \
  | tee "$out/tests.log" | grep -E "passed|failed|FAILED|Error" | tail -15
timeout ${BENCH_TIMEOUT:-300} python3 benchmarks/bench_attention.py "$@" 2>&1 | tee "$out/bench_attention.log" | grep -E "^\|" | tail -60
cp benchmarks/RESULTS.md "$out/" 2>/dev/null
