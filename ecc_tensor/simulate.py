"""Reference simulation of one write and one read of a tensor through a cache mode.

This is the plain-PyTorch model of what the cache does to each stored value: quantize,
encode, inject faults into the stored bits, decode, dequantize, interpolate erasures, and
count. Faster paths (the ``ecc`` ops, ``ECCInt4Tensor``, the cache) are tested against it.
"""

from __future__ import annotations

import torch

from . import counters as C
from .faults import FaultModel
from .interp import interpolate_erasures
from .modes import CacheMode, get_mode
from .quant import dequantize_int4, quantize_int4
from .storage import StorageLayout



def roundtrip(
    x: torch.Tensor,
    mode: CacheMode | str,
    fault: FaultModel | None = None,
    *,
    group_size: int | None = None,
    symmetric: bool = True,
    seq_dim: int = -2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Store ``x`` (``[..., seq, head_dim]``) in ``mode`` and read it back once.

    Faults strike the stored bytes (:mod:`ecc_tensor.storage`) once at write and/or once at
    read per ``fault.site``, each a new event of the model's counter. Returns
    ``(x read back in x.dtype, counters [5])``.
    """
    mode = get_mode(mode) if isinstance(mode, str) else mode
    counters = C.new_counters(x.device)

    def write_then_read(words: torch.Tensor, bits: int) -> torch.Tensor:
        for strikes in (fault is not None and fault.at_write, fault is not None and fault.at_read):
            if strikes:
                words, n = fault.apply(words, bits)
                counters[C.INJECTED] += n
        return words

    if not mode.quantized:
        words = x.to(torch.float16).view(torch.int16)
        read = write_then_read(words, int(mode.stored_bits_per_value))
        counters[C.READ] += words.numel()
        counters[C.SILENT] += (read != words).sum()
        return read.view(torch.float16).to(x.dtype), counters

    layout = StorageLayout(mode.codec, x.shape[-1])
    q, scale, zero = quantize_int4(x, group_size, symmetric)
    values, status = layout.load(write_then_read(layout.store(q), layout.exposed_bits_per_byte))
    counters += C.decode_counts(status)
    erased = layout.erased_values(status)
    counters[C.SILENT] += ((values != q) & ~erased).sum()

    out = dequantize_int4(values, scale, zero)
    if mode.interpolate:
        out = interpolate_erasures(out, erased, dim=seq_dim)
    return out.to(x.dtype), counters
