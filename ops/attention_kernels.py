"""Fused decode attention over stored codewords: FlashDecoding with the ECC decode in registers.

One program takes one (sequence, KV head) pair and one split of the key axis. It holds the
queries of every query head of that KV head's group (grouped-query attention) and of every
query token (``LQ``, a few for speculative decoding) as the ``BLOCK_M`` rows of one tile, walks
its keys ``BLOCK_N`` at a time, computes ``Q K^T`` and ``P V`` on the tensor cores with an online
softmax, and a last kernel combines the splits by their log-sum-exp. No dense K/V ever
reaches memory.

The ways to read a block:

- The **word path** (``PACKED``: one-byte codes -- int4, Hamming(7,4), Hamming(8,4) -- with one
  scale per row and rows of whole 32-bit words), the common case. A block is loaded as words
  of four codewords (eight int4 values). The Hamming syndromes of a K word and of the V word
  at the same place are computed together, both words' data nibbles packed into one word, one
  multiply per data bit covering eight codewords (``_word_syndromes``). A block whose
  syndromes are all zero, which is nearly every block, is attended directly from the words.
  Its nibbles become float16/bfloat16 with no int-to-float conversion (``_word_values``), in
  the column orders in which the dots' operands sit in registers (``_k_operand``,
  ``_v_operand_values``), so that no unpacked value crosses threads through shared memory.
  The per-row scale (and zero point) is folded into the scores and the softmax weights
  instead of into every value. A block with any non-zero syndrome is *deferred*.
- The **lane path** (``LANES``): Golay's lane layout (:mod:`ecc_tensor.lanes`) at head_dim 128,
  one scale per row. A row is 16 INT4 data words and 17 parity words; each parity word holds,
  nibble lane for nibble lane, the parity of the codewords in the same lane of three data
  words, so eight codewords are checked with word operations (``_lane_row_syndromes``). A
  clean block's data words are attended as the int4 word path attends its words; a block with
  any non-zero syndrome is deferred.
- The **blocks path** (``BLOCKS``): SECDED(72,64)'s rows (an int4 row, then a check byte per
  16 values) at power-of-two head_dims from 64, one scale per row. Each codeword's check byte
  is computed from its two data words by rotations (``_block_parity_word``), four codewords
  folded into a word against a check word (``_block_row_syndromes``); a clean block's int4
  row is attended as the int4 word path attends its words, a dirty one deferred. The
  deferred launch decodes codeword by codeword (``_block_codewords``) and attends in float32
  in row order, interpolating detected codewords (``_block_slab``).
- The **unit path**, for the other layouts (Golay at other head_dims, grouped scales) and
  for deferred blocks. It reads storage *units* (:mod:`ecc_tensor.storage`): ``UNIT_VALUES``
  values per unit (1 for Hamming, 2 for int4, 3 for Golay: a codeword, wherever the lane
  layout puts its nibbles, ``_lane_words``), and treats value ``i`` of every unit (a *slot*)
  as a ``[BLOCK_N, BLOCK_U]`` tile of its own. ``Q K^T`` is the sum over slots
  of ``Q_i K_i^T``, and ``P V`` keeps one accumulator per slot, so Golay's 3-value codewords
  are never interleaved in registers. With one scale per row (``CLEAN_UNITS``), the main
  launch does as the word path: syndromes only (one small table per data nibble), scales
  folded into the dots, dirty blocks deferred. Otherwise (grouped scales) it decodes each unit
  as the reference does (in-register constants for the one-byte codes, table gathers for
  Golay) and dequantizes in float32.

Deferred blocks (dirty blocks of the clean-blocks-only main launches, and with ``INTERP`` the
grouped-scale unit path's blocks that hold an erased unit) are attended by a second launch
(``DEFERRED``). It decodes codeword by
codeword, counts, and replaces detected-uncorrectable values in the dequantized domain by the
mean of their nearest non-erased neighbours along the sequence, using the same arithmetic and
precedence as :func:`ecc_tensor.interp.interpolate_erasures`. It writes partials of its own,
which the combine kernel merges: the online softmax does not care about block order, and the
main loop stays free of the rare path's registers.

Precision: the word path's K/V are exact (INT4 values are exact in float16 and bfloat16; the
scale multiplies float32 scores). The unit path splits bfloat16 operands into two parts, so K/V
keep ~16 bits there too. Either way the output matches dequantize (float32) + float64
attention well within 1e-3.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl
from torch.library import wrap_triton

from ecc_tensor.codecs import CODEC_NAMES, get_codec
from ecc_tensor.codecs.golay import GOLAY_B
from ecc_tensor.metadata import MetadataLayout
from ecc_tensor.storage import StorageLayout

from .codec_kernels import (
    _block_decode, _block_parity_word, _lane_words, _load_units, _meta_unit, _meta_word, _meta_word_at, _pow2, _status,
    _syndrome_decode, _syndromes, _to_bf16_rne, _unit_value, _unit_word, block_offsets, nibble_parity_table, parity_only_syndrome,
)

LOG2E = 1.4426950408889634


@triton.jit
def _decode_units(word, enc_ptr, syn_ptr, mask, K: tl.constexpr, DECODE: tl.constexpr,
                  NIBBLE: tl.constexpr, PAR_LO: tl.constexpr, PAR_HI: tl.constexpr, FLIP_LO: tl.constexpr,
                  FLIP_HI: tl.constexpr, DET: tl.constexpr, PBITS: tl.constexpr, PO_SYN: tl.constexpr):
    """(corrected data word, status) of each unit, as the reference (status 0 clean,
    1 corrected, 2 detected, 3 parity-only).

    One-byte codes (``NIBBLE``: 4 data bits, at most 4 parity bits) decode in registers:
    the codec's encode and syndrome tables are folded into 32-bit constants holding one
    nibble per entry (parity of each data nibble, data flips of each syndrome) and a
    detected-syndrome bit mask, so no table is gathered from memory. Other codes (Golay)
    gather from the tables (``enc_ptr``: ``nibble_parity_table``), once per 3-value codeword."""
    if DECODE:
        if NIBBLE:
            d = word & 15
            sh = (d & 7) * 4
            parity = tl.where(d < 8, tl.full(d.shape, PAR_LO, tl.int32) >> sh, tl.full(d.shape, PAR_HI, tl.int32) >> sh) & 15
            syndrome = ((word >> 4) & ((1 << PBITS) - 1)) ^ parity
            sh = (syndrome & 7) * 4
            flip = tl.where(syndrome < 8, tl.full(d.shape, FLIP_LO, tl.int32) >> sh, tl.full(d.shape, FLIP_HI, tl.int32) >> sh) & 15
            detected = ((tl.full(d.shape, DET, tl.int32) >> syndrome) & 1) != 0
            return d ^ flip, _status(syndrome, ~detected, PO_SYN)
        else:
            return _syndrome_decode(word, enc_ptr, syn_ptr, mask, K, PO_SYN)
    else:
        return word, tl.zeros(word.shape, tl.int32)  # int4: nothing to correct


@triton.jit
def _group_scale(meta_base, rows, mask, w, menc_ptr, msyn_ptr, MK: tl.constexpr, MPO_SYN: tl.constexpr, DECODE: tl.constexpr,
                 GROUPS: tl.constexpr, HAS_ZERO: tl.constexpr, MUV: tl.constexpr, MUB: tl.constexpr, MRB: tl.constexpr,
                 META_LANES: tl.constexpr, META_UNITS: tl.constexpr):
    """The scale and offset (zero point, or 8 when symmetric) of group ``w`` of ``rows`` (the
    constant 0 with one group), decoded and corrected from their metadata codewords, and
    whether either holds a detected one."""
    row_ptrs = meta_base + rows.to(tl.int64) * MRB
    if GROUPS == 1:
        s_bits, detected = _meta_word_at(row_ptrs, 0, mask, menc_ptr, msyn_ptr, MK, MPO_SYN, DECODE, MUV, MUB, META_LANES, META_UNITS)
    else:
        s_bits, detected = _meta_word(row_ptrs, w, mask, menc_ptr, msyn_ptr, MK, MPO_SYN, DECODE, MUV, MUB)
    if HAS_ZERO:
        if GROUPS == 1:
            z_bits, z_detected = _meta_word_at(row_ptrs, 1, mask, menc_ptr, msyn_ptr, MK, MPO_SYN, DECODE, MUV, MUB, META_LANES,
                                               META_UNITS)
        else:
            z_bits, z_detected = _meta_word(row_ptrs, GROUPS + w, mask, menc_ptr, msyn_ptr, MK, MPO_SYN, DECODE, MUV, MUB)
        offset = z_bits.to(tl.float32, bitcast=True)
        detected = detected | z_detected
    else:
        offset = 8.0
    # One return statement: Triton compiles every return of a function, even one under a
    # compile-time branch, and a zero point and the constant 8 are not the same type.
    return s_bits.to(tl.float32, bitcast=True), offset, detected


@triton.jit
def _slot_group(u, SLOT: tl.constexpr, UNIT_VALUES: tl.constexpr, LANES_D: tl.constexpr, D: tl.constexpr, GROUP: tl.constexpr):
    """The scale group of value ``SLOT`` of each unit, ``[1, U]`` (callers with one group use
    the constant 0 instead)."""
    return (tl.minimum(_unit_value(u, SLOT, UNIT_VALUES, LANES_D), D - 1) // GROUP)[None, :]


@triton.jit
def _slot_values(data, rows, row_ok, u, meta_base, menc_ptr, msyn_ptr, SLOT: tl.constexpr, UNIT_VALUES: tl.constexpr,
                 LANES_D: tl.constexpr, D: tl.constexpr, GROUPS: tl.constexpr, GROUP: tl.constexpr, HAS_ZERO: tl.constexpr,
                 MK: tl.constexpr, MPO_SYN: tl.constexpr, DECODE: tl.constexpr, MUV: tl.constexpr, MUB: tl.constexpr,
                 MRB: tl.constexpr, META_LANES: tl.constexpr, META_UNITS: tl.constexpr):
    """Value ``SLOT`` of each unit, dequantized in float32 with its group's scale decoded from the
    metadata: ``((v - offset) * scale, whether that scale or zero point is detected)``.
    ``rows``/``row_ok`` are ``[N, 1]`` or ``[N, U]``."""
    v = ((data >> (4 * SLOT)) & 15).to(tl.float32)
    if GROUPS == 1:  # one scale per row: decoded once per row
        w = 0
        mask = row_ok
    else:  # a group per column: the mask takes the tile's shape
        w = _slot_group(u, SLOT, UNIT_VALUES, LANES_D, D, GROUP)
        mask = row_ok & (w >= 0)
    s, off, detected = _group_scale(meta_base, rows, mask, w, menc_ptr, msyn_ptr, MK, MPO_SYN, DECODE, GROUPS, HAS_ZERO, MUV, MUB, MRB,
                                    META_LANES, META_UNITS)
    return (v - off) * s, detected


@triton.jit
def _meta_rows_detected(meta_base, rows, mask, menc_ptr, msyn_ptr, MK: tl.constexpr, MPO_SYN: tl.constexpr,
                        META_UNITS: tl.constexpr, MUB: tl.constexpr, MRB: tl.constexpr, META_LANES: tl.constexpr):
    """Whether any metadata codeword of ``rows`` (any shape) is detected-uncorrectable: with one
    scale group, whether the row's values are erased."""
    row_ptrs = meta_base + rows.to(tl.int64) * MRB
    detected = tl.zeros(mask.shape, tl.int1)
    for mu in tl.static_range(META_UNITS):
        _, status = _syndrome_decode(_meta_unit(row_ptrs, mu, mask, MUB, META_LANES), menc_ptr, msyn_ptr, mask, MK, MPO_SYN)
        detected = detected | (status == 2)
    return detected & mask


@triton.jit
def _neighbour_rows(stored_ptr, meta_base, enc_ptr, syn_ptr, menc_ptr, msyn_ptr, rows, u, erased, seq_len, SLOT: tl.constexpr,
                    ROW_BYTES: tl.constexpr, UNIT_BYTES: tl.constexpr, UNIT_VALUES: tl.constexpr, LANES_D: tl.constexpr,
                    D: tl.constexpr, K: tl.constexpr, GROUPS: tl.constexpr, GROUP: tl.constexpr, HAS_ZERO: tl.constexpr,
                    META_UNITS: tl.constexpr, MUV: tl.constexpr, MUB: tl.constexpr, MRB: tl.constexpr, META_LANES: tl.constexpr,
                    NIBBLE: tl.constexpr, PAR_LO: tl.constexpr, PAR_HI: tl.constexpr, FLIP_LO: tl.constexpr,
                    FLIP_HI: tl.constexpr, DET: tl.constexpr, PBITS: tl.constexpr, PO_SYN: tl.constexpr, MK: tl.constexpr,
                    MPO_SYN: tl.constexpr):
    """For each erased unit (one scale group: every value of the unit) or value ``SLOT`` of a
    unit (several groups) ``[N, U]``: the nearest row before and after it (below ``seq_len``)
    where it is not erased (neither its codeword nor its group's scale detected), or -1."""
    prev_row = tl.full(erased.shape, -1, tl.int32)
    next_row = tl.full(erased.shape, -1, tl.int32)
    pend_prev = erased
    pend_next = erased
    t = 1
    while tl.max((pend_prev | pend_next).to(tl.int32)) > 0:
        # A loop, not unrolled: one copy of the decode below in the kernel, not two (compile
        # time: Triton's coalescing pass is quadratic in a kernel's loads).
        for direction in range(2):
            back = direction == 0
            r = tl.where(back, rows[:, None] - t, rows[:, None] + t)
            ok = tl.where(back, pend_prev & (r >= 0), pend_next & (r < seq_len))
            _, status = _decode_units(_load_units(stored_ptr, r, u, ok, ROW_BYTES, UNIT_BYTES, LANES_D), enc_ptr, syn_ptr, ok, K,
                                      True, NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS, PO_SYN)
            if GROUPS == 1:
                meta_det = _meta_rows_detected(meta_base, r, ok, menc_ptr, msyn_ptr, MK, MPO_SYN, META_UNITS, MUB, MRB, META_LANES)
            else:
                w = _slot_group(u, SLOT, UNIT_VALUES, LANES_D, D, GROUP)
                _, _, meta_det = _group_scale(meta_base, r, ok, w, menc_ptr, msyn_ptr, MK, MPO_SYN, True, GROUPS, HAS_ZERO, MUV, MUB,
                                              MRB, META_LANES, META_UNITS)
            prev_row, next_row, pend_prev, pend_next = _neighbour_found(back, r, ok, (status == 2) | meta_det, prev_row, next_row,
                                                                        pend_prev, pend_next)
        t += 1
    return prev_row, next_row


@triton.jit
def _neighbour_found(back, r, ok, detected, prev_row, next_row, pend_prev, pend_next):
    """One step of a neighbour search: row ``r`` (looked at where ``ok``) is the neighbour
    before (``back``) or after where it is not ``detected``; the search goes on where it is."""
    prev_row = tl.where(back & ok & ~detected, r, prev_row)
    pend_prev = tl.where(back, ok & detected, pend_prev)
    next_row = tl.where(~back & ok & ~detected, r, next_row)
    pend_next = tl.where(back, pend_next, ok & detected)
    return prev_row, next_row, pend_prev, pend_next


@triton.jit
def _neighbour_values(row, has, stored_ptr, meta_base, enc_ptr, syn_ptr, menc_ptr, msyn_ptr, u, SLOT: tl.constexpr,
                      META_UNITS: tl.constexpr,
                      ROW_BYTES: tl.constexpr, UNIT_BYTES: tl.constexpr, UNIT_VALUES: tl.constexpr, LANES_D: tl.constexpr,
                      D: tl.constexpr, K: tl.constexpr, GROUPS: tl.constexpr, GROUP: tl.constexpr, HAS_ZERO: tl.constexpr,
                      MUV: tl.constexpr, MUB: tl.constexpr, MRB: tl.constexpr, META_LANES: tl.constexpr,
                      NIBBLE: tl.constexpr, PAR_LO: tl.constexpr, PAR_HI: tl.constexpr, FLIP_LO: tl.constexpr,
                      FLIP_HI: tl.constexpr, DET: tl.constexpr, PBITS: tl.constexpr, PO_SYN: tl.constexpr, MK: tl.constexpr,
                      MPO_SYN: tl.constexpr):
    """Value ``SLOT`` of each unit at rows ``row`` (where ``has``), decoded and dequantized."""
    r = tl.maximum(row, 0)
    data, _ = _decode_units(_load_units(stored_ptr, r, u, has, ROW_BYTES, UNIT_BYTES, LANES_D), enc_ptr, syn_ptr, has, K, True,
                            NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS, PO_SYN)
    x, _ = _slot_values(data, r, has, u, meta_base, menc_ptr, msyn_ptr, SLOT, UNIT_VALUES, LANES_D, D, GROUPS, GROUP, HAS_ZERO,
                        MK, MPO_SYN, True, MUV, MUB, MRB, META_LANES, META_UNITS)
    return x


