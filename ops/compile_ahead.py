"""The ops' Triton kernels compiled while torch.compile traces them, in threads, under ``opaque_ops``.

Under ``opaque_ops`` Inductor does not compile the ops' kernels: Triton compiles each one when
the compiled step first calls its op, one kernel after another on the calling thread, where
inlined kernels compile in Inductor's parallel workers. Yet while torch.compile traces an op,
each launch's kernel, options, argument types and constants are already known (the op's body
runs on fake tensors of the real shapes). ``compiling_ahead`` sends each such launch to a pool
of threads as a Triton ``warmup`` (a compile without a launch; Triton's compiler and ptxas
leave Python's lock, so threads compile in parallel: ten SECDED(72,64) kernels for sm_90a took
17.7 s one after another and 9.7 s in two threads on a 2-core CPU, benchmarks/RESULTS.md). The
first launch that runs for real waits until those compiles are done, then finds its kernels in
Triton's cache. A launch whose arguments the trace cannot foresee (a symbolic size, a pointer
whose alignment differs) simply compiles at its first call, as without this.

The launch sites call this module's ``wrap_triton``: torch's own, but while torch traces under
``compiling_ahead`` or compiles are pending (a global check or two a launch otherwise).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

import torch
from torch._subclasses.fake_tensor import FakeTensor
from torch.library import wrap_triton as _torch_wrap_triton

from . import launch_options

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_active = 0  # compiling_ahead's depth
_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pending: list[concurrent.futures.Future] = []
_submitted: set = set()  # launches already sent, by (kernel, device, arguments, options)


@contextlib.contextmanager
def compiling_ahead(threads: int | None = None) -> Iterator[None]:
    """Within it, each launch of the ops traced by torch.compile (on fake tensors, an op kept
    opaque) also compiles its kernel for the GPU in one of ``threads`` worker threads (default:
    the CPUs this process may use, at most 32). On leaving, waits for the compiles still running."""
    global _active, _pool
    with _lock:
        _enter(threads)
    try:
        yield
    finally:
        wait()
        with _lock:
            _active -= 1
            if _active == 0:
                pool, _pool = _pool, None
                _submitted.clear()
                pool.shutdown(wait=True)


_for_the_process = False


def compile_ahead_from_now_on() -> None:
    """As if within ``compiling_ahead`` for the rest of the process (``opaque.opaque_now``'s
    automatic choice, which has no scope to leave): a pool is made once and kept; its threads
    idle between compiles."""
    global _for_the_process
    with _lock:
        if not _for_the_process:
            _enter(None)
            _for_the_process = True


def _enter(threads: int | None) -> None:
    """One more holder of the pool (made by the first; ``_lock`` held)."""
    global _active, _pool
    if _active == 0:
        _pool = concurrent.futures.ThreadPoolExecutor(threads or _usable_cpus(), thread_name_prefix="ecc-compile")
    _active += 1


def _usable_cpus() -> int:
    # A model has a few dozen distinct launches at most: more threads than that would idle.
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(cpus, 32)


def wait() -> None:
    """Wait for every compile sent ahead (a failed one is left for its launch to compile, and
    report, at its first call)."""
    while _pending:
        future = _pending.pop()
        if future.exception() is not None:
            _log.debug("compiling ahead failed: %r", future.exception())


def wrap_triton(kernel: Any) -> Any:
    """torch's ``wrap_triton(kernel)``; while torch traces under ``compiling_ahead``, or while
    compiles are pending, a wrapper that first notes the launch (``_note``)."""
    if _pending or (_active and launch_options._through_torch()):
        return _Noting(kernel)
    return _torch_wrap_triton(kernel)


class _Noting:
    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            _note(self.kernel, args, kwargs)
            return _torch_wrap_triton(self.kernel)[grid](*args, **kwargs)

        return launch


class _TypedPointer:
    """A tensor argument as Triton's ``warmup`` takes it: its dtype and whether its data is
    16-byte aligned (which Triton specializes on); the allocation itself is taken as aligned."""

    def __init__(self, t: torch.Tensor) -> None:
        self.dtype = t.dtype
        self.offset = t.storage_offset() * t.element_size() % 16

    def data_ptr(self) -> int:
        return self.offset

    def key(self) -> tuple:
        return ("tensor", self.dtype, self.offset)


def _note(kernel: Any, args: tuple, kwargs: dict) -> None:
    """A launch on real tensors waits for the compiles sent ahead; a launch traced on fake ones
    (an opaque op's body, which Dynamo and AOTAutograd run on fake tensors) under
    ``compiling_ahead`` sends its compile to the pool, once per distinct launch."""
    values = (*args, *kwargs.values())
    tensors = [a for a in values if isinstance(a, torch.Tensor)]
    if not any(isinstance(t, FakeTensor) for t in tensors):
        if tensors:
            wait()
        return
    if _pool is None or any(isinstance(a, (torch.SymInt, torch.SymFloat, torch.SymBool)) for a in values):
        return
    from .opaque import opaque_automatically  # (opaque imports this module)

    within_compiling_ahead = _active > _for_the_process  # a holder besides the process's pool, which serves the automatic choice only
    if not within_compiling_ahead and not opaque_automatically():
        return
    devices = {t.device for t in tensors}
    if len(devices) != 1 or next(iter(devices)).type != "cuda":
        return
    device = next(iter(devices))
    jit, options = launch_options.eager_kernel(kernel)
    mocked = [_warmup_argument(a) for a in args]
    mocked_kwargs = {k: _warmup_argument(v) for k, v in kwargs.items()}
    key = (jit, device, tuple(map(_key, mocked)), tuple(sorted((k, _key(v)) for k, v in mocked_kwargs.items())),
           tuple(sorted(options.items())))
    with _lock:
        if key in _submitted or _pool is None:
            return
        _submitted.add(key)
        _pending.append(_pool.submit(_compile, jit, device, mocked, {**mocked_kwargs, **options}))


def _warmup_argument(value: Any) -> Any:
    return _TypedPointer(value) if isinstance(value, torch.Tensor) else value


def _key(value: Any) -> Any:
    """A warmup argument as the distinct-launch key holds it."""
    if isinstance(value, _TypedPointer):
        return value.key()
    try:
        hash(value)
        return value
    except TypeError:
        return repr(value)


_device_context = torch.cuda.device  # the worker's current device while it compiles (Triton compiles for it)


def _compile(jit: Any, device: torch.device, args: list, kwargs: dict) -> None:
    with _device_context(device):
        jit.warmup(*args, grid=(1,), **kwargs)
