"""The ``ecc`` torch.library custom ops.

Each op is a ``torch.library.triton_op`` whose body launches the Triton kernel for CUDA
tensors and runs the PyTorch reference (:mod:`ecc_tensor.storage`, :mod:`ecc_tensor.quant`,
:mod:`ecc_tensor.faults`) for every other device. ``ecc::decode_attention`` over storage the
fused kernel does not read (SECDED(72,64) at other head_dims than powers of two from 64, with
grouped scales, or with keys per channel over blocks of rows not a multiple of 32:
``attention.has_kernel``) decodes K/V with the codec kernels (per-channel keys: the reference)
and attends with the reference. ``triton_op`` also registers the body as the
fake implementation and lets ``torch.compile`` trace into it, so the ops never break a graph.

The codec tables are explicit tensor arguments rather than globals the body looks up: inside
a compiled graph every tensor an op reads must be a graph input, and a tensor subclass or a
cache passes its own (device-resident, built-once) tables. Ops that read or write scales take
the metadata code's tables too (``meta_encode_table``, ``meta_syndrome_table``: those of
``ecc_tensor.metadata.metadata_codec(codec)``).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.library import triton_op

from ecc_tensor.attention import attention_reference, dequantize_cache, dequantize_channel_cache, with_window, written_mask
from ecc_tensor.codecs import CodecTables
from ecc_tensor.counters import COUNTER_NAMES
from ecc_tensor.faults import FaultModel
from ecc_tensor.fp8 import E4M3, from_e4m3
from ecc_tensor.metadata import MetadataLayout
from ecc_tensor.quant import quantize_int4
from ecc_tensor.storage import StorageLayout, written_rows

from . import attention, codec_kernels, fault_kernels
from .attention.fp8 import triton_fp8_decode_attention


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
    """Storage -> ``(values uint8 [..., D], status uint8 [..., codewords_per_row])``; status 0
    clean, 1 corrected, 2 detected, 3 parity-only (``ecc_tensor.codecs.STATUS_PARITY_ONLY``)."""
    if _on_gpu(stored):
        return codec_kernels.triton_decode(stored, encode_table, syndrome_table, codec, head_dim)
    return StorageLayout(codec, head_dim).load(stored, CodecTables(encode_table, syndrome_table))


@triton_op("ecc::quantize_encode", mutates_args=())
def quantize_encode(
    x: Tensor, encode_table: Tensor, syndrome_table: Tensor, meta_encode_table: Tensor, meta_syndrome_table: Tensor, codec: str,
    group_size: int | None, symmetric: bool,
) -> tuple[Tensor, Tensor]:
    """Float ``[..., D]`` -> ``(storage uint8 [..., row_bytes], metadata uint8 [..., meta_bytes])``:
    the INT4 values in codewords and their scales (and zero points unless ``symmetric``) in
    codewords of the metadata code (``ecc_tensor.metadata``)."""
    if _on_gpu(x):
        return codec_kernels.triton_quantize_encode(x, encode_table, meta_encode_table, codec, group_size, symmetric)
    q, scale, zero = quantize_int4(x, group_size, symmetric)
    stored = StorageLayout(codec, x.shape[-1]).store(q, CodecTables(encode_table, syndrome_table))
    meta_tables = CodecTables(meta_encode_table, meta_syndrome_table)
    return stored, MetadataLayout(codec, scale.shape[-1], symmetric).store(scale, zero, meta_tables)


@triton_op("ecc::decode_dequantize", mutates_args=("counters",))
def decode_dequantize(
    stored: Tensor,
    meta: Tensor,
    encode_table: Tensor,
    syndrome_table: Tensor,
    meta_encode_table: Tensor,
    meta_syndrome_table: Tensor,
    codec: str,
    head_dim: int,
    groups: int,
    symmetric: bool,
    interpolate: bool,
    counters: Tensor,
    dtype: torch.dtype,
    seq_len: Tensor | None = None,
) -> Tensor:
    """Storage + metadata -> values ``[..., D]`` in ``dtype``; value and metadata decode counts
    are added to ``counters``.

    ``groups`` scales per row (and as many zero points unless ``symmetric``) are decoded from
    ``meta``. With ``interpolate``, values of detected codewords, and every value of a group
    whose scale or zero point is detected, are replaced by their temporal neighbours' mean along
    dim -2 (the sequence axis), computed in float32 before the cast. ``seq_len`` (int64 scalar
    tensor), for a preallocated cache: only rows ``< seq_len`` along dim -2 are counted and used
    as interpolation neighbours.
    """
    _check_counters(counters)
    _check_metadata(stored, meta, codec, groups, symmetric)
    if _on_gpu(stored):
        return codec_kernels.triton_decode_dequantize(
            stored, meta, encode_table, syndrome_table, meta_encode_table, meta_syndrome_table, codec, head_dim, groups, symmetric,
            interpolate, counters, dtype, seq_len,
        )
    return dequantize_cache(
        stored, meta, CodecTables(encode_table, syndrome_table), CodecTables(meta_encode_table, meta_syndrome_table), codec,
        head_dim, groups, symmetric, interpolate, written_rows(stored, seq_len), counters, dtype,
    )


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
    eligible: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Flip bits of stored ``words`` as ``FaultModel(kind, ber, seed, ...).apply(...)`` would at
    (``offset``, ``step``, ``eligible``: for ``msb``, the value-MSB bits of each word position
    along the last dim, ``[words.shape[-1]]``); returns ``(flipped words, flipped bit count
    int64 [])``."""
    model = FaultModel(kind, ber, seed, burst_len=burst_len, msb_bits=msb_bits, page_words=page_words, page_fraction=page_fraction)
    if _on_gpu(words) and fault_kernels.supports(model, bits_per_word):
        return fault_kernels.triton_inject(words, bits_per_word, model, offset, step, eligible)
    return model.apply(words, bits_per_word, offset=offset, step=step, eligible=eligible)


