"""The blocks path's deferred launch: SECDED(72,64)'s codewords decoded one by one, dequantized
in float32 in row order, detected ones interpolated from their neighbours along the sequence."""

from __future__ import annotations

import triton
import triton.language as tl

from ..codec_kernels import (
    _block_decode,
)
from .units import _group_scale, _meta_rows_detected, _neighbour_found, _slot_values


@triton.jit
def _block_codewords(base, rows, mask, c, syn_ptr, ROW_BYTES: tl.constexpr, DATA_BYTES: tl.constexpr, OFFSETS: tl.constexpr):
    """Codewords ``c`` of ``rows`` (``[N, C]``) of the blocks layout, decoded as the reference:
    (data bits 0-31, 32-63, status). The rows are whole aligned words (``blocks_path_applies``)."""
    row_ptrs = base + rows.to(tl.int64) * ROW_BYTES
    words = row_ptrs.to(tl.pointer_type(tl.int32)) + 2 * c
    lo = tl.load(words, mask=mask, other=0)
    hi = tl.load(words + 1, mask=mask, other=0)
    check = tl.load(row_ptrs + DATA_BYTES + c, mask=mask, other=0).to(tl.int32)
    return _block_decode(lo, hi, check, OFFSETS, syn_ptr, mask)


@triton.jit
def _per_value(x):
    """``[N, C]`` per codeword -> ``[N, 16 C]`` per value (row order)."""
    N: tl.constexpr = x.shape[0]
    C: tl.constexpr = x.shape[1]
    return tl.reshape(tl.broadcast_to(x[:, :, None], [N, C, 16]), [N, 16 * C])


@triton.jit
def _block_nibbles(lo, hi):
    """Codewords ``[N, C]`` (their two data words) -> their INT4 values ``[N, 16 C]`` in row
    order, as int32."""
    N: tl.constexpr = lo.shape[0]
    C: tl.constexpr = lo.shape[1]
    words = tl.reshape(tl.join(lo, hi), [N, 2 * C])
    return tl.reshape((words[:, :, None] >> (4 * tl.arange(0, 8))[None, None, :]) & 15, [N, 16 * C])


@triton.jit
def _block_values(lo, hi):
    """``_block_nibbles`` as float32."""
    return _block_nibbles(lo, hi).to(tl.float32)


