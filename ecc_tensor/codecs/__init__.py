"""Reference codecs (pure PyTorch, any device): ``get_codec("hamming74" | "hamming84" | "golay24" | "secded72")``.

``"int4"`` is the unprotected baseline with the same interface (n = k = 4, never corrects).
"""

from __future__ import annotations

from .golay import GOLAY_B, golay24
from .hamming import HAMMING74_PARITY, hamming74, hamming84, with_overall_parity
from .linear import (
    STATUS_CLEAN,
    STATUS_CORRECTED,
    STATUS_DETECTED,
    STATUS_PARITY_ONLY,
    CodecTables,
    LinearBlockCode,
    bits_to_int,
    gf2_matmul,
    int_to_bits,
)
from .plain import int4
from .secded72 import SECDED72, secded72

Codec = LinearBlockCode

_FACTORIES = {"hamming74": hamming74, "hamming84": hamming84, "golay24": golay24, "int4": int4, "secded72": lambda: secded72}
CODEC_NAMES = tuple(_FACTORIES)
# Built at import (tens of milliseconds), so that a lookup is a plain dict read that
# torch.compile folds to a constant instead of tracing into table construction.
_CODECS = {name: factory() for name, factory in _FACTORIES.items()}


def get_codec(name: str) -> LinearBlockCode | SECDED72:
    """The codec registered under ``name`` (one shared instance per name)."""
    if not isinstance(name, str) or name not in _CODECS:
        raise ValueError(f"unknown codec {name!r}; choose one of {', '.join(_CODECS)}")
    return _CODECS[name]


def register_codec(codec: LinearBlockCode) -> LinearBlockCode:
    """Make ``codec`` available by its name to every layer (storage, ops, kernels, tensor,
    cache). A built-in codec is registered in ``_FACTORIES`` above; this adds one at run time
    (before anything compiles with it: the kernels read its tables once, eagerly)."""
    if not isinstance(codec, LinearBlockCode):
        raise ValueError(f"expected a LinearBlockCode, got {type(codec).__name__}")
    if codec.name in _CODECS:
        raise ValueError(f"a codec named {codec.name!r} is registered already")
    _CODECS[codec.name] = codec
    return codec


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
    "STATUS_PARITY_ONLY",
    "SECDED72",
    "bits_to_int",
    "get_codec",
    "gf2_matmul",
    "int_to_bits",
    "register_codec",
    "with_overall_parity",
]