def _check_counters(counters: Tensor) -> None:
    if counters.shape != (len(COUNTER_NAMES),) or counters.dtype != torch.int64 or not counters.is_contiguous():
        # The kernels add to them in place: a copy would swallow the counts.
        raise ValueError(f"counters must be a contiguous int64 [{len(COUNTER_NAMES)}] tensor (ecc_tensor.counters.new_counters), "
                         f"got {counters.dtype} {tuple(counters.shape)} strides {counters.stride()}")


def _check_metadata(stored: Tensor, meta: Tensor, codec: str, groups: int, symmetric: bool) -> None:
    if groups < 1:
        raise ValueError(f"groups must be >= 1, got {groups}")
    want = MetadataLayout(codec, groups, symmetric).row_bytes
    if meta.dtype != torch.uint8 or meta.shape[:-1] != stored.shape[:-1] or meta.shape[-1] != want:
        raise ValueError(f"metadata of {groups} group(s), {'symmetric' if symmetric else 'asymmetric'}, in {codec} takes uint8 "
                         f"[..., {want}] rows matching storage {tuple(stored.shape)}; got {meta.dtype} {tuple(meta.shape)}")


def _check_mask(attn_mask: Tensor | None, shape: tuple[int, ...]) -> None:
    """``attn_mask`` must expand to ``shape`` (the kernels' ``expand``): no more dims, each 1 or
    equal. Checked by hand where the sizes are ints: ``torch.broadcast_shapes`` took 45 us of an
    eager decoding step's 650 a layer (``tools/host_overhead.py --steps``), and it accepts a mask
    larger than ``shape`` where ``shape`` is 1."""
    if attn_mask is None:
        return
    sizes = tuple(attn_mask.shape)
    if all(type(d) is int for d in (*sizes, *shape)):
        fits = len(sizes) <= len(shape) and all(a == 1 or a == b for a, b in zip(reversed(sizes), reversed(shape)))
    else:  # symbolic sizes under torch.compile: torch's own check, which guards as it should
        try:
            torch.broadcast_shapes(sizes, shape)
            fits = len(sizes) <= len(shape)
        except RuntimeError:
            fits = False
    if not fits:
        raise ValueError(f"attn_mask {sizes} does not broadcast to {shape}")


