# On a GPU host, from the repository root: train the reference models (ref-llama, ref-gpt2) from
# the carried corpus and tokenizer, one per GPU (both on GPU 0 when there is one), measure each on
# its GPU and leave them in $OUT as tar parts of at most 15 MB.
#   carry: build/corpus-full.tar.xz build/tokenizer-full .whl
#   bash tools/device/train_reference.sh [llama gpt2]    # again while it exits 3
# BUILD=build/rebuild puts the models, checkpoints and logs there instead of build/, so that a
# second rebuild can run beside the first (the corpus stays in build/).
# Training runs in its own process session, so it outlives a command that stops waiting after
# WAIT seconds (default 540; the lent machine ends a command at 10 minutes but keeps background
# sessions while it is held): the next call finds it running and waits again. On a host without
# such limits, WAIT=100000 waits to the end. It prints "finished" when every model is measured.
# Locally: cat OUT/ref-llama.tar.part-* | tar -x -C ecc_tensor/evaluation/reference/
set -uo pipefail
archs=${*:-llama gpt2}
out=${OUT:-/tmp}
build=${BUILD:-build}
mkdir -p "$build"
started=$(date +%s)
. tools/device/setup.sh >/dev/null || exit 1
if [ ! -f build/corpus-full/train.txt ]; then
  mkdir -p build/corpus-full && tar -xJf build/corpus-full.tar.xz -C build/corpus-full --strip-components 1 || exit 1
fi
# Tokenize once, before the trainers start (they would each do it).
python3 - <<'PY' || exit 1
import sys; sys.path.insert(0, "tools/reference_models")
from pathlib import Path
from tokens import cached_tokens
from transformers import AutoTokenizer
tok = AutoTokenizer.from_pretrained("build/tokenizer-full")
for name in ("train.txt", "test.txt", "test_mix.txt", "ood_test.txt"):
    print(name, cached_tokens(tok, Path("build/corpus-full") / name).numel(), "tokens", flush=True)
PY
gpus=$(python3 -c "import torch; print(torch.cuda.device_count())")
i=0
for arch in $archs; do
  name=ref-$arch
  case $arch in
    # GPT-2 (learned positions, LayerNorm, tied embeddings) diverged midway at 3e-3 in one of two
    # runs from the same seed (loss 7.5 at step 4000), so it trains at 1e-3.
    llama) shape="--layers 8 --d-model 256 --heads 4 --kv-heads 2"; lr=${LR:-3e-3} ;;
    gpt2) shape="--layers 8 --d-model 256 --heads 4"; lr=${LR:-1e-3} ;;
    *) echo "unknown arch $arch"; exit 2 ;;
  esac
  gpu=$((i % gpus)); i=$((i + 1))
  if [ -f "$build/$name.done" ] || { [ -f "$build/$name.pid" ] && kill -0 "$(cat "$build/$name.pid")" 2>/dev/null; }; then
    continue
  fi
  # Train, then measure (with evidence.py) on the same GPU; train.py resumes from $build/$name.ckpt.
  CUDA_VISIBLE_DEVICES=$gpu setsid bash -c "
    python3 tools/reference_models/train.py --arch $arch --corpus build/corpus-full --tokenizer build/tokenizer-full \
      --out $build/$name $shape --context 1024 --batch 64 --tokens ${TOKENS:-4e8} --lr $lr --warmup 500 --seed 0 \
      --device cuda --compile --checkpoint-every 1000 --no-measure \
    && python3 tools/reference_models/measure.py $build/$name --corpus build/corpus-full --device cuda > $build/measure-$arch.json \
    && touch $build/$name.done" >>"$build/train-$arch.log" 2>&1 < /dev/null &
  echo $! >"$build/$name.pid"
  echo "$name: training on GPU $gpu (log $build/train-$arch.log)"
done
while :; do
  pending=0
  for arch in $archs; do [ -f "$build/ref-$arch.done" ] || pending=1; done
  [ $pending -eq 0 ] && break
  for arch in $archs; do
    if [ ! -f "$build/ref-$arch.done" ] && ! kill -0 "$(cat "$build/ref-$arch.pid")" 2>/dev/null; then
      echo "ref-$arch failed:"; tail -30 "$build/train-$arch.log"; cp "$build"/train-*.log "$out/"; exit 1
    fi
  done
  if [ $(($(date +%s) - started)) -gt "${WAIT:-540}" ]; then
    for arch in $archs; do echo "ref-$arch: $(grep -E '^step|resumed' "$build/train-$arch.log" | tail -1)"; done
    cp "$build"/train-*.log "$out/"
    echo "still training: run again"; exit 3
  fi
  sleep 10
done
for arch in $archs; do
  tar -cf - -C "$build" "ref-$arch" | split -b 15m - "$out/ref-$arch.tar.part-"
  cp "$build/train-$arch.log" "$build/measure-$arch.json" "$out/"
done
echo finished
