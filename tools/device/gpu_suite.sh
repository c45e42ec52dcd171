# On the GPU device, from the repository root: the GPU suite (`-m cuda` in tests/test_gpu.py,
# or the test paths given), WORKERS pytest-xdist workers (default 8), each failure's traceback
# written as it happens, the slowest 25 tests' durations at the end. Past TEST_TIMEOUT seconds
# (default 500) pytest is interrupted with SIGINT, not killed, so that it still prints which
# tests passed and how long each took. Logs land in $OUT (or /tmp).
#   bash tools/device/gpu_suite.sh
#   WORKERS=15 bash tools/device/gpu_suite.sh tests/test_gpu.py tests/test_attention.py
. tools/device/setup.sh || exit 1
out=${OUT:-/tmp}
[ $# -gt 0 ] || set -- -m cuda tests/test_gpu.py
# Each worker gets its share of the cores for torch's threads and Inductor's compile pool: by
# default each takes every core, and 12 workers x 16 threads ran the suite slower than 8 did.
share=$(( $(nproc) / ${WORKERS:-8} )); [ $share -ge 1 ] || share=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$share} TORCHINDUCTOR_COMPILE_THREADS=${TORCHINDUCTOR_COMPILE_THREADS:-$share}
start=$SECONDS
ECC_FAILURE_LOG="$out/failures.log" timeout -s INT ${TEST_TIMEOUT:-500} python3 -m pytest -q -n ${WORKERS:-8} -p no:cacheprovider \
  --durations=25 "$@" > "$out/gpu_suite.log" 2>&1
echo "pytest exit $? after $((SECONDS - start)) s" >> "$out/gpu_suite.log"
grep -E "passed|failed|FAILED|Error|exit|s call|s setup" "$out/gpu_suite.log" | tail -40
