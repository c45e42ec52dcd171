"""Counters as tensors, so that they accumulate inside compiled graphs without syncs.

A counters tensor is int64 ``[5]`` indexed by :data:`COUNTER_NAMES`: codewords read,
corrected, detected (uncorrectable), bits injected and silent corruptions (a decoded value
that differs from the value written, which only a simulation with a clean copy can know).
"""

from __future__ import annotations

import torch

from .codecs import STATUS_CORRECTED, STATUS_DETECTED

COUNTER_NAMES = ("read", "corrected", "detected", "injected", "silent")
READ, CORRECTED, DETECTED, INJECTED, SILENT = range(len(COUNTER_NAMES))


def new_counters(device=None) -> torch.Tensor:
    return torch.zeros(len(COUNTER_NAMES), dtype=torch.int64, device=device)


def decode_counts(status: torch.Tensor, read_mask: torch.Tensor | None = None) -> torch.Tensor:
    """``[read, corrected, detected, 0, 0]`` for one batch of decode statuses; only the
    codewords where ``read_mask`` (broadcastable to ``status``) is True count."""
    if read_mask is None:
        read = torch.tensor(status.numel(), dtype=torch.int64, device=status.device)
    else:
        read_mask = read_mask.expand_as(status)
        read = read_mask.sum(dtype=torch.int64)
        status = torch.where(read_mask, status, 0)
    corrected = (status == STATUS_CORRECTED).sum(dtype=torch.int64)
    detected = (status == STATUS_DETECTED).sum(dtype=torch.int64)
    zero = torch.zeros((), dtype=torch.int64, device=status.device)
    return torch.stack([read, corrected, detected, zero, zero])


def counters_to_dict(counters: torch.Tensor) -> dict[str, int]:
    return {name: int(v) for name, v in zip(COUNTER_NAMES, counters.tolist())}
