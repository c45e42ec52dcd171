"""The unprotected INT4 baseline as a trivial (4, 4) code.

Sharing the codec interface lets the ``int4`` cache mode use every code path of the
protected modes: encode is the identity, decode always reports clean.
"""

from __future__ import annotations

import torch

from .linear import LinearBlockCode


def int4() -> LinearBlockCode:
    return LinearBlockCode("int4", ((),) * 4, correctable_weight=0, word_dtype=torch.uint8)
