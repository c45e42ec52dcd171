"""Which axis each of K and V is quantized along, and the full-precision recent window.

The paper quantizes every row (one token of one head) on its own: one scale per row or per
group of a row. Real INT4 KV caches do better on keys, which carry outlier channels: KIVI and
KVQuant quantize keys per channel over a block of tokens, values per token, and keep the most
recent tokens in full precision (transformers' ``QuantizedCache`` calls it ``residual_length``).

A :class:`QuantScheme` says, for a cache of ``n`` written tokens, which rows are stored as
codewords and which are still in the window:

* ``residual_length`` R: the last R tokens always stay in the model's dtype (16-bit words).
* per token (``"token"``): a token is quantized when it leaves the window, so rows
  ``[0, n - R)`` are codewords.
* per channel (``"channel"``): tokens are quantized a block of ``channel_block`` T at a time,
  once every token of the block has left the window (KIVI's scheme), so rows
  ``[0, floor((n - R) / T) T)`` are codewords, each block with one scale (and zero point) per
  channel, and a block being filled stays in full precision. The window then holds between R
  and R + T - 1 tokens (its buffer R + T rows). Values leave the window with the keys' block
  (each quantized per token), so that K and V share one boundary, as transformers'
  ``QuantizedCache`` quantizes both at once, and attention reads every token from one place.

Every read sees the cache as it is after the write: a prefill of a whole prompt is read with
the prompt's last R tokens (and a partial key block) in full precision and the rest quantized.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

AXES = ("token", "channel")
DEFAULT_CHANNEL_BLOCK = 128


@dataclass(frozen=True)
class QuantScheme:
    key_quant: str = "token"
    value_quant: str = "token"
    residual_length: int = 0
    channel_block: int = DEFAULT_CHANNEL_BLOCK

    def __post_init__(self) -> None:
        for name in ("key_quant", "value_quant"):
            if getattr(self, name) not in AXES:
                raise ValueError(f"{name} must be one of {AXES}, got {getattr(self, name)!r}")
        if self.value_quant != "token":
            raise ValueError("value_quant='channel' is not supported: values are quantized per token (as KIVI and KVQuant do)")
        for name in ("residual_length", "channel_block"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "residual_length" else 1):
                bound = "a non-negative" if name == "residual_length" else "a positive"
                raise ValueError(f"{name} must be {bound} int, got {value!r}")

    def axis(self, kv: int) -> str:
        """The quantization axis of keys (``kv`` 0) or values (1)."""
        return self.key_quant if kv == 0 else self.value_quant

    def is_plain(self, kv: int) -> bool:
        """Every written row of keys (``kv`` 0) or values (1) is a codeword (the paper's scheme):
        keys per token and no window. Values share the keys' window, so they are plain only
        where keys are."""
        return self.key_quant == "token" and self.residual_length == 0

    @property
    def plain(self) -> bool:
        return self.is_plain(0) and self.is_plain(1)

    def quantized_rows(self, kv: int, written):
        """How many leading rows of ``written`` (an int, or an int64 tensor) are codewords: the
        same for keys (``kv`` 0) and values (1)."""
        if isinstance(written, torch.Tensor):
            left = torch.clamp(written - self.residual_length, min=0)
        else:
            left = max(written - self.residual_length, 0)
        if self.key_quant == "channel":
            left = left // self.channel_block * self.channel_block
        return left

    def window_rows(self, kv: int) -> int:
        """Rows of the full-precision window buffer: the most tokens it ever holds."""
        return self.residual_length + (self.channel_block if self.key_quant == "channel" else 0)

    def blocks(self, max_rows: int) -> int:
        """Per-channel scale blocks a key store of ``max_rows`` rows needs."""
        return -(-max_rows // self.channel_block)
