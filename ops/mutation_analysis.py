"""torch.compile's analysis of which tensors a user Triton kernel writes, memoized for this
package's kernels.

For every call site of a ``wrap_triton`` kernel, torch.compile works out which arguments the
kernel writes by generating the kernel's Triton IR and walking it: once when functionalizing,
and again in Inductor's lowering and passes over the node (four times or more per call site
in torch 2.13). A model compiles one call site per layer and kernel, and the answer is the
same at every one: it depends only on the kernel, its constexprs and the types of its other
arguments. For the fused attention, whose IR takes a fraction of a second to generate, the
analyses grew with the layers and were most of what compiling a protected model cost beyond
the stock cache's compile (benchmarks/RESULTS.md).

``install`` wraps torch's function with a cache keyed on exactly what the IR depends on
(torch's ``generate_ttir`` replaces each tensor by an empty one of its dtype and each symbolic
size by 2; of an Autotuner, which torch makes anew at every call site that passes ``num_warps``,
it takes the kernel and the first config's constexprs: ``_kernel_key``); kernels of other
packages, calls with TMA descriptors and arguments that cannot be hashed go to torch's function
unchanged. Set ``ECC_TENSOR_NO_ANALYSIS_CACHE=1`` to leave torch's function as it is.
"""

from __future__ import annotations

import copy
import functools
import inspect
from typing import Any, Callable

import torch

from . import kernel_source

_MODULE = "torch._higher_order_ops.triton_kernel_wrap"
# torch 2.13 names it identify_accessed_tensors (reads and writes); earlier releases,
# identify_mutated_tensors (the written arguments' names), with the same parameters.
_NAMES = ("identify_accessed_tensors", "identify_mutated_tensors")
_PARAMETERS = ["kernel", "kwargs", "tma_descriptor_metadata"]


def _argument_key(value: Any) -> Any:
    """What of an argument the kernel's IR depends on: a tensor's dtype, that a size is
    symbolic, a scalar's value (Triton specializes on it)."""
    if isinstance(value, torch.Tensor):
        return ("tensor", value.dtype)
    if isinstance(value, (torch.SymInt, torch.SymFloat, torch.SymBool)):
        return ("symbolic",)
    if value is None or isinstance(value, (bool, int, float, str)):
        return (type(value), value)
    import sympy
    from torch._inductor.ir import TensorBox  # Inductor's lowering passes its buffers, and sizes as expressions

    if isinstance(value, TensorBox):
        return ("tensor", value.get_dtype())
    if isinstance(value, sympy.Expr):  # replaced by 2 for the IR, as a symbolic size
        return ("symbolic",)
    hash(value)  # TypeError: not cacheable
    return (type(value), value)


def _kernel_key(kernel: Any) -> Any:
    """What of ``kernel`` the IR depends on: the JITFunction, and for an Autotuner its first
    config's constexprs, which torch's ``generate_ttir`` adds to the arguments (it picks the
    first config). torch wraps a kernel launched with ``num_warps`` or ``maxnreg`` in a new
    single-config Autotuner at every call site, so the Autotuner itself differs each time."""
    configs = getattr(kernel, "configs", None)
    if configs is None:
        return kernel
    return (kernel.fn, tuple(sorted(configs[0].kwargs.items())) if configs else ())


def memoized(analysis: Callable) -> Callable:
    """``analysis`` (torch's function) with a cache for this package's kernels."""
    cache: dict = {}

    @functools.wraps(analysis)
    def cached(kernel, kwargs, tma_descriptor_metadata):
        if tma_descriptor_metadata or not kernel_source.owned(kernel):
            return analysis(kernel, kwargs, tma_descriptor_metadata)
        # A compile is tracing this package's kernels: the source Inductor collects for each
        # call site is memoized too, from now (its module takes 0.6 s to import: not at import).
        kernel_source.install()
        try:
            key = (_kernel_key(kernel), tuple((name, _argument_key(value)) for name, value in sorted(kwargs.items())))
            hash(key)
        except TypeError:
            return analysis(kernel, kwargs, tma_descriptor_metadata)
        if key in cache:
            cached.hits += 1
        else:
            cache[key] = analysis(kernel, kwargs, tma_descriptor_metadata)
        return copy.deepcopy(cache[key])  # callers get their own, as from torch's function

    cached.cache = cache
    cached.hits = 0  # calls answered from the cache
    return cached


def current() -> Callable | None:
    """torch's analysis as it stands (``memoized``'s wrapper once ``install`` ran: its ``cache``
    and ``hits`` say what it answered), or None where this torch has none of the names."""
    import importlib

    module = importlib.import_module(_MODULE)
    return next((getattr(module, name) for name in _NAMES if hasattr(module, name)), None)


def install() -> bool:
    """Wrap torch's analysis with ``memoized``, once; False where the environment turns it off
    or this torch has no function of the expected name and parameters."""
    module = kernel_source.module_to_wrap(_MODULE)
    if module is None:
        return False
    for name in _NAMES:
        analysis = getattr(module, name, None)
        if analysis is None:
            continue
        if getattr(analysis, "cache", None) is not None:
            return True  # installed already
        if list(inspect.signature(analysis).parameters) != _PARAMETERS:
            return False
        setattr(module, name, memoized(analysis))
        return True
    return False
