"""Syndromes of whole words for the clean-blocks paths: SECDED(72,64)'s blocks (Hamming's
one-byte codewords: ``ops/byte_words.py``; Golay's lane layout: ``ops/lane_words.py``). Each is
zero exactly where every codeword it covers is clean."""

from __future__ import annotations

import triton
import triton.language as tl

from ..codec_kernels import (
    _prmt,
    _top_offset,
)
from ..lane_words import _quarters


@triton.jit
def _byte_planes(w0, w1, w2, w3, PTX: tl.constexpr):
    """Four uint32 words -> four words, word ``k`` holding byte ``k`` of ``w_i`` at byte ``i``
    (a 4 x 4 byte transpose: eight byte permutes with ``PTX``, shifts and masks otherwise)."""
    if PTX:
        e01 = _prmt(w0, w1, 0x5140)  # w0.0 w1.0 w0.1 w1.1
        o01 = _prmt(w0, w1, 0x7362)  # w0.2 w1.2 w0.3 w1.3
        e23 = _prmt(w2, w3, 0x5140)
        o23 = _prmt(w2, w3, 0x7362)
        return _prmt(e01, e23, 0x5410), _prmt(e01, e23, 0x7632), _prmt(o01, o23, 0x5410), _prmt(o01, o23, 0x7632)
    p0 = (w0 & 0xFF) | ((w1 & 0xFF) << 8) | ((w2 & 0xFF) << 16) | (w3 << 24)
    p1 = ((w0 >> 8) & 0xFF) | (w1 & 0xFF00) | ((w2 & 0xFF00) << 8) | ((w3 & 0xFF00) << 16)
    p2 = ((w0 >> 16) & 0xFF) | ((w1 >> 8) & 0xFF00) | (w2 & 0xFF0000) | ((w3 & 0xFF0000) << 8)
    p3 = (w0 >> 24) | ((w1 >> 16) & 0xFF00) | ((w2 >> 8) & 0xFF0000) | (w3 & 0xFF000000)
    return p0, p1, p2, p3


@triton.jit
def _rotate_bytes(x, PTX: tl.constexpr):
    """Each byte of uint32 ``x`` rotated left by one, in place: the word shifted both ways,
    then one LOP3 that takes each byte's bits 1-7 from the left shift and bit 0 from the right
    (``PTX``; the compiler makes an AND, and an AND-OR, of the masks otherwise)."""
    if PTX:
        return tl.inline_asm_elementwise("lop3.b32 $0, $1, $2, 0xFEFEFEFE, 0xE4;", "=r,r,r", [x << 1, x >> 7],
                                         dtype=tl.uint32, is_pure=True, pack=1)
    return ((x << 1) & 0xFEFEFEFE) | ((x >> 7) & 0x01010101)


@triton.jit
def _offset_sum(planes, OFFSETS: tl.constexpr, R: tl.constexpr):
    """The XOR of the byte planes ``planes[B]`` whose byte's representative holds offset ``R``."""
    acc = tl.zeros_like(planes[0])
    for b in tl.static_range(8):
        if (OFFSETS >> (8 * b + R)) & 1:
            acc ^= planes[b]
    return acc


@triton.jit
def _plane_checks(planes, OFFSETS: tl.constexpr, PTX: tl.constexpr):
    """Eight byte planes (``planes[B]``: data byte ``B`` of four codewords, one a byte) -> their
    four check bytes in one word: Horner's scheme over the offsets, from the highest down, each
    step rotating every byte in place and XORing in the planes holding that offset."""
    TOP: tl.constexpr = _top_offset(OFFSETS)
    acc = _offset_sum(planes, OFFSETS, TOP)
    for i in tl.static_range(1, TOP + 1):
        acc = _rotate_bytes(acc, PTX) ^ _offset_sum(planes, OFFSETS, TOP - i)
    return acc


@triton.jit
def _row_byte_planes(words, PTX: tl.constexpr):
    """Rows of SECDED(72,64)'s blocks layout (``words``: ``[N, W]``, two words a codeword) ->
    eight byte planes ``[N, W / 8]``, plane ``B`` holding data byte ``B`` of codewords ``4 j
    .. 4 j + 3`` in its four bytes."""
    N: tl.constexpr = words.shape[0]
    G: tl.constexpr = words.shape[1] // 8
    lo, hi = tl.split(tl.reshape(words.to(tl.uint32, bitcast=True), [N, 4 * G, 2]))
    l0, l1, l2, l3 = _quarters(lo)  # codewords 4j .. 4j + 3: [N, G] each
    h0, h1, h2, h3 = _quarters(hi)
    return _byte_planes(l0, l1, l2, l3, PTX) + _byte_planes(h0, h1, h2, h3, PTX)


@triton.jit
def _block_row_syndromes(words, checks, OFFSETS: tl.constexpr, PTX: tl.constexpr):
    """Rows of SECDED(72,64)'s blocks layout (``words``: ``[N, W]`` uint32, the int4 row, two
    words a codeword; ``checks``: ``[N, W / 8]``, the row's check bytes, four a word) -> a word
    per check word, byte ``i`` the syndrome of codeword ``4 j + i`` (zero where all four are
    clean). Bit-sliced over four codewords: their data bytes transposed into eight byte planes
    (plane ``B``: byte ``B`` of each), so that the rotations of ``_block_check`` act on the
    four at once, each byte rotated in place; the result lines up with the check word with no
    fold. For sm_90a the check takes 160 SASS instructions a block of the main loop where
    codeword by codeword it took 249, which changed no time on the H200; stubbed out, the
    transposes cost ~18 us of the main launch at batch 8 / 32k and the check words' loads 22
    (tools/secded_check_cost.py, benchmarks/RESULTS.md)."""
    acc = _plane_checks(_row_byte_planes(words, PTX), OFFSETS, PTX)
    return acc ^ tl.reshape(checks.to(tl.uint32, bitcast=True), acc.shape)
