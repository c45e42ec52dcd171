"""The source text torch.compile collects for a user Triton kernel, memoized for this
package's kernels.

Inductor turns each call site of a ``wrap_triton`` kernel into text: the kernel's source and,
transitively, that of every ``@triton.jit`` and constexpr function and global it uses
(``user_defined_triton_kernel_transitive_closure_source_code``), which it hashes into the FX
graph cache's key and writes into the generated code. It walks the bytecode of every helper
(``dis``) at every call site, and the answer depends only on the kernel: for the fused
attention, whose helpers are most of ``ops/attention``, one walk takes tens of milliseconds,
and a 32-layer model has 160 call sites of this package's kernels (the H200's profile of a
first compiled step: 9.8 s of it, benchmarks/RESULTS.md).

``install`` wraps torch's function with a cache keyed on the kernel, for this package's
kernels and calls without a fused epilogue (whose source is given with the call); anything
else goes to torch's function unchanged. The AOTAutograd cache's key calls it too, for every
kernel of every op node of a graph (``ops/op_kernels.py``), before any kernel is traced.
``install_at_compile_start`` installs it when Dynamo starts its first compile (Inductor's
module takes 0.6 s to import, which ``import ecc_tensor.ops`` need not pay), and
``ops/mutation_analysis.py``'s cache when a compile first analyses one of this package's
kernels. Set ``ECC_TENSOR_NO_ANALYSIS_CACHE=1`` to leave both of torch's functions as they are.
"""

from __future__ import annotations

import functools
import importlib
import os
from typing import Any, Callable

_MODULE = "torch._inductor.codegen.wrapper"
_NAME = "user_defined_triton_kernel_transitive_closure_source_code"


def owned(kernel: Any) -> bool:
    """Whether ``kernel`` (a JITFunction, or an Autotuner around one) is this package's (here,
    and in ``ops/mutation_analysis.py``)."""
    fn = getattr(getattr(kernel, "fn", None), "fn", None) or getattr(kernel, "fn", None)
    return getattr(fn, "__module__", "").startswith("ecc_tensor.")


def memoized(source_code: Callable) -> Callable:
    """``source_code`` (torch's function) with a cache for this package's kernels."""
    cache: dict = {}

    @functools.wraps(source_code)
    def cached(kernel, *args, **kwargs):
        epilogue = args[0] if args else kwargs.get("epilogue_fusion")
        if epilogue is not None or len(args) > 1 or set(kwargs) - {"epilogue_fusion"} or not owned(kernel):
            return source_code(kernel, *args, **kwargs)
        # By identity (a JITFunction hashes its source key, ~60 us), the kernel kept with its
        # text so that its id stays its own.
        if id(kernel) in cache:
            cached.hits += 1
        else:
            cache[id(kernel)] = (kernel, source_code(kernel, *args, **kwargs))
        return cache[id(kernel)][1]  # a str: callers cannot change it

    cached.cache = cache
    cached.hits = 0  # calls answered from the cache
    return cached


def module_to_wrap(name: str) -> Any:
    """torch's module ``name``, whose function a cache of this package wraps (here, and in
    ``ops/mutation_analysis.py``); None where ``ECC_TENSOR_NO_ANALYSIS_CACHE`` turns the caches
    off or this torch has no such module."""
    if os.environ.get("ECC_TENSOR_NO_ANALYSIS_CACHE", "") not in ("", "0"):
        return None
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def install() -> bool:
    """Wrap torch's function with ``memoized``, once; False where the environment turns it off
    or this torch has no function of that name."""
    module = module_to_wrap(_MODULE)
    source_code = getattr(module, _NAME, None)
    if source_code is None:
        return False
    if getattr(source_code, "cache", None) is None:
        setattr(module, _NAME, memoized(source_code))
    return True


def install_at_compile_start() -> bool:
    """Have Dynamo ``install`` at the start of each compile (a no-op once installed); False
    where this torch has no compile-start callbacks."""
    try:
        from torch._dynamo.callback import callback_handler
    except ImportError:
        return False
    if _on_compile_start not in getattr(callback_handler, "start_callbacks", ()):
        callback_handler.register_start_callback(_on_compile_start)
    return True


def _on_compile_start(*args: Any) -> None:  # torch passes the compile's CallbackArgs (earlier releases, nothing)
    install()
