"""The ``ecc`` torch.library custom ops.

Each op is a ``torch.library.triton_op`` whose body launches the Triton kernel for CUDA
tensors and runs the PyTorch reference (:mod:`ecc_tensor.storage`, :mod:`ecc_tensor.quant`,
:mod:`ecc_tensor.faults`) for every other device. ``triton_op`` also registers the body as the
fake implementation and lets ``torch.compile`` trace into it, so the ops never break a graph.

The codec tables are explicit tensor arguments rather than globals the body looks up: inside
a compiled graph every tensor an op reads must be a graph input, and a tensor subclass or a
cache passes its own (device-resident, built-once) tables.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.library import triton_op

from ecc_tensor import counters as C
from ecc_tensor.codecs import CodecTables
from ecc_tensor.faults import FaultModel
from ecc_tensor.interp import interpolate_erasures
from ecc_tensor.quant import dequantize_int4, quantize_int4
from ecc_tensor.storage import StorageLayout, written_rows

from . import codec_kernels, fault_kernels


def _on_gpu(t: Tensor) -> bool:
    return t.device.type == "cuda"


@triton_op("ecc::encode", mutates_args=())
def encode(values: Tensor, encode_table: Tensor, syndrome_table: Tensor, codec: str) -> Tensor:
    """INT4 values ``[..., D]`` (uint8) -> storage ``[..., row_bytes]`` (uint8)."""
    if _on_gpu(values):
        return codec_kernels.triton_encode(values, encode_table, codec)
    return StorageLayout(codec, values.shape[-1]).store(values, CodecTables(encode_table, syndrome_table))


@triton_op("ecc::decode", mutates_args=())
def decode(stored: Tensor, encode_table: Tensor, syndrome_table: Tensor, codec: str, head_dim: int) -> tuple[Tensor, Tensor]:
    """Storage -> ``(values uint8 [..., D], status uint8 [..., codewords_per_row])``."""
    if _on_gpu(stored):
        return codec_kernels.triton_decode(stored, encode_table, syndrome_table, codec, head_dim)
    return StorageLayout(codec, head_dim).load(stored, CodecTables(encode_table, syndrome_table))


@triton_op("ecc::quantize_encode", mutates_args=())
def quantize_encode(
    x: Tensor, encode_table: Tensor, syndrome_table: Tensor, codec: str, group_size: int | None, symmetric: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """Float ``[..., D]`` -> ``(storage uint8, scale f32 [..., G], zero f32 [..., G] or [0] if symmetric)``."""
    if _on_gpu(x):
        return codec_kernels.triton_quantize_encode(x, encode_table, codec, group_size, symmetric)
    q, scale, zero = quantize_int4(x, group_size, symmetric)
    stored = StorageLayout(codec, x.shape[-1]).store(q, CodecTables(encode_table, syndrome_table))
    return stored, scale, zero if zero is not None else scale.new_empty(0)


@triton_op("ecc::decode_dequantize", mutates_args=("counters",))
def decode_dequantize(
    stored: Tensor,
    scale: Tensor,
    zero: Tensor | None,
    encode_table: Tensor,
    syndrome_table: Tensor,
    codec: str,
    head_dim: int,
    interpolate: bool,
    counters: Tensor,
    dtype: torch.dtype,
    seq_len: Tensor | None = None,
) -> Tensor:
    """Storage + scales -> values ``[..., D]`` in ``dtype``; decode counts are added to ``counters``.

    ``zero`` is None or empty for symmetric quantization. With ``interpolate``, values of
    detected codewords are replaced by their temporal neighbours' mean along dim -2 (the
    sequence axis), computed in float32 before the cast. ``seq_len`` (int64 scalar tensor),
    for a preallocated cache: only rows ``< seq_len`` along dim -2 are counted and used as
    interpolation neighbours.
    """
    zero = zero if zero is not None and zero.numel() else None
    if _on_gpu(stored):
        return codec_kernels.triton_decode_dequantize(
            stored, scale, zero, encode_table, syndrome_table, codec, head_dim, interpolate, counters, dtype, seq_len
        )
    layout = StorageLayout(codec, head_dim)
    values, status = layout.load(stored, CodecTables(encode_table, syndrome_table))
    written = written_rows(stored, seq_len)
    counters.add_(C.decode_counts(status, written))
    out = dequantize_int4(values, scale, zero)
    if interpolate:
        out = interpolate_erasures(out, layout.erased_values(status, written), dim=-2)
    return out.to(dtype)


@triton_op("ecc::inject", mutates_args=())
def inject(
    words: Tensor,
    bits_per_word: int,
    kind: str,
    ber: float,
    seed: int,
    offset: int,
    step: int,
    burst_len: int,
    msb_bits: int,
    page_words: int,
    page_fraction: float,
) -> tuple[Tensor, Tensor]:
    """Flip bits of stored ``words`` as ``FaultModel(kind, ber, seed, ...)`` would at
    (``offset``, ``step``); returns ``(flipped words, flipped bit count int64 [])``."""
    model = FaultModel(kind, ber, seed, burst_len=burst_len, msb_bits=msb_bits, page_words=page_words, page_fraction=page_fraction)
    if _on_gpu(words) and fault_kernels.supports(model, bits_per_word):
        return fault_kernels.triton_inject(words, bits_per_word, model, offset, step)
    return model.apply(words, bits_per_word, offset=offset, step=step)
