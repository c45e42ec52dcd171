# On a GPU host, from the repository root: train one reference model from the carried corpus
# and tokenizer, in runs of at most TIME_LIMIT seconds (default 540): each run resumes from
# build/<name>.ckpt and exits 3 while steps remain; the run that finishes writes the model into
# $OUT as tar parts of at most 15 MB (a lent machine returns at most 8 files of 16 MiB).
#   carry: build/corpus-full.tar.xz build/tokenizer-full .whl
#   bash tools/device/train_reference.sh llama     # again and again until it prints "finished"
# Locally: cat OUT/ref-llama.tar.part-* | tar -x -C ecc_tensor/evaluation/reference/
set -uo pipefail
arch=${1:?usage: train_reference.sh llama|gpt2}
name=ref-$arch
out=${OUT:-/tmp}
. tools/device/setup.sh >/dev/null || exit 1
if [ ! -f build/corpus-full/train.txt ]; then
  mkdir -p build/corpus-full && tar -xJf build/corpus-full.tar.xz -C build/corpus-full --strip-components 1 || exit 1
fi
case $arch in
  llama) shape="--layers 8 --d-model 512 --heads 8 --kv-heads 2" ;;
  gpt2) shape="--layers 8 --d-model 512 --heads 8" ;;
  *) echo "unknown arch $arch"; exit 2 ;;
esac
python3 tools/reference_models/train.py --arch "$arch" --corpus build/corpus-full --tokenizer build/tokenizer-full \
  --out "build/$name" $shape --context 1024 --batch 64 --tokens ${TOKENS:-4e8} --lr ${LR:-3e-3} --warmup 500 --seed 0 \
  --device cuda --compile --time-limit "${TIME_LIMIT:-540}" --no-measure 2>&1 | tee -a "$out/train-$arch.log" | grep -E "step|resumed|stopped|Error"
rc=${PIPESTATUS[0]}
if [ "$rc" -eq 3 ]; then echo "not finished: run again"; exit 3; fi
[ "$rc" -eq 0 ] || exit "$rc"
python3 tools/reference_models/measure.py "build/$name" --corpus build/corpus-full > "$out/measure-$arch.json" || exit 1
tar -cf - -C build "$name" | split -b 15m - "$out/$name.tar.part-"
echo finished
