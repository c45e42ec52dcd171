"""Float values to INT4 codes in few instructions, bit for bit as the reference
(``ecc_tensor.quant``): ``clamp(round(x / s), -8, 7) + 8``, or ``clamp(round(x / s + z), 0, 15)``
with round half to even and IEEE division.

Written out as the reference reads, a value cost the store kernel about 25 of its 45 SASS
instructions on sm_90: the division (``div.rn.f32``: a reciprocal, five FMAs, a range check and
a branch, per value) and rounding by floors (about ten). Here:

* The quotient by Markstein's refinement, the reciprocal made once per scale group: with
  ``y = RN(1 / s)``, ``q0 = RN(x y)`` is within an ulp of ``x / s``, ``r = x - s q0`` is exact
  (one FMA), and ``RN(q0 + r y)`` is the correctly rounded quotient (P. Markstein, IBM J. Res.
  Dev. 34(1), 1990; the fast path of CUDA's own ``div.rn``), three instructions. It needs no
  under- or overflow: a program takes it only where every scale lies in ``[2^-60, 2^126)``
  (``fma_quotient_safe``; below, ``1 / s`` overflows or ``s q0`` loses bits; from 2^126 the
  reciprocal is subnormal), and divides otherwise. Its quotients are then exact for values of
  at least 2^-100 whose quotient is normal and finite; a smaller value's quotient is below
  2^-40 (below 2^-126 for a subnormal one), so its code is the same (rounded to 0, or next to a
  zero point either of at least 2^-15, whose half ulp it cannot reach, or so small that the
  sum rounds to 0). A finite value's quotient never overflows: it is at most 2^28 (|x| <= 7 s
  for symmetric groups; ``max - min`` is at least an ulp of the larger end, so |x| / s <= 15 *
  2^24), and an infinite value makes its group's scale infinite. Checked against IEEE division
  in ``tests/test_int4_codes.py``: float32 bit patterns and ties on CPU, and on the GPU every
  pair of float16 and of bfloat16 values.
* Rounding by adding ``1.5 * 2^23``: the sum's float32 ulp is 1, so the addition rounds half to
  even, and the integer lands in the word's low bits. Clamping first changes nothing (the
  bounds are integers) and keeps the sum in one binade; a NaN clamps to the lower bound, as the
  floor-based rounding with ``tl.minimum``/``tl.maximum`` did.
"""

from __future__ import annotations

import triton
import triton.language as tl

# 1.5 * 2^23: float32 numbers in [2^23, 2^24) are the integers, so adding this rounds to one.
_ROUNDER = tl.constexpr(12582912.0)
_TINY = tl.constexpr(2.0**-60)
_HUGE = tl.constexpr(2.0**126)  # from it, 1 / s is subnormal


@triton.jit
def fma_quotient_safe(scale, mask):
    """1 (int32 scalar) where every ``scale`` under ``mask`` lets ``_fma_quotient`` divide
    exactly (a NaN or infinite scale does not), else 0."""
    ok = (scale >= _TINY) & (scale < _HUGE)
    return tl.min(tl.where(mask, ok, True).to(tl.int32))


@triton.jit
def _fma_quotient(x, scale, recip):
    """``RN(x / scale)`` given ``recip = RN(1 / scale)`` (``fma_quotient_safe`` scales only)."""
    q0 = x * recip
    return tl.fma(tl.fma(-scale, q0, x), recip, q0)


@triton.jit
def quotients(x, scale, recip, safe):
    """``RN(x / scale)``: by ``_fma_quotient`` where ``safe`` is non-zero (``fma_quotient_safe``
    of the program's scales, where the FMA rounds once: the device's, the interpreter's since
    Triton 3.9; callers pass 0 otherwise), else divided."""
    if safe != 0:
        q = _fma_quotient(x, scale, recip)
    else:
        q = tl.math.div_rn(x, scale)
    return q


@triton.jit
def int4_codes(quotient, zero, SYMMETRIC: tl.constexpr):
    """The INT4 codes (int32, 0-15) of ``quotient = RN(x / s)``: ``clamp(round(quotient), -8, 7)
    + 8``, or with the zero point ``clamp(round(quotient + zero), 0, 15)``."""
    if SYMMETRIC:
        t = tl.minimum(tl.maximum(quotient, -8.0), 7.0) + (_ROUNDER + 8.0)
    else:
        t = tl.minimum(tl.maximum(quotient + zero, 0.0), 15.0) + _ROUNDER
    return t.to(tl.int32, bitcast=True) & 15