@triton.jit
def _kv_slot(data, block, rows, row_ok, u, col_ok, seq_len, stored_ptr, meta_base, enc_ptr,
             syn_ptr, menc_ptr, msyn_ptr, SLOT: tl.constexpr, INTERP: tl.constexpr, ROW_BYTES: tl.constexpr, UNIT_BYTES: tl.constexpr,
             UNIT_VALUES: tl.constexpr, LANES_D: tl.constexpr, D: tl.constexpr, K: tl.constexpr, DECODE: tl.constexpr,
             GROUPS: tl.constexpr, GROUP: tl.constexpr, HAS_ZERO: tl.constexpr, META_UNITS: tl.constexpr, MUV: tl.constexpr,
             MUB: tl.constexpr, MRB: tl.constexpr, META_LANES: tl.constexpr,
             NIBBLE: tl.constexpr, PAR_LO: tl.constexpr, PAR_HI: tl.constexpr, FLIP_LO: tl.constexpr,
             FLIP_HI: tl.constexpr, DET: tl.constexpr, PBITS: tl.constexpr, PO_SYN: tl.constexpr, MK: tl.constexpr, MPO_SYN: tl.constexpr):
    """Slot ``SLOT`` of a K or V block ``[N, U]``, dequantized in float32; with ``INTERP``, its
    erased values (of a detected codeword, or of a group whose scale is detected) replaced as
    :func:`ecc_tensor.interp.interpolate_erasures` does: the neighbours' mean, the one neighbour
    there is, or the value as read when there is none. ``block`` is ``_block_state``'s: with one
    scale group, the rows' scales, erasures, neighbour rows and their decoded data and scales,
    shared by every slot; with several, each slot finds its own, since a unit's values may
    belong to different groups."""
    erased, any_erased, scale, offset, prev_row, next_row, prev_data, prev_scale, prev_offset, next_data, next_scale, next_offset = block
    v = ((data >> (4 * SLOT)) & 15).to(tl.float32)
    if GROUPS == 1:
        x = (v - offset) * scale
        if INTERP:
            if any_erased:
                pv = (((prev_data >> (4 * SLOT)) & 15).to(tl.float32) - prev_offset) * prev_scale
                nv = (((next_data >> (4 * SLOT)) & 15).to(tl.float32) - next_offset) * next_scale
                has_prev = prev_row >= 0
                has_next = next_row >= 0
                filled = tl.where(has_prev & has_next, (pv + nv) * 0.5, tl.where(has_prev, pv, tl.where(has_next, nv, x)))
                x = tl.where(erased, filled, x)
    else:
        x, meta_det = _slot_values(data, rows[:, None], row_ok[:, None], u, meta_base, menc_ptr, msyn_ptr, SLOT, UNIT_VALUES, LANES_D,
                                   D, GROUPS, GROUP, HAS_ZERO, MK, MPO_SYN, DECODE, MUV, MUB, MRB, META_LANES, META_UNITS)
        if INTERP:
            erased = (erased | meta_det) & row_ok[:, None] & col_ok[None, :]
            if tl.max(erased.to(tl.int32)) > 0:
                prev_row, next_row = _neighbour_rows(
                    stored_ptr, meta_base, enc_ptr, syn_ptr, menc_ptr, msyn_ptr, rows, u, erased, seq_len, SLOT, ROW_BYTES, UNIT_BYTES,
                    UNIT_VALUES,
                    LANES_D, D, K, GROUPS, GROUP, HAS_ZERO, META_UNITS, MUV, MUB, MRB, META_LANES, NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI,
                    DET, PBITS, PO_SYN, MK, MPO_SYN)
                has_prev = prev_row >= 0
                has_next = next_row >= 0
                pv = _neighbour_values(prev_row, has_prev, stored_ptr, meta_base, enc_ptr, syn_ptr, menc_ptr, msyn_ptr, u, SLOT,
                                       META_UNITS, ROW_BYTES,
                                       UNIT_BYTES, UNIT_VALUES, LANES_D, D, K, GROUPS, GROUP, HAS_ZERO, MUV, MUB, MRB, META_LANES, NIBBLE,
                                       PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS, PO_SYN, MK, MPO_SYN)
                nv = _neighbour_values(next_row, has_next, stored_ptr, meta_base, enc_ptr, syn_ptr, menc_ptr, msyn_ptr, u, SLOT,
                                       META_UNITS, ROW_BYTES,
                                       UNIT_BYTES, UNIT_VALUES, LANES_D, D, K, GROUPS, GROUP, HAS_ZERO, MUV, MUB, MRB, META_LANES, NIBBLE,
                                       PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS, PO_SYN, MK, MPO_SYN)
                filled = tl.where(has_prev & has_next, (pv + nv) * 0.5, tl.where(has_prev, pv, tl.where(has_next, nv, x)))
                x = tl.where(erased, filled, x)
    return tl.where(col_ok[None, :], x, 0.0)


@triton.jit
def _decode_block(base, rows, row_ok, u, u_ok, enc_ptr, syn_ptr,
                  ROW_BYTES: tl.constexpr, UNIT_BYTES: tl.constexpr, LANES_D: tl.constexpr, K: tl.constexpr, DECODE: tl.constexpr,
                  NIBBLE: tl.constexpr, PAR_LO: tl.constexpr, PAR_HI: tl.constexpr, FLIP_LO: tl.constexpr,
                  FLIP_HI: tl.constexpr, DET: tl.constexpr, PBITS: tl.constexpr, PO_SYN: tl.constexpr):
    """One K or V block's units: (data, status), status 0 outside the block."""
    unit_mask = row_ok[:, None] & u_ok[None, :]
    data, status = _decode_units(_load_units(base, rows[:, None], u, unit_mask, ROW_BYTES, UNIT_BYTES, LANES_D), enc_ptr, syn_ptr,
                                 unit_mask, K, DECODE, NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS, PO_SYN)
    return data, tl.where(unit_mask, status, 0)


@triton.jit
def _block_state(base, meta_base, rows, row_ok, u, u_ok, status, meta_rows_detected, seq_len, enc_ptr, syn_ptr, menc_ptr, msyn_ptr,
                 REPAIR: tl.constexpr, ROW_BYTES: tl.constexpr, UNIT_BYTES: tl.constexpr, UNIT_VALUES: tl.constexpr,
                 LANES_D: tl.constexpr, D: tl.constexpr, K: tl.constexpr, DECODE: tl.constexpr, GROUPS: tl.constexpr,
                 GROUP: tl.constexpr, HAS_ZERO: tl.constexpr, META_UNITS: tl.constexpr, MUV: tl.constexpr, MUB: tl.constexpr,
                 MRB: tl.constexpr, META_LANES: tl.constexpr, NIBBLE: tl.constexpr, PAR_LO: tl.constexpr, PAR_HI: tl.constexpr,
                 FLIP_LO: tl.constexpr, FLIP_HI: tl.constexpr, DET: tl.constexpr, PBITS: tl.constexpr, PO_SYN: tl.constexpr,
                 MK: tl.constexpr, MPO_SYN: tl.constexpr):
    """What every slot of a K or V block shares (``_kv_slot``): its erased units ``[N, U]``
    (detected codewords; with one scale group, every unit of a row whose scale is detected
    too) and whether any; with one group, the rows' decoded scale and offset ``[N, 1]`` and, in
    the repair pass, the erased units' neighbour rows with their decoded data, scales and
    offsets, found and decoded once for all of a unit's values."""
    unit_mask = row_ok[:, None] & u_ok[None, :]
    erased = status == 2
    zeros = tl.zeros(erased.shape, tl.float32)
    prev_row = rows[:, None] + tl.zeros(erased.shape, tl.int32)
    next_row = prev_row
    prev_data = tl.zeros(erased.shape, tl.int32)
    next_data = prev_data
    prev_scale = zeros
    next_scale = zeros
    scale = tl.zeros([rows.shape[0], 1], tl.float32)
    if HAS_ZERO:
        prev_offset = zeros
        next_offset = zeros
        offset = scale
    else:  # symmetric: the offset is the constant 8 everywhere
        prev_offset = 8.0
        next_offset = 8.0
        offset = 8.0
    any_erased = False
    if GROUPS == 1:
        erased = (erased | meta_rows_detected[:, None]) & unit_mask
        scale, offset, row_detected = _group_scale(meta_base, rows[:, None], row_ok[:, None], 0, menc_ptr, msyn_ptr, MK, MPO_SYN,
                                                   DECODE, GROUPS,
                                        HAS_ZERO, MUV, MUB, MRB, META_LANES, META_UNITS)
        if REPAIR:
            any_erased = tl.max(erased.to(tl.int32)) > 0
            if any_erased:
                prev_row, next_row = _neighbour_rows(
                    base, meta_base, enc_ptr, syn_ptr, menc_ptr, msyn_ptr, rows, u, erased, seq_len, 0, ROW_BYTES, UNIT_BYTES,
                    UNIT_VALUES, LANES_D,
                    D, K, GROUPS, GROUP, HAS_ZERO, META_UNITS, MUV, MUB, MRB, META_LANES, NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI,
                    DET, PBITS, PO_SYN, MK, MPO_SYN)
                # The rows before and after, decoded in a loop rather than unrolled (one copy of
                # the decode, as in _neighbour_rows).
                for side in range(2):
                    before = side == 0
                    row = tl.where(before, prev_row, next_row)
                    has = row >= 0
                    r = tl.maximum(row, 0)
                    data, _ = _decode_units(_load_units(base, r, u, has, ROW_BYTES, UNIT_BYTES, LANES_D), enc_ptr, syn_ptr, has, K, True,
                                            NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS, PO_SYN)
                    side_scale, side_offset, _ = _group_scale(meta_base, r, has, 0, menc_ptr, msyn_ptr, MK, MPO_SYN, True, GROUPS,
                                                              HAS_ZERO, MUV, MUB, MRB, META_LANES, META_UNITS)
                    prev_data = tl.where(before, data, prev_data)
                    next_data = tl.where(before, next_data, data)
                    prev_scale = tl.where(before, side_scale, prev_scale)
                    next_scale = tl.where(before, next_scale, side_scale)
                    if HAS_ZERO:
                        prev_offset = tl.where(before, side_offset, prev_offset)
                        next_offset = tl.where(before, next_offset, side_offset)
    return erased, any_erased, scale, offset, prev_row, next_row, prev_data, prev_scale, prev_offset, next_data, next_scale, next_offset


@triton.jit
def _meta_block(meta_base, rows, row_ok, menc_ptr, msyn_ptr, MK: tl.constexpr, MPO_SYN: tl.constexpr, DECODE: tl.constexpr,
                META_UNITS: tl.constexpr, MUB: tl.constexpr, MRB: tl.constexpr, META_LANES: tl.constexpr):
    """The metadata codewords of a block's rows: (corrected, parity-only, detected counts, and
    per row whether any is detected)."""
    corrected = tl.zeros([], tl.int32)
    parity_only = tl.zeros([], tl.int32)
    detected = tl.zeros([], tl.int32)
    any_detected = tl.zeros(row_ok.shape, tl.int1)
    if DECODE:
        row_ptrs = meta_base + rows.to(tl.int64) * MRB
        for mu in tl.static_range(META_UNITS):
            _, status = _syndrome_decode(_meta_unit(row_ptrs, mu, row_ok, MUB, META_LANES), menc_ptr, msyn_ptr, row_ok, MK, MPO_SYN)
            status = tl.where(row_ok, status, 0)
            corrected += tl.sum((status == 1).to(tl.int32), axis=0)
            parity_only += tl.sum((status == 3).to(tl.int32), axis=0)
            detected += tl.sum((status == 2).to(tl.int32), axis=0)
            any_detected = any_detected | (status == 2)
    return corrected, parity_only, detected, any_detected


@triton.jit
def _shifted(x, SHIFT: tl.constexpr):
    if SHIFT >= 0:
        return x << SHIFT
    return x >> -SHIFT


@triton.jit
def _clean_row_meta(meta_base, rows, menc_ptr, MK: tl.constexpr, DECODE: tl.constexpr, HAS_ZERO: tl.constexpr,
                    META_WORDS: tl.constexpr, META_UNITS: tl.constexpr, MUV: tl.constexpr, MUB: tl.constexpr, MRB: tl.constexpr):
    """The clean-blocks paths' metadata of one scale group per row: (scale, zero point (0 when
    symmetric), dirty: non-zero where a metadata codeword of the row has a non-zero syndrome),
    with the data bits taken as read (a dirty row defers its block). ``META_WORDS``: rows of
    whole aligned 32-bit words, the unprotected float32 words themselves (int4); otherwise
    Golay's codewords one after another, unit by unit (several scale groups; one group takes
    the lane layout, ``_lane_meta_syndromes``)."""
    zero_bits = tl.zeros(rows.shape, tl.int32)
    dirty = tl.zeros(rows.shape, tl.int32)
    if META_WORDS:
        words = meta_base.to(tl.pointer_type(tl.uint32)) + rows * META_WORDS
        scale_bits = tl.load(words).to(tl.int32, bitcast=True)
        if HAS_ZERO:
            zero_bits = tl.load(words + 1).to(tl.int32, bitcast=True)
    else:
        DATA_BITS: tl.constexpr = 4 * MUV
        scale_bits = tl.zeros(rows.shape, tl.int32)
        row_ptrs = meta_base + rows * MRB
        for mu in tl.static_range(META_UNITS):
            word = _unit_word(row_ptrs + mu * MUB, None, MUB)
            if DECODE:
                dirty |= _syndromes(word, menc_ptr, None, MK)
            data = word & ((1 << DATA_BITS) - 1)
            if DATA_BITS * mu < 32:
                scale_bits |= _shifted(data, DATA_BITS * mu)
            if HAS_ZERO:
                if (DATA_BITS * mu + DATA_BITS > 32) and (DATA_BITS * mu < 64):
                    zero_bits |= _shifted(data, DATA_BITS * mu - 32)
    return scale_bits.to(tl.float32, bitcast=True), zero_bits.to(tl.float32, bitcast=True), dirty


