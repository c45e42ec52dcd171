"""Triton kernels and their torch.library registrations (namespace ``ecc``).

Importing this package registers ``torch.ops.ecc.{encode, decode, quantize_encode,
decode_dequantize, inject, decode_attention, fp8_decode_attention}``. The functions below are
the convenient Python entry points: they look up the codec's device-resident tables and call
the ops.
"""

from __future__ import annotations

import torch

from ecc_tensor.attention import dequantize_channel_cache
from ecc_tensor.attention import quantize_encode_channels as quantize_encode_channels_reference
from ecc_tensor.codecs import CodecTables, get_codec
from ecc_tensor.counters import new_counters
from ecc_tensor.faults import FaultModel
from ecc_tensor.interp import register_interpolation_kernel
from ecc_tensor.metadata import codec_tables

from . import library  # registers the ops
from .dispatch import call_op
from . import kernel_source, mutation_analysis, op_kernels, opaque
from .interp_kernels import interpolate_decoded_, interpolate_erasures_
from .opaque import opaque_ops

mutation_analysis.install()
opaque.install(library.OPS)
kernel_source.install_at_compile_start()
op_kernels.register()

register_interpolation_kernel("cuda", interpolate_decoded_, interpolate_erasures_)


def _tables(codec: str, device: torch.device):
    return get_codec(codec).tables(device)


def encode(values: torch.Tensor, codec: str) -> torch.Tensor:
    t = _tables(codec, values.device)
    return call_op(torch.ops.ecc.encode, values, t.encode_table, t.syndrome_table, codec)


