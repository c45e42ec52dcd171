"""The decode-attention case that the tuning tools time: random queries and K/V of a given
shape, quantized and encoded per codec, every sequence at full length. ``--spare`` and
``--masked`` make it the call a cache makes while decoding: storage rows past the written
ones (a static cache's ``max_cache_len``) and a boolean mask over every stored row, as
transformers builds it. ``--ber`` strikes the stored K and V (per token) with seeded bit flips
first, so that the deferred launch has work. ``--channel-keys`` quantizes the keys per channel over blocks of
``CHANNEL_BLOCK`` tokens and keeps the last block in a full-precision window (KIVI's layout,
``ecc_tensor.quant_scheme``), as ``bench_attention.py --channel-keys`` does.

``add_case_arguments`` adds the shape options to a parser; ``decode_calls`` gives one call of
``ecc::decode_attention`` per input copy (copies keep a CUDA-graph replay's working set out of
L2); the codec name ``fp8`` gives calls of ``ecc::fp8_decode_attention`` over E4M3 words with a
scale per head instead."""

from __future__ import annotations

import argparse

import torch

import ecc_tensor.ops as ops
from ecc_tensor.counters import new_counters
from ecc_tensor.faults import FaultModel
from ecc_tensor.fp8 import head_scale, to_e4m3
from ecc_tensor.metadata import codec_tables

CHANNEL_BLOCK = 128  # tokens per per-channel key block, and the window's tokens


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
    p.add_argument("--channel-keys", action="store_true",
                   help=f"keys per channel over blocks of {CHANNEL_BLOCK} tokens, the last block in a full-precision window")
    p.add_argument("--channel-block", type=int, default=CHANNEL_BLOCK,
                   help="with --channel-keys: tokens per block of channel scales (the window stays "
                        f"{CHANNEL_BLOCK} tokens); what the main loop's setup per block of scales costs")
    p.add_argument("--ber", type=float, default=0.0,
                   help="flip every stored bit of K and V (codewords, scales, padding) with this probability, once, "
                        "before timing (BSC, seeded): what a call costs when blocks are dirty and deferred")


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

    ber = getattr(args, "ber", 0.0)
    if ber and (codec == "fp8" or getattr(args, "channel_keys", False)):
        raise SystemExit("--ber strikes the per-token codecs' storage (not fp8, not --channel-keys)")
    if codec == "fp8":
        def fp8_words():
            x = torch.randn(shape, device=device, dtype=dtype, generator=g)
            return to_e4m3(x, head_scale(x)), head_scale(x)

        return [lambda config=None, k=fp8_words(), v=fp8_words(): ops.fp8_decode_attention(query, k, v, seq_lens=seq_lens,
                                                                                              attn_mask=mask, config=config)
                for _ in range(copies)]
    if getattr(args, "channel_keys", False):
        return [_channel_keys_call(args, codec, query, seq_lens, counters, mask, shape, g) for _ in range(copies)]
    return [
        call_on(_struck(ops.quantize_encode(torch.randn(shape, device=device, dtype=dtype, generator=g), codec), ber, 2 * i),
                _struck(ops.quantize_encode(torch.randn(shape, device=device, dtype=dtype, generator=g), codec), ber, 2 * i + 1))
        for i in range(copies)
    ]


def _struck(stored: tuple[torch.Tensor, torch.Tensor], ber: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(storage, metadata)`` with every bit flipped with probability ``ber`` (BSC, written
    faults, seeded per tensor): the whole footprint, as ``--fault-targets all`` strikes it."""
    if not ber:
        return stored
    return tuple(ops.inject(t, 8, FaultModel("bsc", ber, 2 * seed + part), step=0)[0] for part, t in enumerate(stored))


def _channel_keys_call(args, codec, query, seq_lens, counters, mask, shape, g):
    """One call over keys quantized per channel (over blocks of ``args.channel_block``
    tokens), values per token, and the last ``CHANNEL_BLOCK`` tokens of both in a window of
    two such blocks' rows."""
    block = getattr(args, "channel_block", CHANNEL_BLOCK)
    if args.context % block or args.context % CHANNEL_BLOCK or args.context <= CHANNEL_BLOCK:
        raise SystemExit(f"--channel-keys takes a context that is a multiple of {block} and {CHANNEL_BLOCK} tokens, "
                         f"above {CHANNEL_BLOCK}")
    device, dtype = query.device, query.dtype
    tables = codec_tables(codec, device)
    keys = ops.quantize_encode_channels(torch.randn(shape, device=device, dtype=dtype, generator=g), codec, block)
    values = ops.quantize_encode(torch.randn(shape, device=device, dtype=dtype, generator=g), codec)
    window_shape = (*shape[:2], 2 * CHANNEL_BLOCK, shape[-1])
    windows = [torch.randn(window_shape, device=device, dtype=dtype, generator=g) for _ in range(2)]
    quantized = seq_lens - CHANNEL_BLOCK
    return lambda config=None: torch.ops.ecc.decode_attention(
        query, *keys, *values, *tables, codec, shape[-1], 1, True, args.interpolate, seq_lens, counters, mask, False,
        shape[-1] ** -0.5, config, block, quantized, *windows)
