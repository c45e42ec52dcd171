"""The decode-attention case that the tuning tools time: random queries and K/V of a given
shape, quantized and encoded per codec, every sequence at full length. ``--spare`` and
``--masked`` make it the call a cache makes while decoding: storage rows past the written
ones (a static cache's ``max_cache_len``) and a boolean mask over every stored row, as
transformers builds it.

``add_case_arguments`` adds the shape options to a parser; ``decode_calls`` gives one call of
``ecc::decode_attention`` per input copy (copies keep a CUDA-graph replay's working set out of
L2)."""

from __future__ import annotations

import argparse

import torch

import ecc_tensor.ops as ops
from ecc_tensor.counters import new_counters


def add_case_arguments(p: argparse.ArgumentParser, codecs: list[str]) -> None:
    p.add_argument("--codecs", nargs="+", default=codecs)
    p.add_argument("--interpolate", action="store_true")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--context", type=int, default=32768)
    p.add_argument("--q-heads", type=int, default=32)
    p.add_argument("--kv-heads", type=int, default=8)
    p.add_argument("--head-dim", type=int, default=128)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--dtype", choices=["float16", "bfloat16"], default="float16")
    p.add_argument("--spare", type=int, default=0, help="storage rows past the written ones")
    p.add_argument("--masked", action="store_true", help="pass a boolean mask over every stored row")


def decode_calls(args: argparse.Namespace, codec: str, copies: int = 1, device: str = "cuda") -> list:
    g = torch.Generator(device=device).manual_seed(0)
    dtype = getattr(torch, args.dtype)
    rows = args.context + args.spare
    shape = (args.batch, args.kv_heads, rows, args.head_dim)
    query = torch.randn(args.batch, args.q_heads, 1, args.head_dim, device=device, dtype=dtype, generator=g)
    seq_lens = torch.full((args.batch,), args.context, dtype=torch.int64, device=device)
    mask = None
    if args.masked:
        mask = (torch.arange(rows, device=device) < args.context).expand(args.batch, 1, 1, rows)
    counters = new_counters(device)

    def call_on(k, v):
        return lambda config=None: ops.decode_attention(query, k, v, codec, interpolate=args.interpolate, seq_lens=seq_lens,
                                                        counters=counters, attn_mask=mask, config=config)

    return [
        call_on(ops.quantize_encode(torch.randn(shape, device=device, dtype=dtype, generator=g), codec),
                ops.quantize_encode(torch.randn(shape, device=device, dtype=dtype, generator=g), codec))
        for _ in range(copies)
    ]
