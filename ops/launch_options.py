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
"""

from __future__ import annotations

from typing import Any

import triton
from torch._library import triton as _library_triton
from torch.utils import _python_dispatch

_TUNERS: dict = {}
# Looked up once: every eager launch asks (None where this torch has no such function).
_wrap_triton_enabled = getattr(_library_triton, "is_wrap_triton_enabled", None)
_current_dispatch_mode = getattr(_python_dispatch, "_get_current_dispatch_mode", None)


def _through_torch() -> bool:
    """Whether ``wrap_triton`` launches are traced now: torch's wrapper is on (a ``triton_op``
    turns it off in its eager body) under a dispatch mode (functionalization, fake tensors,
    ``make_fx``: torch.compile's tracing). A launcher called directly in eager mode also goes
    through torch's wrapper, but runs the kernel, which needs no side-table entry of its own."""
    return bool(_wrap_triton_enabled and _wrap_triton_enabled() and _current_dispatch_mode and _current_dispatch_mode() is not None)


def kernel_and_options(kernel: Any, num_warps: int, num_stages: int | None = None, maxnreg: int = 0) -> tuple[Any, dict]:
    """``(kernel, options)`` to launch as ``wrap_triton(kernel)[grid](*args, **kwargs,
    **options)``: through torch's wrapper, the one ``Autotuner`` of this configuration and no
    options; otherwise ``kernel`` itself and the options (``num_stages`` None and ``maxnreg`` 0: left
    to Triton, as torch's own single config leaves them)."""
    options = dict(num_warps=num_warps, **({"num_stages": num_stages} if num_stages else {}), **({"maxnreg": maxnreg} if maxnreg else {}))
    if not _through_torch():
        return kernel, options
    key = (kernel, tuple(sorted(options.items())))
    tuner = _TUNERS.get(key)
    if tuner is None:
        tuner = _TUNERS[key] = triton.autotune(configs=[triton.Config({}, **options)], key=[])(kernel)
    return tuner, {}
