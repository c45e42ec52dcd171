"""The cache modes, shared by the cache, the CLI and lm-eval.

| mode | storage per value | protection |
|---|---|---|
| ``fp16`` | 16-bit words | the paper's oracle: no quantization, never faulted |
| ``fp16-unprotected`` | 16-bit words | none, faulted like every other mode |
| ``int4`` | 4 bits + float32 scales | none, its scales neither |
| ``int4-hamming`` | Hamming(7,4) | corrects one flip per value |
| ``int4-hamming84`` | Hamming(8,4) | corrects one, detects two; detected values kept as read |
| ``int4-hamming84-interp`` | Hamming(8,4) | as above, detected values interpolated |
| ``int12-golay`` | Golay(24,12) over 3 values | corrects three flips per codeword |
| ``int4-secded72`` | SECDED(72,64) over 16 values (4.5 bits) | corrects one flip per codeword, detects two |
| ``int4-secded72-interp`` | SECDED(72,64) | as above, a detected codeword's 16 values interpolated |

In every mode with a code the scales and zero points are stored in the same code
(:mod:`ecc_tensor.metadata`). The 16-bit modes store the model's dtype when it is 16 bits
wide (bfloat16 stays bfloat16) and float16 otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .faults import FLOAT16_MSB
from .fp8 import E4M3_MSB, from_e4m3, to_e4m3
from .metadata import MetadataLayout
from .names import MODE_NAMES, PAPER_MODES  # noqa: F401  (re-exported)
from .storage import StorageLayout

_WORD_BITS = 16
REFERENCE_HEAD_DIM = 128  # the head_dim the bit figures below are given for


@dataclass(frozen=True)
class CacheMode:
    name: str
    codec: str | None  # None: 16-bit words, not quantized
    interpolate: bool = False
    faulted: bool = True  # False for the oracle: no fault model ever reaches it
    description: str = ""
    fp8: bool = False  # unquantized modes only: E4M3 words with a per-head scale (ecc_tensor.fp8), not 16-bit

    @property
    def quantized(self) -> bool:
        return self.codec is not None

    def storage_bits(self, head_dim: int = REFERENCE_HEAD_DIM, group_size: int | None = None,
                     symmetric: bool = True) -> tuple[float, float]:
        """(value bits, metadata bits) stored per value for rows of ``head_dim``, padding and
        unused bits included (a Hamming(7,4) codeword takes a byte; Golay's rows are whole
        8-byte units)."""
        if not self.quantized:
            return float(self.word_bits), 0.0
        groups = 1 if group_size is None else head_dim // group_size
        values = StorageLayout(self.codec, head_dim).row_bytes * 8 / head_dim
        meta = MetadataLayout(self.codec, groups, symmetric).row_bytes * 8 / head_dim
        return values, meta

    @property
    def stored_bits_per_value(self) -> float:
        """Bits stored per value at head_dim 128, padding included (Golay: 8.5); scales apart."""
        return self.storage_bits()[0]

    @property
    def metadata_bits_per_value(self) -> float:
        """Bits of (protected) scales per value at head_dim 128, one symmetric scale per row."""
        return self.storage_bits()[1]

    @property
    def word_bits(self) -> int:
        """Bits of an unquantized mode's stored word."""
        return 8 if self.fp8 else _WORD_BITS

    def word_dtype(self, model_dtype: torch.dtype) -> torch.dtype:
        """An unquantized mode's stored dtype: E4M3 for ``fp8``, else the model's if 16 bits
        wide, else float16."""
        if self.fp8:
            return torch.float8_e4m3fn
        return model_dtype if model_dtype.itemsize == 2 else torch.float16

    @property
    def word_int_dtype(self) -> torch.dtype:
        """The integer view of the stored words that faults strike."""
        return torch.int8 if self.fp8 else torch.int16

    @property
    def word_msb(self) -> int:
        """The bit ``msb`` faults strike in an unquantized mode's word: the top exponent bit."""
        return E4M3_MSB if self.fp8 else FLOAT16_MSB

    def to_words(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` as an unquantized mode's stored words (``fp8``: over ``scale``, :mod:`ecc_tensor.fp8`)."""
        return to_e4m3(x, scale) if self.fp8 else x.to(self.word_dtype(x.dtype))

    def from_words(self, words: torch.Tensor, scale: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
        """Stored words (of :meth:`word_dtype`) back to ``dtype``."""
        return from_e4m3(words, scale, dtype) if self.fp8 else words.to(dtype)


MODES = {
    m.name: m
    for m in (
        CacheMode("fp16", None, faulted=False, description="16-bit words, never faulted (the paper's oracle)"),
        CacheMode("fp16-unprotected", None, description="16-bit words, faulted, no protection"),
        CacheMode("int4", "int4", description="4 bits, no protection (scales neither)"),
        CacheMode("int4-hamming", "hamming74", description="Hamming(7,4), SEC"),
        CacheMode("int4-hamming84", "hamming84", description="Hamming(8,4) SECDED, detected values kept as read"),
        CacheMode("int4-hamming84-interp", "hamming84", True, description="Hamming(8,4) SECDED + interpolation"),
        CacheMode("int12-golay", "golay24", description="Golay(24,12) over 3 values, corrects 3"),
        CacheMode("fp8", None, fp8=True, description="FP8 E4M3 words with a per-head scale, faulted, no protection (vLLM's fp8 cache)"),
        CacheMode("int4-secded72", "secded72", description="SECDED(72,64) over 16 values, 12.5% overhead, detected values kept as read"),
        CacheMode("int4-secded72-interp", "secded72", True, description="SECDED(72,64) over 16 values + interpolation"),
    )
}
if tuple(MODES) != MODE_NAMES:  # names.py lists them for the command line, which must not import torch
    raise ImportError(f"ecc_tensor.names.MODE_NAMES {MODE_NAMES} disagrees with the modes defined here {tuple(MODES)}")


def get_mode(name: str) -> CacheMode:
    if name not in MODES:
        raise ValueError(f"unknown cache mode {name!r}; choose one of {', '.join(MODES)}")
    return MODES[name]


def register_mode(mode: CacheMode) -> CacheMode:
    """Make a cache mode (e.g. over a codec added with ``ecc_tensor.codecs.register_codec``)
    available by name to the cache, the sweep and lm-eval; the built-in modes are in ``MODES``
    above and in ``ecc_tensor.names`` (the command line's choices)."""
    if mode.name in MODES:
        raise ValueError(f"a cache mode named {mode.name!r} exists already")
    if mode.codec is not None:
        from .codecs import get_codec

        get_codec(mode.codec)  # the codec must be registered
    MODES[mode.name] = mode
    return mode
