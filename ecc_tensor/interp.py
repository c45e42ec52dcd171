"""Erasure recovery (the paper's "manifold interpolation").

A value whose codeword was detected but not correctable is replaced, in the dequantized
domain, by the mean of its nearest non-erased neighbours along the sequence axis (same
head, same channel); at a boundary the one neighbour there is used. A value with no
non-erased neighbour at all in its sequence is kept as read.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .metadata import value_groups
from .storage import StorageLayout, written_rows


def interpolate_erasures(x: torch.Tensor, erased: torch.Tensor, dim: int = -2) -> torch.Tensor:
    """Return ``x`` with erased entries replaced by their temporal neighbours' mean.

    Args:
        x: dequantized values, e.g. ``[batch, heads, seq, head_dim]``.
        erased: bool mask broadcastable to ``x``'s shape, True where the value is unreliable.
        dim: the sequence axis.

    Along dim -2 of a float32, float16 or bfloat16 tensor on a device with a registered kernel
    (CUDA, once :mod:`ecc_tensor.ops` is imported) the kernel computes the same values.
    """
    erased = erased.expand_as(x)
    if x.dim() == 0:
        raise ValueError("interpolate_erasures needs a sequence axis")
    dim = dim % x.dim()
    kernel = _ERASURE_KERNELS.get(x.device.type)
    if kernel is not None and dim == x.dim() - 2 and x.dtype in (torch.float32, torch.float16, torch.bfloat16):
        # The kernel fills a float32 copy in place and, past one pass over the mask, skips the
        # tiles without erasures (the tensor code below scans every value twice). Only the
        # erased entries are taken from it: the others keep their bits, as the tensor code keeps them.
        filled = kernel(x.contiguous().to(torch.float32, copy=True), erased)
        return torch.where(erased, filled.to(x.dtype), x)
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


# Device kernels for interpolate_decoded and interpolate_erasures, by device type:
# ecc_tensor.ops registers its Triton kernels for "cuda" on import (this layer sits above the
# ops and does not import them).
_KERNELS: dict[str, Callable] = {}
_ERASURE_KERNELS: dict[str, Callable] = {}


def register_interpolation_kernel(device_type: str, kernel: Callable, erasures: Callable | None = None) -> None:
    """Make :func:`interpolate_decoded` call ``kernel`` (same arguments and result) for tensors
    on ``device_type``, and :func:`interpolate_erasures` along dim -2 call ``erasures``
    (``(x, erased)``: ``x`` a contiguous float32 tensor it may fill in place and returns,
    ``erased`` bool of ``x``'s shape)."""
    _KERNELS[device_type] = kernel
    if erasures is not None:
        _ERASURE_KERNELS[device_type] = erasures


def interpolate_decoded(
    x: torch.Tensor,
    status: torch.Tensor,
    layout: StorageLayout,
    group_erased: torch.Tensor | None = None,
    lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """:func:`interpolate_erasures` along dim -2 of decoded values ``x`` ``[..., S, D]``
    (float32), with the erasures given as the decode left them: the codewords' ``status``
    ``[..., S, codewords_per_row]`` (``layout``'s; a detected codeword erases its values),
    ``group_erased`` (bool ``[..., S, G]``, ``G`` dividing ``D``: a detected scale or zero
    point erases its group of the row) and ``lengths`` (int, broadcastable to ``x.shape[:-2]``:
    rows at or past it are unwritten, erased and never neighbours). A registered device kernel
    takes them as they are, and may fill ``x`` in place; the tensor code here builds the
    per-value mask and returns a new tensor."""
    kernel = _KERNELS.get(x.device.type)
    if kernel is not None:
        return kernel(x, status, layout, group_erased, lengths)
    written = None if lengths is None else written_rows(x, torch.as_tensor(lengths, device=x.device)[..., None])
    erased = layout.erased_values(status, written)
    if group_erased is not None:
        erased = erased | value_groups(group_erased, x.shape[-1])
    return interpolate_erasures(x, erased, dim=-2)
