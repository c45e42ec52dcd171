#!/usr/bin/env bash
# On the GPU device, from the repository root: the fused attention under faults, verified, then
# timed. The tests whose caches hold struck codewords and scales (the deferred launches' work),
# (with the deferred launches' counters and metadata reads, and metadata viewed off a word), then
# each codec's call at BER 0, 1e-6 and 1e-5 (every stored bit of K and V flipped with that
# probability once, `tools/attention_case.py --ber`): GPU time per kernel, the main and deferred
# launches summed under one name (tools/profile_attention.py). Logs land in $OUT (or /tmp).
#   bash tools/device/faults_suite.sh                          # SECDED(72,64), Hamming(8,4), Golay
#   BERS="1e-6" bash tools/device/faults_suite.sh secded72 --interpolate
. tools/device/setup.sh || exit 1
out=${OUT:-/tmp}
codecs=()
flags=()
for arg in "$@"; do
  case $arg in --*) flags+=("$arg") ;; *) codecs+=("$arg") ;; esac
done
[ ${#codecs[@]} -gt 0 ] || codecs=(secded72 hamming84 golay24)
timeout -s INT ${TEST_TIMEOUT:-240} python3 -m pytest -q -n ${WORKERS:-8} -p no:cacheprovider tests/test_attention.py \
  tests/test_secded72.py tests/test_status_counts.py tests/test_kernels.py \
  -k "off_a_word or packed_counts or counts_past or row_meta or (not test_kernels and (fault or dirty or deferred or protected or struck or interpolat or secded72))" 2>&1 \
  | tee "$out/faults_tests.log" | grep -E "passed|failed|FAILED|Error" | tail -15
for ber in ${BERS:-0 1e-6 1e-5}; do
  (cd tools && timeout ${BENCH_TIMEOUT:-120} python3 profile_attention.py --codecs "${codecs[@]}" --ber "$ber" --iters 5 "${flags[@]}") 2>&1 \
    | tee -a "$out/faults_timing.log" | grep -v -i warn | sed "s/^/BER $ber  /"
done
