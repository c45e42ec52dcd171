"""Attention over an ECC-protected KV cache: the PyTorch reference of ``ecc::decode_attention``.

Semantics (shared by the fused Triton kernel): queries ``[B, Hq, Lq, D]``; keys and values
stored as codewords ``[B, Hkv, S, row_bytes]``, their scales as codewords ``[B, Hkv, S,
meta_bytes]`` (:mod:`ecc_tensor.metadata`), with ``Hq`` a multiple of ``Hkv`` (grouped-query
attention: query head ``h`` reads KV head ``h // (Hq // Hkv)``). Sequence ``b`` holds
``seq_lens[b]`` written keys; the rest of the storage is neither read, counted nor attended.
With ``is_causal`` the queries are the *last* ``Lq`` positions (bottom-right alignment, as in
decoding and speculative verification): query ``i`` sees keys ``<= seq_lens[b] - Lq + i``.
``attn_mask`` (bool, True = attend, or additive float) broadcasts to ``[B, Hq, Lq, S]``. A
query row that sees no key at all gets zeros; a NaN among the scores it sees (a struck
full-precision word) makes it NaN, as in SDPA.
"""

from __future__ import annotations

import torch

from .codecs import CodecTables
from .counters import add_decode_counts
from .interp import interpolate_decoded, interpolate_erasures
from .metadata import MetadataLayout, value_groups
from .quant import dequantize_int4, dequantize_int4_channels, quantize_int4_channels
from .storage import StorageLayout, written_rows


def written_mask(seq_lens: torch.Tensor, seq: int) -> torch.Tensor:
    """``[B, 1, S, 1]`` bool: which rows of each sequence's storage hold written tokens."""
    return (torch.arange(seq, device=seq_lens.device) < seq_lens.view(-1, 1)).view(-1, 1, seq, 1)


def dequantize_cache(
    stored: torch.Tensor,
    meta: torch.Tensor,
    tables: CodecTables,
    meta_tables: CodecTables,
    codec: str,
    head_dim: int,
    groups: int,
    symmetric: bool,
    interpolate: bool,
    written: torch.Tensor | None,
    counters: torch.Tensor,
    dtype: torch.dtype,
) -> torch.Tensor:
    """The reference cache read (``ecc::decode_dequantize``, and K/V of the attention
    reference): decode ``[..., S, row_bytes]`` storage (``tables``: the values' code's) and
    its ``[..., S, meta_bytes]`` metadata (``meta_tables``: the metadata code's), add the
    counts of the rows where ``written`` (bool, broadcastable to ``[..., S, 1]``; None: all)
    holds, dequantize, and interpolate erasures (values of detected codewords, and every value
    of a group whose scale or zero point is detected) along the sequence with unwritten rows as
    no neighbours."""
    layout = StorageLayout(codec, head_dim)
    meta_layout = MetadataLayout(codec, groups, symmetric)
    values, status = layout.load(stored, tables)
    words, meta_status, meta_erased = meta_layout.load(meta, meta_tables)
    add_decode_counts(counters, status, written)
    add_decode_counts(counters, meta_status, written, metadata=True)
    scale, zero = meta_layout.split(words)
    out = dequantize_int4(values, scale, zero)
    if interpolate:
        erased = layout.erased_values(status, written) | value_groups(meta_layout.group_flags(meta_erased), head_dim)
        out = interpolate_erasures(out, erased, dim=-2)
    return out.to(dtype)


