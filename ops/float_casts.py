"""Float casts the Triton kernels share, spelled out where Triton's own differ from PyTorch's."""

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
