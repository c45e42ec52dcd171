"""Launch-configuration sweep of the fused decode-attention kernel, on kernel time.

For each codec, times ``ecc::decode_attention`` under every ``ECC_ATTENTION_CONFIG``
(block_n, num_warps, num_stages, programs per SM) of the grid below, from CUDA-graph replay
as ``benchmarks/bench_attention.py`` does, and prints one table per codec, fastest first. The
defaults in ``ops/attention_kernels.py`` come from such sweeps (benchmarks/RESULTS.md).

    python tools/sweep_attention.py                                   # batch 8, 32k, H100 grid
    python tools/sweep_attention.py --codecs int4 --configs 64,4,3,16 128,4,2,4
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
from bench_attention import kernel_time  # noqa: E402

import ecc_tensor.ops as ops  # noqa: E402
from ecc_tensor.codecs import get_codec  # noqa: E402
from ecc_tensor.counters import new_counters  # noqa: E402

GRID = [f"{n},{w},{s},{v}" for (n, w), s, v in itertools.product(
    [(32, 2), (32, 4), (64, 2), (64, 4), (64, 8), (128, 4), (128, 8)], [2, 3], [4, 16])]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--codecs", nargs="+", default=["int4", "hamming84"])
    p.add_argument("--interpolate", action="store_true")
    p.add_argument("--configs", nargs="+", default=GRID, help="block_n,num_warps,num_stages,waves")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--context", type=int, default=32768)
    p.add_argument("--q-heads", type=int, default=32)
    p.add_argument("--kv-heads", type=int, default=8)
    p.add_argument("--head-dim", type=int, default=128)
    p.add_argument("--copies", type=int, default=4, help="input copies the replay rotates over (L2 cold)")
    p.add_argument("--iters", type=int, default=10)
    args = p.parse_args(argv)

    device = torch.device("cuda")
    g = torch.Generator(device=device).manual_seed(0)
    shape = (args.batch, args.kv_heads, args.context, args.head_dim)
    queries = torch.randn(args.batch, args.q_heads, 1, args.head_dim, device=device, dtype=torch.float16, generator=g)
    seq_lens = torch.full((args.batch,), args.context, dtype=torch.int64, device=device)
    counters = new_counters(device)
    for codec in args.codecs:
        tables = get_codec(codec).tables(device)
        caches = []
        for _ in range(args.copies):
            k = ops.quantize_encode(torch.randn(shape, device=device, dtype=torch.float16, generator=g), codec)
            v = ops.quantize_encode(torch.randn(shape, device=device, dtype=torch.float16, generator=g), codec)
            caches.append((k, v))

        def call(i):
            (ks, kscale, kzero), (vs, vscale, vzero) = caches[i]
            return torch.ops.ecc.decode_attention(
                queries, ks, kscale, kzero, vs, vscale, vzero, tables.encode_table, tables.syndrome_table,
                codec, args.head_dim, args.interpolate, seq_lens, counters, None, False, args.head_dim**-0.5)

        rows = []
        for config in args.configs:
            os.environ["ECC_ATTENTION_CONFIG"] = config
            try:
                t = kernel_time([lambda i=i: call(i) for i in range(args.copies)], args.iters)
            except Exception as e:  # a configuration that does not fit (shared memory, registers)
                print(f"{codec} {config}: {type(e).__name__}: {str(e).splitlines()[0][:100]}", flush=True)
                continue
            rows.append((t * 1e6, config))
            print(f"{codec} {config}: {t * 1e6:.1f} us", flush=True)
        os.environ.pop("ECC_ATTENTION_CONFIG", None)
        print(f"\n{codec}{' interp' if args.interpolate else ''}, batch {args.batch}, {args.context} keys, fastest first:")
        for us, config in sorted(rows)[:8]:
            print(f"  {config:>14}  {us:8.1f} us")
        del caches


if __name__ == "__main__":
    main()
