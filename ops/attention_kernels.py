"""Fused decode attention over stored codewords: FlashDecoding with the ECC decode in registers.

One program takes one (sequence, KV head) pair and one split of the key axis. It holds the
queries of every query head of that KV head's group (grouped-query attention) and of every
query token (``LQ``, a few for speculative decoding) as the ``BLOCK_M`` rows of one tile, walks
its keys ``BLOCK_N`` at a time, and for each block: loads the codeword bytes of K, decodes
and corrects them (syndrome table gathers, the reference's arithmetic), dequantizes, computes
``Q K^T`` on the tensor cores, does the same for V, and updates an online softmax. A second
kernel combines the splits by their log-sum-exp. No dense K/V ever reaches memory.

Values are handled per storage *unit* (:mod:`ecc_tensor.storage`): a unit holds
``UNIT_VALUES`` values (1 for Hamming, 2 for int4, 3 for Golay). A tile of units
``[BLOCK_N, BLOCK_U]`` is decoded once; value ``i`` of every unit (a *slot*) is a
``[BLOCK_N, BLOCK_U]`` tile of its own, and ``Q K^T`` is the sum over slots of
``Q_i K_i^T`` with ``Q_i`` the query columns ``u * UNIT_VALUES + i`` (gathered once per
program), while ``P V`` keeps one accumulator per slot. So neither int4's two nibbles nor
Golay's 3-value codewords are ever interleaved in registers. The one-byte Hamming codes decode
with in-register constants instead of table gathers (see ``_decode_units``).

Detected-uncorrectable codewords (``INTERP``) are replaced in the dequantized domain by the
mean of their nearest non-erased neighbours along the sequence, found by an on-demand search
outward from the erased units (rare: only blocks that contain an erasure pay for it), with the
same arithmetic and precedence as :func:`ecc_tensor.interp.interpolate_erasures`.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl
from torch.library import wrap_triton

from ecc_tensor.codecs import CODEC_NAMES, get_codec
from ecc_tensor.storage import StorageLayout

from .codec_kernels import _load_units, _pow2, _syndrome_decode, _to_bf16_rne

LOG2E = 1.4426950408889634


@triton.jit
def _decode_units(word, enc_ptr, syn_ptr, mask, K: tl.constexpr, DECODE: tl.constexpr,
                  NIBBLE: tl.constexpr, PAR_LO: tl.constexpr, PAR_HI: tl.constexpr, FLIP_LO: tl.constexpr,
                  FLIP_HI: tl.constexpr, DET: tl.constexpr, PBITS: tl.constexpr):
    """(corrected data word, corrected flag, detected flag) of each unit, as the reference.

    One-byte codes (``NIBBLE``: 4 data bits, at most 4 parity bits) decode in registers:
    the codec's encode and syndrome tables are folded into 32-bit constants holding one
    nibble per entry (parity of each data nibble, data flips of each syndrome) and a
    detected-syndrome bit mask, so no table is gathered from memory. Other codes (Golay)
    gather from the tables, once per 3-value codeword."""
    if DECODE:
        if NIBBLE:
            d = word & 15
            sh = (d & 7) * 4
            parity = tl.where(d < 8, tl.full(d.shape, PAR_LO, tl.int32) >> sh, tl.full(d.shape, PAR_HI, tl.int32) >> sh) & 15
            syndrome = ((word >> 4) & ((1 << PBITS) - 1)) ^ parity
            sh = (syndrome & 7) * 4
            flip = tl.where(syndrome < 8, tl.full(d.shape, FLIP_LO, tl.int32) >> sh, tl.full(d.shape, FLIP_HI, tl.int32) >> sh) & 15
            detected = ((tl.full(d.shape, DET, tl.int32) >> syndrome) & 1) != 0
            return d ^ flip, (syndrome != 0) & ~detected, detected
        else:
            return _syndrome_decode(word, enc_ptr, syn_ptr, mask, K)
    else:
        return word, word < 0, word < 0  # int4: nothing to correct (words are >= 0)


@triton.jit
def _slot_values(data, rows, row_ok, u, scale_ptr, zero_ptr, SLOT: tl.constexpr, UNIT_VALUES: tl.constexpr,
                 GROUPS: tl.constexpr, GROUP: tl.constexpr, HAS_ZERO: tl.constexpr):
    """Value ``SLOT`` of each unit, dequantized in float32: ``(v - offset) * scale`` of
    value ``u * UNIT_VALUES + SLOT`` of each row. ``rows``/``row_ok`` are ``[N, 1]`` or ``[N, U]``."""
    v = ((data >> (4 * SLOT)) & 15).to(tl.float32)
    rows64 = rows.to(tl.int64)
    if GROUPS == 1:
        idx = rows64
    else:
        idx = rows64 * GROUPS + tl.minimum((u * UNIT_VALUES + SLOT) // GROUP, GROUPS - 1)[None, :]
    s = tl.load(scale_ptr + idx, mask=row_ok, other=1.0)
    if HAS_ZERO:
        off = tl.load(zero_ptr + idx, mask=row_ok, other=0.0)
    else:
        off = 8.0
    return (v - off) * s


@triton.jit
def _neighbour_rows(stored_ptr, enc_ptr, syn_ptr, rows, u, erased, seq_len,
                    ROW_BYTES: tl.constexpr, UNIT_BYTES: tl.constexpr, K: tl.constexpr,
                    NIBBLE: tl.constexpr, PAR_LO: tl.constexpr, PAR_HI: tl.constexpr, FLIP_LO: tl.constexpr,
                    FLIP_HI: tl.constexpr, DET: tl.constexpr, PBITS: tl.constexpr):
    """For each erased unit ``[N, U]``: the nearest row before and after it (below
    ``seq_len``) whose unit at the same position is not erased, or -1."""
    prev_row = tl.full(erased.shape, -1, tl.int32)
    next_row = tl.full(erased.shape, -1, tl.int32)
    pend_prev = erased
    pend_next = erased
    t = 1
    while tl.max((pend_prev | pend_next).to(tl.int32)) > 0:
        r = rows[:, None] - t
        ok = pend_prev & (r >= 0)
        _, _, det = _decode_units(_load_units(stored_ptr, r, u, ok, ROW_BYTES, UNIT_BYTES), enc_ptr, syn_ptr, ok, K, True,
                                  NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS)
        prev_row = tl.where(ok & ~det, r, prev_row)
        pend_prev = ok & det
        r = rows[:, None] + t
        ok = pend_next & (r < seq_len)
        _, _, det = _decode_units(_load_units(stored_ptr, r, u, ok, ROW_BYTES, UNIT_BYTES), enc_ptr, syn_ptr, ok, K, True,
                                  NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS)
        next_row = tl.where(ok & ~det, r, next_row)
        pend_next = ok & det
        t += 1
    return prev_row, next_row


@triton.jit
def _interpolated(x, erased, prev_row, next_row, stored_ptr, scale_ptr, zero_ptr, enc_ptr, syn_ptr, u,
                  SLOT: tl.constexpr, ROW_BYTES: tl.constexpr, UNIT_BYTES: tl.constexpr, K: tl.constexpr,
                  UNIT_VALUES: tl.constexpr, GROUPS: tl.constexpr, GROUP: tl.constexpr, HAS_ZERO: tl.constexpr,
                  NIBBLE: tl.constexpr, PAR_LO: tl.constexpr, PAR_HI: tl.constexpr, FLIP_LO: tl.constexpr,
                  FLIP_HI: tl.constexpr, DET: tl.constexpr, PBITS: tl.constexpr):
    """``x`` (slot ``SLOT`` values, float32) with erased entries replaced as
    :func:`ecc_tensor.interp.interpolate_erasures` does: the neighbours' mean, the one
    neighbour there is, or the value as read when there is none."""
    has_prev = prev_row >= 0
    has_next = next_row >= 0
    pr = tl.maximum(prev_row, 0)
    nr = tl.maximum(next_row, 0)
    pd, _, _ = _decode_units(_load_units(stored_ptr, pr, u, has_prev, ROW_BYTES, UNIT_BYTES), enc_ptr, syn_ptr, has_prev, K, True,
                             NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS)
    nd, _, _ = _decode_units(_load_units(stored_ptr, nr, u, has_next, ROW_BYTES, UNIT_BYTES), enc_ptr, syn_ptr, has_next, K, True,
                             NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS)
    pv = _slot_values(pd, pr, has_prev, u, scale_ptr, zero_ptr, SLOT, UNIT_VALUES, GROUPS, GROUP, HAS_ZERO)
    nv = _slot_values(nd, nr, has_next, u, scale_ptr, zero_ptr, SLOT, UNIT_VALUES, GROUPS, GROUP, HAS_ZERO)
    filled = tl.where(has_prev & has_next, (pv + nv) * 0.5, tl.where(has_prev, pv, tl.where(has_next, nv, x)))
    return tl.where(erased, filled, x)


@triton.jit
def _kv_slot(data, erased, any_erased, prev_row, next_row, stored_ptr, scale_ptr, zero_ptr, enc_ptr, syn_ptr,
             rows, row_ok, u, col_ok, SLOT: tl.constexpr, dtype: tl.constexpr, EMULATE_BF16: tl.constexpr,
             INTERP: tl.constexpr, ROW_BYTES: tl.constexpr, UNIT_BYTES: tl.constexpr, K: tl.constexpr,
             UNIT_VALUES: tl.constexpr, GROUPS: tl.constexpr, GROUP: tl.constexpr, HAS_ZERO: tl.constexpr,
             NIBBLE: tl.constexpr, PAR_LO: tl.constexpr, PAR_HI: tl.constexpr, FLIP_LO: tl.constexpr,
             FLIP_HI: tl.constexpr, DET: tl.constexpr, PBITS: tl.constexpr):
    """Slot ``SLOT`` of a K or V block ``[N, U]``, dequantized (and interpolated), in the dot dtype."""
    x = _slot_values(data, rows[:, None], row_ok[:, None], u, scale_ptr, zero_ptr, SLOT, UNIT_VALUES, GROUPS, GROUP, HAS_ZERO)
    if INTERP:
        if any_erased:
            x = _interpolated(x, erased, prev_row, next_row, stored_ptr, scale_ptr, zero_ptr, enc_ptr, syn_ptr, u, SLOT,
                              ROW_BYTES, UNIT_BYTES, K, UNIT_VALUES, GROUPS, GROUP, HAS_ZERO,
                              NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS)
    x = tl.where(col_ok[None, :], x, 0.0)
    if EMULATE_BF16:
        x = _to_bf16_rne(x).to(tl.float32)
    return x.to(dtype)


@triton.jit
def _decode_block(base, rows, row_ok, u, u_ok, seq_len, enc_ptr, syn_ptr, REPAIR: tl.constexpr,
                  ROW_BYTES: tl.constexpr, UNIT_BYTES: tl.constexpr, K: tl.constexpr, DECODE: tl.constexpr,
                  NIBBLE: tl.constexpr, PAR_LO: tl.constexpr, PAR_HI: tl.constexpr, FLIP_LO: tl.constexpr,
                  FLIP_HI: tl.constexpr, DET: tl.constexpr, PBITS: tl.constexpr):
    """One K or V block: (data, corrected, erased, any erased, previous and next clean rows).
    The neighbour search runs only in the repair pass, and only if the block has an erasure."""
    unit_mask = row_ok[:, None] & u_ok[None, :]
    data, corrected, detected = _decode_units(_load_units(base, rows[:, None], u, unit_mask, ROW_BYTES, UNIT_BYTES), enc_ptr, syn_ptr,
                                              unit_mask, K, DECODE, NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS)
    erased = detected & unit_mask
    any_erased = False
    prev_row = rows[:, None] + tl.zeros(erased.shape, tl.int32)
    next_row = prev_row
    if REPAIR:
        any_erased = tl.max(erased.to(tl.int32)) > 0
        if any_erased:
            prev_row, next_row = _neighbour_rows(base, enc_ptr, syn_ptr, rows, u, erased, seq_len, ROW_BYTES, UNIT_BYTES, K,
                                                 NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS)
    return data, corrected & unit_mask, erased, any_erased, prev_row, next_row


@triton.jit
def _pv(acc, p, v, dtype: tl.constexpr, SPLIT_P: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """``acc + p @ v``; with ``SPLIT_P`` (bfloat16), p as the sum of two bfloat16 parts so
    that the weights keep ~16 bits instead of 8."""
    hi = p.to(dtype)
    acc = tl.dot(hi, v, acc, input_precision=DOT_PRECISION)
    if SPLIT_P:
        acc = tl.dot((p - hi.to(tl.float32)).to(dtype), v, acc, input_precision=DOT_PRECISION)
    return acc


@triton.jit
def _decode_attention_kernel(
    q_ptr, k_ptr, ks_ptr, kz_ptr, v_ptr, vs_ptr, vz_ptr, enc_ptr, syn_ptr,
    seq_lens_ptr, mask_ptr, counters_ptr, o_part_ptr, ml_part_ptr, defer_ptr,
    qk_scale,  # softmax scale * log2(e)
    split_len,  # keys per split, a multiple of BLOCK_N
    stride_qb, stride_qh, stride_qm, stride_qd,
    stride_mb, stride_mh, stride_mq, stride_ms,
    S,  # keys per sequence in storage (max length)
    HKV: tl.constexpr, GQA: tl.constexpr, LQ: tl.constexpr, D: tl.constexpr, K: tl.constexpr,
    ROW_BYTES: tl.constexpr, UNITS: tl.constexpr, UNIT_VALUES: tl.constexpr, UNIT_BYTES: tl.constexpr,
    GROUPS: tl.constexpr, GROUP: tl.constexpr,
    DECODE: tl.constexpr, HAS_ZERO: tl.constexpr, INTERP: tl.constexpr, COUNT: tl.constexpr,
    HAS_MASK: tl.constexpr, CAUSAL: tl.constexpr, DOT_PRECISION: tl.constexpr, EMULATE_BF16: tl.constexpr,
    SPLIT_P: tl.constexpr,
    NIBBLE: tl.constexpr, PAR_LO: tl.constexpr, PAR_HI: tl.constexpr, FLIP_LO: tl.constexpr, FLIP_HI: tl.constexpr,
    DET: tl.constexpr, PBITS: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_U: tl.constexpr, SPLITS: tl.constexpr,
):
    bh = tl.program_id(0)
    split = tl.program_id(1)
    b = bh // HKV
    seq_len = tl.load(seq_lens_ptr + b).to(tl.int32)
    start = split * split_len
    end = tl.minimum(start + split_len, seq_len)

    m = tl.arange(0, BLOCK_M)
    m_ok = m < GQA * LQ
    head = (bh % HKV) * GQA + m // LQ
    qi = m % LQ
    u = tl.arange(0, BLOCK_U)
    u_ok = u < UNITS

    # The queries, one [BLOCK_M, BLOCK_U] tile per slot (value u * UNIT_VALUES + slot).
    q_row = q_ptr + b.to(tl.int64) * stride_qb + head[:, None] * stride_qh + qi[:, None] * stride_qm
    col0_ok = u_ok & (u * UNIT_VALUES < D)
    q0 = tl.load(q_row + (u * UNIT_VALUES)[None, :] * stride_qd, mask=m_ok[:, None] & col0_ok[None, :], other=0.0)
    if EMULATE_BF16:  # Triton's interpreter cannot multiply bfloat16 tiles: float32 dots of bf16 values
        dtype: tl.constexpr = tl.float32
    else:
        dtype: tl.constexpr = q0.dtype
    q0 = q0.to(dtype)
    q1 = q0
    q2 = q0
    col1_ok = u_ok & (u * UNIT_VALUES + 1 < D)
    col2_ok = u_ok & (u * UNIT_VALUES + 2 < D)
    if UNIT_VALUES > 1:
        q1 = tl.load(q_row + (u * UNIT_VALUES + 1)[None, :] * stride_qd, mask=m_ok[:, None] & col1_ok[None, :], other=0.0).to(dtype)
    if UNIT_VALUES > 2:
        q2 = tl.load(q_row + (u * UNIT_VALUES + 2)[None, :] * stride_qd, mask=m_ok[:, None] & col2_ok[None, :], other=0.0).to(dtype)

    store_off = bh.to(tl.int64) * S  # first row of this (sequence, KV head) in storage
    k_base = k_ptr + store_off * ROW_BYTES
    v_base = v_ptr + store_off * ROW_BYTES
    ks_base = ks_ptr + store_off * GROUPS
    vs_base = vs_ptr + store_off * GROUPS
    kz_base = kz_ptr + store_off * GROUPS
    vz_base = vz_ptr + store_off * GROUPS

    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc0 = tl.zeros([BLOCK_M, BLOCK_U], tl.float32)
    acc1 = tl.zeros([BLOCK_M, BLOCK_U], tl.float32)
    acc2 = tl.zeros([BLOCK_M, BLOCK_U], tl.float32)
    n_corrected = tl.zeros([BLOCK_U], tl.int32)  # per unit position, summed over the split's rows
    n_detected = tl.zeros([BLOCK_U], tl.int32)
    last_visible = seq_len - LQ + qi  # causal: the last key each query row may see

    # Pass 0 attends every block; with INTERP it defers the (rare) blocks that hold an erased
    # unit, and pass 1 attends just those, with the neighbour search and interpolation. The
    # online softmax does not care about block order, and the main loop stays free of the
    # search's registers.
    defer_base = (bh.to(tl.int64) * SPLITS + split) * (split_len // BLOCK_N)
    for REPAIR in tl.static_range(2 if INTERP else 1):  # 0: attend (and defer), 1: repair
        for n0 in range(start, end, BLOCK_N):
            active = True
            if REPAIR:
                active = tl.load(defer_ptr + defer_base + (n0 - start) // BLOCK_N) != 0
            if active:
                rows = n0 + tl.arange(0, BLOCK_N)
                row_ok = rows < end

                # K: decode the block's units once, then each slot's values and their scores.
                k_data, k_corr, k_erased, k_any, k_prev, k_next = _decode_block(
                    k_base, rows, row_ok, u, u_ok, seq_len, enc_ptr, syn_ptr, REPAIR, ROW_BYTES, UNIT_BYTES, K, DECODE,
                    NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS)
                kx = _kv_slot(k_data, k_erased, k_any, k_prev, k_next, k_base, ks_base, kz_base, enc_ptr, syn_ptr, rows, row_ok, u, col0_ok, 0,
                              dtype, EMULATE_BF16, REPAIR, ROW_BYTES, UNIT_BYTES, K, UNIT_VALUES, GROUPS, GROUP, HAS_ZERO,
                              NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS)
                s = tl.dot(q0, tl.trans(kx), input_precision=DOT_PRECISION)
                if UNIT_VALUES > 1:
                    kx = _kv_slot(k_data, k_erased, k_any, k_prev, k_next, k_base, ks_base, kz_base, enc_ptr, syn_ptr, rows, row_ok, u, col1_ok, 1,
                                  dtype, EMULATE_BF16, REPAIR, ROW_BYTES, UNIT_BYTES, K, UNIT_VALUES, GROUPS, GROUP, HAS_ZERO,
                                  NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS)
                    s = tl.dot(q1, tl.trans(kx), s, input_precision=DOT_PRECISION)
                if UNIT_VALUES > 2:
                    kx = _kv_slot(k_data, k_erased, k_any, k_prev, k_next, k_base, ks_base, kz_base, enc_ptr, syn_ptr, rows, row_ok, u, col2_ok, 2,
                                  dtype, EMULATE_BF16, REPAIR, ROW_BYTES, UNIT_BYTES, K, UNIT_VALUES, GROUPS, GROUP, HAS_ZERO,
                                  NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS)
                    s = tl.dot(q2, tl.trans(kx), s, input_precision=DOT_PRECISION)
                # Under torch.compile a float argument may arrive as float64: keep the softmax in float32.
                s = (s * qk_scale).to(tl.float32)

                v_data, v_corr, v_erased, v_any, v_prev, v_next = _decode_block(
                    v_base, rows, row_ok, u, u_ok, seq_len, enc_ptr, syn_ptr, REPAIR, ROW_BYTES, UNIT_BYTES, K, DECODE,
                    NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS)
                visible = m_ok[:, None] & row_ok[None, :]
                if INTERP and not REPAIR:
                    # A block holding an erased K or V unit is left to the repair pass.
                    deferred = tl.max((k_erased | v_erased).to(tl.int32))  # 0 or 1
                    tl.store(defer_ptr + defer_base + (n0 - start) // BLOCK_N, deferred.to(tl.uint8))
                    visible = visible & ((rows * 0 + deferred) == 0)[None, :]
                if CAUSAL:
                    visible = visible & (rows[None, :] <= last_visible[:, None])
                if HAS_MASK:
                    mask_ptrs = mask_ptr + b.to(tl.int64) * stride_mb + head[:, None] * stride_mh + qi[:, None] * stride_mq + rows[None, :] * stride_ms
                    s += tl.load(mask_ptrs, mask=visible, other=0.0) * 1.4426950408889634
                s = tl.where(visible, s, float("-inf"))

                m_new = tl.maximum(m_i, tl.max(s, axis=1))
                m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
                alpha = tl.exp2(m_i - m_safe)
                p = tl.exp2(s - m_safe[:, None])
                l_i = l_i * alpha + tl.sum(p, axis=1)
                m_i = m_new

                # V: the weighted sums, one accumulator per slot.
                vx = _kv_slot(v_data, v_erased, v_any, v_prev, v_next, v_base, vs_base, vz_base, enc_ptr, syn_ptr, rows, row_ok, u, col0_ok, 0,
                              dtype, EMULATE_BF16, REPAIR, ROW_BYTES, UNIT_BYTES, K, UNIT_VALUES, GROUPS, GROUP, HAS_ZERO,
                              NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS)
                acc0 = _pv(acc0 * alpha[:, None], p, vx, dtype, SPLIT_P, DOT_PRECISION)
                if UNIT_VALUES > 1:
                    vx = _kv_slot(v_data, v_erased, v_any, v_prev, v_next, v_base, vs_base, vz_base, enc_ptr, syn_ptr, rows, row_ok, u, col1_ok, 1,
                                  dtype, EMULATE_BF16, REPAIR, ROW_BYTES, UNIT_BYTES, K, UNIT_VALUES, GROUPS, GROUP, HAS_ZERO,
                                  NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS)
                    acc1 = _pv(acc1 * alpha[:, None], p, vx, dtype, SPLIT_P, DOT_PRECISION)
                if UNIT_VALUES > 2:
                    vx = _kv_slot(v_data, v_erased, v_any, v_prev, v_next, v_base, vs_base, vz_base, enc_ptr, syn_ptr, rows, row_ok, u, col2_ok, 2,
                                  dtype, EMULATE_BF16, REPAIR, ROW_BYTES, UNIT_BYTES, K, UNIT_VALUES, GROUPS, GROUP, HAS_ZERO,
                                  NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS)
                    acc2 = _pv(acc2 * alpha[:, None], p, vx, dtype, SPLIT_P, DOT_PRECISION)

                if COUNT and DECODE and not REPAIR:
                    # Reduced over the block's rows right away: a [BLOCK_N, BLOCK_U] accumulator would
                    # hold a tile's worth of registers through the whole loop.
                    n_corrected += tl.sum(k_corr.to(tl.int32) + v_corr.to(tl.int32), axis=0)
                    n_detected += tl.sum(k_erased.to(tl.int32) + v_erased.to(tl.int32), axis=0)

    # Partial results: acc of slot i at columns [i * BLOCK_U, (i + 1) * BLOCK_U).
    part = bh.to(tl.int64) * SPLITS + split
    o_row = o_part_ptr + (part * BLOCK_M + m[:, None]) * (3 * BLOCK_U) + u[None, :]
    tl.store(o_row, acc0)
    if UNIT_VALUES > 1:
        tl.store(o_row + BLOCK_U, acc1)
    if UNIT_VALUES > 2:
        tl.store(o_row + 2 * BLOCK_U, acc2)
    tl.store(ml_part_ptr + (part * BLOCK_M + m) * 2, m_i)
    tl.store(ml_part_ptr + (part * BLOCK_M + m) * 2 + 1, l_i)
    if COUNT:
        n_rows = tl.maximum(end - start, 0).to(tl.int64)
        tl.atomic_add(counters_ptr + 0, 2 * n_rows * (UNITS if DECODE else D))
        if DECODE:
            tl.atomic_add(counters_ptr + 1, tl.sum(n_corrected.to(tl.int64), axis=0))
            tl.atomic_add(counters_ptr + 2, tl.sum(n_detected.to(tl.int64), axis=0))


@triton.jit
def _combine_splits_kernel(
    o_part_ptr, ml_part_ptr, out_ptr,
    stride_ob, stride_oh, stride_om, stride_od,
    HKV: tl.constexpr, GQA: tl.constexpr, LQ: tl.constexpr, D: tl.constexpr, UNITS: tl.constexpr,
    UNIT_VALUES: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_U: tl.constexpr, SPLITS: tl.constexpr, BLOCK_S: tl.constexpr,
):
    """out = sum_s exp(m_s - M) acc_s / sum_s exp(m_s - M) l_s, for one query row; rows that
    saw no key at all (every key masked) are written as zeros."""
    bh = tl.program_id(0)
    m = tl.program_id(1)
    sp = tl.arange(0, BLOCK_S)
    sp_ok = sp < SPLITS
    c = tl.arange(0, 4 * BLOCK_U)
    slot = c // BLOCK_U
    u = c % BLOCK_U
    col = u * UNIT_VALUES + slot
    col_ok = (slot < UNIT_VALUES) & (u < UNITS) & (col < D)
    part = bh.to(tl.int64) * SPLITS + sp
    m_s = tl.load(ml_part_ptr + (part * BLOCK_M + m) * 2, mask=sp_ok, other=float("-inf"))
    l_s = tl.load(ml_part_ptr + (part * BLOCK_M + m) * 2 + 1, mask=sp_ok, other=0.0)
    m_max = tl.max(m_s, axis=0)
    m_max = tl.where(m_max == float("-inf"), 0.0, m_max)
    w = tl.exp2(m_s - m_max)
    acc = tl.load(o_part_ptr + (part[:, None] * BLOCK_M + m) * (3 * BLOCK_U) + c[None, :],
                  mask=sp_ok[:, None] & col_ok[None, :], other=0.0)
    num = tl.sum(acc * w[:, None], axis=0)
    den = tl.sum(l_s * w, axis=0)
    out = tl.where(den > 0, num / tl.where(den > 0, den, 1.0), 0.0)
    if out_ptr.dtype.element_ty == tl.bfloat16:
        out = _to_bf16_rne(out)
    b = bh // HKV
    head = (bh % HKV) * GQA + m // LQ
    qi = m % LQ
    ptrs = out_ptr + b.to(tl.int64) * stride_ob + head * stride_oh + qi * stride_om + col * stride_od
    tl.store(ptrs, out.to(out_ptr.dtype.element_ty), mask=col_ok)


def _multiprocessors(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count
    return 4


def plan_splits(batch_heads: int, seq: int, block_n: int, device: torch.device) -> tuple[int, int]:
    """(keys per split, number of splits): enough programs to fill the GPU about four times
    over, each with a whole number of key blocks."""
    blocks = triton.cdiv(max(seq, 1), block_n)
    want = max(1, triton.cdiv(4 * _multiprocessors(device), batch_heads))
    splits = min(blocks, want, 256)
    split_len = triton.cdiv(blocks, splits) * block_n
    return split_len, triton.cdiv(max(seq, 1), split_len)


def _build_nibble_constants(codec: str) -> dict:
    """The codec's tables folded into the kernel's in-register decoder constants (one-byte
    codes with 4 data bits); ``NIBBLE=False`` for the others."""
    code = get_codec(codec)
    if codec == "int4" or code.k != 4 or code.n > 8:
        return dict(NIBBLE=False, PAR_LO=0, PAR_HI=0, FLIP_LO=0, FLIP_HI=0, DET=0, PBITS=1)
    tables = code.tables(torch.device("cpu"))
    pbits = code.n - code.k
    parity = [(int(tables.encode_table[d]) >> 4) & ((1 << pbits) - 1) for d in range(16)]
    leaders = [int(x) for x in tables.syndrome_table]
    flips = [(x & 15) if x >= 0 else 0 for x in leaders] + [0] * (16 - len(leaders))
    as_int32 = lambda x: x - (1 << 32) if x >= 1 << 31 else x  # noqa: E731
    pack = lambda nibbles: as_int32(sum(v << (4 * i) for i, v in enumerate(nibbles)))  # noqa: E731
    return dict(
        NIBBLE=True, PAR_LO=pack(parity[:8]), PAR_HI=pack(parity[8:]), FLIP_LO=pack(flips[:8]), FLIP_HI=pack(flips[8:]),
        DET=sum(1 << s for s, x in enumerate(leaders) if x < 0), PBITS=pbits,
    )


# Built at import: the launcher runs inside torch.compile's trace, where reading tensor
# values (the tables) would be data-dependent.
_NIBBLE_CONSTANTS = {name: _build_nibble_constants(name) for name in CODEC_NAMES}


# (block_n, num_warps, num_stages) per codec. int4, Hamming and Golay: the fastest of the
# configurations timed on an H100 (benchmarks/RESULTS.md, batch 8, 32k). Interpolating
# variants: the configuration whose compiled kernel has no register spills (ptxas -v for
# sm_90a; 64,4,2 spilled 7.5 KB), not yet timed.
_CONFIGS = {"int4": (128, 8, 2), "hamming74": (32, 4, 2), "hamming84": (32, 4, 2), "golay24": (64, 4, 1)}
_INTERP_CONFIG = (32, 8, 2)


def kernel_config(codec: str, interpolate: bool) -> dict:
    """Block size and launch parameters. ``ECC_ATTENTION_CONFIG="block_n,num_warps,num_stages"``
    overrides them (for tuning runs such as the sweep in benchmarks/RESULTS.md)."""
    override = os.environ.get("ECC_ATTENTION_CONFIG")
    if override:
        block_n, warps, stages = (int(x) for x in override.split(","))
    else:
        block_n, warps, stages = _INTERP_CONFIG if interpolate else _CONFIGS[codec]
    return dict(block_n=block_n, num_warps=warps, num_stages=stages)


def triton_decode_attention(
    query: torch.Tensor,
    k_stored: torch.Tensor,
    k_scale: torch.Tensor,
    k_zero: torch.Tensor | None,
    v_stored: torch.Tensor,
    v_scale: torch.Tensor,
    v_zero: torch.Tensor | None,
    encode_table: torch.Tensor,
    syndrome_table: torch.Tensor,
    codec: str,
    head_dim: int,
    interpolate: bool,
    seq_lens: torch.Tensor,
    counters: torch.Tensor,
    attn_mask: torch.Tensor | None,
    is_causal: bool,
    scale: float,
) -> torch.Tensor:
    """See ``ecc::decode_attention``; arguments are validated there."""
    batch, q_heads, lq, _ = query.shape
    kv_heads, seq = k_stored.shape[1], k_stored.shape[2]
    layout = StorageLayout(codec, head_dim)
    groups = k_scale.shape[-1]
    config = kernel_config(codec, interpolate and codec != "int4")
    block_n = config["block_n"]
    block_u = max(16, _pow2(layout.units))
    block_m = max(16, _pow2((q_heads // kv_heads) * lq))
    split_len, splits = plan_splits(batch * kv_heads, seq, block_n, query.device)
    emulate_bf16 = query.dtype == torch.bfloat16 and query.device.type == "cpu"  # CPU tensors: interpreter

    out = torch.empty_like(query, memory_format=torch.contiguous_format)
    o_part = torch.empty(batch * kv_heads * splits * block_m * 3 * block_u, dtype=torch.float32, device=query.device)
    ml_part = torch.empty(batch * kv_heads * splits * block_m * 2, dtype=torch.float32, device=query.device)
    interp = interpolate and codec != "int4"
    defer = torch.empty(batch * kv_heads * splits * (split_len // block_n) if interp else 1, dtype=torch.uint8, device=query.device)
    if attn_mask is not None:
        mask = attn_mask.expand(batch, q_heads, lq, seq)
        mask_strides = mask.stride()
    else:
        mask, mask_strides = o_part, (0, 0, 0, 0)
    wrap_triton(_decode_attention_kernel)[(batch * kv_heads, splits)](
        query, k_stored, k_scale, k_zero if k_zero is not None else k_scale,
        v_stored, v_scale, v_zero if v_zero is not None else v_scale,
        encode_table, syndrome_table, seq_lens, mask, counters, o_part, ml_part, defer,
        scale * LOG2E, split_len,
        *query.stride(), *mask_strides,
        seq,
        HKV=kv_heads, GQA=q_heads // kv_heads, LQ=lq, D=head_dim, K=layout.codec.k,
        ROW_BYTES=layout.row_bytes, UNITS=layout.units, UNIT_VALUES=layout.unit_values, UNIT_BYTES=layout.unit_bytes,
        GROUPS=groups, GROUP=head_dim // groups,
        DECODE=codec != "int4", HAS_ZERO=k_zero is not None, INTERP=interp, COUNT=True,
        HAS_MASK=attn_mask is not None, CAUSAL=is_causal,
        DOT_PRECISION="ieee" if query.dtype == torch.float32 or emulate_bf16 else "tf32", EMULATE_BF16=emulate_bf16,
        SPLIT_P=query.dtype == torch.bfloat16 and not emulate_bf16,
        **_NIBBLE_CONSTANTS[codec],
        BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_U=block_u, SPLITS=splits,
        num_warps=config["num_warps"], num_stages=config["num_stages"],
    )
    wrap_triton(_combine_splits_kernel)[(batch * kv_heads, (q_heads // kv_heads) * lq)](
        o_part, ml_part, out, *out.stride(),
        HKV=kv_heads, GQA=q_heads // kv_heads, LQ=lq, D=head_dim, UNITS=layout.units, UNIT_VALUES=layout.unit_values,
        BLOCK_M=block_m, BLOCK_U=block_u, SPLITS=splits, BLOCK_S=_pow2(splits),
    )
    return out
