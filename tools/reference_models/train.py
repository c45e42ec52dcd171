"""Train a reference model (Llama or GPT-2 architecture) on the reference corpus.

    python tools/reference_models/train.py --arch llama --corpus build/corpus-full --tokenizer build/tokenizer-full \\
        --out build/ref-llama --layers 8 --d-model 256 --heads 4 --kv-heads 2 --context 1024 \\
        --batch 64 --tokens 4e8 --lr 3e-3 --warmup 500 --seed 0 --device cuda --compile

Random windows of the tokenized training split (the window starts of step ``s`` are drawn from
a generator seeded with ``(seed, s)``, so a resumed run draws what an uninterrupted one would),
AdamW (fused on CUDA) with linear warmup and cosine decay to a tenth of the peak, float32
master weights, bf16 autocast on CUDA, optional ``torch.compile``.

Resume: with ``--time-limit`` the run stops before the limit, writes ``checkpoint.pt`` (model,
optimizer, schedule, step) into ``--checkpoint-dir`` (default ``OUT.ckpt``) and exits with
status 3; the same command continues from it (a command runs at most 10 minutes on the lent
GPU machine, whose files survive between calls while it is held). At the end the model is
saved in fp16 (in shards of at most ``--shard-mb`` MB), with the tokenizer and ``training.json``;
then ``measure.py`` writes the card. ``tools/device/train_reference.sh`` runs both reference
models this way, one per GPU, and returns them as tar parts.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import torch
from tokens import cached_tokens  # noqa: E402  (tools/reference_models/tokens.py)
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

RESUME_EXIT = 3


def build_model(arch: str, vocab: int, eos: int, layers: int, d_model: int, heads: int, kv_heads: int, ffn: int | None,
                context: int):
    if arch == "gpt2":
        if kv_heads != heads:
            raise ValueError("GPT-2 has as many KV heads as query heads (drop --kv-heads)")
        return GPT2LMHeadModel(GPT2Config(
            vocab_size=vocab, n_positions=context, n_embd=d_model, n_layer=layers, n_head=heads, n_inner=ffn,
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=eos, eos_token_id=eos,
        ))
    ffn = ffn or 64 * round(8 * d_model / 3 / 64)  # SwiGLU's usual 8/3 d, a multiple of 64
    return LlamaForCausalLM(LlamaConfig(
        vocab_size=vocab, hidden_size=d_model, intermediate_size=ffn, num_hidden_layers=layers, num_attention_heads=heads,
        num_key_value_heads=kv_heads, max_position_embeddings=context, tie_word_embeddings=True, bos_token_id=eos,
        eos_token_id=eos, attention_dropout=0.0,
    ))


def schedule_factor(step: int, warmup: int, total: int, floor: float = 0.1) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def batch_at(tokens: torch.Tensor, step: int, seed: int, batch: int, context: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    starts = torch.randint(0, tokens.numel() - context - 1, (batch,), generator=g)
    return torch.stack([tokens[s : s + context + 1] for s in starts.tolist()])


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", choices=["llama", "gpt2"], required=True)
    p.add_argument("--corpus", type=Path, default=Path("build/corpus-full"))
    p.add_argument("--tokenizer", type=Path, default=Path("build/tokenizer-full"))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--checkpoint-dir", type=Path, default=None, help="default: OUT.ckpt")
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--d-model", type=int, default=512)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kv-heads", type=int, default=None, help="default: --heads (GPT-2 must keep it so)")
    p.add_argument("--ffn", type=int, default=None, help="MLP width (default: 4 d for GPT-2, 8/3 d for Llama)")
    p.add_argument("--context", type=int, default=1024)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--tokens", type=float, default=None, help="tokens to train on (sets --steps)")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--time-limit", type=float, default=None, help="seconds: checkpoint and exit 3 before this")
    p.add_argument("--stop-after", type=int, default=None, help="checkpoint and exit 3 after this step (split a run by steps)")
    p.add_argument("--checkpoint-every", type=int, default=0, help="steps between checkpoints (0: only at the time limit)")
    p.add_argument("--shard-mb", type=int, default=100, help="largest weight file (the shipped models are one file each)")
    p.add_argument("--no-measure", action="store_true", help="skip measure.py at the end")
    args = p.parse_args(argv)
    args.kv_heads = args.kv_heads or args.heads
    if args.tokens is not None:
        args.steps = math.ceil(args.tokens / (args.batch * args.context))
    args.checkpoint_dir = args.checkpoint_dir or args.out.with_name(args.out.name + ".ckpt")
    return args


def save_checkpoint(path: Path, model, optimizer, scheduler, step: int, elapsed: float, loss: float) -> None:
    path.mkdir(parents=True, exist_ok=True)
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "step": step, "elapsed": elapsed, "loss": loss}
    tmp = path / "checkpoint.pt.tmp"
    torch.save(state, tmp)
    os.replace(tmp, path / "checkpoint.pt")  # a kill mid-write leaves the previous checkpoint


def train(args) -> int:
    started = time.time()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    tokens = cached_tokens(tokenizer, args.corpus / "train.txt")
    model = build_model(args.arch, len(tokenizer), tokenizer.eos_token_id, args.layers, args.d_model, args.heads, args.kv_heads,
                        args.ffn, args.context).to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=args.lr, betas=(0.9, 0.95), fused=device.type == "cuda")
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: schedule_factor(s, args.warmup, args.steps))
    step, elapsed_before, loss_value = 0, 0.0, float("nan")
    checkpoint = args.checkpoint_dir / "checkpoint.pt"
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, elapsed_before, loss_value = state["step"], state["elapsed"], state["loss"]
        print(f"resumed at step {step} of {args.steps}", flush=True)
    forward = torch.compile(model) if args.compile else model
    vocab = len(tokenizer)
    model.train()
    loop_start = time.time()
    while step < args.steps:
        if (args.time_limit and time.time() - started > args.time_limit) or (args.stop_after is not None and step >= args.stop_after):
            save_checkpoint(args.checkpoint_dir, model, optimizer, scheduler, step, elapsed_before + time.time() - loop_start, loss_value)
            print(f"stopped: checkpoint at step {step} of {args.steps}; run the same command to continue", flush=True)
            return RESUME_EXIT
        batch = batch_at(tokens, step, args.seed, args.batch, args.context).to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = forward(batch[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, vocab), batch[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        step += 1
        if step % 100 == 0 or step == args.steps:
            loss_value = loss.item()
            seconds = elapsed_before + time.time() - loop_start
            print(f"step {step:6d}/{args.steps}  loss {loss_value:.3f}  lr {scheduler.get_last_lr()[0]:.2e}  {seconds:.0f}s  "
                  f"{step * args.batch * args.context / max(seconds, 1e-9) / 1e6:.2f}M tok/s", flush=True)
        if args.checkpoint_every and step % args.checkpoint_every == 0 and step < args.steps:
            save_checkpoint(args.checkpoint_dir, model, optimizer, scheduler, step, elapsed_before + time.time() - loop_start, loss.item())
    loss_value = loss.item() if args.steps else loss_value
    finish(args, model, tokenizer, tokens.numel(), loss_value, elapsed_before + time.time() - loop_start, device)
    return 0


def finish(args, model, tokenizer, split_tokens: int, loss: float, seconds: float, device) -> None:
    model = model.half().eval()
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True, max_shard_size=f"{args.shard_mb}MB")
    tokenizer.model_max_length = args.context  # the model's positions, not the BPE's default
    tokenizer.save_pretrained(args.out)
    training = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "layers": args.layers, "d_model": args.d_model, "heads": args.heads, "kv_heads": args.kv_heads, "context": args.context,
        "steps": args.steps, "batch": args.batch, "seq": args.context, "lr": args.lr, "warmup": args.warmup, "seed": args.seed,
        "train_tokens_seen": args.steps * args.batch * args.context,
        "train_split_tokens": split_tokens,
        "final_train_loss": round(loss, 4),
        "train_seconds": round(seconds),
        "device": (torch.cuda.get_device_name() if device.type == "cuda"
                   else f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)"),
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "torch": torch.__version__,
        "continued_from": None,
    }
    (args.out / "training.json").write_text(json.dumps(training, indent=2) + "\n")
    if not args.no_measure:
        from measure import measure

        print(json.dumps(measure(args.out, args.corpus), indent=2))


def main(argv=None) -> int:
    return train(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