@triton.jit
def _lane_meta_syndromes(k_words, v_words, rows, HAS_ZERO: tl.constexpr):
    """Golay metadata in the lane layout (one scale group): a row of 8 nibbles is one data
    word (the float32 itself) and two parity words, 3 codewords in nibble lanes 0..2
    (``ecc_tensor.lanes``: codeword c holds values c, c + 3, c + 6, its parity nibble t at
    parity nibble 3t + c); with zero points, 16 nibbles in two data words and three parity
    words, 6 codewords. Returns (K scale bits, K zero bits, V scale bits, V zero bits, dirty),
    dirty non-zero where a codeword of the row's K or V metadata has a non-zero syndrome."""
    k0 = tl.load(k_words + rows * (6 if HAS_ZERO else 4))
    v0 = tl.load(v_words + rows * (6 if HAS_ZERO else 4))
    if HAS_ZERO:
        k_base = k_words + rows * 6
        v_base = v_words + rows * 6
        k1 = tl.load(k_base + 1)
        v1 = tl.load(v_base + 1)
        dirty = tl.zeros(rows.shape, tl.uint32)
        for which in tl.static_range(2):
            if which == 0:
                d0, d1, base = k0, k1, k_base
            else:
                d0, d1, base = v0, v1, v_base
            q0 = tl.load(base + 2)
            q1 = tl.load(base + 3)
            q2 = tl.load(base + 4)
            # Six lanes: values c, c + 6, c + 12; parity nibbles 6t + c.
            dirty |= _lane_syndromes(d0, (d0 >> 24) | (d1 << 8), d1 >> 16, q0, (q0 >> 24) | (q1 << 8), (q1 >> 16) | (q2 << 16)) & 0xFFFFFF
        return k0, k1, v0, v1, dirty.to(tl.int32, bitcast=True)
    kq0 = tl.load(k_words + rows * 4 + 1)
    kq1 = tl.load(k_words + rows * 4 + 2)
    vq0 = tl.load(v_words + rows * 4 + 1)
    vq1 = tl.load(v_words + rows * 4 + 2)
    # K's three lanes and V's three beside them (lanes 3..5): one check for both.
    x0 = (k0 & 0xFFF) | ((v0 & 0xFFF) << 12)
    x1 = ((k0 >> 12) & 0xFFF) | (((v0 >> 12) & 0xFFF) << 12)
    x2 = (k0 >> 24) | ((v0 >> 24) << 12)
    p0 = (kq0 & 0xFFF) | ((vq0 & 0xFFF) << 12)
    p1 = ((kq0 >> 12) & 0xFFF) | (((vq0 >> 12) & 0xFFF) << 12)
    p2 = (((kq0 >> 24) | (kq1 << 8)) & 0xFFF) | ((((vq0 >> 24) | (vq1 << 8)) & 0xFFF) << 12)
    dirty = _lane_syndromes(x0, x1, x2, p0, p1, p2) & 0xFFFFFF
    zero = tl.zeros(rows.shape, tl.uint32)
    return k0, zero, v0, zero, dirty.to(tl.int32, bitcast=True)


@triton.jit
def _clean_rows_meta(km_base, vm_base, rows, menc_ptr, MK: tl.constexpr, DECODE: tl.constexpr, HAS_ZERO: tl.constexpr,
                     META_WORDS: tl.constexpr, META_LANES: tl.constexpr, META_UNITS: tl.constexpr, MUV: tl.constexpr,
                     MUB: tl.constexpr, MRB: tl.constexpr):
    """The clean-blocks paths' K and V metadata of one scale group per row: (K scale, K zero,
    V scale, V zero, dirty), zero points 0 when symmetric, data bits as read (a dirty row defers
    its block). ``META_LANES``: Golay's lane layout (``_lane_meta_syndromes``)."""
    if META_LANES:
        ks, kz, vs, vz, dirty = _lane_meta_syndromes(km_base.to(tl.pointer_type(tl.uint32)), vm_base.to(tl.pointer_type(tl.uint32)),
                                                     rows, HAS_ZERO)
        return (ks.to(tl.float32, bitcast=True), kz.to(tl.float32, bitcast=True), vs.to(tl.float32, bitcast=True),
                vz.to(tl.float32, bitcast=True), dirty)
    ks, kz, k_dirty = _clean_row_meta(km_base, rows, menc_ptr, MK, DECODE, HAS_ZERO, META_WORDS, META_UNITS, MUV, MUB, MRB)
    vs, vz, v_dirty = _clean_row_meta(vm_base, rows, menc_ptr, MK, DECODE, HAS_ZERO, META_WORDS, META_UNITS, MUV, MUB, MRB)
    return ks, kz, vs, vz, k_dirty | v_dirty


@triton.jit
def _low_nibbles_from(a, b, PTX: tl.constexpr):
    """The low nibble of each byte from ``a``, the high nibble from ``b``: one LOP3 with
    ``PTX`` (CUDA), where the compiler makes two masks and an OR of them."""
    if PTX:
        return tl.inline_asm_elementwise("lop3.b32 $0, $1, $2, 0x0F0F0F0F, 0xE4;", "=r,r,r", [a, b],
                                         dtype=a.dtype, is_pure=True, pack=1)
    return (a & 0x0F0F0F0F) | (b & 0xF0F0F0F0)


@triton.jit
def _word_syndromes(x, y, C0: tl.constexpr, C1: tl.constexpr, C2: tl.constexpr, C3: tl.constexpr, PMASK: tl.constexpr,
                    PTX: tl.constexpr):
    """Two uint32 words of four one-byte Hamming codewords each -> a word whose eight nibbles
    are their syndromes (parity bits received ^ parity of the data received); the words are
    clean if and only if it is zero. The code is linear, so the parity of a data nibble is the
    XOR of ``C_i`` (the parity nibble of data bit ``i``) over its set bits. Both words' data
    nibbles are first packed into one word, so that each multiply places ``C_i`` in eight
    nibbles (those whose bit ``i`` is set) at once, without carries between them: ~18
    instructions for the two words, where one word at a time takes ~11 each."""
    data = _low_nibbles_from(x, y << 4, PTX)
    s = _low_nibbles_from(x >> 4, y, PTX)  # the parity nibbles, lane for lane
    s ^= (data & 0x11111111) * C0
    s ^= ((data >> 1) & 0x11111111) * C1
    s ^= ((data >> 2) & 0x11111111) * C2
    s ^= ((data >> 3) & 0x11111111) * C3
    return s & (PMASK | (PMASK >> 4))  # Hamming(7,4): bit 7 of a byte is no codeword bit


@triton.constexpr_function
def _lane_mask(u, shift, t):
    """Golay's lane layout (:mod:`ecc_tensor.lanes`): the bits of parity word ``t`` that data word
    ``u`` shifted left by ``shift`` (right if negative) feeds, in every nibble lane. Bit ``b'``
    of a parity nibble holds parity bit ``4t + 3 - b'`` (reversed); data bit ``b`` of value ``u``
    is bit ``4u + b`` of the data word d."""
    u, shift, t = int(u), int(shift), int(t)
    nibble = 0
    for dst in range(4):
        src = dst - shift
        if 0 <= src < 4 and GOLAY_B[4 * u + src][4 * t + 3 - dst]:
            nibble |= 1 << dst
    return nibble * 0x11111111


@triton.jit
def _lane_syndromes(x0, x1, x2, p0, p1, p2):
    """Three data words and three parity words of Golay's lane layout (uint32) -> a word that is
    zero where all eight codewords, one per nibble lane, are clean, and whose lane ``l`` is
    non-zero where codeword ``l`` is not. The parity of the data is linear: each data word,
    shifted by -3..3 bits, feeds each parity word through a mask (``_lane_mask``), 58 shifts
    and masked XORs in all (each masked XOR one LOP3)."""
    s0 = p0
    s1 = p1
    s2 = p2
    for u in tl.static_range(3):
        if u == 0:
            x = x0
        elif u == 1:
            x = x1
        else:
            x = x2
        for shift in tl.static_range(-3, 4):
            if _lane_mask(u, shift, 0) | _lane_mask(u, shift, 1) | _lane_mask(u, shift, 2):
                if shift >= 0:
                    y = x << shift
                else:
                    y = x >> -shift
                if _lane_mask(u, shift, 0):
                    s0 ^= y & _lane_mask(u, shift, 0)
                if _lane_mask(u, shift, 1):
                    s1 ^= y & _lane_mask(u, shift, 1)
                if _lane_mask(u, shift, 2):
                    s2 ^= y & _lane_mask(u, shift, 2)
    return s0 | s1 | s2


@triton.jit
def _fold_bytes(x0, x1, x2, x3, PTX: tl.constexpr):
    """Four uint32 words -> one whose byte ``i`` is the XOR of the four bytes of ``x_i``: two
    byte permutes and an XOR per halving (``PTX``), shifts and masks otherwise."""
    if PTX:
        lo_halves: tl.constexpr = "prmt.b32 $0, $1, $2, 0x5410;"
        hi_halves: tl.constexpr = "prmt.b32 $0, $1, $2, 0x7632;"
        even_bytes: tl.constexpr = "prmt.b32 $0, $1, $2, 0x6420;"
        odd_bytes: tl.constexpr = "prmt.b32 $0, $1, $2, 0x7531;"
        y01 = (tl.inline_asm_elementwise(lo_halves, "=r,r,r", [x0, x1], dtype=tl.uint32, is_pure=True, pack=1)
               ^ tl.inline_asm_elementwise(hi_halves, "=r,r,r", [x0, x1], dtype=tl.uint32, is_pure=True, pack=1))
        y23 = (tl.inline_asm_elementwise(lo_halves, "=r,r,r", [x2, x3], dtype=tl.uint32, is_pure=True, pack=1)
               ^ tl.inline_asm_elementwise(hi_halves, "=r,r,r", [x2, x3], dtype=tl.uint32, is_pure=True, pack=1))
        return (tl.inline_asm_elementwise(even_bytes, "=r,r,r", [y01, y23], dtype=tl.uint32, is_pure=True, pack=1)
                ^ tl.inline_asm_elementwise(odd_bytes, "=r,r,r", [y01, y23], dtype=tl.uint32, is_pure=True, pack=1))
    y01 = ((x0 ^ (x0 >> 16)) & 0xFFFF) | ((x1 ^ (x1 << 16)) & 0xFFFF0000)
    y23 = ((x2 ^ (x2 >> 16)) & 0xFFFF) | ((x3 ^ (x3 << 16)) & 0xFFFF0000)
    z01 = (y01 ^ (y01 >> 8)) & 0x00FF00FF  # bytes 0 and 2: x0's and x1's folds
    z23 = (y23 ^ (y23 >> 8)) & 0x00FF00FF
    return (z01 & 0xFF) | ((z01 >> 8) & 0xFF00) | ((z23 & 0xFF) << 16) | ((z23 << 8) & 0xFF000000)


@triton.jit
def _block_row_syndromes(words, checks, OFFSETS: tl.constexpr, PTX: tl.constexpr):
    """Rows of SECDED(72,64)'s blocks layout (``words``: ``[N, W]`` uint32, the int4 row, two
    words a codeword; ``checks``: ``[N, W / 8]``, the row's check bytes, four a word) -> a word
    per check word, byte ``i`` the syndrome of codeword ``4 j + i`` (zero where all four are
    clean): each codeword's parity word (``_block_parity_word``), four folded into one word
    whose bytes line up with the check bytes."""
    N: tl.constexpr = words.shape[0]
    C: tl.constexpr = words.shape[1] // 2
    lo, hi = tl.split(tl.reshape(words, [N, C, 2]))
    x0, x1, x2, x3 = _quarters(_block_parity_word(lo, hi, OFFSETS, PTX))  # codewords 4j .. 4j + 3
    folded = _fold_bytes(x0, x1, x2, x3, PTX)
    return folded ^ tl.reshape(checks, folded.shape)


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
def _block_values(lo, hi):
    """Codewords ``[N, C]`` (their two data words) -> their INT4 values ``[N, 16 C]`` in row
    order, as float32."""
    N: tl.constexpr = lo.shape[0]
    C: tl.constexpr = lo.shape[1]
    words = tl.reshape(tl.join(lo, hi), [N, 2 * C])
    return tl.reshape((words[:, :, None] >> (4 * tl.arange(0, 8))[None, None, :]) & 15, [N, 16 * C]).to(tl.float32)


@triton.jit
def _block_neighbour_rows(base, meta_base, rows, c, erased, seq_len, syn_ptr, menc_ptr, msyn_ptr, ROW_BYTES: tl.constexpr,
                          DATA_BYTES: tl.constexpr, OFFSETS: tl.constexpr, MK: tl.constexpr, MPO_SYN: tl.constexpr,
                          META_UNITS: tl.constexpr, MUB: tl.constexpr, MRB: tl.constexpr, META_LANES: tl.constexpr):
    """For each erased codeword ``[N, C]`` of the blocks layout: the nearest row before and after
    it (below ``seq_len``) where the same codeword is not erased (neither detected nor its row's
    scale), or -1, as ``_neighbour_rows`` does for units."""
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
            _, _, status = _block_codewords(base, r, ok, c, syn_ptr, ROW_BYTES, DATA_BYTES, OFFSETS)
            det = (status == 2) | _meta_rows_detected(meta_base, r, ok, menc_ptr, msyn_ptr, MK, MPO_SYN, META_UNITS, MUB, MRB,
                                                      META_LANES)
            prev_row, next_row, pend_prev, pend_next = _neighbour_found(back, r, ok, det, prev_row, next_row, pend_prev, pend_next)
        t += 1
    return prev_row, next_row


@triton.jit
def _block_neighbour_values(base, meta_base, row, c, syn_ptr, menc_ptr, msyn_ptr, ROW_BYTES: tl.constexpr, DATA_BYTES: tl.constexpr,
                            OFFSETS: tl.constexpr, HAS_ZERO: tl.constexpr, MK: tl.constexpr, MPO_SYN: tl.constexpr,
                            META_UNITS: tl.constexpr, MUV: tl.constexpr, MUB: tl.constexpr, MRB: tl.constexpr, META_LANES: tl.constexpr):
    """The values ``[N, 16 C]`` of codewords ``c`` at rows ``row`` (``[N, C]``, -1: none),
    decoded and dequantized with their rows' scales."""
    has = row >= 0
    r = tl.maximum(row, 0)
    lo, hi, _ = _block_codewords(base, r, has, c, syn_ptr, ROW_BYTES, DATA_BYTES, OFFSETS)
    scale, offset, _ = _group_scale(meta_base, r, has, 0, menc_ptr, msyn_ptr, MK, MPO_SYN, True, 1, HAS_ZERO, MUV, MUB, MRB, META_LANES,
                                    META_UNITS)
    if HAS_ZERO:
        offset = _per_value(offset)
    return (_block_values(lo, hi) - offset) * _per_value(scale)


@triton.jit
def _block_slab(base, meta_base, rows, row_ok, c, lo, hi, status, meta_rows_detected, seq_len, syn_ptr, menc_ptr, msyn_ptr,
                INTERP: tl.constexpr, ROW_BYTES: tl.constexpr, DATA_BYTES: tl.constexpr, OFFSETS: tl.constexpr, HAS_ZERO: tl.constexpr,
                MK: tl.constexpr, MPO_SYN: tl.constexpr, META_UNITS: tl.constexpr, MUV: tl.constexpr, MUB: tl.constexpr,
                MRB: tl.constexpr, META_LANES: tl.constexpr):
    """A K or V block of the blocks layout ``[N, D]`` in row order, dequantized in float32 from
    its decoded codewords (``lo``, ``hi``, ``status``: ``[N, C]``) and its rows' decoded scales;
    with ``INTERP``, the values of a detected codeword, or of a row whose scale is detected,
    replaced as :func:`ecc_tensor.interp.interpolate_erasures` does (``_kv_slot``)."""
    scale, offset, _ = _group_scale(meta_base, rows[:, None], row_ok[:, None], 0, menc_ptr, msyn_ptr, MK, MPO_SYN, True, 1, HAS_ZERO,
                                    MUV, MUB, MRB, META_LANES, META_UNITS)
    x = (_block_values(lo, hi) - offset) * scale
    if INTERP:
        erased = ((status == 2) | meta_rows_detected[:, None]) & row_ok[:, None]
        if tl.max(erased.to(tl.int32)) > 0:
            prev_row, next_row = _block_neighbour_rows(base, meta_base, rows, c, erased, seq_len, syn_ptr, menc_ptr, msyn_ptr, ROW_BYTES,
                                                       DATA_BYTES, OFFSETS, MK, MPO_SYN, META_UNITS, MUB, MRB, META_LANES)
            pv = x
            nv = x
            for side in range(2):  # a loop, not unrolled: one copy of the decode (compile time)
                before = side == 0
                values = _block_neighbour_values(base, meta_base, tl.where(before, prev_row, next_row), c, syn_ptr, menc_ptr, msyn_ptr,
                                                 ROW_BYTES, DATA_BYTES, OFFSETS, HAS_ZERO, MK, MPO_SYN, META_UNITS, MUV, MUB, MRB,
                                                 META_LANES)
                pv = tl.where(before, values, pv)
                nv = tl.where(before, nv, values)
            has_prev = _per_value(prev_row) >= 0
            has_next = _per_value(next_row) >= 0
            filled = tl.where(has_prev & has_next, (pv + nv) * 0.5, tl.where(has_prev, pv, tl.where(has_next, nv, x)))
            x = tl.where(_per_value(erased.to(tl.int32)) != 0, filled, x)
    return x