def decode(stored: torch.Tensor, codec: str, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    t = _tables(codec, stored.device)
    return call_op(torch.ops.ecc.decode, stored, t.encode_table, t.syndrome_table, codec, head_dim)


def quantize_encode(
    x: torch.Tensor, codec: str, group_size: int | None = None, symmetric: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Float ``[..., D]`` -> ``(storage, metadata)`` in one pass (``ecc_tensor.metadata``)."""
    return call_op(torch.ops.ecc.quantize_encode, x, *codec_tables(codec, x.device), codec, group_size, symmetric)


def quantize_encode_channels(
    x: torch.Tensor, codec: str, block: int, symmetric: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys ``[..., S, D]`` quantized per channel over blocks of ``block`` tokens (``S`` a
    multiple of it): (codewords ``[..., S, row_bytes]``, each block's scales ``[..., S / block,
    meta_bytes]``); :func:`ecc_tensor.attention.quantize_encode_channels` with the codec's tables."""
    tables = codec_tables(codec, x.device)
    return quantize_encode_channels_reference(x, block, CodecTables(*tables[:2]), CodecTables(*tables[2:]), codec, symmetric)


def decode_dequantize_channels(
    stored: torch.Tensor,
    meta: torch.Tensor,
    codec: str,
    head_dim: int,
    *,
    symmetric: bool = True,
    interpolate: bool = False,
    counters: torch.Tensor | None = None,
    dtype: torch.dtype = torch.float32,
    rows: torch.Tensor | None = None,
    block: int | None = None,
) -> torch.Tensor:
    """The read of :func:`quantize_encode_channels`'s keys: ``ecc::decode``, then
    :func:`ecc_tensor.attention.dequantize_channel_cache` (interpolation by the kernels on CUDA)."""
    counters = new_counters(stored.device) if counters is None else counters
    tables = codec_tables(codec, stored.device)  # channel scales at the full radius (ECCCache's stores say why)
    values, status = call_op(torch.ops.ecc.decode, stored, *tables[:2], codec, head_dim)
    return dequantize_channel_cache(values, status, meta, CodecTables(*tables[2:]), codec, symmetric, interpolate, counters, dtype,
                                    rows, block)


def decode_dequantize(
    stored: torch.Tensor,
    meta: torch.Tensor,
    codec: str,
    head_dim: int,
    *,
    groups: int = 1,
    symmetric: bool = True,
    interpolate: bool = False,
    counters: torch.Tensor | None = None,
    dtype: torch.dtype = torch.float32,
    seq_len: torch.Tensor | None = None,
) -> torch.Tensor:
    """Decode, correct, dequantize (and interpolate erasures along dim -2); see the op."""
    counters = new_counters(stored.device) if counters is None else counters
    return call_op(torch.ops.ecc.decode_dequantize,
        stored, meta, *codec_tables(codec, stored.device, interpolate), codec, head_dim, groups, symmetric, interpolate, counters,
        dtype, seq_len
    )


def inject(
    words: torch.Tensor, bits_per_word: int, fault: FaultModel, *, offset: int = 0, step: int | None = None,
    eligible: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``fault.apply`` as an op (Triton on CUDA); ``step=None`` advances the model's counter;
    ``eligible``: the ``msb`` model's bits per word position along the last dim."""
    step = fault.next_step() if step is None else step
    return call_op(torch.ops.ecc.inject,
        words, bits_per_word, fault.kind, fault.ber, fault.seed, offset, step,
        fault.burst_len, fault.msb_bits, fault.page_words, fault.page_fraction, eligible,
    )


def decode_attention(
    query: torch.Tensor,
    k: tuple[torch.Tensor, torch.Tensor],
    v: tuple[torch.Tensor, torch.Tensor],
    codec: str,
    *,
    groups: int = 1,
    symmetric: bool = True,
    interpolate: bool = False,
    seq_lens: torch.Tensor | None = None,
    counters: torch.Tensor | None = None,
    attn_mask: torch.Tensor | None = None,
    is_causal: bool = False,
    scale: float | None = None,
    config: str | None = None,
) -> torch.Tensor:
    """``ecc::decode_attention`` of ``query`` ``[B, Hq, Lq, D]`` over ``k`` and ``v``, each the
    ``(storage, metadata)`` pair :func:`quantize_encode` returns (``[B, Hkv, S, ...]``);
    ``seq_lens`` defaults to every stored row; ``config`` overrides the fused kernel's launch
    configuration (``"block_n,num_warps,num_stages[,waves[,maxnreg[,scale_rows]]]"``, for tuning)."""
    head_dim = query.shape[-1]
    if seq_lens is None:
        seq_lens = torch.full((query.shape[0],), k[0].shape[-2], dtype=torch.int64, device=query.device)
    counters = new_counters(query.device) if counters is None else counters
    return call_op(torch.ops.ecc.decode_attention,
        query, *k, *v, *codec_tables(codec, query.device, interpolate), codec, head_dim, groups, symmetric, interpolate, seq_lens,
        counters,
        attn_mask, is_causal, head_dim**-0.5 if scale is None else scale, config,
    )


def fp8_decode_attention(
    query: torch.Tensor,
    k: tuple[torch.Tensor, torch.Tensor],
    v: tuple[torch.Tensor, torch.Tensor],
    *,
    seq_lens: torch.Tensor | None = None,
    attn_mask: torch.Tensor | None = None,
    is_causal: bool = False,
    scale: float | None = None,
    config: str | None = None,
) -> torch.Tensor:
    """``ecc::fp8_decode_attention`` of ``query`` ``[B, Hq, Lq, D]`` over ``k`` and ``v``, each
    an ``(E4M3 words, scale)`` pair (``[B, Hkv, S, D]``, ``[B, Hkv, 1, 1]``: what
    :func:`ecc_tensor.fp8.to_e4m3` and :func:`ecc_tensor.fp8.head_scale` give); ``seq_lens``
    defaults to every stored row."""
    if seq_lens is None:
        seq_lens = torch.full((query.shape[0],), k[0].shape[-2], dtype=torch.int64, device=query.device)
    return call_op(torch.ops.ecc.fp8_decode_attention, query, *k, *v, seq_lens, attn_mask, is_causal,
                   query.shape[-1] ** -0.5 if scale is None else scale, config)


__all__ = ["decode", "decode_attention", "decode_dequantize", "encode", "fp8_decode_attention", "inject", "opaque_ops", "quantize_encode"]
