# On the GPU device, from the repository root: the first compiled step (compile and CUDA-graph
# recording) and the decode rate of the folded static cache and of an ECC mode compiled each way
# (ops inlined, opaque with their kernels compiled ahead, opaque at each kernel's first call),
# each in a process of its own with empty Inductor and Triton caches, so that no run reuses
# another's compiles (bench_e2e.py --ops all runs the ways in one process). Per run at most
# RUN_TIMEOUT seconds (default 150); WAYS picks the runs (default: "static inlined opaque
# opaque-serial"), so that a full-size comparison can be split over device calls of 600 s.
# Logs land in $OUT (or /tmp); the table lines are printed.
#   bash tools/device/first_step.sh                          # 8 layers, 4k, int4-secded72
#   LAYERS=32 CONTEXT=32768 RUN_TIMEOUT=280 WAYS="static opaque" bash tools/device/first_step.sh int4-hamming84-interp
. tools/device/setup.sh > /dev/null || exit 1
out=${OUT:-/tmp}
log="$out/first_step.log"
mode=${1:-int4-secded72}
run() {
  echo "== $*" >> "$log"
  TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) TRITON_CACHE_DIR=$(mktemp -d) timeout ${RUN_TIMEOUT:-150} python3 benchmarks/bench_e2e.py \
    --layers ${LAYERS:-8} --context ${CONTEXT:-4096} --steps ${STEPS:-8} --compile-phases "$@" >> "$log" 2>&1
  echo "exit $?" >> "$log"
}
for way in ${WAYS:-static inlined opaque opaque-serial}; do
  if [ "$way" = static ]; then run --modes static-folded; else run --modes "$mode" --ops "$way"; fi
done
grep -E "^\| (static|int4|int12|fp8)|^exit|Error" "$log"
