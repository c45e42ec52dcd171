"""Reference codecs (pure PyTorch, any device): ``get_codec("hamming74" | "hamming84" | "golay24")``.

``"int4"`` is the unprotected baseline with the same interface (n = k = 4, never corrects).
"""

from __future__ import annotations

import functools

from .golay import GOLAY_B, golay24
from .hamming import HAMMING74_PARITY, hamming74, hamming84, with_overall_parity
from .linear import (
    STATUS_CLEAN,
    STATUS_CORRECTED,
    STATUS_DETECTED,
    CodecTables,
    LinearBlockCode,
    bits_to_int,
    gf2_matmul,
    int_to_bits,
)
from .plain import int4

Codec = LinearBlockCode

_FACTORIES = {"hamming74": hamming74, "hamming84": hamming84, "golay24": golay24, "int4": int4}
CODEC_NAMES = tuple(_FACTORIES)


@functools.cache
def get_codec(name: str) -> LinearBlockCode:
    """The codec registered under ``name``; built once, then shared."""
    if not isinstance(name, str) or name not in _FACTORIES:
        raise ValueError(f"unknown codec {name!r}; choose one of {', '.join(CODEC_NAMES)}")
    return _FACTORIES[name]()


__all__ = [
    "CODEC_NAMES",
    "Codec",
    "CodecTables",
    "GOLAY_B",
    "HAMMING74_PARITY",
    "LinearBlockCode",
    "STATUS_CLEAN",
    "STATUS_CORRECTED",
    "STATUS_DETECTED",
    "bits_to_int",
    "get_codec",
    "gf2_matmul",
    "int_to_bits",
    "with_overall_parity",
]
