"""The cache modes (DESIGN.md section 6), shared by the cache, the CLI and lm-eval."""

from __future__ import annotations

from dataclasses import dataclass

from .codecs import get_codec

_FP16_BITS = 16


@dataclass(frozen=True)
class CacheMode:
    name: str
    codec: str | None  # None: the model's own dtype, unprotected (the oracle)
    interpolate: bool = False
    description: str = ""

    @property
    def quantized(self) -> bool:
        return self.codec is not None

    @property
    def stored_bits_per_value(self) -> float:
        """Stored bits per cached value (excluding the per-group scales)."""
        if self.codec is None:
            return _FP16_BITS
        codec = get_codec(self.codec)
        return codec.n / codec.values_per_codeword


MODES = {
    m.name: m
    for m in (
        CacheMode("fp16", None, description="model dtype, no protection (oracle)"),
        CacheMode("int4", "int4", description="4 bits, no protection"),
        CacheMode("int4-hamming", "hamming74", description="Hamming(7,4), SEC"),
        CacheMode("int4-hamming84", "hamming84", description="Hamming(8,4) SECDED, detected values kept as read"),
        CacheMode("int4-hamming84-interp", "hamming84", True, description="Hamming(8,4) SECDED + interpolation"),
        CacheMode("int12-golay", "golay24", description="Golay(24,12) over 3 values, corrects 3"),
    )
}
MODE_NAMES = tuple(MODES)


def get_mode(name: str) -> CacheMode:
    if name not in MODES:
        raise ValueError(f"unknown cache mode {name!r}; choose one of {', '.join(MODE_NAMES)}")
    return MODES[name]
