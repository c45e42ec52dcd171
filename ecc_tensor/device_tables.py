"""Small tables built from Python data (int64 index maps and shifts, float32 constants) on the
caller's device.

``torch.tensor(data, device="cuda")`` copies from pageable host memory: a stall on every call,
and an error inside a CUDA graph capture (a decode step that torch.compile's CUDA graphs or a
benchmark records). On a GPU a table is therefore made once per device and kept; one first
needed while a capture is under way is copied from pinned memory and not kept, since it lives
in the graph's memory pool. A kept table is made on a thread of its own: torch.compile's CUDA
graphs run their warm-up step eagerly with every allocation of the calling thread routed to the
graph's pool, and a table kept from there would be memory the graph reuses (torch stops with
"tensor(s) in the cudagraph pool not tracked as outputs"); another thread allocates from the
device's ordinary pool. While tracing (dynamo, fake tensors) the plain constructor is used, so
the tracer sees a constant of its own."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Callable

import torch

Table = tuple[float, ...] | tuple[tuple[float, ...], ...]  # ints are floats to a type checker

_kept: dict[tuple[Table, torch.device, torch.dtype], torch.Tensor] = {}


def int64_table(values: Table, device: torch.device | str | None = None) -> torch.Tensor:
    """``values`` (a tuple, or a tuple of equal-length tuples) as an int64 tensor on ``device``.
    On a GPU the tensor may be shared between calls: read it, never write it."""
    return _table(values, torch.int64, device)


def float32_table(values: Table, device: torch.device | str | None = None) -> torch.Tensor:
    """``values`` as a float32 tensor on ``device``, kept as ``int64_table``'s are: constants
    a kernel of torch's takes as tensors (a Python number would be made a tensor on the
    device, one fill launch a call). Read it, never write it."""
    return _table(values, torch.float32, device)


def _table(values: Table, dtype: torch.dtype, device: torch.device | str | None) -> torch.Tensor:
    device = torch.device(device if device is not None else "cpu")
    if device.type != "cuda" or tracing():
        return torch.tensor(values, dtype=dtype, device=device)
    if device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    key = (values, device, dtype)
    table = _kept.get(key)
    if table is not None:
        return table
    if torch.cuda.is_current_stream_capturing():
        return _pinned(values, dtype).to(device, non_blocking=True)
    table = _kept[key] = made_outside_any_pool(lambda: torch.tensor(values, dtype=dtype, device=device), device)
    return table


def made_outside_any_pool(make: Callable[[], torch.Tensor], device: torch.device) -> torch.Tensor:
    """``make()`` run on a thread of its own with ``device`` current, its work finished on return:
    a tensor to keep across calls, allocated from the device's ordinary pool even where this
    thread's allocations go to a CUDA graph's (torch.compile's warm-up step)."""

    def run() -> torch.Tensor:
        with torch.cuda.device(device):
            made = make()
            torch.cuda.current_stream().synchronize()  # the caller reads it on its own stream
            return made

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


@lru_cache(maxsize=None)
def _pinned(values: Table, dtype: torch.dtype) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype).pin_memory()


def tracing() -> bool:
    """Whether torch.compile traces, or fake tensors stand in for real ones: a tensor made now
    belongs to the trace, and must not be kept."""
    return torch.compiler.is_compiling() or torch._C._get_dispatch_mode(torch._C._TorchDispatchModeKey.FAKE) is not None
