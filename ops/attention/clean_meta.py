"""The clean-blocks paths' metadata: each row's scale and zero point as read, and whether any
of their codewords has a non-zero syndrome (a dirty row defers its block)."""

from __future__ import annotations

import triton
import triton.language as tl

from ..codec_kernels import (
    _put_unit,
    _syndromes,
    _unit_word,
    _word_bits,
    _word_unit,
    _word_units,
)
from ..lane_words import _lane_syndromes


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
def _clean_value_meta(vm_base, rows, menc_ptr, MK: tl.constexpr, DECODE: tl.constexpr, HAS_ZERO: tl.constexpr,
                      META_WORDS: tl.constexpr, META_LANES: tl.constexpr, META_UNITS: tl.constexpr, MUV: tl.constexpr,
                      MUB: tl.constexpr, MRB: tl.constexpr):
    """``_clean_rows_meta`` of V alone (keys quantized per channel have no row scales): (V scale,
    V zero, dirty). Golay's lane layout is checked as a pair, V in both places."""
    if META_LANES:
        words = vm_base.to(tl.pointer_type(tl.uint32))
        _, _, vs, vz, dirty = _lane_meta_syndromes(words, words, rows, HAS_ZERO)
        return vs.to(tl.float32, bitcast=True), vz.to(tl.float32, bitcast=True), dirty
    return _clean_row_meta(vm_base, rows, menc_ptr, MK, DECODE, HAS_ZERO, META_WORDS, META_UNITS, MUV, MUB, MRB)


@triton.jit
def _clean_channel_meta(row_ptr, cols, menc_ptr, MK: tl.constexpr, DECODE: tl.constexpr, HAS_ZERO: tl.constexpr,
                        GROUPS: tl.constexpr, MUV: tl.constexpr, MUB: tl.constexpr, WORDS: tl.constexpr, DIRTY_WORD: tl.constexpr):
    """One metadata row of keys quantized per channel (``GROUPS`` channels: their scales, then
    their zero points): (scale, zero point (0 when symmetric), dirty) of channels ``cols``,
    data bits as read, dirty non-zero where a codeword holding them has a non-zero syndrome (a
    dirty row defers every block it covers). Word ``w``'s nibble ``j`` is value ``8 w + j`` of
    units of ``MUV`` values and ``MUB`` bytes (:mod:`ecc_tensor.metadata`). ``WORDS``: aligned
    rows of the float32 words themselves (int4, ``key_meta_constants``), loaded as words;
    ``DIRTY_WORD`` > 0: rows of float32 words that ``channel_scales.py`` read from coded ones,
    the row's dirty flag at that word."""
    if WORDS:
        words = row_ptr.to(tl.pointer_type(tl.float32))
        zero = tl.load(words + GROUPS + cols) if HAS_ZERO else tl.zeros(cols.shape, tl.float32)
        dirty = tl.zeros(cols.shape, tl.int32)
        if DIRTY_WORD:
            dirty += tl.load(row_ptr.to(tl.pointer_type(tl.int32)) + DIRTY_WORD)
        return tl.load(words + cols), zero, dirty
    scale_bits = tl.zeros(cols.shape, tl.int32)
    zero_bits = tl.zeros(cols.shape, tl.int32)
    dirty = tl.zeros(cols.shape, tl.int32)
    for which in tl.static_range(2 if HAS_ZERO else 1):
        # Each unit the word's 8 nibbles span loaded and checked once (``_meta_word``).
        first = 8 * (cols + which * GROUPS)
        u0 = tl.zeros(cols.shape, tl.int32)
        u1, u2, u3, u4 = u0, u0, u0, u0
        for i in tl.static_range(_word_units(MUV)):
            word, spanned = _word_unit(row_ptr, first, i, None, MUV, MUB)
            if DECODE:
                dirty |= tl.where(spanned, _syndromes(word, menc_ptr, None, MK), 0)
            u0, u1, u2, u3, u4 = _put_unit(i, word, u0, u1, u2, u3, u4)
        bits = _word_bits(u0, u1, u2, u3, u4, first, MUV)
        if which == 0:
            scale_bits = bits
        else:
            zero_bits = bits
    return scale_bits.to(tl.float32, bitcast=True), zero_bits.to(tl.float32, bitcast=True), dirty


@triton.jit
def _clean_grouped_meta(meta_base, rows, groups, menc_ptr, MK: tl.constexpr, DECODE: tl.constexpr, HAS_ZERO: tl.constexpr,
                        GROUPS: tl.constexpr, META_WORDS: tl.constexpr, META_DIRTY: tl.constexpr, MUV: tl.constexpr, MUB: tl.constexpr,
                        MRB: tl.constexpr):
    """The clean-blocks paths' metadata of ``GROUPS`` scale groups per row: (scale, zero point (0
    when symmetric), dirty) ``[N, G]`` of ``rows`` (``[N]``) and groups ``groups`` (``[G]``, each
    below ``GROUPS``), data bits as read (a dirty row defers its block). A row holds its groups'
    scales, then their zero points (:mod:`ecc_tensor.metadata`), as a row of channel scales does:
    read as ``_clean_channel_meta`` reads one (``META_WORDS``: int4's float32 words, or with
    ``META_DIRTY`` the grouped scales pass's words and the row's dirty flag at that word)."""
    row_ptrs = meta_base + (rows * MRB)[:, None]
    cols = groups[None, :] + tl.zeros([rows.shape[0], groups.shape[0]], tl.int32)
    return _clean_channel_meta(row_ptrs, cols, menc_ptr, MK, DECODE, HAS_ZERO, GROUPS, MUV, MUB, META_WORDS, META_DIRTY)
