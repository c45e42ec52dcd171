"""CPU cost of ECCCache decoding steps against the preallocated length (a read decodes only
the rows written so far, so the cost must not grow with ``max_cache_len``).

    python benchmarks/bench_cache_cpu.py [--threads 1] [--lengths 64 512 2048] [--write]

A random Llama of ref-llama's shape (6 layers, d 256, 8 query / 2 KV heads of 32) with 2,048
positions: a 32-token prompt, then 10 greedy decoding steps, timed per cache.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time
from pathlib import Path

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM, StaticCache

from ecc_tensor.integrations.hf import ECCCache, cache_argument

RESULTS = Path(__file__).with_name("RESULTS.md")


def decode_seconds(model, cache, prompt, steps):
    with torch.no_grad():
        out = model(prompt, **cache_argument(model, cache), use_cache=True)
        token = out.logits[:, -1:].argmax(-1)
        start = time.perf_counter()
        for i in range(steps):
            out = model(token, **cache_argument(model, cache), use_cache=True, position_ids=torch.tensor([[prompt.shape[1] + i]]))
            token = out.logits[:, -1:].argmax(-1)
        return time.perf_counter() - start


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--lengths", type=int, nargs="+", default=[64, 512, 2048])
    p.add_argument("--modes", nargs="+", default=["int4", "int4-hamming84-interp", "int12-golay"])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--write", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=8192, hidden_size=256, intermediate_size=704, num_hidden_layers=6, num_attention_heads=8,
                         num_key_value_heads=2, max_position_embeddings=max(args.lengths))
    model = LlamaForCausalLM(config).eval()
    prompt = torch.randint(0, 8192, (1, 32))
    rows = []
    for length in args.lengths:
        row = {"max_cache_len": length, "static": decode_seconds(model, StaticCache(config, max_cache_len=length), prompt, args.steps)}
        for mode in args.modes:
            row[mode] = decode_seconds(model, ECCCache(config, 1, length, mode=mode), prompt, args.steps)
        rows.append(row)
        print(row, flush=True)
    cols = ["static", *args.modes]
    table = [f"| max_cache_len | {' | '.join(cols)} |", "|---:|" + "---:|" * len(cols)]
    table += [f"| {r['max_cache_len']} | " + " | ".join(f"{r[c]:.3f}" for c in cols) + " |" for r in rows]
    text = "\n".join(table)
    print(text)
    if args.write:
        with RESULTS.open("a") as f:
            f.write(
                f"\n## ECCCache decoding steps on CPU against max_cache_len ({datetime.date.today()})\n\n"
                f"- device: CPU ({platform.machine()}, {args.threads} thread(s)), torch {torch.__version__}, "
                f"transformers {transformers.__version__}\n"
                f"- model: random Llama, ref-llama's shape, 32-token prompt, {args.steps} greedy steps; seconds for the steps\n"
                f"- command: `python benchmarks/bench_cache_cpu.py --threads {args.threads} "
                f"--lengths {' '.join(map(str, args.lengths))}`\n\n"
                + text + "\n"
            )


if __name__ == "__main__":
    main()
