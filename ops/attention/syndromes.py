"""Syndromes of whole words for the clean-blocks paths: SECDED(72,64)'s blocks (Hamming's
one-byte codewords: ``ops/byte_words.py``; Golay's lane layout: ``ops/lane_words.py``). Each is
zero exactly where every codeword it covers is clean."""

from __future__ import annotations

import triton
import triton.language as tl

from ..codec_kernels import (
    _block_parity_word,
)
from ..lane_words import _quarters


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
