"""Counters as tensors, so that they accumulate inside compiled graphs without syncs.

A counters tensor is int64 ``[12]`` indexed by :data:`COUNTER_NAMES`: for the value
codewords, codewords read, corrected, parity-only (the overall parity bit alone flipped: data
valid, the paper's "Ignore"), detected (uncorrectable), bits injected and silent corruptions
(a decoded value that differs from the value written in a codeword not flagged, which only a
simulation with a clean copy can know); then the same six for the metadata (the protected
scales and zero points: codewords read, corrected, parity-only, detected, bits injected, and
silent corruptions counted per scale or zero-point word).
"""

from __future__ import annotations

import torch

from .codecs import STATUS_CORRECTED, STATUS_DETECTED, STATUS_PARITY_ONLY

_KINDS = ("read", "corrected", "parity_only", "detected", "injected", "silent")
VALUE_COUNTERS = _KINDS
METADATA_COUNTERS = tuple(f"meta_{k}" for k in _KINDS)
COUNTER_NAMES = VALUE_COUNTERS + METADATA_COUNTERS
READ, CORRECTED, PARITY_ONLY, DETECTED, INJECTED, SILENT = range(len(_KINDS))
META = len(_KINDS)  # offset of the metadata counters
META_READ, META_CORRECTED, META_PARITY_ONLY, META_DETECTED, META_INJECTED, META_SILENT = (META + i for i in range(len(_KINDS)))


def new_counters(device=None) -> torch.Tensor:
    return torch.zeros(len(COUNTER_NAMES), dtype=torch.int64, device=device)


def decode_counts(status: torch.Tensor, read_mask: torch.Tensor | None = None) -> torch.Tensor:
    """``[read, corrected, parity_only, detected]`` for one batch of decode statuses; only the
    codewords where ``read_mask`` (broadcastable to ``status``) is True count."""
    if read_mask is None:
        read = torch.tensor(status.numel(), dtype=torch.int64, device=status.device)
    else:
        read_mask = read_mask.expand_as(status)
        read = read_mask.sum(dtype=torch.int64)
        status = torch.where(read_mask, status, 0)
    counts = [(status == s).sum(dtype=torch.int64) for s in (STATUS_CORRECTED, STATUS_PARITY_ONLY, STATUS_DETECTED)]
    return torch.stack([read, *counts])


def add_decode_counts(counters: torch.Tensor, status: torch.Tensor, read_mask: torch.Tensor | None = None,
                      metadata: bool = False) -> None:
    """Add :func:`decode_counts` to the value (or, with ``metadata``, the metadata) counters."""
    first = META if metadata else 0
    counters[first : first + 4] += decode_counts(status, read_mask)


def counters_to_dict(counters: torch.Tensor, silent_tracked: bool = True) -> dict:
    """The counters by name; ``silent`` and ``meta_silent`` are None where nothing counted them."""
    out = {name: int(v) for name, v in zip(COUNTER_NAMES, counters.tolist())}
    if not silent_tracked:
        out["silent"] = out["meta_silent"] = None
    return out


def metadata_view(stats: dict) -> dict:
    """``{read, corrected, parity_only, detected, injected, silent}`` of the metadata, from a
    flat counters dict."""
    return {k: stats[f"meta_{k}"] for k in _KINDS}
