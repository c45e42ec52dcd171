# On the GPU device, from the repository root: verify the kernels (the CUDA-marked tests and
# the kernel/attention suites, compiled), then time decode attention. Logs land in $OUT.
. tools/device/setup.sh || exit 1
out=${OUT:-/tmp}
timeout 300 python3 -m pytest -q -x -p no:cacheprovider tests/test_gpu.py tests/test_attention.py tests/test_kernels.py 2>&1 | tee "$out/tests.log" | tail -15
timeout ${BENCH_TIMEOUT:-240} python3 benchmarks/bench_attention.py "$@" 2>&1 | tee "$out/bench_attention.log" | grep -v Warn | tail -60
cp benchmarks/RESULTS.md "$out/" 2>/dev/null
