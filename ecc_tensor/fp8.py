"""FP8 (E4M3) words, the KV cache format vLLM and TensorRT-LLM users pick today.

A row is stored as float8_e4m3fn words divided by a per-head scale: the head's absolute
maximum over the first write (the prompt) over 448, E4M3's largest finite value, then fixed
for the sequence, as vLLM's dynamic ``calculate_kv_scales`` fixes its per-tensor scale on the
first forward. Later tokens beyond the first write's range saturate at +-448 (a plain cast
would make them NaN). The scales are a few words per layer, held apart from the cache rows
(in vLLM, kernel arguments), so faults strike the 8-bit words only.
"""

from __future__ import annotations

import torch

E4M3 = torch.float8_e4m3fn
E4M3_MAX = 448.0
E4M3_MSB = 1 << 6  # msb's bit of an E4M3 word: the top exponent bit (bit 7 is the sign)


def head_scale(x: torch.Tensor) -> torch.Tensor:
    """Per-head scale of ``x`` ``[..., seq, head_dim]``: its absolute maximum over the last two
    dims over 448 (1 where the head is all zeros), float32 ``[..., 1, 1]``."""
    amax = x.detach().abs().float().amax(dim=(-2, -1), keepdim=True)
    return torch.where(amax > 0, amax / E4M3_MAX, torch.ones_like(amax))


def to_e4m3(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return (x.float() / scale).clamp(-E4M3_MAX, E4M3_MAX).to(E4M3)


def from_e4m3(words: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return (words.float() * scale).to(dtype)