@triton.jit
def _value_codewords(base, rows, mask, col, syn_ptr, ROW_BYTES: tl.constexpr, DATA_BYTES: tl.constexpr, OFFSETS: tl.constexpr):
    """Per value ``col`` of ``rows``: its INT4 value in its codeword as decoded, and that
    codeword's status. Each codeword is decoded once per value it holds: this serves the rare
    search for the neighbours of values erased one by one (a detected channel scale)."""
    lo, hi, status = _block_codewords(base, rows, mask, col // 16, syn_ptr, ROW_BYTES, DATA_BYTES, OFFSETS)
    word = tl.where((col % 16) < 8, lo, hi)
    return (word >> (4 * (col % 8))) & 15, status


@triton.jit
def _spread(x, GROUPS: tl.constexpr):
    """Per codeword -> per value with one scale a row (``GROUPS`` 1); already per value with a
    scale per channel."""
    if GROUPS == 1:
        x = _per_value(x)
    return x


@triton.jit
def _block_neighbour_rows(base, meta_base, rows, c, erased, seq_len, syn_ptr, menc_ptr, msyn_ptr, ROW_BYTES: tl.constexpr,
                          DATA_BYTES: tl.constexpr, OFFSETS: tl.constexpr, HAS_ZERO: tl.constexpr, MK: tl.constexpr,
                          MPO_SYN: tl.constexpr, META_UNITS: tl.constexpr, MUV: tl.constexpr, MUB: tl.constexpr, MRB: tl.constexpr,
                          META_LANES: tl.constexpr, GROUPS: tl.constexpr, ROW_DIV: tl.constexpr):
    """For each erased codeword ``[N, C]`` of the blocks layout (one scale a row, ``GROUPS`` 1),
    or each erased value ``[N, D]`` (``c`` the values' columns: keys per channel, ``GROUPS``
    ``D``, ``ROW_DIV`` rows per row of channel scales): the nearest row before and after it
    (below ``seq_len``) where it is not erased (neither its codeword detected nor its row's,
    or its channel's, scale), or -1, as ``_neighbour_rows`` does for units."""
    prev_row = tl.full(erased.shape, -1, tl.int32)
    next_row = tl.full(erased.shape, -1, tl.int32)
    pend_prev = erased
    pend_next = erased
    t = 1
    while tl.max((pend_prev | pend_next).to(tl.int32)) > 0:
        for direction in range(2):  # a loop, not unrolled: one copy of the decode (compile time)
            back = direction == 0
            r = tl.where(back, rows[:, None] - t, rows[:, None] + t)
            ok = tl.where(back, pend_prev & (r >= 0), pend_next & (r < seq_len))
            if GROUPS == 1:
                _, _, status = _block_codewords(base, r, ok, c, syn_ptr, ROW_BYTES, DATA_BYTES, OFFSETS)
                # A row's scale decoded once per row where any of its codewords looks (_neighbour_rows).
                looked = tl.max(ok.to(tl.int32), axis=1)[:, None] != 0
                meta_det = _meta_rows_detected(meta_base, r, looked, menc_ptr, msyn_ptr, MK, MPO_SYN, META_UNITS, MUB, MRB, META_LANES)
            else:
                _, status = _value_codewords(base, r, ok, c, syn_ptr, ROW_BYTES, DATA_BYTES, OFFSETS)
                _, _, meta_det = _group_scale(meta_base, r, ok, c, menc_ptr, msyn_ptr, MK, MPO_SYN, True, GROUPS, HAS_ZERO, MUV, MUB, MRB,
                                              META_LANES, META_UNITS, ROW_DIV)
            prev_row, next_row, pend_prev, pend_next, _ = _neighbour_found(back, r, ok, (status == 2) | meta_det, prev_row, next_row,
                                                                           pend_prev, pend_next)
        t += 1
    return prev_row, next_row


@triton.jit
def _block_neighbour_values(base, meta_base, row, c, syn_ptr, menc_ptr, msyn_ptr, ROW_BYTES: tl.constexpr, DATA_BYTES: tl.constexpr,
                            OFFSETS: tl.constexpr, HAS_ZERO: tl.constexpr, MK: tl.constexpr, MPO_SYN: tl.constexpr,
                            META_UNITS: tl.constexpr, MUV: tl.constexpr, MUB: tl.constexpr, MRB: tl.constexpr, META_LANES: tl.constexpr,
                            GROUPS: tl.constexpr, ROW_DIV: tl.constexpr):
    """The values ``[N, D]`` at rows ``row`` (-1: none) of codewords ``c`` (``row`` ``[N, C]``)
    or, with a scale per channel, of values ``c`` (``row`` ``[N, D]``), decoded and dequantized
    with their scales."""
    has = row >= 0
    r = tl.maximum(row, 0)
    if GROUPS == 1:
        lo, hi, _ = _block_codewords(base, r, has, c, syn_ptr, ROW_BYTES, DATA_BYTES, OFFSETS)
        values = _block_values(lo, hi)
        w = 0
    else:
        v, _ = _value_codewords(base, r, has, c, syn_ptr, ROW_BYTES, DATA_BYTES, OFFSETS)
        values = v.to(tl.float32)
        w = c
    scale, offset, _ = _group_scale(meta_base, r, has, w, menc_ptr, msyn_ptr, MK, MPO_SYN, True, GROUPS, HAS_ZERO, MUV, MUB, MRB,
                                    META_LANES, META_UNITS, ROW_DIV)
    if HAS_ZERO:
        offset = _spread(offset, GROUPS)
    return (values - offset) * _spread(scale, GROUPS)


@triton.jit
def _block_slab(base, meta_base, rows, row_ok, c, lo, hi, status, meta_rows_detected, seq_len, syn_ptr, menc_ptr, msyn_ptr,
                INTERP: tl.constexpr, ROW_BYTES: tl.constexpr, DATA_BYTES: tl.constexpr, OFFSETS: tl.constexpr, HAS_ZERO: tl.constexpr,
                MK: tl.constexpr, MPO_SYN: tl.constexpr, META_UNITS: tl.constexpr, MUV: tl.constexpr, MUB: tl.constexpr,
                MRB: tl.constexpr, META_LANES: tl.constexpr, D: tl.constexpr, row_scales, GROUPS: tl.constexpr = 1,
                ROW_DIV: tl.constexpr = 1):
    """A K or V block of the blocks layout ``[N, D]`` in row order, dequantized in float32 from
    its decoded codewords (``lo``, ``hi``, ``status``: ``[N, C]``) and its rows' decoded scales;
    with ``INTERP``, the values of a detected codeword, or of a row whose scale is detected,
    replaced as :func:`ecc_tensor.interp.interpolate_erasures` does (``_kv_slot``). Keys per
    channel (``GROUPS`` ``D``, ``ROW_DIV`` rows per row of channel scales): each value takes its
    channel's scale, and a detected scale erases its channel in the rows it covers, not whole
    codewords, so erased values find their neighbours one by one. ``row_scales``: with one scale
    a row, the rows' decoded scale and offset ``[N, 1]`` (``row_meta._rows_to_tile``), else None."""
    if GROUPS == 1:
        scale, offset = row_scales
        x = (_block_values(lo, hi) - offset) * scale
        erased = ((status == 2) | meta_rows_detected[:, None]) & row_ok[:, None]
        at = c
    else:
        at = tl.arange(0, D)[None, :]
        x, meta_det = _slot_values(_block_nibbles(lo, hi), rows[:, None], row_ok[:, None], tl.arange(0, D), meta_base, menc_ptr,
                                   msyn_ptr, 0, 1, 0, D, GROUPS, 1, HAS_ZERO, MK, MPO_SYN, True, MUV, MUB, MRB, META_LANES, META_UNITS,
                                   ROW_DIV)
        erased = ((_per_value(status) == 2) | meta_det) & row_ok[:, None]
    if INTERP:
        if tl.max(erased.to(tl.int32)) > 0:
            prev_row, next_row = _block_neighbour_rows(base, meta_base, rows, at, erased, seq_len, syn_ptr, menc_ptr, msyn_ptr, ROW_BYTES,
                                                       DATA_BYTES, OFFSETS, HAS_ZERO, MK, MPO_SYN, META_UNITS, MUV, MUB, MRB, META_LANES,
                                                       GROUPS, ROW_DIV)
            pv = x
            nv = x
            for side in range(2):  # a loop, not unrolled: one copy of the decode (compile time)
                before = side == 0
                values = _block_neighbour_values(base, meta_base, tl.where(before, prev_row, next_row), at, syn_ptr, menc_ptr, msyn_ptr,
                                                 ROW_BYTES, DATA_BYTES, OFFSETS, HAS_ZERO, MK, MPO_SYN, META_UNITS, MUV, MUB, MRB,
                                                 META_LANES, GROUPS, ROW_DIV)
                pv = tl.where(before, values, pv)
                nv = tl.where(before, nv, values)
            has_prev = _spread(prev_row, GROUPS) >= 0
            has_next = _spread(next_row, GROUPS) >= 0
            filled = tl.where(has_prev & has_next, (pv + nv) * 0.5, tl.where(has_prev, pv, tl.where(has_next, nv, x)))
            x = tl.where(_spread(erased.to(tl.int32), GROUPS) != 0, filled, x)
    return x
