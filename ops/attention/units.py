"""The unit path: storage units decoded as the reference decodes them, their scales, and the
repair pass's neighbour search and interpolation (``DEFERRED`` with ``INTERP``)."""

from __future__ import annotations

import triton
import triton.language as tl

from ..codec_kernels import (
    _load_units,
    _meta_unit,
    _meta_word,
    _meta_word_at,
    _status,
    _syndrome_decode,
    _tile_group_words,
    _unit_value,
    _unit_word,
)
from ..byte_words import _word_bytes, _word_decode
from .row_meta import _row_meta
from .status_counts import _status_word_fields


@triton.constexpr_function
def _next_power_of_2(n):
    return triton.next_power_of_2(int(n))


@triton.constexpr_function
def _tiled_meta(GROUPS, ROW_DIV):
    """Whether a block's metadata rows are decoded once as one tile and every group's scale
    taken from it (``_meta_block``, ``_slot_values``): several groups a row (stored
    sequentially, never in Golay's lanes: ``MetadataLayout``), a metadata row per row."""
    return int(GROUPS) > 1 and int(ROW_DIV) == 1


@triton.jit
def _meta_rows_spanned(rows, row_ok, ROW_DIV: tl.constexpr):
    """The first and last metadata rows (``ROW_DIV`` rows each) that ``rows`` where ``row_ok``
    fall in; first > last where none does."""
    return tl.min(tl.where(row_ok, rows, 2147483647)) // ROW_DIV, tl.max(tl.where(row_ok, rows, -1)) // ROW_DIV


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
                 META_LANES: tl.constexpr, META_UNITS: tl.constexpr, ROW_DIV: tl.constexpr = 1):
    """The scale and offset (zero point, or 8 when symmetric) of group ``w`` of ``rows`` (the
    constant 0 with one group), decoded and corrected from their metadata codewords, and
    whether either holds a detected one. ``ROW_DIV``: rows per metadata row (keys quantized
    per channel: the block of tokens one row of channel scales covers), else 1."""
    row_ptrs = meta_base + (rows // ROW_DIV).to(tl.int64) * MRB
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
def _slot_group(u, slot, UNIT_VALUES: tl.constexpr, LANES_D: tl.constexpr, D: tl.constexpr, GROUP: tl.constexpr):
    """The scale group of value ``slot`` of each unit, ``[1, U]`` (callers with one group use
    the constant 0 instead)."""
    return (tl.minimum(_unit_value(u, slot, UNIT_VALUES, LANES_D), D - 1) // GROUP)[None, :]


@triton.jit
def _slot_values(data, rows, row_ok, u, meta_base, menc_ptr, msyn_ptr, slot, UNIT_VALUES: tl.constexpr,
                 LANES_D: tl.constexpr, D: tl.constexpr, GROUPS: tl.constexpr, GROUP: tl.constexpr, HAS_ZERO: tl.constexpr,
                 MK: tl.constexpr, MPO_SYN: tl.constexpr, DECODE: tl.constexpr, MUV: tl.constexpr, MUB: tl.constexpr,
                 MRB: tl.constexpr, META_LANES: tl.constexpr, META_UNITS: tl.constexpr, ROW_DIV: tl.constexpr = 1,
                 meta_tile=None):
    """Value ``slot`` of each unit, dequantized in float32 with its group's scale decoded from the
    metadata: ``((v - offset) * scale, whether that scale or zero point is detected)``.
    ``rows``/``row_ok`` are ``[N, 1]`` or ``[N, U]``. ``meta_tile``: ``_meta_block``'s decoded
    metadata of these rows (``[N, 1]`` rows), used where ``_tiled_meta``."""
    v = ((data >> (4 * slot)) & 15).to(tl.float32)
    if GROUPS == 1:  # one scale per row: decoded once per row
        w = 0
        mask = row_ok
    else:  # a group per column: the mask takes the tile's shape
        w = _slot_group(u, slot, UNIT_VALUES, LANES_D, D, GROUP)
        mask = row_ok & (w >= 0)
    if meta_tile is not None and _tiled_meta(GROUPS, ROW_DIV):
        # Each group's words from the block's metadata tile, decoded once (a reduction a row),
        # then selected by column: read and decoded per value, every slot of every block loaded
        # and decoded the units again (Hamming(8,4)'s main launch with zero points: 425 loads,
        # 12.7 KB spilled a thread for sm_90a).
        meta_data, meta_status = meta_tile
        s_bits, z_bits, detected = _tile_group_words(meta_data, meta_status, tl.arange(0, _next_power_of_2(META_UNITS)), w, mask,
                                                     GROUPS, HAS_ZERO, MUV, 2)
        s = s_bits.to(tl.float32, bitcast=True)
        if HAS_ZERO:
            off = z_bits.to(tl.float32, bitcast=True)
        else:
            off = 8.0
        detected = detected & mask
    elif ROW_DIV > 1 and rows.shape[1] == 1:
        # Keys per channel, a block of consecutive rows ([N, 1]): they share one or two rows of
        # channel scales, each decoded once as a [1, U] row and given to the rows it covers,
        # rather than once per (row, value): per value, the deferred launch spilled 25 KB a thread.
        s = tl.zeros(mask.shape, tl.float32)
        off = tl.zeros(mask.shape, tl.float32) + (0.0 if HAS_ZERO else 8.0)
        detected = tl.zeros(mask.shape, tl.int1)
        first, last = _meta_rows_spanned(rows, row_ok, ROW_DIV)
        covered_rows = tl.zeros([1, 1], tl.int32) + first * ROW_DIV
        for meta_row in range(first, last + 1):
            row_s, row_off, row_det = _group_scale(meta_base, covered_rows, w >= 0, w, menc_ptr, msyn_ptr, MK, MPO_SYN, DECODE, GROUPS,
                                                   HAS_ZERO, MUV, MUB, MRB, META_LANES, META_UNITS, ROW_DIV)
            here = row_ok & (rows // ROW_DIV == meta_row)
            s = tl.where(here, row_s, s)
            off = tl.where(here, row_off, off)
            detected = detected | (here & row_det)
            covered_rows += ROW_DIV
    else:
        s, off, detected = _group_scale(meta_base, rows, mask, w, menc_ptr, msyn_ptr, MK, MPO_SYN, DECODE, GROUPS, HAS_ZERO, MUV, MUB,
                                        MRB, META_LANES, META_UNITS, ROW_DIV)
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
def _neighbour_rows(stored_ptr, meta_base, enc_ptr, syn_ptr, menc_ptr, msyn_ptr, rows, u, erased, seq_len, slot,
                    ROW_BYTES: tl.constexpr, UNIT_BYTES: tl.constexpr, UNIT_VALUES: tl.constexpr, LANES_D: tl.constexpr,
                    D: tl.constexpr, K: tl.constexpr, GROUPS: tl.constexpr, GROUP: tl.constexpr, HAS_ZERO: tl.constexpr,
                    META_UNITS: tl.constexpr, MUV: tl.constexpr, MUB: tl.constexpr, MRB: tl.constexpr, META_LANES: tl.constexpr,
                    NIBBLE: tl.constexpr, PAR_LO: tl.constexpr, PAR_HI: tl.constexpr, FLIP_LO: tl.constexpr,
                    FLIP_HI: tl.constexpr, DET: tl.constexpr, PBITS: tl.constexpr, PO_SYN: tl.constexpr, MK: tl.constexpr,
                    MPO_SYN: tl.constexpr, ROW_DIV: tl.constexpr = 1, WORD_W: tl.constexpr = 0, PTX: tl.constexpr = False):
    """For each erased unit (one scale group: every value of the unit) or value ``slot`` of a
    unit (several groups) ``[N, U]``: the nearest row before and after it (below ``seq_len``)
    where it is not erased (neither its codeword nor its group's scale detected), or -1; with
    one group, also those rows' scales and offsets (zero points; 0 where none was found, and
    with several groups, where each slot decodes its own). ``WORD_W``: the one-byte codes'
    word-aligned rows of that many words (the word path's repair pass), each row looked at
    decoded four codewords a word (``_decode_row_words``); with one group the word path
    searches with ``_neighbour_values_words`` instead."""
    prev_row = tl.full(erased.shape, -1, tl.int32)
    next_row = tl.full(erased.shape, -1, tl.int32)
    prev_scale = tl.zeros(erased.shape, tl.float32)
    next_scale = prev_scale
    prev_offset = prev_scale
    next_offset = prev_scale
    # With one scale a row the flags are int32 tiles (0 or 1), not predicates, which the loop
    # carried packed (Golay's repair loop 4,390 -> 4,083 sm_90a instructions); with a scale per
    # value, whose search holds more tiles, int32 flags spilled 2.5x more (benchmarks/RESULTS.md).
    FLAGS: tl.constexpr = tl.int32 if GROUPS == 1 else tl.int1
    pend_prev = erased.to(FLAGS)
    pend_next = pend_prev
    t = 1
    while tl.max((pend_prev | pend_next).to(tl.int32)) > 0:
        # A loop, not unrolled: one copy of the decode below in the kernel, not two (compile
        # time: Triton's coalescing pass is quadratic in a kernel's loads).
        for direction in range(2):
            back = direction == 0
            r = tl.where(back, rows[:, None] - t, rows[:, None] + t)
            in_seq = ((r >= 0) & (r < seq_len)).to(FLAGS)
            ok = tl.where(back, pend_prev, pend_next) & in_seq
            if WORD_W:
                looked = in_seq != 0  # a row's every unit decoded anyway: no reduction of ok
                _, detected = _decode_row_words(stored_ptr, r, looked, ROW_BYTES, WORD_W, PAR_LO, PAR_HI, PBITS, FLIP_LO, FLIP_HI,
                                                   DET, PO_SYN, PTX)
            else:
                _, status = _decode_units(_load_units(stored_ptr, r, u, ok != 0, ROW_BYTES, UNIT_BYTES, LANES_D), enc_ptr, syn_ptr,
                                          ok != 0, K, True, NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS, PO_SYN)
                detected = status == 2
                looked = tl.max(ok.to(tl.int32), axis=1)[:, None] != 0  # the rows any unit looks at
            if GROUPS == 1:
                # One scale a row: decoded once per row ([N, 1]) where any of its units looks, not
                # once per unit. Per unit, the repair launch decoded 128 copies of each row's
                # scale at every step and took 77 ms at batch 8 / 32k and BER 1e-2 on the H200
                # (benchmarks/RESULTS.md). Its detected flag is the row's: each codeword of a
                # metadata row holds a nibble of the scale or of the zero point, both decoded.
                row_scale, row_offset, meta_det = _group_scale(meta_base, r, looked, 0, menc_ptr, msyn_ptr, MK, MPO_SYN, True, GROUPS,
                                                               HAS_ZERO, MUV, MUB, MRB, META_LANES, META_UNITS)
            else:
                w = _slot_group(u, slot, UNIT_VALUES, LANES_D, D, GROUP)
                _, _, meta_det = _group_scale(meta_base, r, ok != 0, w, menc_ptr, msyn_ptr, MK, MPO_SYN, True, GROUPS, HAS_ZERO, MUV,
                                              MUB, MRB, META_LANES, META_UNITS, ROW_DIV)
            prev_row, next_row, pend_prev, pend_next, found = _neighbour_found(back, r, ok, detected | meta_det, prev_row, next_row,
                                                                               pend_prev, pend_next)
            if GROUPS == 1:  # the rows found keep their scales
                prev_scale = tl.where(back & found, row_scale, prev_scale)
                next_scale = tl.where(~back & found, row_scale, next_scale)
                prev_offset = tl.where(back & found, row_offset, prev_offset)
                next_offset = tl.where(~back & found, row_offset, next_offset)
        t += 1
    return prev_row, next_row, prev_scale, next_scale, prev_offset, next_offset


@triton.jit
def _neighbour_values_words(stored_ptr, meta_base, menc_ptr, msyn_ptr, rows, erased, seq_len, ROW_BYTES: tl.constexpr,
                            WORD_W: tl.constexpr, HAS_ZERO: tl.constexpr, META_UNITS: tl.constexpr, MUV: tl.constexpr,
                            MUB: tl.constexpr, MRB: tl.constexpr, META_LANES: tl.constexpr, PAR_LO: tl.constexpr, PAR_HI: tl.constexpr,
                            FLIP_LO: tl.constexpr, FLIP_HI: tl.constexpr, DET: tl.constexpr, PBITS: tl.constexpr, PO_SYN: tl.constexpr,
                            MK: tl.constexpr, MPO_SYN: tl.constexpr, PTX: tl.constexpr):
    """``_neighbour_rows`` of the word path's repair pass with one scale a row (the one-byte
    codes: a value a unit): for each erased unit ``[N, U]``, the nearest row before and after
    (below ``seq_len``) where it is not erased, or -1, and its value there, dequantized as
    ``_kv_slot`` dequantizes (0 where none). Each row looked at is decoded four codewords a word
    (``_decode_row_words``) and its value kept as it is found, not decoded again once the
    search ends; the two directions are written out, so that no select picks between them,
    and the search's flags are int32 words, not predicates: as ``_neighbour_rows``, the search
    held most of the repair pass's loop in selects of predicate tiles (sm_90a SASS)."""
    prev_row = tl.full(erased.shape, -1, tl.int32)
    next_row = prev_row
    prev_value = tl.zeros(erased.shape, tl.float32)
    next_value = prev_value
    pend_prev = erased.to(tl.int32)
    pend_next = pend_prev
    t = 1
    while tl.max(pend_prev | pend_next) > 0:
        prev_row, prev_value, pend_prev = _neighbour_step_words(
            stored_ptr, meta_base, menc_ptr, msyn_ptr, rows[:, None] - t, seq_len, pend_prev, prev_row, prev_value, ROW_BYTES, WORD_W,
            HAS_ZERO, META_UNITS, MUV, MUB, MRB, META_LANES, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS, PO_SYN, MK, MPO_SYN, PTX)
        next_row, next_value, pend_next = _neighbour_step_words(
            stored_ptr, meta_base, menc_ptr, msyn_ptr, rows[:, None] + t, seq_len, pend_next, next_row, next_value, ROW_BYTES, WORD_W,
            HAS_ZERO, META_UNITS, MUV, MUB, MRB, META_LANES, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS, PO_SYN, MK, MPO_SYN, PTX)
        t += 1
    return prev_row, next_row, prev_value, next_value


@triton.jit
def _neighbour_step_words(stored_ptr, meta_base, menc_ptr, msyn_ptr, r, seq_len, pend, near, value, ROW_BYTES: tl.constexpr,
                          WORD_W: tl.constexpr, HAS_ZERO: tl.constexpr, META_UNITS: tl.constexpr, MUV: tl.constexpr,
                          MUB: tl.constexpr, MRB: tl.constexpr, META_LANES: tl.constexpr, PAR_LO: tl.constexpr, PAR_HI: tl.constexpr,
                          FLIP_LO: tl.constexpr, FLIP_HI: tl.constexpr, DET: tl.constexpr, PBITS: tl.constexpr, PO_SYN: tl.constexpr,
                          MK: tl.constexpr, MPO_SYN: tl.constexpr, PTX: tl.constexpr):
    """One step of ``_neighbour_values_words`` in one direction: rows ``r`` (``[N, 1]``) looked at
    by the units still searching (``pend``, 0 or 1) -> (``near``, ``value``, ``pend``) updated:
    the row and its value where the unit is neither detected there nor in a row whose scale
    is; the search goes on where it is."""
    in_seq = (r >= 0) & (r < seq_len)
    data, detected = _decode_row_words(stored_ptr, r, in_seq, ROW_BYTES, WORD_W, PAR_LO, PAR_HI, PBITS, FLIP_LO, FLIP_HI, DET, PO_SYN,
                                       PTX)
    scale, offset, meta_det = _group_scale(meta_base, r, in_seq, 0, menc_ptr, msyn_ptr, MK, MPO_SYN, True, 1, HAS_ZERO, MUV, MUB, MRB,
                                           META_LANES, META_UNITS)
    looking = pend & in_seq.to(tl.int32)
    erased_here = detected.to(tl.int32) | meta_det.to(tl.int32)
    found = (looking & (erased_here ^ 1)) != 0
    near = tl.where(found, r, near)
    value = tl.where(found, (data.to(tl.float32) - offset) * scale, value)
    return near, value, looking & erased_here


@triton.jit
def _neighbour_found(back, r, ok, detected, prev_row, next_row, pend_prev, pend_next):
    """One step of a neighbour search: row ``r`` (looked at where ``ok``) is the neighbour
    before (``back``) or after where it is not ``detected``; the search goes on where it is.
    The flags ``ok`` and ``pend_*`` are predicates or int32 tiles of 0 and 1 alike. Returns
    the rows and flags, then where ``r`` was found (a predicate)."""
    found = (ok != 0) & ~detected
    prev_row = tl.where(back & found, r, prev_row)
    next_row = tl.where(~back & found, r, next_row)
    still = ok & detected.to(ok.dtype)
    pend_prev = tl.where(back, still, pend_prev)
    pend_next = tl.where(back, pend_next, still)
    return prev_row, next_row, pend_prev, pend_next, found


@triton.jit
def _neighbour_values(row, has, stored_ptr, meta_base, enc_ptr, syn_ptr, menc_ptr, msyn_ptr, u, slot,
                      META_UNITS: tl.constexpr,
                      ROW_BYTES: tl.constexpr, UNIT_BYTES: tl.constexpr, UNIT_VALUES: tl.constexpr, LANES_D: tl.constexpr,
                      D: tl.constexpr, K: tl.constexpr, GROUPS: tl.constexpr, GROUP: tl.constexpr, HAS_ZERO: tl.constexpr,
                      MUV: tl.constexpr, MUB: tl.constexpr, MRB: tl.constexpr, META_LANES: tl.constexpr,
                      NIBBLE: tl.constexpr, PAR_LO: tl.constexpr, PAR_HI: tl.constexpr, FLIP_LO: tl.constexpr,
                      FLIP_HI: tl.constexpr, DET: tl.constexpr, PBITS: tl.constexpr, PO_SYN: tl.constexpr, MK: tl.constexpr,
                      MPO_SYN: tl.constexpr, ROW_DIV: tl.constexpr = 1):
    """Value ``slot`` of each unit at rows ``row`` (where ``has``), decoded and dequantized."""
    r = tl.maximum(row, 0)
    data, _ = _decode_units(_load_units(stored_ptr, r, u, has, ROW_BYTES, UNIT_BYTES, LANES_D), enc_ptr, syn_ptr, has, K, True,
                            NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS, PO_SYN)
    x, _ = _slot_values(data, r, has, u, meta_base, menc_ptr, msyn_ptr, slot, UNIT_VALUES, LANES_D, D, GROUPS, GROUP, HAS_ZERO,
                        MK, MPO_SYN, True, MUV, MUB, MRB, META_LANES, META_UNITS, ROW_DIV)
    return x


@triton.jit
def _kv_slot(data, block, rows, row_ok, u, col_ok, seq_len, stored_ptr, meta_base, enc_ptr,
             syn_ptr, menc_ptr, msyn_ptr, slot, INTERP: tl.constexpr, ROW_BYTES: tl.constexpr, UNIT_BYTES: tl.constexpr,
             UNIT_VALUES: tl.constexpr, LANES_D: tl.constexpr, D: tl.constexpr, K: tl.constexpr, DECODE: tl.constexpr,
             GROUPS: tl.constexpr, GROUP: tl.constexpr, HAS_ZERO: tl.constexpr, META_UNITS: tl.constexpr, MUV: tl.constexpr,
             MUB: tl.constexpr, MRB: tl.constexpr, META_LANES: tl.constexpr,
             NIBBLE: tl.constexpr, PAR_LO: tl.constexpr, PAR_HI: tl.constexpr, FLIP_LO: tl.constexpr,
             FLIP_HI: tl.constexpr, DET: tl.constexpr, PBITS: tl.constexpr, PO_SYN: tl.constexpr, MK: tl.constexpr, MPO_SYN: tl.constexpr,
             ROW_DIV: tl.constexpr = 1, WORD_W: tl.constexpr = 0, PTX: tl.constexpr = False):
    """Slot ``slot`` of a K or V block ``[N, U]``, dequantized in float32; with ``INTERP``, its
    erased values (of a detected codeword, or of a group whose scale is detected) replaced as
    :func:`ecc_tensor.interp.interpolate_erasures` does: the neighbours' mean, the one neighbour
    there is, or the value as read when there is none. ``block`` is ``_block_state``'s: with one
    scale group, the rows' scales, erasures, neighbour rows and their decoded data and scales,
    shared by every slot; with several, each slot finds its own, since a unit's values may
    belong to different groups. ``WORD_W``, ``PTX``: the neighbour search's (``_neighbour_rows``)."""
    (erased, any_erased, scale, offset, prev_row, next_row, prev_data, prev_scale, prev_offset, next_data, next_scale, next_offset,
     meta_data, meta_status, prev_value, next_value) = block
    v = ((data >> (4 * slot)) & 15).to(tl.float32)
    if GROUPS == 1:
        x = (v - offset) * scale
        if INTERP:
            if any_erased:
                if WORD_W:  # one value a unit, dequantized as the search found it
                    pv = prev_value
                    nv = next_value
                else:
                    pv = (((prev_data >> (4 * slot)) & 15).to(tl.float32) - prev_offset) * prev_scale
                    nv = (((next_data >> (4 * slot)) & 15).to(tl.float32) - next_offset) * next_scale
                has_prev = prev_row >= 0
                has_next = next_row >= 0
                filled = tl.where(has_prev & has_next, (pv + nv) * 0.5, tl.where(has_prev, pv, tl.where(has_next, nv, x)))
                x = tl.where(erased, filled, x)
    else:
        x, meta_det = _slot_values(data, rows[:, None], row_ok[:, None], u, meta_base, menc_ptr, msyn_ptr, slot, UNIT_VALUES, LANES_D,
                                   D, GROUPS, GROUP, HAS_ZERO, MK, MPO_SYN, DECODE, MUV, MUB, MRB, META_LANES, META_UNITS, ROW_DIV,
                                   (meta_data, meta_status))
        if INTERP:
            erased = (erased | meta_det) & row_ok[:, None] & col_ok[None, :]
            if tl.max(erased.to(tl.int32)) > 0:
                prev_row, next_row, _, _, _, _ = _neighbour_rows(
                    stored_ptr, meta_base, enc_ptr, syn_ptr, menc_ptr, msyn_ptr, rows, u, erased, seq_len, slot, ROW_BYTES, UNIT_BYTES,
                    UNIT_VALUES,
                    LANES_D, D, K, GROUPS, GROUP, HAS_ZERO, META_UNITS, MUV, MUB, MRB, META_LANES, NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI,
                    DET, PBITS, PO_SYN, MK, MPO_SYN, ROW_DIV, WORD_W, PTX)
                has_prev = prev_row >= 0
                has_next = next_row >= 0
                # The values before and after, decoded in a loop rather than unrolled (one copy of
                # the neighbour decode, as in _block_state).
                pv = tl.zeros(x.shape, tl.float32)
                nv = pv
                for side in range(2):
                    before = side == 0
                    row = tl.where(before, prev_row, next_row)
                    side_values = _neighbour_values(row, row >= 0, stored_ptr, meta_base, enc_ptr, syn_ptr, menc_ptr, msyn_ptr, u, slot,
                                                    META_UNITS, ROW_BYTES, UNIT_BYTES, UNIT_VALUES, LANES_D, D, K, GROUPS, GROUP, HAS_ZERO,
                                                    MUV, MUB, MRB, META_LANES, NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS, PO_SYN,
                                                    MK, MPO_SYN, ROW_DIV)
                    pv = tl.where(before, side_values, pv)
                    nv = tl.where(before, nv, side_values)
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
def _row_words(base, rows, row_ok, ROW_BYTES: tl.constexpr, BLOCK_W: tl.constexpr):
    """``[N, BLOCK_W]`` uint32 words of word-aligned rows ``rows`` (``[N, 1]``), 0 where not
    ``row_ok`` and past the row."""
    w = tl.arange(0, BLOCK_W)[None, :]
    return tl.load(base.to(tl.pointer_type(tl.uint32)) + rows * (ROW_BYTES // 4) + w, mask=row_ok & (w < ROW_BYTES // 4), other=0)


@triton.constexpr_function
def _parity_columns(PAR_LO, PAR_HI):
    """(C0, C1, C2, C3) of ``byte_words`` (the parity nibble of each data bit) from the nibble
    parity constants (``PAR_LO``: the parity of data 0-7, a nibble each; ``PAR_HI``: 8-15)."""
    return (int(PAR_LO) >> 4) & 15, (int(PAR_LO) >> 8) & 15, (int(PAR_LO) >> 16) & 15, int(PAR_HI) & 15


@triton.jit
def _decode_row_words(base, rows, looked, ROW_BYTES: tl.constexpr, BLOCK_W: tl.constexpr, PAR_LO: tl.constexpr,
                      PAR_HI: tl.constexpr, PBITS: tl.constexpr, FLIP_LO: tl.constexpr, FLIP_HI: tl.constexpr, DET: tl.constexpr,
                      PO_SYN: tl.constexpr, PTX: tl.constexpr):
    """One-byte codes: rows ``rows`` (``[N, 1]``, read where ``looked``) decoded four codewords a
    word -> (corrected data ``[N, 4 * BLOCK_W]`` in row order, whether each codeword is
    detected), as ``_decode_units`` over every unit of the rows."""
    C0: tl.constexpr = _parity_columns(PAR_LO, PAR_HI)[0]
    C1: tl.constexpr = _parity_columns(PAR_LO, PAR_HI)[1]
    C2: tl.constexpr = _parity_columns(PAR_LO, PAR_HI)[2]
    C3: tl.constexpr = _parity_columns(PAR_LO, PAR_HI)[3]
    data, status = _word_decode(_row_words(base, rows, looked, ROW_BYTES, BLOCK_W), C0, C1, C2, C3, PBITS, FLIP_LO, FLIP_HI, DET, PO_SYN,
                                PTX)
    return _word_bytes(data), _word_bytes((status >> 1) & ~status & 0x01010101) != 0


@triton.jit
def _decode_block_words(base, rows, row_ok, ROW_BYTES: tl.constexpr, BLOCK_W: tl.constexpr, C0: tl.constexpr, C1: tl.constexpr,
                        C2: tl.constexpr, C3: tl.constexpr, PBITS: tl.constexpr, FLIP_LO: tl.constexpr, FLIP_HI: tl.constexpr,
                        DET: tl.constexpr, PO_SYN: tl.constexpr, PTX: tl.constexpr):
    """``_decode_block`` of the one-byte codes in word-aligned rows (the word path's deferred
    blocks): the rows read as words and decoded four codewords a word (``_word_decode``).
    Returns the data ``[N, 4 * BLOCK_W]`` in row order, as ``_decode_block``; for the status, a
    tile that is 2 where a codeword is detected and 0 elsewhere (all ``_block_state`` asks of it;
    unpacked only where the block holds one); the words' statuses as counts
    (``_status_word_fields``, ``[N, BLOCK_W]``); and whether any codeword is detected. Read a
    byte and decoded one codeword at a time, the decode and its counts were most of the Hamming
    codes' deferred loop (sm_90a SASS: ~1,950 of 3,286 instructions a block)."""
    data, status = _word_decode(_row_words(base, rows[:, None], row_ok[:, None], ROW_BYTES, BLOCK_W), C0, C1, C2, C3, PBITS, FLIP_LO,
                                FLIP_HI, DET, PO_SYN, PTX)
    detected = ((status >> 1) & ~status & 0x01010101) * 2  # a byte each: 2 detected, 0 not
    erased = tl.zeros([rows.shape[0], 4 * BLOCK_W], tl.int32)
    any_detected = tl.reduce_or(detected, None) != 0
    if any_detected:
        erased = _word_bytes(detected)
    return _word_bytes(data), erased, _status_word_fields(status), any_detected


@triton.jit
def _block_state(base, meta_base, rows, row_ok, u, u_ok, status, meta_block, seq_len, enc_ptr, syn_ptr, menc_ptr, msyn_ptr,
                 REPAIR: tl.constexpr, ROW_BYTES: tl.constexpr, UNIT_BYTES: tl.constexpr, UNIT_VALUES: tl.constexpr,
                 LANES_D: tl.constexpr, D: tl.constexpr, K: tl.constexpr, DECODE: tl.constexpr, GROUPS: tl.constexpr,
                 GROUP: tl.constexpr, HAS_ZERO: tl.constexpr, META_UNITS: tl.constexpr, MUV: tl.constexpr, MUB: tl.constexpr,
                 MRB: tl.constexpr, META_LANES: tl.constexpr, NIBBLE: tl.constexpr, PAR_LO: tl.constexpr, PAR_HI: tl.constexpr,
                 FLIP_LO: tl.constexpr, FLIP_HI: tl.constexpr, DET: tl.constexpr, PBITS: tl.constexpr, PO_SYN: tl.constexpr,
                 MK: tl.constexpr, MPO_SYN: tl.constexpr, row_scales=None, WORD_W: tl.constexpr = 0, PTX: tl.constexpr = False,
                 any_detected=None):
    """What every slot of a K or V block shares (``_kv_slot``): its erased units ``[N, U]``
    (detected codewords; with one scale group, every unit of a row whose scale is detected
    too) and whether any; with one group, the rows' decoded scale and offset ``[N, 1]`` and, in
    the repair pass, the erased units' neighbour rows with their decoded data, scales and
    offsets, found and decoded once for all of a unit's values; and ``_meta_block``'s metadata
    tile (``meta_block``: its results). ``row_scales``: with one group, the rows' scale and
    offset ``[N, 1]`` decoded already (``row_meta._rows_to_tile``), or None to decode them here.
    ``WORD_W``, ``PTX``: the word path's search (``_neighbour_values_words``); ``any_detected``:
    whether ``status`` holds a detected codeword, where the decode knows it
    (``_decode_block_words``), else None."""
    meta_rows_detected, meta_data, meta_status = meta_block[3], meta_block[4], meta_block[5]
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
    prev_value = zeros  # the word path's neighbours' values (_neighbour_values_words)
    next_value = zeros
    any_erased = False
    if GROUPS == 1:
        erased = (erased | meta_rows_detected[:, None]) & unit_mask
        if row_scales is None:
            scale, offset, row_detected = _group_scale(meta_base, rows[:, None], row_ok[:, None], 0, menc_ptr, msyn_ptr, MK, MPO_SYN,
                                                       DECODE, GROUPS, HAS_ZERO, MUV, MUB, MRB, META_LANES, META_UNITS)
        else:
            scale, offset = row_scales
        if REPAIR:
            if any_detected is None:
                any_erased = tl.max(erased.to(tl.int32)) > 0
            else:  # the decode's flag and the rows' scales': no reduction of the [N, U] tile across the warps
                any_erased = any_detected | (tl.max((meta_rows_detected & row_ok).to(tl.int32), axis=0) > 0)
            if any_erased:
                if WORD_W:
                    prev_row, next_row, prev_value, next_value = _neighbour_values_words(
                        base, meta_base, menc_ptr, msyn_ptr, rows, erased, seq_len, ROW_BYTES, WORD_W, HAS_ZERO, META_UNITS, MUV, MUB,
                        MRB, META_LANES, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS, PO_SYN, MK, MPO_SYN, PTX)
                else:
                    # The neighbour rows with their scales (decoded once per row in the search).
                    prev_row, next_row, prev_scale, next_scale, found_prev_offset, found_next_offset = _neighbour_rows(
                        base, meta_base, enc_ptr, syn_ptr, menc_ptr, msyn_ptr, rows, u, erased, seq_len, 0, ROW_BYTES, UNIT_BYTES,
                        UNIT_VALUES, LANES_D,
                        D, K, GROUPS, GROUP, HAS_ZERO, META_UNITS, MUV, MUB, MRB, META_LANES, NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI,
                        DET, PBITS, PO_SYN, MK, MPO_SYN)
                    if HAS_ZERO:
                        prev_offset = found_prev_offset
                        next_offset = found_next_offset
                    # The rows' data before and after, decoded in a loop rather than unrolled (one
                    # copy of the decode, as in _neighbour_rows).
                    for side in range(2):
                        before = side == 0
                        row = tl.where(before, prev_row, next_row)
                        has = row >= 0
                        r = tl.maximum(row, 0)
                        data, _ = _decode_units(_load_units(base, r, u, has, ROW_BYTES, UNIT_BYTES, LANES_D), enc_ptr, syn_ptr, has, K,
                                                True, NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS, PO_SYN)
                        prev_data = tl.where(before, data, prev_data)
                        next_data = tl.where(before, next_data, data)
    return (erased, any_erased, scale, offset, prev_row, next_row, prev_data, prev_scale, prev_offset, next_data, next_scale, next_offset,
            meta_data, meta_status, prev_value, next_value)


@triton.jit
def _meta_block(meta_base, rows, row_ok, menc_ptr, msyn_ptr, MK: tl.constexpr, MPO_SYN: tl.constexpr, DECODE: tl.constexpr,
                META_UNITS: tl.constexpr, MUV: tl.constexpr, MUB: tl.constexpr, MRB: tl.constexpr, META_LANES: tl.constexpr,
                ROW_DIV: tl.constexpr = 1, GROUPS: tl.constexpr = 1):
    """The metadata codewords of a block's rows: (corrected, parity-only, detected counts, per
    row whether any is detected, and where ``_tiled_meta`` the rows' units as one decoded tile,
    data and status ``[N, MU]`` (unit ``mu`` of ``tl.arange(0, MU)``), for ``_slot_values``; else
    two placeholders, since a Triton function returns no None). With ``ROW_DIV`` rows per metadata
    row (``_group_scale``) a metadata row is counted at the first row it covers, so once."""
    corrected = tl.zeros([], tl.int32)
    parity_only = tl.zeros([], tl.int32)
    detected = tl.zeros([], tl.int32)
    any_detected = tl.zeros(row_ok.shape, tl.int1)
    tile_data = tl.zeros([1, 1], tl.int32)
    tile_status = tile_data
    if _tiled_meta(GROUPS, ROW_DIV):
        # One load of the rows' units (int4's raw bytes too), decoded once for the counts and
        # every group's scale and zero point.
        tile_mu = tl.arange(0, _next_power_of_2(META_UNITS))
        mu_ok = row_ok[:, None] & (tile_mu < META_UNITS)[None, :]
        tile_data = _load_units(meta_base, rows[:, None], tile_mu, mu_ok, MRB, MUB, 0)
        tile_status = tl.zeros(mu_ok.shape, tl.int32)  # int4: nothing decoded
        if DECODE:
            tile_data, tile_status = _syndrome_decode(tile_data, menc_ptr, msyn_ptr, mu_ok, MK, MPO_SYN)
            tile_status = tl.where(mu_ok, tile_status, 0)
            corrected = tl.sum(tl.sum((tile_status == 1).to(tl.int32), axis=1), axis=0)
            parity_only = tl.sum(tl.sum((tile_status == 3).to(tl.int32), axis=1), axis=0)
            detected = tl.sum(tl.sum((tile_status == 2).to(tl.int32), axis=1), axis=0)
            any_detected = tl.max((tile_status == 2).to(tl.int32), axis=1) != 0
    elif DECODE:
        if ROW_DIV == 1:  # one group (not tiled), a metadata row a row: row_meta's counts (its scale unused)
            meta = _row_meta(meta_base, rows, row_ok, menc_ptr, msyn_ptr, MK, MPO_SYN, False, META_UNITS, MUV, MUB, MRB, META_LANES)
            corrected, parity_only, detected, any_detected = meta[0], meta[1], meta[2], meta[3]
        else:
            # Keys per channel: a metadata row holds hundreds of codewords (342 for 128 Hamming
            # scales) and a block's rows share one or two such rows. Each is decoded as one tile
            # of its codewords, in a loop: unrolled per codeword, the deferred launch took
            # minutes to compile for sm_90a.
            mu = tl.arange(0, _next_power_of_2(META_UNITS))
            mu_ok = mu < META_UNITS
            first, last = _meta_rows_spanned(rows, row_ok, ROW_DIV)
            row_ptr = meta_base + first.to(tl.int64) * MRB
            for meta_row in range(first, last + 1):
                unit = _unit_word(row_ptr + mu * MUB, mu_ok, MUB)
                row_ptr += MRB
                _, status = _syndrome_decode(unit, menc_ptr, msyn_ptr, mu_ok, MK, MPO_SYN)
                status = tl.where(mu_ok, status, 0)
                covered = row_ok & (rows // ROW_DIV == meta_row)
                # Counted in the block holding the first row it covers.
                once = tl.max((covered & (rows % ROW_DIV == 0)).to(tl.int32), axis=0)
                corrected += once * tl.sum((status == 1).to(tl.int32), axis=0)
                parity_only += once * tl.sum((status == 3).to(tl.int32), axis=0)
                detected += once * tl.sum((status == 2).to(tl.int32), axis=0)
                any_detected = any_detected | (covered & (tl.max((status == 2).to(tl.int32), axis=0) > 0))
    return corrected, parity_only, detected, any_detected, tile_data, tile_status