def _check_attention_args(query, k_stored, k_meta, v_stored, v_meta, codec, head_dim, groups, symmetric, seq_lens, counters, attn_mask,
                          key_channel_block=0, quantized_lens=None, k_window=None, v_window=None):
    if query.dim() != 4 or k_stored.dim() != 4 or v_stored.dim() != 4:
        raise ValueError("decode_attention takes query [B, Hq, Lq, D] and K/V storage [B, Hkv, S, row_bytes]")
    batch, q_heads, _, dim = query.shape
    if dim != head_dim:
        raise ValueError(f"query head_dim {dim} != the cache's head_dim {head_dim}")
    if k_stored.shape != v_stored.shape or k_stored.shape[0] != batch:
        raise ValueError(f"K/V storage {tuple(k_stored.shape)} / {tuple(v_stored.shape)} do not match the query batch {batch}")
    kv_heads, seq, row_bytes = k_stored.shape[1:]
    if q_heads % kv_heads:
        raise ValueError(f"query heads ({q_heads}) must be a multiple of KV heads ({kv_heads})")
    if row_bytes != StorageLayout(codec, head_dim).row_bytes:
        want = StorageLayout(codec, head_dim).row_bytes
        raise ValueError(f"{codec} rows of head_dim {head_dim} take {want} bytes, storage has {row_bytes}")
    if head_dim % groups:
        raise ValueError(f"{groups} scale groups do not divide head_dim {head_dim}")
    if isinstance(key_channel_block, bool) or not isinstance(key_channel_block, int) or key_channel_block < 0:
        raise ValueError(f"key_channel_block must be a non-negative int (0: keys quantized per token), got {key_channel_block!r}")
    if key_channel_block:
        want = (*k_stored.shape[:2], -(-seq // key_channel_block), MetadataLayout(codec, head_dim, symmetric).row_bytes)
        if k_meta.dtype != torch.uint8 or tuple(k_meta.shape) != want:
            raise ValueError(f"keys quantized per channel over blocks of {key_channel_block} rows take uint8 metadata {want} (one row of "
                             f"{head_dim} channel scales a block); got {k_meta.dtype} {tuple(k_meta.shape)}")
    else:
        _check_metadata(k_stored, k_meta, codec, groups, symmetric)
    _check_metadata(v_stored, v_meta, codec, groups, symmetric)
    for name, lens in (("seq_lens", seq_lens), ("quantized_lens", quantized_lens)):
        if lens is not None and (lens.shape != (batch,) or lens.dtype != torch.int64):
            raise ValueError(f"{name} must be int64 [batch={batch}], got {lens.dtype} {tuple(lens.shape)}")
    if (k_window is None) != (v_window is None) or (k_window is None) != (quantized_lens is None):
        raise ValueError("a full-precision window takes quantized_lens, k_window and v_window together")
    for name, window in (("k_window", k_window), ("v_window", v_window)):
        if window is not None and (window.dim() != 4 or tuple(window.shape[:2]) != (batch, kv_heads) or window.shape[3] != head_dim
                                   or window.shape[2] < 1 or not window.dtype.is_floating_point):
            raise ValueError(f"{name} must be a floating [batch={batch}, kv_heads={kv_heads}, rows, head_dim={head_dim}] ring buffer, "
                             f"got {window.dtype} {tuple(window.shape)}")
    _check_counters(counters)
    _check_mask(attn_mask, (batch, q_heads, query.shape[2], seq))


@triton_op("ecc::decode_attention", mutates_args=("counters",))
def decode_attention(
    query: Tensor,
    k_stored: Tensor,
    k_meta: Tensor,
    v_stored: Tensor,
    v_meta: Tensor,
    encode_table: Tensor,
    syndrome_table: Tensor,
    meta_encode_table: Tensor,
    meta_syndrome_table: Tensor,
    codec: str,
    head_dim: int,
    groups: int,
    symmetric: bool,
    interpolate: bool,
    seq_lens: Tensor,
    counters: Tensor,
    attn_mask: Tensor | None,
    is_causal: bool,
    scale: float,
    config: str | None = None,
    key_channel_block: int = 0,
    quantized_lens: Tensor | None = None,
    k_window: Tensor | None = None,
    v_window: Tensor | None = None,
) -> Tensor:
    """Attention of a few query tokens over K/V kept as codewords, their scales too
    (``ecc_tensor.attention`` gives the semantics). On CUDA one fused kernel decodes, corrects,
    dequantizes (and interpolates) K/V and their scales in registers and attends,
    FlashDecoding style; elsewhere the reference dequantizes and attends in float32. Decode
    counts of K and V are added to ``counters``; a ``seq_lens[b]`` past the stored rows attends
    (and counts) every stored row, as the reference. ``config``
    (``"block_n,num_warps,num_stages[,waves[,maxnreg[,scale_rows]]]"``) overrides the fused kernel's launch
    configuration, for tuning runs.

    Quantization schemes (:mod:`ecc_tensor.quant_scheme`): ``key_channel_block`` > 0 says the
    keys are quantized per channel over blocks of that many rows (``k_meta`` then holds one
    row of ``head_dim`` channel scales per block); with ``quantized_lens`` (int64 ``[B]``) only
    rows ``[0, quantized_lens[b])`` are codewords, and the window's tokens ``[quantized_lens[b],
    seq_lens[b])`` are read from ``k_window``/``v_window`` ``[B, Hkv, W, D]``, token ``p`` at
    row ``p % W``, as stored."""
    _check_attention_args(query, k_stored, k_meta, v_stored, v_meta, codec, head_dim, groups, symmetric, seq_lens, counters, attn_mask,
                          key_channel_block, quantized_lens, k_window, v_window)
    if config is not None:
        attention.parse_config(config)  # a bad string fails on every device
    channel_keys = key_channel_block > 0
    if _on_gpu(query) and attention.has_kernel(codec, head_dim, groups, k_stored, v_stored, channel_block=key_channel_block):
        return attention.triton_decode_attention(
            query, k_stored, k_meta, v_stored, v_meta, encode_table, syndrome_table, meta_encode_table, meta_syndrome_table, codec,
            head_dim, groups, symmetric, interpolate, seq_lens, counters, attn_mask, is_causal, scale, config,
            key_channel_block, quantized_lens, k_window, v_window,
        )
    rows = seq_lens if quantized_lens is None else quantized_lens
    if _on_gpu(query) and not channel_keys:  # a codec the fused attention does not know: decode with the codec kernels
        k, v = (_decode_for_attention(stored, meta, encode_table, syndrome_table, meta_encode_table, meta_syndrome_table, codec,
                                      head_dim, groups, symmetric, interpolate, rows, counters, query.dtype)
                for stored, meta in ((k_stored, k_meta), (v_stored, v_meta)))
    else:
        tables = CodecTables(encode_table, syndrome_table)
        meta_tables = CodecTables(meta_encode_table, meta_syndrome_table)
        written = written_mask(rows, k_stored.shape[-2])
        if channel_keys:
            values, status = StorageLayout(codec, head_dim).load(k_stored, tables)
            k = dequantize_channel_cache(values, status, k_meta, meta_tables, codec, symmetric, interpolate, counters, query.dtype,
                                         rows=rows.view(-1, 1, 1), block=key_channel_block)
        else:
            k = dequantize_cache(k_stored, k_meta, tables, meta_tables, codec, head_dim, groups, symmetric, interpolate, written,
                                 counters, query.dtype)
        v = dequantize_cache(v_stored, v_meta, tables, meta_tables, codec, head_dim, groups, symmetric, interpolate, written, counters,
                             query.dtype)
    if k_window is not None:
        k, v = (with_window(x, window, rows, seq_lens) for x, window in ((k, k_window), (v, v_window)))
    return attention_reference(query, k, v, seq_lens, attn_mask, is_causal, scale)


def _decode_for_attention(stored, meta, encode_table, syndrome_table, meta_encode_table, meta_syndrome_table, codec, head_dim, groups,
                          symmetric, interpolate, seq_lens, counters, dtype):
    """K or V decoded by the codec kernels for the reference attention, in one launch of each:
    each batch row's written rows (``seq_lens``) counted and used as interpolation neighbours."""
    return codec_kernels.triton_decode_dequantize(stored, meta, encode_table, syndrome_table, meta_encode_table, meta_syndrome_table,
                                                  codec, head_dim, groups, symmetric, interpolate, counters, dtype, seq_lens)


def _check_fp8_attention_args(query, k_words, k_scale, v_words, v_scale, seq_lens, attn_mask):
    if query.dim() != 4 or k_words.dim() != 4 or v_words.dim() != 4:
        raise ValueError("fp8_decode_attention takes query [B, Hq, Lq, D] and K/V words [B, Hkv, S, D]")
    batch, q_heads, lq, head_dim = query.shape
    if not query.dtype.is_floating_point or query.dtype == E4M3:
        raise ValueError(f"the query must be float16, bfloat16 or float32, got {query.dtype}")
    for name, words in (("k_words", k_words), ("v_words", v_words)):
        if words.dtype != E4M3:
            raise ValueError(f"{name} must be {E4M3} (ecc_tensor.fp8.to_e4m3), got {words.dtype}")
    if k_words.shape != v_words.shape or k_words.shape[0] != batch or k_words.shape[3] != head_dim:
        raise ValueError(f"K/V words {tuple(k_words.shape)} / {tuple(v_words.shape)} do not match the query {tuple(query.shape)}")
    kv_heads, seq = k_words.shape[1:3]
    if q_heads % kv_heads:
        raise ValueError(f"query heads ({q_heads}) must be a multiple of KV heads ({kv_heads})")
    for name, scale in (("k_scale", k_scale), ("v_scale", v_scale)):
        if not scale.dtype.is_floating_point or scale.dim() != 4 or scale.shape[2:] != (1, 1) or any(
                n not in (1, want) for n, want in zip(scale.shape[:2], (batch, kv_heads))):
            raise ValueError(f"{name} must be a float [batch, kv_heads, 1, 1] scale (ecc_tensor.fp8.head_scale) or broadcast to it, got "
                             f"{scale.dtype} {tuple(scale.shape)}")
    if seq_lens.shape != (batch,) or seq_lens.dtype != torch.int64:
        raise ValueError(f"seq_lens must be int64 [batch={batch}], got {seq_lens.dtype} {tuple(seq_lens.shape)}")
    _check_mask(attn_mask, (batch, q_heads, lq, seq))


@triton_op("ecc::fp8_decode_attention", mutates_args=())
def fp8_decode_attention(
    query: Tensor,
    k_words: Tensor,
    k_scale: Tensor,
    v_words: Tensor,
    v_scale: Tensor,
    seq_lens: Tensor,
    attn_mask: Tensor | None,
    is_causal: bool,
    scale: float,
    config: str | None = None,
) -> Tensor:
    """Attention of a few query tokens over an FP8 (E4M3) cache, the ``fp8`` mode's words
    ``[B, Hkv, S, D]`` with a float32 scale per (sequence, KV head) (``k_scale``, ``v_scale``:
    ``[B, Hkv, 1, 1]``, :func:`ecc_tensor.fp8.head_scale`), rows ``[0, seq_lens[b])`` attended
    (every stored row where ``seq_lens[b]`` is past them),
    as ``ecc::decode_attention`` attends codewords (mask, causality, GQA, its semantics). On
    CUDA one fused kernel reads the words (``ops/attention/fp8.py``); elsewhere the reference
    dequantizes in float32 and attends. ``config`` overrides the kernel's launch configuration
    (``"block_n,num_warps,num_stages[,waves[,maxnreg[,scale_rows]]]"``)."""
    _check_fp8_attention_args(query, k_words, k_scale, v_words, v_scale, seq_lens, attn_mask)
    if config is not None:
        attention.parse_config(config)  # a bad string fails on every device
    if _on_gpu(query):
        return triton_fp8_decode_attention(query, k_words, k_scale, v_words, v_scale, seq_lens, attn_mask, is_causal, scale, config)
    k, v = (from_e4m3(words, s, torch.float32) for words, s in ((k_words, k_scale), (v_words, v_scale)))
    return attention_reference(query, k, v, seq_lens, attn_mask, is_causal, scale)


# Every op above: what ``opaque.install`` scopes ``opaque_ops`` to.
OPS = (encode, decode, quantize_encode, decode_dequantize, inject, decode_attention, fp8_decode_attention)
