"""Erasure recovery (the paper's "manifold interpolation").

A value whose codeword was detected but not correctable is replaced, in the dequantized
domain, by the mean of its nearest non-erased neighbours along the sequence axis (same
head, same channel); at a boundary the one neighbour there is used. A value with no
non-erased neighbour at all in its sequence is kept as read.
"""

from __future__ import annotations

import torch


def interpolate_erasures(x: torch.Tensor, erased: torch.Tensor, dim: int = -2) -> torch.Tensor:
    """Return ``x`` with erased entries replaced by their temporal neighbours' mean.

    Args:
        x: dequantized values, e.g. ``[batch, heads, seq, head_dim]``.
        erased: bool mask broadcastable to ``x``'s shape, True where the value is unreliable.
        dim: the sequence axis.
    """
    erased = erased.expand_as(x)
    if x.dim() == 0:
        raise ValueError("interpolate_erasures needs a sequence axis")
    dim = dim % x.dim()
    length = x.shape[dim]
    shape = [1] * x.dim()
    shape[dim] = length
    index = torch.arange(length, device=x.device).view(shape).expand_as(x)
    keep = ~erased
    # Nearest kept index at or before each position (-1 if none), and at or after (length if none).
    prev = torch.where(keep, index, -1).cummax(dim).values
    nxt = torch.where(keep, index, length).flip(dim).cummin(dim).values.flip(dim)
    has_prev, has_next = prev >= 0, nxt < length
    prev_vals = x.gather(dim, prev.clamp(min=0))
    next_vals = x.gather(dim, nxt.clamp(max=length - 1))
    both = (prev_vals.float() + next_vals.float()) * 0.5
    filled = torch.where(
        has_prev & has_next,
        both.to(x.dtype),
        torch.where(has_prev, prev_vals, torch.where(has_next, next_vals, x)),
    )
    return torch.where(erased, filled, x)
