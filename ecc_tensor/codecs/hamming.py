"""Hamming(7,4) SEC and extended Hamming(8,4) SECDED over one INT4 value.

The matrices are the seed paper's systematic ones: eq. 17 for H(7,4) and eq. 22 for
H(8,4), which appends the overall parity of the seven bits as codeword bit 7. With data
bit j = bit j of the value (v = sum d_j 2^j), ``encode(2) == 82`` (c = [0,1,0,0,1,0,1]).
"""

from __future__ import annotations

import torch

from .linear import LinearBlockCode

# P of G = [I4 | P] (eq. 17): p0 = d0+d1+d3, p1 = d0+d2+d3, p2 = d1+d2+d3.
HAMMING74_PARITY = (
    (1, 1, 0),
    (1, 0, 1),
    (0, 1, 1),
    (1, 1, 1),
)


def with_overall_parity(parity):
    """Extend ``P`` by the column that makes every codeword's weight even (eq. 22).

    Row j of ``G = [I | P]`` has weight ``1 + |P_j|``; the overall-parity bit of data bit j
    is that weight mod 2.
    """
    return tuple(tuple(row) + ((1 + sum(row)) % 2,) for row in parity)


def hamming74() -> LinearBlockCode:
    """Hamming(7,4): corrects every single-bit error; a double error is miscorrected."""
    return LinearBlockCode("hamming74", HAMMING74_PARITY, correctable_weight=1, word_dtype=torch.uint8)


def hamming84() -> LinearBlockCode:
    """Extended Hamming(8,4) SECDED: corrects single errors, flags double errors as detected.

    The paper decodes with (syndrome s of bits 0..6, overall parity q): (0,0) clean, (!=0,1)
    correct, (!=0,0) detected, (0,1) only the parity bit flipped ("Ignore (Data valid)"),
    counted as ``parity_only``. The syndrome of ``H = [P^T | I4]`` is an invertible linear
    image of (s, q), so its table of weight-<=1 coset leaders gives that same decoder (tested
    against the paper's table).
    """
    return LinearBlockCode(
        "hamming84", with_overall_parity(HAMMING74_PARITY), correctable_weight=1, word_dtype=torch.uint8,
        overall_parity_bit=7,
    )
