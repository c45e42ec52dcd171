"""Philox4x32-10 counter-based random numbers in plain PyTorch.

The same function as Random123's ``philox4x32_10`` and Triton's ``tl.philox`` (key = the
seed's low and high 32 bits), so a Triton kernel can draw exactly the random bits that this
reference draws for the same (seed, counter): fault injection on the GPU reproduces the CPU
reference flip for flip. Values are uint32 carried in int64 tensors, since PyTorch's
unsigned 32-bit support is limited.
"""

from __future__ import annotations

import torch

MASK32 = 0xFFFFFFFF
_ROUND_A = 0xD2511F53
_ROUND_B = 0xCD9E8D57
_KEY_A = 0x9E3779B9
_KEY_B = 0xBB67AE85
ROUNDS = 10


def _mulhilo(a: int, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(high, low) 32-bit halves of the 64-bit product of uint32 ``a`` and ``b``.

    Split ``a`` into 16-bit halves so that no partial product overflows int64.
    """
    lo_part = b * (a & 0xFFFF)  # < 2^48
    hi_part = b * (a >> 16)  # < 2^48; the product is lo_part + hi_part << 16
    low_sum = lo_part + ((hi_part & 0xFFFF) << 16)  # < 2^49
    return (low_sum >> 32) + (hi_part >> 16), low_sum & MASK32


def philox4x32(
    c0: torch.Tensor,
    c1: torch.Tensor | int,
    c2: torch.Tensor | int,
    c3: torch.Tensor | int,
    seed: int,
    rounds: int = ROUNDS,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Four uint32 outputs (as int64) for counters ``(c0, c1, c2, c3)`` under ``seed`` (uint64)."""
    c0 = c0.to(torch.int64) & MASK32
    c1, c2, c3 = (torch.as_tensor(c, dtype=torch.int64, device=c0.device).expand_as(c0) & MASK32 for c in (c1, c2, c3))
    k0, k1 = seed & MASK32, (seed >> 32) & MASK32
    for _ in range(rounds):
        hi_b, lo_b = _mulhilo(_ROUND_B, c2)
        hi_a, lo_a = _mulhilo(_ROUND_A, c0)
        c0, c1, c2, c3 = hi_b ^ c1 ^ k0, lo_b, hi_a ^ c3 ^ k1, lo_a
        k0 = (k0 + _KEY_A) & MASK32
        k1 = (k1 + _KEY_B) & MASK32
    return c0, c1, c2, c3


def probability_threshold(p: float) -> int:
    """The integer ``t`` such that a uniform uint32 ``u`` satisfies ``u < t`` with probability ``p``
    (to within 2^-32); comparing integers keeps CPU and GPU draws identical."""
    return min(1 << 32, max(0, round(p * (1 << 32))))