@triton.jit
def _quarters(x):
    """``[N, 4Q]`` -> its columns ``4q``, ``4q + 1``, ``4q + 2``, ``4q + 3``, each ``[N, Q]``
    (``[N]`` for Q = 1), split in registers."""
    N: tl.constexpr = x.shape[0]
    Q: tl.constexpr = x.shape[1] // 4
    even, odd = tl.split(tl.reshape(x, [N, Q, 2, 2]))
    c0, c2 = tl.split(even)
    c1, c3 = tl.split(odd)
    if Q == 1:
        c0, c1, c2, c3 = tl.reshape(c0, [N]), tl.reshape(c1, [N]), tl.reshape(c2, [N]), tl.reshape(c3, [N])
    return c0, c1, c2, c3


@triton.jit
def _lane_row_syndromes(data, parity, last):
    """Rows of Golay's lane layout at head_dim 128 (``data``, ``parity``: ``[N, 16]`` uint32,
    ``last``: ``[N]``, the row's last parity word) -> ``[N]``, zero where all 43 codewords of the
    row are clean. The chunk groups (data words ``4a .. 4a + 2``, parity words ``4a .. 4a + 2``,
    32 codewords), the tail group (data words 3, 7, 11; parity words 3, 7, 11; 8 codewords)
    and the three left-over codewords (the values of data word 15 at nibbles ``c, c + 3,
    c + 6``; parity nibble ``t`` at bits ``12t + 4c`` of parity words 15 and 16)."""
    d0, d1, d2, tails = _quarters(data)
    p0, p1, p2, extra = _quarters(parity)
    chunks = tl.reduce_or(_lane_syndromes(d0, d1, d2, p0, p1, p2), 1)
    t0, t1, t2, t3 = _quarters(tails)
    q0, q1, q2, q3 = _quarters(extra)
    tail = _lane_syndromes(t0, t1, t2, q0, q1, q2)
    left = _lane_syndromes(t3, t3 >> 12, t3 >> 24, q3, q3 >> 12, (q3 >> 24) | (last << 8)) & 0xFFF
    return chunks | tail | left