def quantize_encode_channels(
    x: torch.Tensor, block: int, tables: CodecTables, meta_tables: CodecTables, codec: str, symmetric: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys ``x`` ``[..., S, D]`` (``S`` a multiple of ``block``) quantized per channel over
    blocks of ``block`` tokens: (codewords ``[..., S, row_bytes]``, each block's scales (and
    zero points) ``[..., S / block, meta_bytes]`` stored as the metadata of a row of ``D``
    groups). :func:`dequantize_channel_cache` reads them back."""
    q, scale, zero = quantize_int4_channels(x.float().unflatten(-2, (-1, block)), symmetric)
    stored = torch.ops.ecc.encode(q.flatten(-3, -2), tables.encode_table, tables.syndrome_table, codec)
    return stored, MetadataLayout(codec, x.shape[-1], symmetric).store(scale, zero, meta_tables)


def dequantize_channel_cache(
    values: torch.Tensor,
    status: torch.Tensor,
    meta: torch.Tensor,
    meta_tables: CodecTables,
    codec: str,
    symmetric: bool,
    interpolate: bool,
    counters: torch.Tensor,
    dtype: torch.dtype,
    rows: torch.Tensor | None = None,
    block: int | None = None,
) -> torch.Tensor:
    """:func:`dequantize_cache` for keys quantized per channel (:mod:`ecc_tensor.quant_scheme`),
    from their decoded codewords (``values`` ``[..., S, D]`` and ``status``, of ``ecc::decode``),
    which hold blocks of ``block`` tokens (default ``S // blocks``; a preallocated cache's last
    block may be cut short), and ``meta`` ``[..., blocks, meta_bytes]``: one scale (and zero
    point) per channel and block, stored as the metadata of a row of ``D`` groups. A detected
    scale erases its channel in every token of its block. ``rows`` (int64 tensor broadcastable
    to ``[..., 1, 1]``), for a preallocated cache: only the first ``rows`` rows (whole blocks)
    are counted and used as interpolation neighbours. On CUDA the interpolation runs as the
    ops' kernels (:func:`ecc_tensor.interp.interpolate_decoded`)."""
    head_dim, seq = values.shape[-1], values.shape[-2]
    layout = StorageLayout(codec, head_dim)
    meta_layout = MetadataLayout(codec, head_dim, symmetric)
    blocks = meta.shape[-2]
    block = seq // blocks if block is None else block
    if blocks * block != seq:  # pad the cut-short last block (its rows are never written) to whole blocks
        if not (blocks - 1) * block < seq < blocks * block:
            raise ValueError(f"{blocks} blocks of {block} tokens do not cover {seq} rows")
        pad = blocks * block - seq
        values = torch.nn.functional.pad(values, (0, 0, 0, pad))
        status = torch.nn.functional.pad(status, (0, 0, 0, pad))
        rows = seq if rows is None else rows
    words, meta_status, meta_erased = meta_layout.load(meta, meta_tables)
    written = written_rows(values, rows)
    meta_written = None if rows is None else (torch.arange(blocks, device=values.device) * block < rows).unsqueeze(-1)
    add_decode_counts(counters, status, written)
    add_decode_counts(counters, meta_status, meta_written, metadata=True)
    scale, zero = meta_layout.split(words)
    by_block = values.unflatten(-2, (blocks, block))
    out = dequantize_int4_channels(by_block, scale, zero).flatten(-3, -2)
    if interpolate:
        channel_erased = meta_layout.group_flags(meta_erased).repeat_interleave(block, dim=-2)  # each block's flags on its rows
        lengths = None if rows is None else torch.as_tensor(rows, device=values.device)
        lengths = lengths[..., 0] if lengths is not None and lengths.dim() else lengths  # [..., 1] (rows') -> [...]
        out = interpolate_decoded(out, status, layout, channel_erased, lengths)
    return out[..., :seq, :].to(dtype)


def attention_reference(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    seq_lens: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    is_causal: bool = False,
    scale: float | None = None,
    compute_dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Dense attention with the semantics above, computed in ``compute_dtype``."""
    batch, q_heads, lq, head_dim = query.shape
    seq = key.shape[-2]
    group = q_heads // key.shape[1]
    positions = torch.arange(seq, device=query.device)
    lens = seq_lens.view(-1, 1, 1, 1)
    k = key.to(compute_dtype).repeat_interleave(group, dim=1)
    # The rows past a sequence's length are not read: as zeros, a value there that overflowed
    # (a struck scale) cannot make the product's zero weights NaN (0 * inf), as the kernel never
    # reads it. Hypothesis found it: golay24, zero points, flip rate 0.1, seed 7179.
    v = torch.where(positions.view(-1, 1) < lens, value.to(compute_dtype), 0.0).repeat_interleave(group, dim=1)
    scale = head_dim**-0.5 if scale is None else scale
    scores = (query.to(compute_dtype) @ k.transpose(-1, -2)) * scale
    visible = positions < lens
    if is_causal:
        visible = visible & (positions <= lens - lq + torch.arange(lq, device=query.device).view(-1, 1))
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            visible = visible & attn_mask
        else:
            scores = scores + attn_mask.to(compute_dtype)
    scores = scores.masked_fill(~visible, float("-inf"))
    # Rows that see nothing weigh nothing (as SDPA's own safe softmax); a NaN score (a struck
    # full-precision word) stays NaN, as in SDPA and the kernel.
    weights = torch.softmax(scores, dim=-1).masked_fill(torch.isneginf(scores).all(-1, keepdim=True), 0.0)
    return (weights @ v).to(query.dtype)


def with_window(x: torch.Tensor, window: torch.Tensor, first: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """``x`` ``[B, H, S, D]`` with rows ``[first[b], last[b])`` of each sequence taken from the
    full-precision ring buffer ``window`` ``[B, H, W, D]`` (token ``p`` at row ``p % W``)."""
    positions = torch.arange(x.shape[-2], device=x.device)
    held = window.index_select(2, positions % window.shape[-2]).to(x.dtype)
    inside = (positions >= first.view(-1, 1)) & (positions < last.view(-1, 1))
    return torch.where(inside[:, None, :, None], held, x)
