"""Syndromes of whole words for the clean-blocks paths: Hamming's one-byte codewords four a
word, Golay's lane layout, SECDED(72,64)'s blocks. Each is zero exactly where every
codeword it covers is clean."""

from __future__ import annotations

import triton
import triton.language as tl

from ecc_tensor.codecs.golay import GOLAY_B

from ..codec_kernels import (
    _block_parity_word,
)


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