@triton.jit
def _word_column(c, SLOT_BITS: tl.constexpr):
    """The value (position in the row) at column ``c`` of ``_word_values``' tiles. Each word's
    values come in pairs ``(j, j + P/2)`` (``P`` values per word): the pair that
    ``(word >> shift) & 0x000F000F`` isolates, which thus becomes one float16x2 register with
    one mask and no shuffles."""
    P: tl.constexpr = 32 // SLOT_BITS
    return (c // P) * P + (c % P) // 2 + (c % 2) * (P // 2)


@triton.jit
def _from_biased(x, OFFSET: tl.constexpr, dtype: tl.constexpr):
    """int32 lanes holding ``v`` in their low 16 bits, with the exponent bias of ``dtype`` above
    it for 16-bit floats -> ``v - OFFSET`` in ``dtype``. No int-to-float conversion: ``v`` sits
    in the mantissa of a float whose exponent makes its last place 1 (1024 in float16, 128 in
    bfloat16, 2^23 in float32), and one exact subtraction removes that bias and the offset."""
    if dtype == tl.float32:
        return (x | 0x4B000000).to(tl.float32, bitcast=True) - (8388608.0 + OFFSET)
    elif dtype == tl.float16:
        return x.to(tl.int16).to(dtype, bitcast=True) - (1024.0 + OFFSET)
    else:
        return x.to(tl.int16).to(dtype, bitcast=True) - (128.0 + OFFSET)


@triton.constexpr_function
def _exponent_bias(dtype):
    """``dtype``'s exponent bias in both 16-bit halves of a word (``_from_biased``)."""
    return {tl.float16: 0x64006400, tl.bfloat16: 0x43004300}.get(dtype, 0)


@triton.constexpr_function
def _mask_bias_ptx(dst, src, bias):
    """PTX: ``dst = src & 0x000F000F | bias`` in one LOP3. As Triton ops the two constants take
    two instructions (a LOP3 has one immediate), and a bias passed in a register instead
    disturbs Triton's layouts."""
    return f"lop3.b32 {dst}, {src}, 0x000F000F, {hex(bias)}, 0xEA;"


@triton.jit
def _pairs(words, k: tl.constexpr, SLOT_BITS: tl.constexpr, dtype: tl.constexpr, PTX: tl.constexpr):
    """Values ``k`` and ``k + P/2`` of each word, 16 bits apart, each under ``dtype``'s
    exponent bias (``_from_biased``): one shift and, with ``PTX`` (CUDA), one LOP3
    (``_mask_bias_ptx``)."""
    BIAS: tl.constexpr = _exponent_bias(dtype)
    x = words >> (SLOT_BITS * k)
    if PTX:
        return tl.inline_asm_elementwise(_mask_bias_ptx("$0", "$1", BIAS), "=r,r", [x], dtype=words.dtype, is_pure=True, pack=1)
    return (x & 0x000F000F) | BIAS


@triton.jit
def _word_values(words, SLOT_BITS: tl.constexpr, OFFSET: tl.constexpr, dtype: tl.constexpr, PTX: tl.constexpr):
    """``[N, W]`` uint32 words holding ``P = 32 // SLOT_BITS`` INT4 values each (value ``j`` in
    bits ``[SLOT_BITS * j, SLOT_BITS * j + 4)``) -> ``[N, W * P]`` values ``v - OFFSET`` in
    ``dtype``, column ``c`` holding value ``_word_column(c)``: a word's pairs (``_pairs``), their
    16-bit halves side by side in a thread's registers."""
    t0 = _pairs(words, 0, SLOT_BITS, dtype, PTX)
    t1 = _pairs(words, 1, SLOT_BITS, dtype, PTX)
    if SLOT_BITS == 8:  # Hamming: one codeword per byte, data in its low nibble
        lo = tl.join(t0 & 0xFFFF, t1 & 0xFFFF)
        hi = tl.join(t0 >> 16, t1 >> 16)
    else:  # int4: eight nibbles per word, low nibble first
        t2 = _pairs(words, 2, SLOT_BITS, dtype, PTX)
        t3 = _pairs(words, 3, SLOT_BITS, dtype, PTX)
        lo = tl.join(tl.join(t0 & 0xFFFF, t2 & 0xFFFF), tl.join(t1 & 0xFFFF, t3 & 0xFFFF))
        hi = tl.join(tl.join(t0 >> 16, t2 >> 16), tl.join(t1 >> 16, t3 >> 16))
    x = tl.reshape(tl.join(lo, hi), [words.shape[0], words.shape[1] * (32 // SLOT_BITS)])
    return _from_biased(x, OFFSET, dtype)


# Operand order. tl.dot's operands (mma.sync m16n8k16, one warp, kWidth 4) give lane
# (g, t) = (lane // 4, lane % 4), along the reduced axis, the 4 consecutive positions from 4t
# of every 16, and along the other axis the positions g + 8i. Tiles whose columns are permuted
# to match come to that layout without moving values between threads (the words are read from
# shared memory straight into it), where tiles in row order cross threads through shared
# memory as float16. The queries are loaded, and the output stored, in these orders.

@triton.jit
def _k_operand(values, BLOCK_U: tl.constexpr):
    """``_word_values`` tile of K (``[N, BLOCK_U]``) -> its columns in K operand order (the
    reduced axis): lane ``t`` holds the ``BLOCK_U / 4`` values of words ``t * W/4 ..``, at
    columns ``16 c + 4 t + i``."""
    N: tl.constexpr = values.shape[0]
    x = tl.reshape(values, [N, 4, BLOCK_U // 16, 4])  # (t, c, i) at column t * BLOCK_U / 4 + 4 c + i
    return tl.reshape(tl.permute(x, [0, 2, 1, 3]), [N, BLOCK_U])


@triton.jit
def _k_operand_order(x, SLOT_BITS: tl.constexpr):
    """``[M, BLOCK_U]`` tile in row order (the queries) -> its columns in the order of
    ``_k_operand(_word_values(..))``. Permuted in registers after a contiguous load: a load
    along permuted columns is not contiguous, and Triton then lays the tile out column-major."""
    M: tl.constexpr = x.shape[0]
    U: tl.constexpr = x.shape[1]
    P: tl.constexpr = 32 // SLOT_BITS
    x = tl.reshape(tl.permute(tl.reshape(x, [M, U // P, 2, P // 2]), [0, 1, 3, 2]), [M, U])  # _word_column
    return _k_operand(x, U)


@triton.constexpr_function
def _key_value_ptx(byte, nibbles, bias):
    """PTX for ``_key_values``: one PRMT gathers byte ``byte`` of key a (``$n``) and of key b
    into the two 16-bit halves, one LOP3 per nibble masks it under the bias."""
    sel = hex(byte | byte << 4 | (4 + byte) << 8 | (4 + byte) << 12)
    n = int(nibbles)
    body = f"prmt.b32 t, ${n}, ${n + 1}, {sel}; " + _mask_bias_ptx("$0", "t", bias)
    if n == 2:
        body += " shr.b32 t, t, 4; " + _mask_bias_ptx("$1", "t", bias)
    return "{ .reg .b32 t; " + body + " }"


@triton.jit
def _key_value(wa, wb, shift: tl.constexpr, BIAS: tl.constexpr):
    """The nibble at bit ``shift`` of keys a and b, in the low and the high 16 bits, under
    ``BIAS`` (the Triton-op spelling of ``_key_value_ptx``)."""
    return ((wa >> shift) & 0xF) | (((wb >> shift) & 0xF) << 16) | BIAS


@triton.jit
def _key_values(wa, wb, byte: tl.constexpr, dtype: tl.constexpr, PTX: tl.constexpr):
    """One-byte codes: the value in byte ``byte`` of the words of two keys ``a``, ``b`` ->
    registers holding (a, b) of that value under ``dtype``'s exponent bias."""
    BIAS: tl.constexpr = _exponent_bias(dtype)
    if PTX:
        return tl.inline_asm_elementwise(_key_value_ptx(byte, 1, BIAS), "=r,r,r", [wa, wb],
                                         dtype=wa.dtype, is_pure=True, pack=1)
    return _key_value(wa, wb, 8 * byte, BIAS)


@triton.jit
def _key_nibbles(wa, wb, byte: tl.constexpr, dtype: tl.constexpr, PTX: tl.constexpr):
    """int4: ``_key_values`` of the low and of the high nibble of byte ``byte``."""
    BIAS: tl.constexpr = _exponent_bias(dtype)
    if PTX:
        return tl.inline_asm_elementwise(_key_value_ptx(byte, 2, BIAS), "=r,=r,r,r", [wa, wb],
                                         dtype=(wa.dtype, wa.dtype), is_pure=True, pack=1)
    return _key_value(wa, wb, 8 * byte, BIAS), _key_value(wa, wb, 8 * byte + 4, BIAS)


@triton.jit
def _v_operand_values(words, SLOT_BITS: tl.constexpr, OFFSET: tl.constexpr, dtype: tl.constexpr, PTX: tl.constexpr):
    """``[N, W]`` words of V -> ``[N, W * P]`` values in V operand order, the keys being the
    reduced axis: each float16x2 register pairs keys ``2r, 2r + 1`` (one value of two words, the
    way the softmax weights pair them, ``_key_values``), and column ``n`` holds value
    ``_v_operand_column(n)``: lane ``g`` the values of words ``g * W/8 ..``, at columns
    ``g + 8 i``."""
    N: tl.constexpr = words.shape[0]
    W: tl.constexpr = words.shape[1]
    P: tl.constexpr = 32 // SLOT_BITS
    wa, wb = tl.split(tl.permute(tl.reshape(words, [N // 2, 2, W]), [0, 2, 1]))
    # Joined as [.., high, k] (value k + high * P/2), so that the flattened order is the value's
    # position in its word.
    if SLOT_BITS == 8:
        r0 = _key_values(wa, wb, 0, dtype, PTX)
        r1 = _key_values(wa, wb, 1, dtype, PTX)
        r2 = _key_values(wa, wb, 2, dtype, PTX)
        r3 = _key_values(wa, wb, 3, dtype, PTX)
        y = tl.join(tl.join(r0, r2), tl.join(r1, r3))
    else:
        r0, r1 = _key_nibbles(wa, wb, 0, dtype, PTX)
        r2, r3 = _key_nibbles(wa, wb, 1, dtype, PTX)
        r4, r5 = _key_nibbles(wa, wb, 2, dtype, PTX)
        r6, r7 = _key_nibbles(wa, wb, 3, dtype, PTX)
        y = tl.join(tl.join(tl.join(r0, r4), tl.join(r2, r6)), tl.join(tl.join(r1, r5), tl.join(r3, r7)))
    x = tl.join(y & 0xFFFF, (y >> 16) & 0xFFFF)  # [N/2, W, ..., 2]: keys 2r, 2r + 1
    x = tl.permute(tl.reshape(x, [N // 2, W * P, 2]), [0, 2, 1])
    x = tl.permute(tl.reshape(x, [N, 8, W * P // 8]), [0, 2, 1])
    return _from_biased(tl.reshape(x, [N, W * P]), OFFSET, dtype)


@triton.jit
def _v_operand_column(n, BLOCK_U: tl.constexpr):
    """The value at column ``n`` of ``_v_operand_values`` (and of the accumulator it feeds)."""
    return (n % 8) * (BLOCK_U // 8) + n // 8


@triton.jit
def _slot_tile(data, SLOT: tl.constexpr, OFFSET: tl.constexpr, dtype: tl.constexpr, PTX: tl.constexpr):
    """Value ``SLOT`` of each unit's data word, ``v - OFFSET`` in ``dtype``, by the exponent
    bias (``_from_biased``)."""
    return _from_biased(_pairs((data >> (4 * SLOT)) & 15, 0, 16, dtype, PTX), OFFSET, dtype)


@triton.jit
def _unit_words(base, rows, u, S, ROW_BYTES: tl.constexpr, UNITS: tl.constexpr, UNIT_BYTES: tl.constexpr, LANES_D: tl.constexpr):
    """``[N, U]`` little-endian unit words of one (sequence, head) slab, unmasked: rows past the
    end read the slab's last row (their scores are masked, their syndromes cleared), units past
    a row's end its last unit (a real codeword; the queries there are zero, the outputs there
    are not read). Offsets within one slab fit in 32 bits."""
    rows = tl.minimum(rows, S - 1)
    u = tl.minimum(u, UNITS - 1)
    if LANES_D:
        return _lane_words(base + (rows * ROW_BYTES)[:, None], u[None, :], None, LANES_D)
    return _unit_word(base + (rows * ROW_BYTES)[:, None] + (u * UNIT_BYTES)[None, :], None, UNIT_BYTES)


@triton.jit
def _pv(acc, p, v, dtype: tl.constexpr, SPLIT_P: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """``acc + p @ v`` for ``v`` exact in ``dtype``; with ``SPLIT_P`` (bfloat16), p as the sum of
    two bfloat16 parts so that the weights keep ~16 bits instead of 8."""
    hi = p.to(dtype)
    acc = tl.dot(hi, v, acc, input_precision=DOT_PRECISION)
    if SPLIT_P:
        acc = tl.dot((p - hi.to(tl.float32)).to(dtype), v, acc, input_precision=DOT_PRECISION)
    return acc


@triton.jit
def _qk_float(q, k, s, dtype: tl.constexpr, SPLIT: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """``s + q @ k^T`` for float32 ``k``; with ``SPLIT`` (bfloat16), k as the sum of two
    bfloat16 parts, so that dequantized values are not rounded to 8 bits."""
    hi = k.to(dtype)
    s = tl.dot(q, tl.trans(hi), s, input_precision=DOT_PRECISION)
    if SPLIT:
        s = tl.dot(q, tl.trans((k - hi.to(tl.float32)).to(dtype)), s, input_precision=DOT_PRECISION)
    return s


@triton.jit
def _pv_float(acc, p, v, dtype: tl.constexpr, SPLIT: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """``acc + p @ v`` for float32 ``v``; with ``SPLIT`` (bfloat16), both as two bfloat16 parts
    (the product of the two small parts is left out)."""
    hi = v.to(dtype)
    acc = _pv(acc, p, hi, dtype, SPLIT, DOT_PRECISION)
    if SPLIT:
        acc = tl.dot(p.to(dtype), (v - hi.to(tl.float32)).to(dtype), acc, input_precision=DOT_PRECISION)
    return acc


@triton.jit
def _visible_scores(s, rows, row_ok, m_ok, head, qi, last_visible, deferred, mask_ptr, b,
                    stride_mb, stride_mh, stride_mq, stride_ms, HAS_MASK: tl.constexpr, MASK_ROWS: tl.constexpr, CAUSAL: tl.constexpr):
    """Scores (log2 domain) with the float mask added and everything a query row may not see
    (rows past the end, a deferred block, the causal future, masked keys) at -inf. With
    ``MASK_ROWS`` the mask is the same for every head and query of a sequence (a decoding
    step's mask, as transformers builds it: ``[B, 1, 1, S]``): one load per key row, where a
    load per (query row, key row) cost 40% of the call (H100, batch 8, 32k)."""
    visible = m_ok[:, None] & row_ok[None, :] & ((rows * 0 + deferred) == 0)[None, :]
    if CAUSAL:
        visible = visible & (rows[None, :] <= last_visible[:, None])
    if HAS_MASK and MASK_ROWS:
        s += tl.load(mask_ptr + b.to(tl.int64) * stride_mb + rows * stride_ms, mask=row_ok, other=0.0)[None, :] * 1.4426950408889634
    elif HAS_MASK:
        mask_ptrs = mask_ptr + b.to(tl.int64) * stride_mb + head[:, None] * stride_mh + qi[:, None] * stride_mq + rows[None, :] * stride_ms
        s += tl.load(mask_ptrs, mask=visible, other=0.0) * 1.4426950408889634
    return tl.where(visible, s, float("-inf"))


@triton.jit
def _folded_scales_softmax(s, rows, row_ok, q_sum, k_scale, k_zero, v_scale, v_zero, qk_scale, v_unit, m_i, l_i,
                           m_ok, head, qi, last_visible, deferred, mask_ptr, b, stride_mb, stride_mh, stride_mq, stride_ms,
                           HAS_ZERO: tl.constexpr, HAS_MASK: tl.constexpr, MASK_ROWS: tl.constexpr, CAUSAL: tl.constexpr):
    """One block of the online softmax where dequantization is folded into the dots: K = (v - z)
    * s per row, so q . K = s (q . v - z sum(q)) from ``s`` = q . v, and sum_n p_n s_n (v_n - z_n)
    likewise. ``k_scale`` .. ``v_zero`` are the rows' scales and zero points (``[BLOCK_N]``,
    decoded from their metadata). Returns the weights p * s / v_unit for the values v, the factor
    that rescales the accumulators, the new v_unit (the largest V scale so far: float16 weights
    stay in [0, 1] whatever the scales, and the factor is exactly 1 once neither it nor m moves),
    m, l, and the zero-point term to subtract (0 without zero points)."""
    if HAS_ZERO:
        s -= q_sum[:, None] * tl.where(row_ok, k_zero, 0.0)[None, :]
    # Under torch.compile a float argument may arrive as float64: keep the softmax in float32.
    s = s * (tl.where(row_ok, k_scale, 1.0) * qk_scale).to(tl.float32)[None, :]
    s = _visible_scores(s, rows, row_ok, m_ok, head, qi, last_visible, deferred, mask_ptr, b,
                        stride_mb, stride_mh, stride_mq, stride_ms, HAS_MASK, MASK_ROWS, CAUSAL)
    p, alpha, m_i, l_i = _online_softmax(s, m_i, l_i)
    # A deferred block's scales are as read, maybe corrupted (even NaN): they must not reach
    # the weights or the V unit, whose rows its zero weights would not mask.
    attended = row_ok & ((rows * 0 + deferred) == 0)
    v_scale = tl.where(attended, v_scale, 0.0)
    new_unit = tl.maximum(v_unit, tl.max(v_scale, axis=0))
    divisor = tl.where(new_unit > 0, new_unit, 1.0)  # 0 until a block has a non-zero V scale
    pw = p * (v_scale / divisor)[None, :]
    zero_term = tl.zeros([s.shape[0], 1], tl.float32)
    if HAS_ZERO:
        zero_term = tl.sum(pw * tl.where(attended, v_zero, 0.0)[None, :], axis=1)[:, None]
    return pw, (alpha * (v_unit / divisor))[:, None], new_unit, m_i, l_i, zero_term


@triton.jit
def _rescaled(acc, rescale):
    """``acc * rescale``, skipped (a branch the whole program takes) where every factor is
    exactly 1, as it is for most blocks once the running max and the V unit have settled."""
    if tl.max((rescale != 1.0).to(tl.int32)) != 0:
        acc = acc * rescale
    return acc


@triton.jit
def _online_softmax(s, m_i, l_i):
    """One block of the online softmax: (weights p, rescale factor of the old state, m, l)."""
    m_new = tl.maximum(m_i, tl.max(s, axis=1))
    m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
    # Exactly 1 where m did not move, rows that saw no key yet included (not exp2(-inf) = 0),
    # so that _rescaled can skip the accumulators.
    alpha = tl.where(m_new == m_i, 1.0, tl.exp2(m_i - m_safe))
    p = tl.exp2(s - m_safe[:, None])
    return p, alpha, m_new, l_i * alpha + tl.sum(p, axis=1)


@triton.jit
def _decode_attention_kernel(
    q_ptr, k_ptr, km_ptr, v_ptr, vm_ptr, enc_ptr, syn_ptr, menc_ptr, msyn_ptr,
    seq_lens_ptr, mask_ptr, counters_ptr, o_part_ptr, ml_part_ptr, defer_ptr,
    qk_scale,  # softmax scale * log2(e)
    split_len,  # keys per split, a multiple of BLOCK_N
    stride_qb, stride_qh, stride_qm, stride_qd, stride_mb, stride_mh, stride_mq, stride_ms,
    S,  # keys per sequence in storage (max length)
    program_splits,  # consecutive splits one program attends: 1 in the main launch
    HKV: tl.constexpr, GQA: tl.constexpr, LQ: tl.constexpr, D: tl.constexpr, K: tl.constexpr,
    ROW_BYTES: tl.constexpr, UNITS: tl.constexpr, UNIT_VALUES: tl.constexpr, UNIT_BYTES: tl.constexpr, LANES_D: tl.constexpr,
    GROUPS: tl.constexpr, GROUP: tl.constexpr, DECODE: tl.constexpr, HAS_ZERO: tl.constexpr, INTERP: tl.constexpr, DEFER: tl.constexpr,
    DEFERRED: tl.constexpr, COUNT_DEFERRED: tl.constexpr,
    HAS_MASK: tl.constexpr, MASK_ROWS: tl.constexpr, CAUSAL: tl.constexpr, DOT_PRECISION: tl.constexpr, EMULATE_BF16: tl.constexpr,
    PTX: tl.constexpr,  # inline PTX where it saves instructions (CUDA; the interpreter runs Triton ops)
    SPLIT_P: tl.constexpr, NIBBLE: tl.constexpr, PAR_LO: tl.constexpr, PAR_HI: tl.constexpr, FLIP_LO: tl.constexpr, FLIP_HI: tl.constexpr,
    DET: tl.constexpr, PBITS: tl.constexpr, C0: tl.constexpr, C1: tl.constexpr, C2: tl.constexpr, C3: tl.constexpr,
    PMASK: tl.constexpr, PO_SYN: tl.constexpr, MK: tl.constexpr, MPO_SYN: tl.constexpr,
    # The metadata (ecc_tensor.metadata): row bytes, units of MUV values and MUB bytes, codewords
    # counted per row; META_WORDS: 32-bit words per row where the clean paths load words.
    MRB: tl.constexpr, META_UNITS: tl.constexpr, MUV: tl.constexpr, MUB: tl.constexpr, META_STATUS_COLS: tl.constexpr,
    META_WORDS: tl.constexpr, META_LANES: tl.constexpr,
    PACKED: tl.constexpr, CLEAN_UNITS: tl.constexpr, SLOT_BITS: tl.constexpr, WORDS: tl.constexpr, BLOCK_W: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_U: tl.constexpr, SPLITS: tl.constexpr, PART_COLS: tl.constexpr,
    LANES: tl.constexpr,  # the lane path: Golay's lane layout at head_dim 128, clean blocks as words
    BLOCKS: tl.constexpr,  # SECDED(72,64)'s blocks layout (codec_kernels.block_offsets; 0 otherwise): clean blocks as words
):
    bh = tl.program_id(0)
    program = tl.program_id(1)
    b = bh // HKV
    seq_len = tl.load(seq_lens_ptr + b).to(tl.int32)
    start = program * program_splits * split_len
    end = tl.minimum(start + program_splits * split_len, seq_len)

    m = tl.arange(0, BLOCK_M)
    defer_base = bh.to(tl.int64) * SPLITS * (split_len // BLOCK_N) + start // BLOCK_N  # this program's first flag
    if DEFERRED:
        # Most programs of the deferred launch find nothing to do: read all their flags at
        # once (not one dependent load per block) and, if none is set, write an empty partial
        # and stop before the queries are loaded. Each takes several splits
        # (``plan_deferred``): a launch of one program per split took 20 us to find nothing
        # (H100, batch 8, 32k), its programs running a few per SM.
        n_blocks = tl.cdiv(end - start, BLOCK_N)
        flag_ids = tl.arange(0, 128)
        pending = 0
        for f0 in range(0, n_blocks, 128):
            flags = tl.load(defer_ptr + defer_base + f0 + flag_ids, mask=f0 + flag_ids < n_blocks, other=0)
            pending += tl.sum(flags.to(tl.int32), axis=0)
        if pending == 0:
            empty = bh.to(tl.int64) * (2 * SPLITS) + SPLITS + program
            tl.store(ml_part_ptr + (empty * BLOCK_M + m) * 2, tl.full([BLOCK_M], float("-inf"), tl.float32))
            tl.store(ml_part_ptr + (empty * BLOCK_M + m) * 2 + 1, tl.zeros([BLOCK_M], tl.float32))
            return
    m_ok = m < GQA * LQ
    head = (bh % HKV) * GQA + m // LQ
    qi = m % LQ
    # Unit tiles: unit u holds values u * UNIT_VALUES + slot. The packed path (and the repair
    # pass of the one-byte codes, whose unit is one value) sees values in row order instead.
    u = tl.arange(0, BLOCK_U)
    u_ok = u < UNITS
    w = tl.arange(0, BLOCK_W)
    w_ok = w < WORDS

    # The queries, one [BLOCK_M, BLOCK_U] tile per slot (value u * UNIT_VALUES + slot).
    q_row = q_ptr + b.to(tl.int64) * stride_qb + head[:, None] * stride_qh + qi[:, None] * stride_qm
    q_col = _unit_value(u, 0, UNIT_VALUES, LANES_D)
    col0_ok = u_ok & (q_col < D)
    # The word paths' tiles hold values, in row order until permuted below (the one-byte codes'
    # deferred launch too: their unit is one value).
    VALUE_TILES: tl.constexpr = PACKED or ((LANES or BLOCKS) and not DEFERRED)
    if VALUE_TILES or BLOCKS:  # the blocks layout's deferred launch attends values in row order too
        q_col = u
        col0_ok = u < D
    q0 = tl.load(q_row + q_col[None, :] * stride_qd, mask=m_ok[:, None] & col0_ok[None, :], other=0.0)
    if VALUE_TILES and not DEFERRED:  # the deferred launch attends values in row order
        q0 = _k_operand_order(q0, SLOT_BITS)
    if EMULATE_BF16:  # Triton's interpreter cannot multiply bfloat16 tiles: float32 dots of bf16 values
        dtype: tl.constexpr = tl.float32
    else:
        dtype: tl.constexpr = q0.dtype
    q0 = q0.to(dtype)
    q1 = q0
    q2 = q0
    q_col1 = _unit_value(u, 1, UNIT_VALUES, LANES_D)
    q_col2 = _unit_value(u, 2, UNIT_VALUES, LANES_D)
    col1_ok = u_ok & (q_col1 < D)
    col2_ok = u_ok & (q_col2 < D)
    if UNIT_VALUES > 1 and not (VALUE_TILES or BLOCKS):
        q1 = tl.load(q_row + q_col1[None, :] * stride_qd, mask=m_ok[:, None] & col1_ok[None, :], other=0.0).to(dtype)
    if UNIT_VALUES > 2 and not (VALUE_TILES or BLOCKS):
        q2 = tl.load(q_row + q_col2[None, :] * stride_qd, mask=m_ok[:, None] & col2_ok[None, :], other=0.0).to(dtype)
    q_sum = tl.sum(q0.to(tl.float32), axis=1)  # the zero-point term where scales fold into the dots
    if UNIT_VALUES > 1 and not VALUE_TILES:
        q_sum += tl.sum(q1.to(tl.float32), axis=1)
    if UNIT_VALUES > 2 and not VALUE_TILES:
        q_sum += tl.sum(q2.to(tl.float32), axis=1)

    store_off = bh.to(tl.int64) * S  # first row of this (sequence, KV head) in storage
    k_base = k_ptr + store_off * ROW_BYTES
    v_base = v_ptr + store_off * ROW_BYTES
    k_words = k_base.to(tl.pointer_type(tl.uint32))
    v_words = v_base.to(tl.pointer_type(tl.uint32))
    km_base = km_ptr + store_off * MRB
    vm_base = vm_ptr + store_off * MRB

    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc0 = tl.zeros([BLOCK_M, BLOCK_U], tl.float32)
    acc1 = tl.zeros([BLOCK_M, BLOCK_U], tl.float32)
    acc2 = tl.zeros([BLOCK_M, BLOCK_U], tl.float32)
    # Where the scales fold into the dots (PACKED, CLEAN_UNITS), the accumulators are kept in
    # units of v_unit (the largest V scale so far), so that the float16 weights
    # p * scale / v_unit stay in [0, 1] whatever the scales are.
    v_unit = tl.zeros([], tl.float32)
    n_corrected = tl.zeros([BLOCK_U], tl.int32)  # per unit position, summed over the split's rows
    n_parity_only = tl.zeros([BLOCK_U], tl.int32)
    n_detected = tl.zeros([BLOCK_U], tl.int32)
    n_meta_corrected = tl.zeros([], tl.int32)  # metadata codewords, over the split's rows
    n_meta_parity_only = tl.zeros([], tl.int32)
    n_meta_detected = tl.zeros([], tl.int32)
    last_visible = seq_len - LQ + qi  # causal: the last key each query row may see

    # The main launch attends every block but those it defers (DEFER): the packed path defers
    # every block with a non-zero syndrome, the unit path (with INTERP) those holding an
    # erased unit. A second launch (DEFERRED) attends just those, codeword by codeword, with
    # the neighbour search and interpolation (INTERP), into partials of its own that the
    # combine kernel merges: the online softmax does not care about block order, and the main
    # loop stays free of the rare path's registers.
    count_units: tl.constexpr = DECODE and (COUNT_DEFERRED if DEFERRED else not (PACKED or LANES or CLEAN_UNITS or BLOCKS))
    written = end > start  # in the deferred launch, too: a program with no flag set returned above
    for n0 in range(start, end, BLOCK_N):
        active = True
        if DEFERRED:
            active = tl.load(defer_ptr + defer_base + (n0 - start) // BLOCK_N) != 0
        if active:
            rows = n0 + tl.arange(0, BLOCK_N)
            row_ok = rows < end
            if VALUE_TILES and not DEFERRED:
                # Words of four codewords (or eight int4 values), clean blocks only: a block
                # with any non-zero syndrome is left to the deferred launch. With LANES, the
                # data words of Golay's lane layout, which read as an int4 row.
                # Rows past the split's end are read, from the storage's rows (clamped to its
                # last), rather than masked: a mask costs instructions on every word, while
                # those rows' scores are masked anyway.
                # Offsets within one (sequence, head) slab fit in 32 bits.
                row_words = tl.minimum(rows, S - 1) * (ROW_BYTES // 4)
                word_offs = row_words[:, None] + w[None, :]
                if BLOCK_W == WORDS:
                    kw = tl.load(k_words + word_offs)
                    vw = tl.load(v_words + word_offs)
                else:
                    kw = tl.load(k_words + word_offs, mask=w_ok[None, :], other=0)
                    vw = tl.load(v_words + word_offs, mask=w_ok[None, :], other=0)
                # The rows' scales (and zero points), their codewords' syndromes checked as the
                # values' are: a dirty one defers the block too.
                k_scale, k_zero, v_scale, v_zero, meta_dirty = _clean_rows_meta(
                    km_base, vm_base, tl.minimum(rows, S - 1), menc_ptr, MK, DECODE, HAS_ZERO, META_WORDS, META_LANES, META_UNITS, MUV,
                    MUB, MRB)
                deferred = 0
                if LANES:
                    # The parity words: 16 after the data, and the row's last. As on the
                    # one-byte codes' path, rows past the split's end count unmasked.
                    dirty = _lane_row_syndromes(kw, tl.load(k_words + word_offs + WORDS), tl.load(k_words + row_words + 2 * WORDS))
                    dirty |= _lane_row_syndromes(vw, tl.load(v_words + word_offs + WORDS), tl.load(v_words + row_words + 2 * WORDS))
                    dirty = dirty.to(tl.int32, bitcast=True) | meta_dirty
                    deferred = (tl.reduce_or(dirty, None) != 0).to(tl.int32)
                    tl.store(defer_ptr + defer_base + (n0 - start) // BLOCK_N, deferred.to(tl.uint8))
                elif BLOCKS:
                    # The check bytes: WORDS / 8 words after the data. As above, rows past the
                    # split's end count unmasked.
                    check_offs = row_words[:, None] + WORDS + tl.arange(0, WORDS // 8)[None, :]
                    dirty = _block_row_syndromes(kw, tl.load(k_words + check_offs), BLOCKS, PTX)
                    dirty |= _block_row_syndromes(vw, tl.load(v_words + check_offs), BLOCKS, PTX)
                    dirty = tl.reduce_or(dirty.to(tl.int32, bitcast=True), None) | tl.reduce_or(meta_dirty, None)
                    deferred = (dirty != 0).to(tl.int32)
                    tl.store(defer_ptr + defer_base + (n0 - start) // BLOCK_N, deferred.to(tl.uint8))
                elif DECODE:
                    # Each K word's syndromes with those of the V word at the same place, then
                    # one reduction (each thread's words first, then the warp). The rows past
                    # the split's end count too, unmasked: a non-zero syndrome there only
                    # defers the block (the deferred launch masks them), and they are rare
                    # (the last block of a sequence; a split ends on a block).
                    dirty = tl.reduce_or(_word_syndromes(kw, vw, C0, C1, C2, C3, PMASK, PTX), None)
                    dirty = dirty.to(tl.int32, bitcast=True) | tl.reduce_or(meta_dirty, None)
                    deferred = (dirty != 0).to(tl.int32)
                    tl.store(defer_ptr + defer_base + (n0 - start) // BLOCK_N, deferred.to(tl.uint8))
                offset: tl.constexpr = 0.0 if HAS_ZERO else 8.0
                # Scores as (K q^T)^T: K is the dot's first operand, whose registers the unpacking
                # writes in place, where as the second operand the queries would be (read from
                # shared memory, then moved into each mma's operand registers: ~100 moves per
                # block). The weights then cross to the PV dot through shared memory (1 KiB).
                s = tl.trans(tl.dot(_k_operand(_word_values(kw, SLOT_BITS, offset, dtype, PTX), BLOCK_U), tl.trans(q0),
                                    input_precision=DOT_PRECISION))
                pw, rescale, v_unit, m_i, l_i, zero_term = _folded_scales_softmax(
                    s, rows, row_ok, q_sum, k_scale, k_zero, v_scale, v_zero, qk_scale, v_unit, m_i, l_i,
                    m_ok, head, qi, last_visible, deferred, mask_ptr, b, stride_mb, stride_mh, stride_mq, stride_ms,
                    HAS_ZERO, HAS_MASK, MASK_ROWS, CAUSAL)
                acc0 = _pv(_rescaled(acc0, rescale), pw, _v_operand_values(vw, SLOT_BITS, offset, dtype, PTX), dtype, SPLIT_P,
                           DOT_PRECISION) - zero_term
            elif CLEAN_UNITS and not DEFERRED:
                # Unit layouts with one scale per row (Golay; one-byte codes in rows that are not
                # whole words): clean blocks only, as the word path, with the scales folded into
                # the dots. The syndromes are the only decoding here; a block with any non-zero
                # one is left to the deferred launch. As on the word path, rows past the split's
                # end are checked unmasked: a non-zero syndrome there only defers the block.
                kd = _unit_words(k_base, rows, u, S, ROW_BYTES, UNITS, UNIT_BYTES, LANES_D)
                vd = _unit_words(v_base, rows, u, S, ROW_BYTES, UNITS, UNIT_BYTES, LANES_D)
                syndromes = _syndromes(kd, enc_ptr, None, K) | _syndromes(vd, enc_ptr, None, K)
                k_scale, k_zero, v_scale, v_zero, meta_dirty = _clean_rows_meta(
                    km_base, vm_base, tl.minimum(rows, S - 1), menc_ptr, MK, DECODE, HAS_ZERO, META_WORDS, META_LANES, META_UNITS, MUV,
                    MUB, MRB)
                dirty = tl.reduce_or(syndromes, None) | tl.reduce_or(meta_dirty, None)
                deferred = (dirty != 0).to(tl.int32)
                tl.store(defer_ptr + defer_base + (n0 - start) // BLOCK_N, deferred.to(tl.uint8))
                offset: tl.constexpr = 0.0 if HAS_ZERO else 8.0
                s = tl.dot(q0, tl.trans(_slot_tile(kd, 0, offset, dtype, PTX)), input_precision=DOT_PRECISION)
                if UNIT_VALUES > 1:
                    s = tl.dot(q1, tl.trans(_slot_tile(kd, 1, offset, dtype, PTX)), s, input_precision=DOT_PRECISION)
                if UNIT_VALUES > 2:
                    s = tl.dot(q2, tl.trans(_slot_tile(kd, 2, offset, dtype, PTX)), s, input_precision=DOT_PRECISION)
                pw, rescale, v_unit, m_i, l_i, zero_term = _folded_scales_softmax(
                    s, rows, row_ok, q_sum, k_scale, k_zero, v_scale, v_zero, qk_scale, v_unit, m_i, l_i,
                    m_ok, head, qi, last_visible, deferred, mask_ptr, b, stride_mb, stride_mh, stride_mq, stride_ms,
                    HAS_ZERO, HAS_MASK, MASK_ROWS, CAUSAL)
                acc0 = _pv(_rescaled(acc0, rescale), pw, _slot_tile(vd, 0, offset, dtype, PTX), dtype, SPLIT_P, DOT_PRECISION) - zero_term
                if UNIT_VALUES > 1:
                    acc1 = _pv(_rescaled(acc1, rescale), pw, _slot_tile(vd, 1, offset, dtype, PTX), dtype, SPLIT_P,
                               DOT_PRECISION) - zero_term
                if UNIT_VALUES > 2:
                    acc2 = _pv(_rescaled(acc2, rescale), pw, _slot_tile(vd, 2, offset, dtype, PTX), dtype, SPLIT_P,
                               DOT_PRECISION) - zero_term
            elif BLOCKS:
                # The blocks layout's deferred blocks: each codeword decoded as the reference (its
                # syndrome, one flipped bit corrected), dequantized in float32 in row order, with
                # INTERP the erased codewords interpolated.
                c = tl.arange(0, UNITS)
                c_ok = row_ok[:, None] & (c < UNITS)[None, :]
                cw_rows = rows[:, None] + c[None, :] * 0
                k_lo, k_hi, k_status = _block_codewords(k_base, cw_rows, c_ok, c[None, :], syn_ptr, ROW_BYTES, WORDS * 4, BLOCKS)
                v_lo, v_hi, v_status = _block_codewords(v_base, cw_rows, c_ok, c[None, :], syn_ptr, ROW_BYTES, WORDS * 4, BLOCKS)
                km_corr, km_po, km_det, km_rows = _meta_block(km_base, rows, row_ok, menc_ptr, msyn_ptr, MK, MPO_SYN, DECODE,
                                                              META_UNITS, MUB, MRB, META_LANES)
                vm_corr, vm_po, vm_det, vm_rows = _meta_block(vm_base, rows, row_ok, menc_ptr, msyn_ptr, MK, MPO_SYN, DECODE,
                                                              META_UNITS, MUB, MRB, META_LANES)
                kx = _block_slab(k_base, km_base, rows, row_ok, c[None, :], k_lo, k_hi, k_status, km_rows, seq_len, syn_ptr, menc_ptr,
                                 msyn_ptr, INTERP, ROW_BYTES, WORDS * 4, BLOCKS, HAS_ZERO, MK, MPO_SYN, META_UNITS, MUV, MUB, MRB,
                                 META_LANES)
                s = (_qk_float(q0, kx, tl.zeros([BLOCK_M, BLOCK_N], tl.float32), dtype, SPLIT_P, DOT_PRECISION) * qk_scale).to(tl.float32)
                s = _visible_scores(s, rows, row_ok, m_ok, head, qi, last_visible, 0, mask_ptr, b,
                                    stride_mb, stride_mh, stride_mq, stride_ms, HAS_MASK, MASK_ROWS, CAUSAL)
                p, alpha, m_i, l_i = _online_softmax(s, m_i, l_i)
                vx = _block_slab(v_base, vm_base, rows, row_ok, c[None, :], v_lo, v_hi, v_status, vm_rows, seq_len, syn_ptr, menc_ptr,
                                 msyn_ptr, INTERP, ROW_BYTES, WORDS * 4, BLOCKS, HAS_ZERO, MK, MPO_SYN, META_UNITS, MUV, MUB, MRB,
                                 META_LANES)
                acc0 = _pv_float(acc0 * alpha[:, None], p, vx, dtype, SPLIT_P, DOT_PRECISION)
                if count_units:  # per codeword, gathered in the first unit position
                    first = u == 0
                    n_corrected += tl.where(first, tl.sum(tl.sum((k_status == 1).to(tl.int32) + (v_status == 1).to(tl.int32), 1), 0), 0)
                    n_detected += tl.where(first, tl.sum(tl.sum((k_status == 2).to(tl.int32) + (v_status == 2).to(tl.int32), 1), 0), 0)
                    n_meta_corrected += km_corr + vm_corr
                    n_meta_parity_only += km_po + vm_po
                    n_meta_detected += km_det + vm_det
            else:
                repair: tl.constexpr = DEFERRED and INTERP
                # Decode the block's units (K and V) and their rows' metadata once, then each
                # slot's values, their scales decoded from the metadata, erasures interpolated in
                # the repair pass.
                k_data, k_status = _decode_block(k_base, rows, row_ok, u, u_ok, enc_ptr, syn_ptr, ROW_BYTES, UNIT_BYTES, LANES_D, K,
                                                 DECODE, NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS, PO_SYN)
                v_data, v_status = _decode_block(v_base, rows, row_ok, u, u_ok, enc_ptr, syn_ptr, ROW_BYTES, UNIT_BYTES, LANES_D, K,
                                                 DECODE, NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS, PO_SYN)
                km_corr, km_po, km_det, km_rows = _meta_block(km_base, rows, row_ok, menc_ptr, msyn_ptr, MK, MPO_SYN, DECODE,
                                                              META_UNITS, MUB, MRB, META_LANES)
                vm_corr, vm_po, vm_det, vm_rows = _meta_block(vm_base, rows, row_ok, menc_ptr, msyn_ptr, MK, MPO_SYN, DECODE,
                                                              META_UNITS, MUB, MRB, META_LANES)
                k_block = _block_state(
                    k_base, km_base, rows, row_ok, u, u_ok, k_status, km_rows, seq_len, enc_ptr, syn_ptr, menc_ptr, msyn_ptr, repair,
                    ROW_BYTES, UNIT_BYTES,
                    UNIT_VALUES, LANES_D, D, K, DECODE, GROUPS, GROUP, HAS_ZERO, META_UNITS, MUV, MUB, MRB, META_LANES,
                    NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS, PO_SYN, MK, MPO_SYN)
                kx = _kv_slot(k_data, k_block, rows, row_ok, u, col0_ok, seq_len, k_base, km_base, enc_ptr,
                              syn_ptr, menc_ptr, msyn_ptr, 0, repair, ROW_BYTES, UNIT_BYTES, UNIT_VALUES, LANES_D, D, K, DECODE, GROUPS,
                              GROUP, HAS_ZERO,
                              META_UNITS, MUV, MUB, MRB, META_LANES, NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS, PO_SYN, MK,
                              MPO_SYN)
                s = _qk_float(q0, kx, tl.zeros([BLOCK_M, BLOCK_N], tl.float32), dtype, SPLIT_P, DOT_PRECISION)
                if UNIT_VALUES > 1:
                    kx = _kv_slot(k_data, k_block, rows, row_ok, u, col1_ok, seq_len, k_base, km_base, enc_ptr,
                                  syn_ptr, menc_ptr, msyn_ptr, 1, repair, ROW_BYTES, UNIT_BYTES, UNIT_VALUES, LANES_D, D, K, DECODE,
                                  GROUPS, GROUP,
                                  HAS_ZERO, META_UNITS, MUV, MUB, MRB, META_LANES, NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET,
                                  PBITS, PO_SYN, MK, MPO_SYN)
                    s = _qk_float(q1, kx, s, dtype, SPLIT_P, DOT_PRECISION)
                if UNIT_VALUES > 2:
                    kx = _kv_slot(k_data, k_block, rows, row_ok, u, col2_ok, seq_len, k_base, km_base, enc_ptr,
                                  syn_ptr, menc_ptr, msyn_ptr, 2, repair, ROW_BYTES, UNIT_BYTES, UNIT_VALUES, LANES_D, D, K, DECODE,
                                  GROUPS, GROUP,
                                  HAS_ZERO, META_UNITS, MUV, MUB, MRB, META_LANES, NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET,
                                  PBITS, PO_SYN, MK, MPO_SYN)
                    s = _qk_float(q2, kx, s, dtype, SPLIT_P, DOT_PRECISION)
                s = (s * qk_scale).to(tl.float32)

                deferred = 0
                if DEFER and not DEFERRED:
                    # A block holding an erased K or V unit, or a row whose scale holds a detected
                    # codeword, is left to the deferred launch.
                    deferred = tl.maximum(tl.max(((k_status == 2) | (v_status == 2)).to(tl.int32)),
                                          tl.max((km_rows | vm_rows).to(tl.int32)))
                    tl.store(defer_ptr + defer_base + (n0 - start) // BLOCK_N, deferred.to(tl.uint8))
                s = _visible_scores(s, rows, row_ok, m_ok, head, qi, last_visible, deferred, mask_ptr, b,
                                    stride_mb, stride_mh, stride_mq, stride_ms, HAS_MASK, MASK_ROWS, CAUSAL)
                p, alpha, m_i, l_i = _online_softmax(s, m_i, l_i)

                # V: the weighted sums, one accumulator per slot.
                v_block = _block_state(
                    v_base, vm_base, rows, row_ok, u, u_ok, v_status, vm_rows, seq_len, enc_ptr, syn_ptr, menc_ptr, msyn_ptr, repair,
                    ROW_BYTES, UNIT_BYTES,
                    UNIT_VALUES, LANES_D, D, K, DECODE, GROUPS, GROUP, HAS_ZERO, META_UNITS, MUV, MUB, MRB, META_LANES,
                    NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS, PO_SYN, MK, MPO_SYN)
                vx = _kv_slot(v_data, v_block, rows, row_ok, u, col0_ok, seq_len, v_base, vm_base, enc_ptr,
                              syn_ptr, menc_ptr, msyn_ptr, 0, repair, ROW_BYTES, UNIT_BYTES, UNIT_VALUES, LANES_D, D, K, DECODE, GROUPS,
                              GROUP, HAS_ZERO,
                              META_UNITS, MUV, MUB, MRB, META_LANES, NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS, PO_SYN, MK,
                              MPO_SYN)
                acc0 = _pv_float(acc0 * alpha[:, None], p, vx, dtype, SPLIT_P, DOT_PRECISION)
                if UNIT_VALUES > 1:
                    vx = _kv_slot(v_data, v_block, rows, row_ok, u, col1_ok, seq_len, v_base, vm_base, enc_ptr,
                                  syn_ptr, menc_ptr, msyn_ptr, 1, repair, ROW_BYTES, UNIT_BYTES, UNIT_VALUES, LANES_D, D, K, DECODE,
                                  GROUPS, GROUP,
                                  HAS_ZERO, META_UNITS, MUV, MUB, MRB, META_LANES, NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET,
                                  PBITS, PO_SYN, MK, MPO_SYN)
                    acc1 = _pv_float(acc1 * alpha[:, None], p, vx, dtype, SPLIT_P, DOT_PRECISION)
                if UNIT_VALUES > 2:
                    vx = _kv_slot(v_data, v_block, rows, row_ok, u, col2_ok, seq_len, v_base, vm_base, enc_ptr,
                                  syn_ptr, menc_ptr, msyn_ptr, 2, repair, ROW_BYTES, UNIT_BYTES, UNIT_VALUES, LANES_D, D, K, DECODE,
                                  GROUPS, GROUP,
                                  HAS_ZERO, META_UNITS, MUV, MUB, MRB, META_LANES, NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET,
                                  PBITS, PO_SYN, MK, MPO_SYN)
                    acc2 = _pv_float(acc2 * alpha[:, None], p, vx, dtype, SPLIT_P, DOT_PRECISION)

                if count_units:
                    # Reduced over the block's rows right away: a [BLOCK_N, BLOCK_U] accumulator would
                    # hold a tile's worth of registers through the whole loop.
                    n_corrected += tl.sum((k_status == 1).to(tl.int32) + (v_status == 1).to(tl.int32), axis=0)
                    n_parity_only += tl.sum((k_status == 3).to(tl.int32) + (v_status == 3).to(tl.int32), axis=0)
                    n_detected += tl.sum((k_status == 2).to(tl.int32) + (v_status == 2).to(tl.int32), axis=0)
                    n_meta_corrected += km_corr + vm_corr
                    n_meta_parity_only += km_po + vm_po
                    n_meta_detected += km_det + vm_det
    if (PACKED or LANES or CLEAN_UNITS or BLOCKS) and not DEFERRED:
        acc0 = acc0 * v_unit
        acc1 = acc1 * v_unit
        acc2 = acc2 * v_unit

    # Partial results: acc of slot i at columns [i * BLOCK_U, (i + 1) * BLOCK_U); the deferred
    # launch's partials follow the main launch's.
    part = bh.to(tl.int64) * (2 * SPLITS) + DEFERRED * SPLITS + program
    o_col = u
    if VALUE_TILES and not DEFERRED:
        o_col = _v_operand_column(u, BLOCK_U)
    o_row = o_part_ptr + (part * BLOCK_M + m[:, None]) * PART_COLS
    # Accumulators are written for the real query rows only (GQA * LQ of the BLOCK_M the dots
    # pad to), and not at all by a program that saw no key (m = -inf): the combine kernel
    # reads neither. The mask has the tile's full shape, as the interpreter wants.
    store_acc = (m[:, None] + u[None, :] * 0) < tl.where(written, GQA * LQ, 0)
    if LANES_D and not VALUE_TILES:
        # Golay's lane layout: every launch writes its partials in value order, the order of
        # the lane path's accumulator, so the unit path scatters its slots to their values.
        tl.store(o_row + q_col[None, :], acc0, mask=store_acc & col0_ok[None, :])
        tl.store(o_row + q_col1[None, :], acc1, mask=store_acc & col1_ok[None, :])
        tl.store(o_row + q_col2[None, :], acc2, mask=store_acc & col2_ok[None, :])
    else:
        tl.store(o_row + o_col[None, :], acc0, mask=store_acc)
        if UNIT_VALUES > 1 and not (VALUE_TILES or BLOCKS):
            tl.store(o_row + BLOCK_U + o_col[None, :], acc1, mask=store_acc)
        if UNIT_VALUES > 2 and not (VALUE_TILES or BLOCKS):
            tl.store(o_row + 2 * BLOCK_U + o_col[None, :], acc2, mask=store_acc)
    tl.store(ml_part_ptr + (part * BLOCK_M + m) * 2, m_i)
    tl.store(ml_part_ptr + (part * BLOCK_M + m) * 2 + 1, l_i)
    if not DEFERRED and program == 0:
        # The codewords read: every key of the sequence, K and V, counted once per (sequence,
        # KV head) rather than once per split (thousands of atomics on one address).
        n_rows = tl.minimum(tl.maximum(seq_len, 0), S).to(tl.int64)
        tl.atomic_add(counters_ptr + 0, 2 * n_rows * (UNITS if DECODE else D))
        tl.atomic_add(counters_ptr + 6, 2 * n_rows * META_STATUS_COLS)
    if count_units:
        if written:  # programs past their sequence's end have nothing to add to the one address
            # ecc_tensor.counters: corrected, parity-only, detected of the values (1-3) and of
            # the metadata (7-9).
            tl.atomic_add(counters_ptr + 1, tl.sum(n_corrected.to(tl.int64), axis=0))
            tl.atomic_add(counters_ptr + 2, tl.sum(n_parity_only.to(tl.int64), axis=0))
            tl.atomic_add(counters_ptr + 3, tl.sum(n_detected.to(tl.int64), axis=0))
            tl.atomic_add(counters_ptr + 7, n_meta_corrected.to(tl.int64))
            tl.atomic_add(counters_ptr + 8, n_meta_parity_only.to(tl.int64))
            tl.atomic_add(counters_ptr + 9, n_meta_detected.to(tl.int64))


@triton.jit
def _combine_splits_kernel(
    o_part_ptr, ml_part_ptr, out_ptr, stride_ob, stride_oh, stride_om, stride_od,
    HKV: tl.constexpr, GQA: tl.constexpr, LQ: tl.constexpr, D: tl.constexpr, UNITS: tl.constexpr,
    UNIT_VALUES: tl.constexpr, SLOTS: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_U: tl.constexpr,
    SPLITS: tl.constexpr, PARTS: tl.constexpr, BLOCK_S: tl.constexpr, PART_COLS: tl.constexpr,
):
    """out = sum_s exp(m_s - M) acc_s / sum_s exp(m_s - M) l_s over the ``PARTS`` partials of
    one query row (the main launch's splits, then the deferred launch's, if it ran), in
    chunks of ``BLOCK_S`` partials with an online rescaling, so that hundreds of splits fit in
    registers and each chunk costs one round of loads (most calls have one chunk); partials
    that saw no key (m = -inf) count for nothing, and rows that saw no key at all are written
    as zeros."""
    bh = tl.program_id(0)
    m = tl.program_id(1)
    sp = tl.arange(0, BLOCK_S)
    c = tl.arange(0, SLOTS * BLOCK_U)
    slot = c // BLOCK_U
    u = c % BLOCK_U
    col = u * UNIT_VALUES + slot
    col_ok = (slot < UNIT_VALUES) & (u < UNITS) & (col < D)
    first = bh.to(tl.int64) * (2 * SPLITS)
    m_run = tl.full([], float("-inf"), tl.float32)
    num = tl.zeros([SLOTS * BLOCK_U], tl.float32)
    den = tl.zeros([], tl.float32)
    for s0 in range(0, PARTS, BLOCK_S):
        part = first + s0 + sp
        seen = s0 + sp < PARTS
        m_s = tl.load(ml_part_ptr + (part * BLOCK_M + m) * 2, mask=seen, other=float("-inf"))
        l_s = tl.load(ml_part_ptr + (part * BLOCK_M + m) * 2 + 1, mask=seen, other=0.0)
        # Read whatever a partial that saw no key holds (it was never written) and drop it
        # below, rather than wait for m before loading.
        acc = tl.load(o_part_ptr + (part[:, None] * BLOCK_M + m) * PART_COLS + c[None, :],
                      mask=seen[:, None] & col_ok[None, :], other=0.0)
        seen = seen & (m_s > float("-inf"))
        m_new = tl.maximum(m_run, tl.max(m_s, axis=0))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        rescale = tl.exp2(m_run - m_safe)  # 0 while m_run = -inf (num, den are 0 then)
        w = tl.where(seen, tl.exp2(m_s - m_safe), 0.0)
        num = num * rescale + tl.sum(tl.where(seen[:, None], acc, 0.0) * w[:, None], axis=0)
        den = den * rescale + tl.sum(l_s * w, axis=0)
        m_run = m_new
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


# Fewest keys per split: a split's partial result (written, then read by the combine kernel)
# should stay small next to the codewords it reads. Short sequences go below it where that
# keeps at least two programs per multiprocessor (benchmarks/RESULTS.md: at batch 1, 4k keys,
# 512 keys per split left most of the GPU idle; at 32k it beat 128).
MIN_SPLIT_KEYS = 512


def plan_splits(batch_heads: int, seq: int, block_n: int, device: torch.device, waves: int = 4) -> tuple[int, int]:
    """(keys per split, number of splits): about ``waves`` programs per multiprocessor, each
    with a whole number of key blocks and at least ``MIN_SPLIT_KEYS`` keys, unless that would
    leave fewer than two programs per multiprocessor."""
    blocks = triton.cdiv(max(seq, 1), block_n)
    sms = _multiprocessors(device)
    want = max(1, triton.cdiv(waves * sms, batch_heads))
    fill = triton.cdiv(2 * sms, batch_heads)
    splits = max(1, min(blocks, 256, max(min(want, seq // MIN_SPLIT_KEYS), fill)))
    split_len = triton.cdiv(blocks, splits) * block_n
    return split_len, triton.cdiv(max(seq, 1), split_len)


def plan_deferred(batch_heads: int, splits: int, device: torch.device, waves: int = 4) -> tuple[int, int]:
    """(splits per program, programs per (sequence, KV head)) of the deferred launch: about
    ``waves`` programs per multiprocessor, as many as run at once. Its programs mostly only
    read their flags, and where every block is dirty the work is the same either way."""
    programs = max(1, min(splits, triton.cdiv(waves * _multiprocessors(device), batch_heads)))
    program_splits = triton.cdiv(splits, programs)
    return program_splits, triton.cdiv(splits, program_splits)


def _build_nibble_constants(codec: str) -> dict:
    """The codec's tables folded into the kernel's in-register decoder constants (one-byte
    codes with 4 data bits); ``NIBBLE=False`` for the others."""
    code = get_codec(codec)
    if code.layout != "bytes":
        return dict(NIBBLE=False, PAR_LO=0, PAR_HI=0, FLIP_LO=0, FLIP_HI=0, DET=0, PBITS=1, C0=0, C1=0, C2=0, C3=0, PMASK=0)
    tables = code.tables(torch.device("cpu"))
    pbits = code.n - code.k
    parity = [(int(tables.encode_table[d]) >> 4) & ((1 << pbits) - 1) for d in range(16)]
    if any(parity[a ^ b] != parity[a] ^ parity[b] for a in range(16) for b in range(16)):
        raise ValueError(f"{codec}: the packed decoder needs a linear code")
    leaders = [int(x) for x in tables.syndrome_table]
    flips = [(x & 15) if x >= 0 else 0 for x in leaders] + [0] * (16 - len(leaders))
    as_int32 = lambda x: x - (1 << 32) if x >= 1 << 31 else x  # noqa: E731
    pack = lambda nibbles: as_int32(sum(v << (4 * i) for i, v in enumerate(nibbles)))  # noqa: E731
    return dict(
        NIBBLE=True, PAR_LO=pack(parity[:8]), PAR_HI=pack(parity[8:]), FLIP_LO=pack(flips[:8]), FLIP_HI=pack(flips[8:]),
        DET=sum(1 << s for s, x in enumerate(leaders) if x < 0), PBITS=pbits,
        # The packed decoder's syndromes: the parity nibble of each data bit, and where the
        # parity bits sit in each byte of a word.
        C0=parity[1], C1=parity[2], C2=parity[4], C3=parity[8], PMASK=(((1 << pbits) - 1) << 4) * 0x01010101,
    )


# Built at import: the launcher runs inside torch.compile's trace, where reading tensor
# values (the tables) would be data-dependent.
_NIBBLE_CONSTANTS = {name: _build_nibble_constants(name) for name in CODEC_NAMES}


def nibble_constants(codec: str) -> dict:
    """``_NIBBLE_CONSTANTS`` of ``codec``, built on first use for a codec registered at run time."""
    if codec not in _NIBBLE_CONSTANTS:
        _NIBBLE_CONSTANTS[codec] = _build_nibble_constants(codec)
    return _NIBBLE_CONSTANTS[codec]


# (block_n, num_warps, num_stages, programs per multiprocessor) per storage layout (a codec's
# ``layout``: int4 "nibbles", Hamming "bytes", Golay "lanes"), for the unit path:
# the fastest timed on an H100 (benchmarks/RESULTS.md, batch 8, 32k; Golay's main launch is
# the clean-blocks variant); interpolating variants: the configuration whose compiled kernel
# has no register spills (ptxas -v for sm_90a). The deferred launch takes its warps and
# stages from these, its block size from the main launch.
_CONFIGS = {"nibbles": (128, 8, 2, 4), "bytes": (32, 4, 2, 4), "lanes": (32, 2, 1, 4), "blocks": (32, 4, 2, 4)}
_INTERP_CONFIG = (32, 8, 2, 4)
# Word path: the fastest on kernel time in the sweep of benchmarks/RESULTS.md
# (tools/sweep_attention.py). One warp per program: the softmax and the deferral flag then
# reduce within a warp, no program waits at a barrier for its other warps, and the operand
# orders keep the values in the threads that unpacked them; 16 programs per SM keep enough of
# them in flight.
_PACKED_CONFIGS = {"nibbles": (32, 1, 3, 16), "bytes": (32, 1, 3, 16), "lanes": (32, 1, 3, 16), "blocks": (32, 1, 3, 16)}


def meta_constants(meta_layout: MetadataLayout, *meta: torch.Tensor) -> dict:
    """The metadata's code and layout constants. ``META_WORDS``: 32-bit words per row where
    the clean paths load the unprotected float32 words (int4; aligned rows), else 0;
    ``META_LANES``: the nibbles per row of Golay's lane layout (one scale group), else 0."""
    storage = meta_layout.storage
    aligned = storage.row_bytes % 4 == 0 and all(t.storage_offset() % 4 == 0 for t in meta)
    lanes = storage.head_dim if storage.lanes and aligned else 0
    words = storage.row_bytes // 4 if aligned and storage.nibbles and meta_layout.groups == 1 else 0
    return dict(
        MK=storage.codec.k, MPO_SYN=parity_only_syndrome(storage.codec), MRB=storage.row_bytes, META_UNITS=storage.units,
        MUV=storage.unit_values,
        MUB=storage.unit_bytes, META_STATUS_COLS=meta_layout.codewords_per_row, META_WORDS=words, META_LANES=lanes,
    )


def packed_path_applies(codec: str, row_bytes: int, groups: int, *stored: torch.Tensor) -> bool:
    """Whether the kernel's main pass reads whole 32-bit words (four Hamming codewords, eight
    int4 values) with the dequantization folded into the dots: one-byte codes, one scale per
    row, rows of whole aligned words. Other layouts take the per-unit path."""
    return (
        get_codec(codec).layout in ("nibbles", "bytes") and groups == 1 and row_bytes % 4 == 0
        and all(t.storage_offset() % 4 == 0 for t in stored)  # allocations themselves are aligned
    )


def lanes_path_applies(layout: StorageLayout, groups: int, *stored: torch.Tensor) -> bool:
    """Whether the main launch takes the lane path: Golay's lane layout at head_dim 128 (the
    structure ``_lane_row_syndromes`` checks), one scale per row, aligned storage. Its data
    words are then attended as the int4 word path attends its words."""
    return (
        layout.lanes and layout.head_dim == 128 and groups == 1
        and all(t.storage_offset() % 4 == 0 for t in stored)
    )


def blocks_path_applies(layout: StorageLayout, groups: int, *stored: torch.Tensor) -> bool:
    """Whether the main launch takes the blocks path: SECDED(72,64)'s blocks layout at a
    power-of-two head_dim of at least 64 (the check bytes whole words after the data words),
    one scale per row, aligned storage. Its data words are attended as the int4 word path
    attends its words, after a check of every codeword's syndrome (``_block_row_syndromes``)."""
    d = layout.head_dim
    return (
        layout.blocks and d >= 64 and d & (d - 1) == 0 and groups == 1
        and all(t.storage_offset() % 4 == 0 for t in stored)
    )


def clean_units_path_applies(codec: str, groups: int, packed: bool) -> bool:
    """Whether the main launch takes the unit path's clean-blocks-only variant: codes that
    decode (Golay; one-byte codes whose storage is not word-aligned), one scale per row. Like
    the packed path it computes only syndromes, folds the scales into the dots and defers
    every block with a non-zero syndrome to the second launch."""
    return get_codec(codec).decodes and groups == 1 and not packed


def path_constants(codec: str, groups: int, packed: bool, lanes: bool = False, blocks: int = 0) -> dict:
    """The kernel's path switches: the word path (PACKED), the lane path (LANES), the blocks
    path (BLOCKS: ``block_offsets``, or 0), the unit path's clean-blocks-only variant
    (CLEAN_UNITS), and whether the deferred launch counts the corrections (it then sees every
    block with a non-zero syndrome)."""
    clean_units = clean_units_path_applies(codec, groups, packed) and not (lanes or blocks)
    return dict(PACKED=packed, LANES=lanes, BLOCKS=blocks, CLEAN_UNITS=clean_units,
                COUNT_DEFERRED=bool(packed or lanes or blocks or clean_units))


def parse_config(config: str) -> dict:
    """``"block_n,num_warps,num_stages[,waves[,maxnreg]]"`` -> ``kernel_config``'s dict (waves 4
    and maxnreg 0 when left out)."""
    try:
        numbers = [int(x) for x in config.split(",")]
    except ValueError:
        numbers = []
    if not 3 <= len(numbers) <= 5 or min(numbers) < 0 or min(numbers[:3]) < 1:
        raise ValueError(f"attention config must be 'block_n,num_warps,num_stages[,waves[,maxnreg]]' of positive integers, "
                         f"got {config!r}")
    block_n, warps, stages, *rest = numbers
    waves, maxnreg = (rest + [4, 0][len(rest):])[:2]
    return dict(block_n=block_n, num_warps=warps, num_stages=stages, waves=waves, maxnreg=maxnreg)


def kernel_config(codec: str, interpolate: bool, packed: bool = False, config: str | None = None) -> dict:
    """Block size, launch parameters and programs per multiprocessor (``waves``). ``config``
    (``parse_config``'s string) overrides them, for tuning runs such as the sweeps in
    benchmarks/RESULTS.md; ``maxnreg`` caps the main launch's registers per thread, 0 leaves
    them to the compiler."""
    if config:
        return parse_config(config)
    else:
        layout = get_codec(codec).layout
        block_n, warps, stages, waves = _PACKED_CONFIGS[layout] if packed else (_INTERP_CONFIG if interpolate else _CONFIGS[layout])
        maxnreg = 0
    return dict(block_n=block_n, num_warps=warps, num_stages=stages, waves=waves, maxnreg=maxnreg)


def tile_sizes(layout: StorageLayout, packed: bool, lanes: bool = False, blocks: bool = False) -> dict:
    """The value-tile width ``BLOCK_U``, the word-tile width ``BLOCK_W`` and the bits between
    values in a word (``SLOT_BITS``). The word path's tiles hold every value of a row (in the
    operand orders); the unit path's hold one slot of every unit."""
    if lanes or blocks:  # the data words: an int4 row
        return dict(BLOCK_U=layout.head_dim, BLOCK_W=layout.head_dim // 8, SLOT_BITS=4)
    slot_bits = 4 if layout.nibbles else 8
    if packed:
        # At least 8 words: the operand orders give each of 4 (K) or 8 (V) lanes whole words.
        block_w = max(8, _pow2(layout.row_bytes // 4))
        return dict(BLOCK_U=block_w * (32 // slot_bits), BLOCK_W=block_w, SLOT_BITS=slot_bits)
    return dict(BLOCK_U=max(16, _pow2(layout.units)), BLOCK_W=_pow2(layout.row_bytes // 4), SLOT_BITS=slot_bits)


def deferred_block_u(layout: StorageLayout, block_u: int) -> int:
    """The deferred launch's value-tile width: over Golay's lane layout it walks codewords
    with the unit path's tiles, not the lane path's values; elsewhere the main launch's."""
    return max(16, _pow2(layout.units)) if layout.lanes else block_u


def partials_layout(layout: StorageLayout, packed: bool, block_u: int) -> tuple[bool, int, int]:
    """(whether partials are in value order, the combine kernel's tile width, floats per
    partial row). Value order on the word path and, in every launch, for Golay's lane layout,
    whose lane path accumulates values, and for the blocks layout, whose deferred launch
    attends values in row order; slot after slot (``3 * BLOCK_U``) otherwise."""
    value_order = packed or layout.lanes or layout.blocks
    combine_u = _pow2(layout.head_dim) if value_order else block_u
    return value_order, combine_u, max(3 * block_u, combine_u)


def launch_configs(codec: str, interpolate: bool, packed: bool, groups: int = 1, config: str | None = None) -> tuple[dict, dict | None]:
    """The main launch's configuration, and the deferred launch's (None when nothing can be
    deferred): its warps and stages are the unit path's, its block size the main launch's,
    since the deferral flags are per main-launch block. ``config`` overrides both
    (``kernel_config``)."""
    decode = get_codec(codec).decodes
    interp = interpolate and decode
    clean = packed or clean_units_path_applies(codec, groups, packed)  # main launch: clean blocks only
    main = kernel_config(codec, interp and not clean, packed, config)
    if not (decode and (clean or interp)):
        return main, None
    return main, dict(kernel_config(codec, interp, config=config), block_n=main["block_n"])


def has_kernel(codec: str, head_dim: int = 128, groups: int = 1, *stored: torch.Tensor) -> bool:
    """Whether the fused attention reads ``codec``'s storage of this shape: every layout but
    SECDED(72,64)'s ``"blocks"`` outside ``blocks_path_applies`` (other head_dims, grouped
    scales), which ``ecc::decode_attention`` decodes with the codec kernels and attends with
    the reference."""
    layout = StorageLayout(codec, head_dim)
    return not layout.blocks or blocks_path_applies(layout, groups, *stored)


def storage_constants(codec: str, head_dim: int, groups: int, *stored: torch.Tensor) -> dict:
    """The kernel's constants that follow from the storage: its layout, the read path (word,
    lane, blocks or unit path: ``path_constants``) and the tiles, shared by the launcher and
    ``tools/kernel_resources.py``. ``stored``: the K/V storage, whose alignment the word
    paths need (none given: aligned)."""
    layout = StorageLayout(codec, head_dim)
    packed = packed_path_applies(codec, layout.row_bytes, groups, *stored)
    lanes = lanes_path_applies(layout, groups, *stored)
    blocks = blocks_path_applies(layout, groups, *stored)
    tiles = tile_sizes(layout, packed, lanes, blocks)
    return dict(
        D=head_dim, K=layout.codec.k, ROW_BYTES=layout.row_bytes, UNITS=layout.units, UNIT_VALUES=layout.unit_values,
        UNIT_BYTES=layout.unit_bytes, LANES_D=head_dim if layout.lanes else 0, GROUPS=groups, GROUP=head_dim // groups,
        DECODE=layout.codec.decodes, PO_SYN=parity_only_syndrome(layout.codec), **nibble_constants(codec),
        **path_constants(codec, groups, packed, lanes, block_offsets(layout) if blocks else 0),
        WORDS=tiles["BLOCK_W"] if lanes or blocks else layout.row_bytes // 4, **tiles,
    )


def reads_words(storage: dict) -> bool:
    """Whether the main launch attends clean blocks as words (the word, lane or blocks path
    of ``storage_constants``), leaving every other block to the deferred launch."""
    return bool(storage["PACKED"] or storage["LANES"] or storage["BLOCKS"])


@dataclass(frozen=True)
class LaunchPlan:
    """Every launch decision of one ``ecc::decode_attention`` call, made once (``make``) and
    read by the launcher, ``tools/kernel_resources.py`` and the tests: the storage's
    constants (``storage_constants``), the main and deferred launches' configurations
    (``launch_configs``; ``deferred`` None when nothing can be deferred), the query tile,
    the splits (``plan_splits``, ``plan_deferred``) and the partials' layout
    (``partials_layout``)."""

    storage: dict
    main: dict
    deferred: dict | None
    block_m: int
    split_len: int
    splits: int
    program_splits: int  # consecutive splits one deferred program attends
    deferred_programs: int  # deferred programs per (sequence, KV head); 0 without a deferred launch
    value_order: bool
    combine_u: int
    part_cols: int

    @classmethod
    def make(cls, codec: str, head_dim: int, groups: int, interpolate: bool, *, batch: int, q_heads: int, kv_heads: int, lq: int,
             seq: int, device: torch.device, stored: tuple[torch.Tensor, ...] = (), config: str | None = None) -> LaunchPlan:
        layout = StorageLayout(codec, head_dim)
        storage = storage_constants(codec, head_dim, groups, *stored)
        main, deferred = launch_configs(codec, interpolate, reads_words(storage), groups, config)
        value_order, combine_u, part_cols = partials_layout(layout, storage["PACKED"], storage["BLOCK_U"])
        split_len, splits = plan_splits(batch * kv_heads, seq, main["block_n"], device, main["waves"])
        program_splits, deferred_programs = plan_deferred(batch * kv_heads, splits, device, deferred["waves"]) if deferred else (1, 0)
        return cls(storage, main, deferred, max(16, _pow2((q_heads // kv_heads) * lq)), split_len, splits, program_splits,
                   deferred_programs, value_order, combine_u, part_cols)


def triton_decode_attention(
    query: torch.Tensor, k_stored: torch.Tensor, k_meta: torch.Tensor,
    v_stored: torch.Tensor, v_meta: torch.Tensor,
    encode_table: torch.Tensor, syndrome_table: torch.Tensor,
    meta_encode_table: torch.Tensor, meta_syndrome_table: torch.Tensor,
    codec: str, head_dim: int, groups: int, symmetric: bool,
    interpolate: bool, seq_lens: torch.Tensor, counters: torch.Tensor,
    attn_mask: torch.Tensor | None, is_causal: bool,
    scale: float, config: str | None = None,
) -> torch.Tensor:
    """See ``ecc::decode_attention``; arguments are validated there. Inputs of any strides
    (a cache passes its one length expanded over the batch); ``attn_mask`` boolean or
    additive; ``config`` overrides the launch configuration (``kernel_config``)."""
    # The kernel addresses storage, metadata and lengths as dense rows; the query and the mask
    # it reads through their strides.
    k_stored, k_meta, v_stored, v_meta, seq_lens = (
        t.contiguous() for t in (k_stored, k_meta, v_stored, v_meta, seq_lens))
    if attn_mask is not None:
        attn_mask = torch.where(attn_mask, 0.0, float("-inf")) if attn_mask.dtype == torch.bool else attn_mask.float()
    batch, q_heads, lq, _ = query.shape
    kv_heads, seq = k_stored.shape[1], k_stored.shape[2]
    layout = StorageLayout(codec, head_dim)
    meta_layout = MetadataLayout(codec, groups, symmetric)
    plan = LaunchPlan.make(codec, head_dim, groups, interpolate, batch=batch, q_heads=q_heads, kv_heads=kv_heads, lq=lq, seq=seq,
                           device=query.device, stored=(k_stored, v_stored), config=config)
    block_n, block_m, splits, split_len = plan.main["block_n"], plan.block_m, plan.splits, plan.split_len
    emulate_bf16 = query.dtype == torch.bfloat16 and query.device.type == "cpu"  # CPU tensors: interpreter

    out = torch.empty_like(query, memory_format=torch.contiguous_format)
    parts = 2 * batch * kv_heads * splits  # the main launch's, then the deferred launch's
    o_part = torch.empty(parts * block_m * plan.part_cols, dtype=torch.float32, device=query.device)
    ml_part = torch.empty(parts * block_m * 2, dtype=torch.float32, device=query.device)
    decode = get_codec(codec).decodes
    interp = interpolate and decode
    defer = plan.deferred is not None
    flags = torch.empty(batch * kv_heads * splits * (split_len // block_n) if defer else 1, dtype=torch.uint8, device=query.device)
    # Syndromes by table (Golay, and the clean-units branch of any code) read one small table
    # per data nibble; the blocks layout computes its check bits from its structure instead.
    parity_table = encode_table if layout.blocks else nibble_parity_table(encode_table, layout.codec.k)
    meta_parity_table = nibble_parity_table(meta_encode_table, meta_layout.storage.codec.k)
    if attn_mask is not None:
        mask = attn_mask.expand(batch, q_heads, lq, seq)
        mask_strides = mask.stride()
    else:
        mask, mask_strides = o_part, (0, 0, 0, 0)
    mask_rows = (q_heads == 1 or mask_strides[1] == 0) and (lq == 1 or mask_strides[2] == 0)  # one mask row a sequence
    args = (
        query, k_stored, k_meta, v_stored, v_meta, parity_table, syndrome_table, meta_parity_table, meta_syndrome_table, seq_lens, mask,
        counters, o_part, ml_part, flags,
        scale * LOG2E, split_len, *query.stride(), *mask_strides,
        seq,
    )
    constants = dict(
        HKV=kv_heads, GQA=q_heads // kv_heads, LQ=lq, **plan.storage, HAS_ZERO=not symmetric, INTERP=interp, DEFER=defer,
        HAS_MASK=attn_mask is not None, MASK_ROWS=mask_rows, CAUSAL=is_causal,
        DOT_PRECISION="ieee" if query.dtype == torch.float32 or emulate_bf16 else "tf32", EMULATE_BF16=emulate_bf16,
        SPLIT_P=query.dtype == torch.bfloat16 and not emulate_bf16,
        PTX=query.device.type == "cuda" and torch.version.hip is None, **meta_constants(meta_layout, k_meta, v_meta),
        BLOCK_M=block_m, BLOCK_N=block_n, SPLITS=splits, PART_COLS=plan.part_cols,
    )
    main = plan.main
    wrap_triton(_decode_attention_kernel)[(batch * kv_heads, splits)](
        *args, program_splits=1, DEFERRED=False, **constants, num_warps=main["num_warps"], num_stages=main["num_stages"],
        **({"maxnreg": main["maxnreg"]} if main["maxnreg"] else {}),
    )
    if defer:
        constants.update(BLOCK_U=deferred_block_u(layout, plan.storage["BLOCK_U"]))
        wrap_triton(_decode_attention_kernel)[(batch * kv_heads, plan.deferred_programs)](
            *args, program_splits=plan.program_splits, DEFERRED=True, **constants, num_warps=plan.deferred["num_warps"],
            num_stages=plan.deferred["num_stages"],
        )
    combine_slots = 1 if plan.value_order else _pow2(layout.unit_values)
    combine_parts = splits + plan.deferred_programs
    combine_u = plan.combine_u
    wrap_triton(_combine_splits_kernel)[(batch * kv_heads, (q_heads // kv_heads) * lq)](
        o_part, ml_part, out, *out.stride(), HKV=kv_heads, GQA=q_heads // kv_heads, LQ=lq, D=head_dim,
        UNITS=head_dim if plan.value_order else layout.units, UNIT_VALUES=1 if plan.value_order else layout.unit_values,
        SLOTS=combine_slots, BLOCK_M=block_m, BLOCK_U=combine_u, SPLITS=splits, PARTS=combine_parts, PART_COLS=plan.part_cols,
        # Most calls in one chunk, of at most 8192 accumulator values (64 registers a thread).
        BLOCK_S=min(_pow2(combine_parts), max(16, 8192 // (combine_slots * combine_u))),
    )
    return out
