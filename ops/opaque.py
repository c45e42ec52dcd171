"""The ``ecc`` ops as opaque calls under torch.compile, rather than their Triton kernels inlined.

Each op is a ``torch.library.triton_op``: by default torch.compile traces into its body and hands
Inductor the Triton kernels it launches, which Inductor then analyses, schedules and launches
from its own generated code, call site by call site (a 32-layer model has 160 or so: the K and V
stores and the attention's launches in each layer). That per-call-site work is most of what a
protected model's first compiled step costs over the FP16 cache's (benchmarks/RESULTS.md). Under
``opaque_ops()`` the ops stay in the graph as custom-op calls, as torch.export keeps them: Inductor
calls each op's Python body at run time, which launches the same kernels (compiled by Triton at
the op's first call, not in Inductor's parallel workers; ``compile_ahead``, on by default, has
them compiled in threads while torch.compile traces: ``ops/compile_ahead.py``).

Which way is faster depends on the run: with CUDA graphs (``torch.compile(mode="reduce-overhead")``)
the bodies' Python runs only while the graph is recorded; without them it runs every step (a fused
attention call's launcher takes 20-70 us of a CPU core). Outputs and counters are the same either
way. The switch holds for this package's ops only: ``install`` replaces the rule by which each
``ecc`` op is decomposed under functionalization (torch's ``triton_op`` registers one rule an op,
which reads torch's global ``torch._functorch.config.decompose_custom_triton_ops``, a switch for
every ``triton_op`` of every library) by one that first asks ``opaque_ops``. torch's compile
caches (Inductor's FX graph cache, the AOTAutograd cache) key on
``torch.compiler.config.cache_key_tag``, which ``opaque_ops`` extends, so that a graph compiled
one way is never loaded for the other. It must be on whenever torch.compile traces (the first
call, and any recompile), not only when ``torch.compile`` is called.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

import torch

from .compile_ahead import compiling_ahead


_opaque: contextvars.ContextVar[bool] = contextvars.ContextVar("ecc_opaque_ops", default=False)
_CACHE_TAG = "ecc_tensor.ops.opaque_ops"
_installed = False


def install(ops: tuple[Any, ...]) -> bool:
    """Have each of ``ops`` (``torch.library.triton_op`` definitions) kept opaque under
    functionalization while ``opaque_ops`` is on, and decomposed by torch's own rule otherwise;
    False where this torch's ``triton_op`` registers no such rule to defer to."""
    global _installed
    from torch._subclasses.functional_tensor import FunctionalTensorMode

    rules = [getattr(op, "_torch_dispatch_fns", {}).get(FunctionalTensorMode) for op in ops]
    if None in rules:
        return False
    for op, torchs_rule in zip(ops, rules):
        def rule(mode, func, types, args, kwargs, torchs_rule=torchs_rule):
            if _opaque.get():
                return mode.__torch_dispatch__(func, types, args, kwargs)  # a call of the op, as torch.export keeps it
            return torchs_rule(mode, func, types, args, kwargs)

        op.register_torch_dispatch(FunctionalTensorMode, rule)
    _installed = True
    return True


@contextlib.contextmanager
def opaque_ops(enabled: bool = True, compile_ahead: bool = True) -> Iterator[None]:
    """Within it, torch.compile keeps each ``ecc`` op as an opaque custom-op call (``enabled``;
    False: inlined, torch's default; other libraries' ``triton_op``s are left as torch's own
    switch has them), and, with ``compile_ahead``, compiles the ops' kernels in threads while
    it traces them (``compile_ahead.compiling_ahead``)."""
    if not _installed:
        raise RuntimeError(f"opaque_ops needs the rule by which torch.library.triton_op's ops are decomposed under functionalization, "
                           f"which torch {torch.__version__} does not register as this package expects")
    with contextlib.ExitStack() as stack:
        if enabled:
            tag = torch.compiler.config.cache_key_tag
            stack.enter_context(torch.compiler.config.patch(cache_key_tag=f"{tag}+{_CACHE_TAG}" if tag else _CACHE_TAG))
            if compile_ahead:
                stack.enter_context(compiling_ahead())
        token = _opaque.set(enabled)
        stack.callback(_opaque.reset, token)
        yield
