"""Reference simulation of one write and one read of a tensor through a cache mode.

This is the plain-PyTorch model of what the cache does to each stored value: quantize,
encode the values and their scales, inject faults into the stored bits, decode, dequantize,
interpolate erasures, and count. Faster paths (the ``ecc`` ops, ``ECCInt4Tensor``, the cache)
are tested against it.
"""

from __future__ import annotations

import torch

from . import counters as C
from .faults import METADATA_ADDRESS, FaultModel
from .fp8 import head_scale
from .interp import interpolate_erasures
from .codecs import CodecTables
from .metadata import MetadataLayout, codec_tables, value_groups
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

    Faults strike the stored bytes (:mod:`ecc_tensor.storage`; with ``fault.targets == "all"``
    the stored scales too, :mod:`ecc_tensor.metadata`) once at write and/or once at read per
    ``fault.site``, each a new event of the model's counter. The ``fp16`` oracle is never
    faulted. Returns ``(x read back in x.dtype, counters)``.
    """
    mode = get_mode(mode) if isinstance(mode, str) else mode
    counters = C.new_counters(x.device)
    if fault is not None and not mode.faulted:
        fault = None
    # One event per site; the metadata bytes take the same event at their own addresses.
    steps = [] if fault is None else [fault.next_step() for strikes in (fault.at_write, fault.at_read) if strikes]

    def strike(words: torch.Tensor, bits: int, offset: int, msb: torch.Tensor | int, injected: int) -> torch.Tensor:
        for step in steps:
            words, n = fault.apply(words, bits, offset=offset, step=step, eligible=torch.as_tensor(msb))
            counters[injected] += n
        return words

    if not mode.quantized:
        scale = head_scale(x) if mode.fp8 else None
        words = mode.to_words(x, scale).view(mode.word_int_dtype)
        read = strike(words, mode.word_bits, 0, mode.word_msb, C.INJECTED)
        counters[C.READ] += words.numel()
        counters[C.SILENT] += (read != words).sum()
        return mode.from_words(read.view(mode.word_dtype(x.dtype)), scale, x.dtype), counters

    head_dim = x.shape[-1]
    layout = StorageLayout(mode.codec, head_dim)
    q, scale, zero = quantize_int4(x, group_size, symmetric)
    meta_layout = MetadataLayout(mode.codec, scale.shape[-1], symmetric)
    meta = meta_layout.store(scale, zero)
    values, status = layout.load(strike(layout.store(q), layout.exposed_bits_per_byte, 0, layout.value_msb_bits(x.device), C.INJECTED))
    meta_read = meta
    if fault is not None and fault.strikes_metadata:
        meta_read = strike(meta, meta_layout.exposed_bits_per_byte, METADATA_ADDRESS,
                           meta_layout.storage.value_msb_bits(x.device), C.META_INJECTED)
    # The -interp modes decode their scales at a smaller radius (metadata.codec_tables).
    meta_tables = CodecTables(*codec_tables(mode.codec, x.device, mode.interpolate)[2:])
    words, meta_status, meta_erased = meta_layout.load(meta_read, meta_tables)
    C.add_decode_counts(counters, status)
    C.add_decode_counts(counters, meta_status, metadata=True)
    counters[C.META_SILENT] += meta_layout.silent(meta_read, meta, meta_tables)

    erased = layout.erased_values(status) | value_groups(meta_layout.group_flags(meta_erased), head_dim)
    counters[C.SILENT] += ((values != q) & ~erased).sum()
    read_scale, read_zero = meta_layout.split(words)
    out = dequantize_int4(values, read_scale, read_zero)
    if mode.interpolate:
        out = interpolate_erasures(out, erased, dim=seq_dim)
    return out.to(x.dtype), counters
