# On the GPU device, from the repository root: verify the codec, fault and interpolation
# kernels compiled (their tests, each failure's traceback written as it happens), then time the
# codec ops against a device copy with the given arguments (e.g. --write). Logs land in $OUT
# (or /tmp), with RESULTS.md when --write appended to it.
#   bash tools/device/codec_suite.sh --write
. tools/device/setup.sh || exit 1
out=${OUT:-/tmp}
ECC_FAILURE_LOG="$out/failures.log" timeout ${TEST_TIMEOUT:-200} python3 -m pytest -q -n ${WORKERS:-12} -p no:cacheprovider \
  tests/test_kernels.py tests/test_interp.py tests/test_device_tables.py 2>&1 | tee "$out/codec_tests.log" | grep -E "passed|failed|FAILED|Error" | tail -15
timeout ${BENCH_TIMEOUT:-200} python3 benchmarks/bench_codecs.py "$@" 2>&1 | tee "$out/bench_codecs.log" | grep -E "^\|" | tail -40
cp benchmarks/RESULTS.md "$out/" 2>/dev/null
