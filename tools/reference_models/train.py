"""Train a small reference model (GPT-2 or Llama architecture) on the reference corpus.

    python tools/reference_models/train.py --arch gpt2 --corpus build/corpus --tokenizer build/tokenizer \\
        --out ecc_tensor/evaluation/reference/ref-gpt2 --steps 1200 --device cuda

then tools/reference_models/measure.py writes the card (train.py calls it at the end).

Random contiguous windows of the training split (seeded), AdamW with warmup and cosine
decay, float32 master weights; the result is saved as fp16 safetensors with the tokenizer,
the config, training.json and a model card whose figures measure.py takes from the shipped
fp16 weights.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from measure import measure, tokens_of  # noqa: E402  (tools/reference_models/measure.py)

ARCHS = {
    "gpt2": lambda vocab, eos: GPT2LMHeadModel(
        GPT2Config(vocab_size=vocab, n_positions=512, n_embd=256, n_layer=6, n_head=8, bos_token_id=eos, eos_token_id=eos)
    ),
    "llama": lambda vocab, eos: LlamaForCausalLM(
        LlamaConfig(
            vocab_size=vocab, hidden_size=256, intermediate_size=704, num_hidden_layers=6, num_attention_heads=8,
            num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True, bos_token_id=eos, eos_token_id=eos,
        )
    ),
}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", choices=list(ARCHS), required=True)
    p.add_argument("--corpus", type=Path, default=Path("build/corpus"))
    p.add_argument("--tokenizer", type=Path, default=Path("build/tokenizer"))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=1200)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--init-from", type=Path, default=None, help="continue training this model directory (a second phase)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    train = tokens_of(tokenizer, args.corpus / "train.txt")
    device = torch.device(args.device)
    previous = None
    if args.init_from is not None:
        previous = json.loads((args.init_from / "training.json").read_text())
        model = AutoModelForCausalLM.from_pretrained(args.init_from, dtype=torch.float32).to(device)
    else:
        model = ARCHS[args.arch](len(tokenizer), tokenizer.eos_token_id).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min(1.0, (step + 1) / args.warmup) * 0.5 * (1 + math.cos(math.pi * min(step, args.steps) / args.steps)),
    )
    g = torch.Generator().manual_seed(args.seed)
    started = time.time()
    model.train()
    for step in range(args.steps):
        starts = torch.randint(0, train.numel() - args.seq - 1, (args.batch,), generator=g)
        batch = torch.stack([train[s : s + args.seq + 1] for s in starts.tolist()]).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = torch.nn.functional.cross_entropy(
                model(batch[:, :-1]).logits.float().reshape(-1, len(tokenizer)), batch[:, 1:].reshape(-1)
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step:5d}  loss {loss.item():.3f}  lr {schedule.get_last_lr()[0]:.2e}  {time.time() - started:.0f}s", flush=True)
    train_seconds = time.time() - started

    model = model.half().eval()
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    tokenizer.model_max_length = model.config.max_position_embeddings  # the model's positions, not the BPE's default
    tokenizer.save_pretrained(args.out)
    training = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps": args.steps, "batch": args.batch, "seq": args.seq, "lr": args.lr, "warmup": args.warmup, "seed": args.seed,
        "train_tokens_seen": args.steps * args.batch * args.seq + (previous["train_tokens_seen"] if previous else 0),
        "train_split_tokens": train.numel(),
        "final_train_loss": round(loss.item(), 4),
        "train_seconds": round(train_seconds),
        "device": torch.cuda.get_device_name() if device.type == "cuda" else f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)",
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "torch": torch.__version__,
        "continued_from": previous,
    }
    (args.out / "training.json").write_text(json.dumps(training, indent=2) + "\n")
    print(json.dumps(measure(args.out, args.corpus), indent=2))


if __name__ == "__main__":
    main()
