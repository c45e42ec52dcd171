"""Extended binary Golay(24,12,8) over three INT4 values.

Data word d = v0 | v1 << 4 | v2 << 8 (twelve bits), codeword c = d . [I12 | B] with B the
seed paper's eq. 31 (symmetric, B . B^T = I). Every error pattern of weight <= 3 (the 2325
coset leaders) is corrected; the remaining 1771 syndromes are the cosets of weight-4
leaders and are reported as detected-uncorrectable, so every weight-4 pattern is flagged.
Codewords are int32 with the 24 low bits used; storage packing is the tensor's business.
"""

from __future__ import annotations

import torch

from .linear import LinearBlockCode

GOLAY_B = (
    (1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1),
    (1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1, 1),
    (0, 1, 1, 1, 0, 0, 0, 1, 0, 1, 1, 1),
    (1, 1, 1, 0, 0, 0, 1, 0, 1, 1, 0, 1),
    (1, 1, 0, 0, 0, 1, 0, 1, 1, 0, 1, 1),
    (1, 0, 0, 0, 1, 0, 1, 1, 0, 1, 1, 1),
    (0, 0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 1),
    (0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1),
    (0, 1, 0, 1, 1, 0, 1, 1, 1, 0, 0, 1),
    (1, 0, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1),
    (0, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 1),
    (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0),
)


def golay24() -> LinearBlockCode:
    return LinearBlockCode("golay24", GOLAY_B, correctable_weight=3, word_dtype=torch.int32, layout="lanes")
