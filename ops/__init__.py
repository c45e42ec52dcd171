"""Triton kernels and their torch.library registrations (namespace ``ecc``).

Importing this package registers ``torch.ops.ecc.{encode, decode, quantize_encode,
decode_dequantize, inject}``. The functions below are the convenient Python entry points:
they look up the codec's device-resident tables and call the ops.
"""

from __future__ import annotations

import torch

from ecc_tensor.codecs import get_codec
from ecc_tensor.counters import new_counters
from ecc_tensor.faults import FaultModel

from . import library  # noqa: F401  (registers the ops)


def _tables(codec: str, device: torch.device):
    return get_codec(codec).tables(device)


def encode(values: torch.Tensor, codec: str) -> torch.Tensor:
    t = _tables(codec, values.device)
    return torch.ops.ecc.encode(values, t.encode_table, t.syndrome_table, codec)


def decode(stored: torch.Tensor, codec: str, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    t = _tables(codec, stored.device)
    return torch.ops.ecc.decode(stored, t.encode_table, t.syndrome_table, codec, head_dim)


def quantize_encode(
    x: torch.Tensor, codec: str, group_size: int | None = None, symmetric: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Float ``[..., D]`` -> ``(storage, scale, zero or None)`` in one pass."""
    t = _tables(codec, x.device)
    stored, scale, zero = torch.ops.ecc.quantize_encode(x, t.encode_table, t.syndrome_table, codec, group_size, symmetric)
    return stored, scale, None if symmetric else zero


def decode_dequantize(
    stored: torch.Tensor,
    scale: torch.Tensor,
    zero: torch.Tensor | None,
    codec: str,
    head_dim: int,
    *,
    interpolate: bool = False,
    counters: torch.Tensor | None = None,
    dtype: torch.dtype = torch.float32,
    seq_len: torch.Tensor | None = None,
) -> torch.Tensor:
    """Decode, correct, dequantize (and interpolate erasures along dim -2); see the op."""
    t = _tables(codec, stored.device)
    counters = new_counters(stored.device) if counters is None else counters
    return torch.ops.ecc.decode_dequantize(
        stored, scale, zero, t.encode_table, t.syndrome_table, codec, head_dim, interpolate, counters, dtype, seq_len
    )


def inject(
    words: torch.Tensor, bits_per_word: int, fault: FaultModel, *, offset: int = 0, step: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``fault.apply`` as an op (Triton on CUDA); ``step=None`` advances the model's counter."""
    step = fault.next_step() if step is None else step
    return torch.ops.ecc.inject(
        words, bits_per_word, fault.kind, fault.ber, fault.seed, offset, step,
        fault.burst_len, fault.msb_bits, fault.page_words, fault.page_fraction,
    )


__all__ = ["decode", "decode_dequantize", "encode", "inject", "quantize_encode"]
