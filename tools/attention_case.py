"""The decode-attention case that the tuning tools time: random float16 queries and K/V of a
given shape, quantized and encoded per codec, every sequence at full length.

``add_case_arguments`` adds the shape options to a parser; ``decode_calls`` gives one call of
``ecc::decode_attention`` per input copy (copies keep a CUDA-graph replay's working set out of
L2)."""

from __future__ import annotations

import argparse

import torch

import ecc_tensor.ops as ops
from ecc_tensor.codecs import get_codec
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


def decode_calls(args: argparse.Namespace, codec: str, copies: int = 1, device: str = "cuda") -> list:
    g = torch.Generator(device=device).manual_seed(0)
    shape = (args.batch, args.kv_heads, args.context, args.head_dim)
    query = torch.randn(args.batch, args.q_heads, 1, args.head_dim, device=device, dtype=torch.float16, generator=g)
    seq_lens = torch.full((args.batch,), args.context, dtype=torch.int64, device=device)
    counters = new_counters(device)
    tables = get_codec(codec).tables(device)

    def call_on(k, v):
        return lambda: torch.ops.ecc.decode_attention(
            query, *k, *v, tables.encode_table, tables.syndrome_table, codec, args.head_dim, args.interpolate,
            seq_lens, counters, None, False, args.head_dim**-0.5)

    return [
        call_on(ops.quantize_encode(torch.randn(shape, device=device, dtype=torch.float16, generator=g), codec),
                ops.quantize_encode(torch.randn(shape, device=device, dtype=torch.float16, generator=g), codec))
        for _ in range(copies)
    ]
