"""One scale a row, its metadata decoded once a row: the codewords of a block's metadata rows
loaded and decoded a row a thread, once for the counters, the erasure flags and the scale and
offset (``_row_meta``), then handed to the block's tile through the program's own scratch
(``_rows_to_tile``; both: ``_row_meta_block``)."""

from __future__ import annotations

import triton
import triton.language as tl

from ..codec_kernels import _lane_unit_value, _meta_unit, _syndrome_decode
from .status_counts import _status_fields, _sum_counts


@triton.constexpr_function
def _meta_slot_value(LANES_D, MUV, u, i):
    """The index in the metadata row of the value in slot ``i`` of codeword ``u`` (-1: padding):
    Golay's lane layout of ``LANES_D`` values, else ``MUV`` consecutive values a codeword."""
    if int(LANES_D):
        return _lane_unit_value(LANES_D, u, i) if int(i) < 3 else -1
    return int(u) * int(MUV) + int(i)


@triton.jit
def _row_meta(meta_base, rows, row_ok, menc_ptr, msyn_ptr, MK: tl.constexpr, MPO_SYN: tl.constexpr, HAS_ZERO: tl.constexpr,
              META_UNITS: tl.constexpr, MUV: tl.constexpr, MUB: tl.constexpr, MRB: tl.constexpr, META_LANES: tl.constexpr):
    """The metadata rows of ``rows`` (``[N]``, one scale group, a metadata row a row), every
    codeword decoded once: (corrected, parity-only and detected codewords, whether each row holds
    a detected one ``[N]``, its scale ``[N]`` and its offset: the zero point ``[N]``, or 8).
    ``units._meta_block`` (whose count this is) and ``units._group_scale`` in one pass, which
    decoded each codeword twice, the second time in the tile's layout."""
    row_ptrs = meta_base + rows.to(tl.int64) * MRB
    packed = tl.zeros(row_ok.shape, tl.int32)
    any_detected = tl.zeros(row_ok.shape, tl.int1)
    s_bits = tl.zeros(row_ok.shape, tl.int32)
    z_bits = tl.zeros(row_ok.shape, tl.int32)
    for mu in tl.static_range(META_UNITS):
        word, status = _syndrome_decode(_meta_unit(row_ptrs, mu, row_ok, MUB, META_LANES), menc_ptr, msyn_ptr, row_ok, MK, MPO_SYN)
        status = tl.where(row_ok, status, 0)
        packed += _status_fields(status)
        any_detected = any_detected | (status == 2)
        for i in tl.static_range(3 if META_LANES else MUV):
            v = _meta_slot_value(META_LANES, MUV, mu, i)
            if v >= 0 and v < 8:
                s_bits = s_bits | (((word >> (4 * i)) & 15) << (4 * v))
            elif HAS_ZERO and v >= 8 and v < 16:
                z_bits = z_bits | (((word >> (4 * i)) & 15) << (4 * (v - 8)))
    corrected, parity_only, detected = _sum_counts(packed, META_UNITS * rows.shape[0])
    scale = s_bits.to(tl.float32, bitcast=True)
    if HAS_ZERO:
        offset = z_bits.to(tl.float32, bitcast=True)
    else:
        offset = 8.0
    return corrected, parity_only, detected, any_detected, scale, offset


@triton.jit
def _through_scratch(x, scratch):
    """``x`` (``[N]``) written to this program's ``scratch`` and read back, between barriers."""
    r = tl.arange(0, x.shape[0])
    tl.store(scratch + r, x)
    tl.debug_barrier()  # the program's writes visible to all its threads
    y = tl.load(scratch + r)
    tl.debug_barrier()  # every thread has read before the next write to the same words
    return y


@triton.jit
def _rows_to_tile(meta, scratch, HAS_ZERO: tl.constexpr):
    """``_row_meta``'s per-row results ``[N]`` handed to the block's tile through ``scratch``
    (``3 N`` floats of this program's own): (detected rows ``[N]``, scale ``[N, 1]``, offset
    ``[N, 1]`` or 8).

    Why through memory: the rows are decoded as a vector, a row a thread, and used on the
    block's ``[N, D]`` tile, whose layout gives each thread several rows (16 at 8 warps).
    Triton's layout pass would redo the decode in that layout (its loads of a few rows count
    as cheap to repeat), and did: 16 rows a thread were 84% of SECDED's deferred loop (sm_90a
    SASS). Memory is where it stops. A barrier pair for each vector: with one pair for all
    three, or for K's and V's at once, ptxas spilled 5-6x the bytes in Hamming(8,4)'s deferred
    launch and it ran 7-13% slower under faults (benchmarks/RESULTS.md, 2026-12-06)."""
    rows_detected = _through_scratch(meta[3].to(tl.float32), scratch) != 0.0
    scale = _through_scratch(meta[4], scratch + meta[4].shape[0])[:, None]
    offset = 8.0
    if HAS_ZERO:
        offset = _through_scratch(meta[5], scratch + 2 * meta[4].shape[0])[:, None]
    return rows_detected, scale, offset


@triton.jit
def _row_meta_block(meta_base, rows, row_ok, menc_ptr, msyn_ptr, scratch, MK: tl.constexpr, MPO_SYN: tl.constexpr,
                    HAS_ZERO: tl.constexpr, META_UNITS: tl.constexpr, MUV: tl.constexpr, MUB: tl.constexpr, MRB: tl.constexpr,
                    META_LANES: tl.constexpr):
    """``_row_meta`` then ``_rows_to_tile``, for the unit path: (``units._meta_block``'s results,
    its metadata tile two placeholders, and the rows' ``(scale, offset)`` for ``units._block_state``)."""
    meta = _row_meta(meta_base, rows, row_ok, menc_ptr, msyn_ptr, MK, MPO_SYN, HAS_ZERO, META_UNITS, MUV, MUB, MRB, META_LANES)
    rows_detected, scale, offset = _rows_to_tile(meta, scratch, HAS_ZERO)
    no_tile = tl.zeros([1, 1], tl.int32)
    return (meta[0], meta[1], meta[2], rows_detected, no_tile, no_tile), (scale, offset)
