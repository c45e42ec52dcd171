"""INT4 quantization per token and per KV head, with optional groups along the last dim, or
per channel over a block of tokens (KIVI's and KVQuant's keys).

Per token: the last dimension (head_dim) is split into groups of ``group_size`` values (one
group when ``group_size`` is None); each group gets its own scale (and zero point when
asymmetric). Per channel (:func:`quantize_int4_channels`): each channel of a block of tokens
``[..., T, D]`` gets its own scale, so an outlier channel sets only its own step.

* symmetric (the paper's): ``s = max|x| / 7``, ``q = clamp(round(x / s), -8, 7) + 8``,
  ``x^ = (q - 8) s``; ``zero`` is None.
* asymmetric: ``s = (max - min) / 15``, ``z = -min / s`` (a float, so no rounding of the
  zero point), ``q = clamp(round(x / s + z), 0, 15)``, ``x^ = (q - z) s``.

Both keep every value within half a step (``s / 2``) of its input. Scales and zero points
are float32; an all-zero group gets scale 1 so that nothing divides by zero.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

SYMMETRIC_ZERO = 8.0
_SYMMETRIC_MAX = 7.0
_LEVELS = 15.0


class QuantizedInt4(NamedTuple):
    q: torch.Tensor  # uint8 [..., D] in [0, 15]
    scale: torch.Tensor  # float32 [..., D // group_size]
    zero: torch.Tensor | None  # float32 like scale (asymmetric) or None (symmetric: 8)


def _grouped(x: torch.Tensor, group_size: int | None) -> torch.Tensor:
    if x.dim() == 0:
        raise ValueError("quantization needs at least one dimension (the channel / head_dim axis)")
    dim = x.shape[-1]
    size = dim if group_size is None else group_size
    if not isinstance(size, int) or size < 1 or dim % size:
        raise ValueError(f"group_size must be a positive divisor of the last dimension {dim}, got {group_size!r}")
    return x.reshape(*x.shape[:-1], dim // size, size)


def quantize_int4(x: torch.Tensor, group_size: int | None = None, symmetric: bool = True) -> QuantizedInt4:
    """Quantize ``x`` ``[..., D]`` to INT4 codes, one scale per ``group_size`` values of the last dim."""
    if not x.dtype.is_floating_point:
        raise ValueError(f"quantize_int4 expects a floating-point tensor, got {x.dtype}")
    g = _grouped(x, group_size).to(torch.float32)
    if symmetric:
        amax = g.abs().amax(-1, keepdim=True)
        # Over a tensor, not a Python number: CUDA divides by a scalar as a multiplication by
        # its reciprocal, one ulp off the CPU's (and the Triton kernels') IEEE quotient.
        scale = torch.where(amax > 0, amax / torch.full_like(amax, _SYMMETRIC_MAX), torch.ones_like(amax))
        q = torch.clamp(torch.round(g / scale), -SYMMETRIC_ZERO, _SYMMETRIC_MAX) + SYMMETRIC_ZERO
        zero = None
    else:
        lo, hi = g.amin(-1, keepdim=True), g.amax(-1, keepdim=True)
        scale = torch.where(hi > lo, (hi - lo) / torch.full_like(hi, _LEVELS), torch.ones_like(hi))
        zero = (0.0 - lo) / scale  # 0 - lo, not -lo: +0.0 where lo is 0, as Triton's negation (0 - x) gives
        q = torch.clamp(torch.round(g / scale + zero), 0.0, _LEVELS)
        zero = zero.squeeze(-1)
    return QuantizedInt4(q.reshape(x.shape).to(torch.uint8), scale.squeeze(-1), zero)


def dequantize_int4(
    q: torch.Tensor,
    scale: torch.Tensor,
    zero: torch.Tensor | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Inverse of :func:`quantize_int4`; the group size is ``q.shape[-1] // scale.shape[-1]``."""
    if q.shape[:-1] != scale.shape[:-1] or scale.shape[-1] == 0 or q.shape[-1] % scale.shape[-1]:
        raise ValueError(f"scale shape {tuple(scale.shape)} does not match codes of shape {tuple(q.shape)}")
    groups = scale.shape[-1]
    g = q.reshape(*q.shape[:-1], groups, -1).to(torch.float32)
    offset = SYMMETRIC_ZERO if zero is None else zero.unsqueeze(-1)
    return ((g - offset) * scale.unsqueeze(-1)).reshape(q.shape).to(dtype)


def quantize_int4_channels(x: torch.Tensor, symmetric: bool = True) -> QuantizedInt4:
    """Quantize a block of tokens ``x`` ``[..., T, D]`` per channel: one scale (and zero point)
    per channel over the block's ``T`` tokens, ``scale`` ``[..., D]``; the same rounding as
    :func:`quantize_int4`, so every value stays within half a step of its input."""
    if x.dim() < 2:
        raise ValueError(f"per-channel quantization needs a block of tokens [..., T, D], got shape {tuple(x.shape)}")
    q, scale, zero = quantize_int4(x.transpose(-1, -2), None, symmetric)
    return QuantizedInt4(q.transpose(-1, -2), scale.squeeze(-1), None if zero is None else zero.squeeze(-1))


def dequantize_int4_channels(q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor | None = None,
                             dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Inverse of :func:`quantize_int4_channels`: codes ``[..., T, D]``, ``scale`` (and
    ``zero``) ``[..., D]``."""
    if q.dim() < 2 or scale.shape != q.shape[:-2] + q.shape[-1:]:
        raise ValueError(f"per-channel scale shape {tuple(scale.shape)} does not match codes of shape {tuple(q.shape)}")
    offset = SYMMETRIC_ZERO if zero is None else zero.unsqueeze(-2)
    return ((q.to(torch.float32) - offset) * scale.unsqueeze(-2)).to(dtype)
