"""Launch options (``num_warps``, ``num_stages``, ``maxnreg``) that torch.compile sees as one
kernel object per configuration.

Where torch traces a ``wrap_triton`` launch that passes ``num_warps`` or ``num_stages``, it
wraps the kernel in a new single-config ``Autotuner`` at that call site, and each such object is
one more entry of torch's kernel side table. Inductor walks the whole table at every compile
(``save_graph_repro`` writes each entry's source for the ``fx_graph_runnable`` artifact, parsing
it): a 32-layer model traced 64 entries of the fused attention's 600-line kernel, one per layer
and launch, where one per configuration says the same (benchmarks/RESULTS.md, "The first
compiled step's side table"). ``kernel_and_options`` hands torch one ``Autotuner`` per
(kernel, options), made once, with the options in its config, as torch would have made it.
Where the kernel runs rather than being traced (the eager body of a ``triton_op``, which turns
torch's wrapper off, or a launcher called directly), it is launched with the options as
keywords, as before: an ``Autotuner``'s ``run`` would add its Python to every eager call.

A launch that only reads what the launch before it in the same op wrote (the fused attention's
deferred launch and its combine) is a programmatic dependent launch where the GPU has them
(``dependent_launches``: CUDA, sm_90 and newer): the GPU starts its programs while the launch
before it finishes, instead of after, and each waits, first thing, until that launch's writes
are visible (``_after_previous_launch``). At batch 1 a fused call is two or three such
boundaries around a few microseconds of work each.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
import triton
import triton.language as tl
from torch._library import triton as _library_triton
from torch.utils import _python_dispatch

_TUNERS: dict = {}
_EAGER: dict = {}  # id of each of _TUNERS' Autotuners -> (its kernel, the options an eager launch passes)
# Whether an op's later launches are programmatic dependent launches where the GPU has them
# (``dependent_launches``). Off until timed on a GPU (benchmarks/RESULTS.md, "Dependent
# launches ..."): built and tested on the CPU only; set True to try them.
DEPENDENT_LAUNCHES = False
# Where a kernel lets the launch after it start its programs: "start" (first thing, after its own
# wait) or "end" (the codewords' main and deferred launches just before they write their
# partials, every other kernel at its exit). Off and untimed, as the switch above.
LAUNCH_DEPENDENTS_AT = "start"
# Looked up once: every eager launch asks (None where this torch has no such function).
_wrap_triton_enabled = getattr(_library_triton, "is_wrap_triton_enabled", None)
_current_dispatch_mode = getattr(_python_dispatch, "_get_current_dispatch_mode", None)


def _through_torch() -> bool:
    """Whether ``wrap_triton`` launches are traced now: torch's wrapper is on (a ``triton_op``
    turns it off in its eager body) under a dispatch mode (functionalization, fake tensors,
    ``make_fx``: torch.compile's tracing). A launcher called directly in eager mode also goes
    through torch's wrapper, but runs the kernel, which needs no side-table entry of its own."""
    return bool(_wrap_triton_enabled and _wrap_triton_enabled() and _current_dispatch_mode and _current_dispatch_mode() is not None)


@functools.cache
def _capability_at_least_hopper(index: int) -> bool:
    return torch.cuda.get_device_capability(index) >= (9, 0)


def dependent_launches(device: torch.device) -> int:
    """Whether kernels launched on ``device`` can be programmatic dependent launches (CUDA's
    programmatic stream serialization): NVIDIA GPUs from sm_90 (Hopper) on, and only with
    ``DEPENDENT_LAUNCHES`` set (off by default). The kernels of an op that launches some
    dependently take the answer as their ``GDC`` constant: 0 no, 1 yes and each kernel lets the
    launch after it start first thing, 2 yes and late (``LAUNCH_DEPENDENTS_AT``)."""
    if not DEPENDENT_LAUNCHES or device.type != "cuda" or torch.version.hip is not None:
        return 0
    if not _capability_at_least_hopper(torch.cuda.current_device() if device.index is None else device.index):
        return 0
    return dependent_gdc()


def dependent_gdc() -> int:
    """The kernels' ``GDC`` constant where their launches are dependent: 1 where each lets the
    launch after it start first thing, 2 late (``LAUNCH_DEPENDENTS_AT``)."""
    if LAUNCH_DEPENDENTS_AT not in ("start", "end"):
        raise ValueError(f"launch_options.LAUNCH_DEPENDENTS_AT must be 'start' or 'end', not {LAUNCH_DEPENDENTS_AT!r}")
    return 1 if LAUNCH_DEPENDENTS_AT == "start" else 2


def dependent_option(dependent: bool) -> dict:
    """The launch keyword that makes a launch dependent on the one before it in its stream
    (``dependent``: ``dependent_launches`` holds and the kernel calls ``_after_previous_launch``
    with ``GDC`` set), where the launch runs: a traced launch stays plain, since the single
    ``triton.Config`` torch's wrapper takes cannot carry it."""
    return {"launch_pdl": True} if dependent and not _through_torch() else {}


@triton.jit
def _after_previous_launch(GDC: tl.constexpr):
    """First thing in a kernel whose launches may be dependent: wait until the launch before it
    in the stream has finished and its writes are visible (at once where this launch was not
    dependent); then, with ``GDC`` 1 (``LAUNCH_DEPENDENTS_AT`` "start"), let the launch after
    this one start its programs, which wait in turn. With 2 that comes later
    (``_launch_dependents_late``) or at the kernel's exit."""
    if GDC:
        # Through tl: Inductor's copy of a kernel imports triton.language as tl and no more.
        tl.extra.cuda.gdc_wait()
    if GDC == 1:
        tl.extra.cuda.gdc_launch_dependents()


@triton.jit
def _launch_dependents_late(GDC: tl.constexpr):
    """Where ``LAUNCH_DEPENDENTS_AT`` is "end": let the launch after this one start its programs."""
    if GDC == 2:
        tl.extra.cuda.gdc_launch_dependents()


def kernel_and_options(kernel: Any, num_warps: int, num_stages: int | None = None, maxnreg: int = 0,
                       dependent: bool = False) -> tuple[Any, dict]:
    """``(kernel, options)`` to launch as ``wrap_triton(kernel)[grid](*args, **kwargs,
    **options)``: through torch's wrapper, the one ``Autotuner`` of this configuration and no
    options; otherwise ``kernel`` itself and the options (``num_stages`` None and ``maxnreg`` 0: left
    to Triton, as torch's own single config leaves them; ``dependent``: ``dependent_option``'s)."""
    options = dict(num_warps=num_warps, **({"num_stages": num_stages} if num_stages else {}), **({"maxnreg": maxnreg} if maxnreg else {}))
    if not _through_torch():
        return kernel, {**options, **dependent_option(dependent)}
    key = (kernel, tuple(sorted(options.items())))
    tuner = _TUNERS.get(key)
    if tuner is None:
        tuner = _TUNERS[key] = triton.autotune(configs=[triton.Config({}, **options)], key=[])(kernel)
        _EAGER[id(tuner)] = (kernel, options)
    return tuner, {}


def eager_kernel(kernel: Any) -> tuple[Any, dict]:
    """``(kernel, options)`` as an eager launch passes them, for what ``kernel_and_options``
    handed a traced launch (a kernel as it is; its ``Autotuner``: the kernel and the options in
    its config; the dependent-launch keyword, which a traced launch drops, is not among them)."""
    return _EAGER.get(id(kernel), (kernel, {}))
