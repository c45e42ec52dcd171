"""Float casts and products the Triton kernels share, spelled out where Triton's own differ from
PyTorch's."""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _to_bf16_rne(x):
    """float32 -> bfloat16 rounding to nearest even, as PyTorch's cast (and the GPU's cvt.rn)
    does; spelled out in bits because Triton's interpreter truncates instead. A NaN (a
    corrupted scale can make one) becomes PyTorch's 0x7FC0: rounded as bits, some NaNs would
    carry into the sign and read as -0."""
    bits = x.to(tl.uint32, bitcast=True)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return tl.where(x != x, 0x7FC0, rounded).to(tl.uint16).to(tl.bfloat16, bitcast=True)


@triton.jit
def _cast_for(x, ptr):
    """float32 ``x`` in the element type of ``ptr``, as PyTorch's ``.to`` casts it (bfloat16
    through ``_to_bf16_rne``)."""
    if ptr.dtype.element_ty == tl.bfloat16:
        return _to_bf16_rne(x)
    return x.to(ptr.dtype.element_ty)


@triton.jit
def _mul_rn(a, b, PTX: tl.constexpr):
    """float32 ``a * b`` rounded on its own, as PyTorch rounds it. Compiled for a GPU, a product
    that feeds an addition is fused into one FMA, rounded once: the last bit differs, and where
    the product overflows the sum can be -inf where PyTorch's is NaN. PTX's ``mul.rn`` is never
    fused (``PTX``: CUDA); the interpreter computes products one by one anyway."""
    if PTX:
        return tl.inline_asm_elementwise("mul.rn.f32 $0, $1, $2;", "=r,r,r", [a, b], dtype=tl.float32, is_pure=True, pack=1)
    return a * b
