"""A block's codeword statuses counted in one reduction: each status a count in a ten-bit field
of one word (``_status_fields``), the fields summed together and unpacked (``_sum_counts``),
where the corrected, parity-only and detected counts took a reduction each."""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _status_fields(status):
    """Each codeword's status as a count in a packed word, ten bits a count: corrected 1,
    detected ``1 << 10``, parity-only ``1 << 20``, clean 0. Summed, the three counts take one
    reduction where they took three (a third of the Hamming codes' deferred loop, sm_90a SASS):
    ``_sum_counts``."""
    return tl.where(status == 0, 0, 1 << (10 * (status - 1)))


@triton.jit
def _unpack_counts(packed):
    """``_status_fields`` summed -> (corrected, parity-only, detected)."""
    return packed & 1023, packed >> 20, (packed >> 10) & 1023


@triton.jit
def _sum_counts(packed, AT_MOST: tl.constexpr):
    """``_status_fields`` (summed so far) reduced along axis 0 -> (corrected, parity-only,
    detected). ``AT_MOST``: the most codewords the reduction sums into one field; from 1,024
    on the counts are unpacked first and reduced one by one."""
    if AT_MOST < 1024:
        corrected, parity_only, detected = _unpack_counts(tl.sum(packed, axis=0))
    else:
        corrected, parity_only, detected = _unpack_counts(packed)
        corrected = tl.sum(corrected, axis=0)
        parity_only = tl.sum(parity_only, axis=0)
        detected = tl.sum(detected, axis=0)
    return corrected, parity_only, detected


@triton.jit
def _status_word_fields(status):
    """``_status_fields`` of a word of four byte statuses (``byte_words._word_decode``), summed:
    the bytes with bit 0 set (corrected and parity-only, n0), with bit 1 set (detected and
    parity-only, n1) and with both (parity-only, p) counted by a multiply each (a byte sum in
    the top byte), then n0 - p corrected, n1 - p detected. About 12 word operations for four
    codewords, where a tile of statuses took about 4 a codeword and its unpacking 2 more."""
    b0 = status & 0x01010101
    b1 = (status >> 1) & 0x01010101
    n0 = (b0 * 0x01010101) >> 24
    n1 = (b1 * 0x01010101) >> 24
    p = ((b0 & b1) * 0x01010101) >> 24
    return (n0 + (n1 << 10) + p * ((1 << 20) - (1 << 10) - 1)).to(tl.int32, bitcast=True)
