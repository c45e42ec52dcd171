"""Golay's lane layout (:mod:`ecc_tensor.lanes`) as 32-bit words: the parity of eight codewords,
one per nibble lane of three data words, in shifts, masks and XORs of whole words. The codec
kernels make a row's parity region and check rows with it, as the attention kernel does."""

from __future__ import annotations

import triton
import triton.language as tl

from ecc_tensor.codecs.golay import GOLAY_B

# Golay's B, row i (data bit i) as a bit mask of parity bits. A constexpr of ints, because
# torch.compile's Inductor copies a kernel's source with its int and constexpr globals only.
_GOLAY_B_ROWS = tl.constexpr(tuple(sum(int(bit) << j for j, bit in enumerate(row)) for row in GOLAY_B))


@triton.constexpr_function
def _lane_mask(u, shift, t):
    """The bits of parity word ``t`` that data word ``u`` shifted left by ``shift`` (right if
    negative) feeds, in every nibble lane. Bit ``b'`` of a parity nibble holds parity bit ``4t +
    3 - b'`` (reversed); data bit ``b`` of value ``u`` is bit ``4u + b`` of the data word d."""
    u, shift, t = int(u), int(shift), int(t)
    nibble = 0
    for dst in range(4):
        src = dst - shift
        if 0 <= src < 4 and (_GOLAY_B_ROWS.value[4 * u + src] >> (4 * t + 3 - dst)) & 1:
            nibble |= 1 << dst
    return nibble * 0x11111111


@triton.jit
def _lane_parity_words(x0, x1, x2, p0, p1, p2):
    """Three data words of the lane layout (uint32) -> the three parity words of their eight
    codewords, XORed into ``p0``, ``p1``, ``p2``: the stored parity words give the syndromes,
    zeros the parity to store. The parity is linear: each data word, shifted by -3..3 bits,
    feeds each parity word through a mask (``_lane_mask``), 58 shifts and masked XORs in all
    (each masked XOR one LOP3). Lanes do not mix: a mask takes only bits that stay in their
    nibble."""
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
    return s0, s1, s2


@triton.jit
def _lane_syndromes(x0, x1, x2, p0, p1, p2):
    """Three data words and three parity words of Golay's lane layout (uint32) -> a word that is
    zero where all eight codewords, one per nibble lane, are clean, and whose lane ``l`` is
    non-zero where codeword ``l`` is not (``_lane_parity_words``)."""
    s0, s1, s2 = _lane_parity_words(x0, x1, x2, p0, p1, p2)
    return s0 | s1 | s2


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
def _interleaved(c0, c1, c2, c3):
    """The inverse of ``_quarters``: four ``[N, Q]`` -> ``[N, 4Q]``, column ``4q + i`` from ``c_i``."""
    N: tl.constexpr = c0.shape[0]
    Q: tl.constexpr = c0.shape[1]
    return tl.reshape(tl.join(tl.join(c0, c2), tl.join(c1, c3)), [N, 4 * Q])


@triton.jit
def _lane_row_parity(data):
    """Rows of the lane layout at head_dim 128 (``data``: ``[N, 16]`` uint32, the row's INT4
    packing) -> (parity words 0-15 ``[N, 16]``, parity word 16 ``[N]``), as
    ``ecc_tensor.lanes.store`` writes them: chunk group ``a`` (data words ``4a .. 4a + 2``) in
    parity words ``4a .. 4a + 2``; the tail group (data words 3, 7, 11) in words 3, 7, 11; the
    three left-over codewords (data word 15's values ``c, c + 3, c + 6``) as a stream of nine
    nibbles, nibble ``3t + c`` parity nibble ``t`` of codeword ``c``, in words 15 and 16."""
    d0, d1, d2, tails = _quarters(data)
    zeros = tl.zeros_like(d0)
    p0, p1, p2 = _lane_parity_words(d0, d1, d2, zeros, zeros, zeros)
    t0, t1, t2, t3 = _quarters(tails)
    zero = tl.zeros_like(t0)
    q0, q1, q2 = _lane_parity_words(t0, t1, t2, zero, zero, zero)
    stream, last = _three_lane_parity(t3)
    extra = tl.reshape(tl.join(tl.join(q0, q2), tl.join(q1, stream)), [t0.shape[0], 4])  # parity words 3, 7, 11, 15
    return _interleaved(p0, p1, p2, extra), last


@triton.jit
def _three_lane_parity(word):
    """The parity of ``_three_lane_syndromes``' three codewords of ``word`` (uint32): the stream of
    their nine parity nibbles as two words (nibble ``3t + c`` parity nibble ``t`` of codeword
    ``c``; the second word holds the ninth nibble only)."""
    zero = tl.zeros_like(word)
    left0, left1, left2 = _lane_parity_words(word, word >> 12, word >> 24, zero, zero, zero)  # lanes 0-2 are the codewords
    return (left0 & 0xFFF) | ((left1 & 0xFFF) << 12) | (left2 << 24), (left2 >> 8) & 15


@triton.jit
def _scale_lane_row(scale):
    """Float32 scales ``[N]`` -> each one's metadata row in Golay's lane layout as four words
    ``[N, 4]`` (uint32): the float32 word, its three codewords' parity words
    (``_three_lane_parity``), a zero word of padding."""
    # Broadcast before the parity: the words' tile has a row per thread, where the scales as
    # reduced had four a thread (which made the parity four times as many instructions).
    bits = tl.broadcast_to(scale.to(tl.uint32, bitcast=True)[:, None], [scale.shape[0], 4])
    p0, p1 = _three_lane_parity(bits)
    w = tl.arange(0, 4)[None, :]
    return tl.where(w == 0, bits, tl.where(w == 1, p0, tl.where(w == 2, p1, 0)))


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
    return chunks | tail | _three_lane_syndromes(t3, q3, last)


@triton.jit
def _three_lane_syndromes(word, p0, p1):
    """Eight values in one data word as three codewords, codeword ``c`` the values at nibbles ``c,
    c + 3, c + 6`` (row 128's left-over codewords; a scale's row of 8 nibbles), their parity
    nibbles a stream from ``p0`` on, nibble ``3t + c`` parity nibble ``t`` of codeword ``c``
    (into ``p1``) -> a word whose lane ``c`` (0-2) is codeword ``c``'s syndrome, the others 0."""
    return _lane_syndromes(word, word >> 12, word >> 24, p0, p0 >> 12, (p0 >> 24) | (p1 << 8)) & 0xFFF
