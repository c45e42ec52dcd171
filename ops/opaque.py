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

Outside ``opaque_ops`` the choice is automatic: opaque where Inductor compiles for CUDA graphs
(``torch.compile(mode="reduce-overhead")``, which sets ``torch._inductor.config.triton.cudagraphs``
while it compiles), their kernels compiled ahead in a pool of threads kept for the process;
inlined otherwise. With graphs the ops' Python runs only while a graph is recorded, so opaque
costs a step little (a Llama-3-8B shape on an H100: at 32 layers / 32k 1.2% slower decoding, 3.3%
at batch 1 / 4k, its first step 47.6 s instead of 71.1, the FP16 static cache's 33.9); without
graphs opaque ops decoded at a quarter of the inlined rate. ``opaque_ops(False)``
inlines them there too. Graphs compiled each way never share a cache entry: the automatic choice
differs by Inductor's own ``cudagraphs`` setting, and ``opaque_ops`` tags the cache key
whichever way it sets (``ecc_tensor.ops.opaque_ops`` or ``ecc_tensor.ops.inlined_ops``).
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
from collections.abc import Iterator
from typing import Any

import torch

from . import compile_ahead as _ahead
from .compile_ahead import compiling_ahead


# True or False under opaque_ops; None (the default): automatic, see opaque_now.
_opaque: contextvars.ContextVar[bool | None] = contextvars.ContextVar("ecc_opaque_ops", default=None)
_CACHE_TAGS = {True: "ecc_tensor.ops.opaque_ops", False: "ecc_tensor.ops.inlined_ops"}
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
            if opaque_now():
                return mode.__torch_dispatch__(func, types, args, kwargs)  # a call of the op, as torch.export keeps it
            return torchs_rule(mode, func, types, args, kwargs)

        op.register_torch_dispatch(FunctionalTensorMode, rule)
    _installed = True
    return True


def _compiling_for_cuda_graphs() -> bool:
    """Whether Inductor compiles for CUDA graphs now (set while ``torch.compile(mode="reduce-overhead")``
    compiles, functionalization included); read without importing Inductor where nothing has."""
    config = sys.modules.get("torch._inductor.config")
    return bool(config is not None and config.triton.cudagraphs)


def opaque_now() -> bool:
    """Whether torch.compile keeps the ``ecc`` ops opaque if it traces them now: as
    ``opaque_ops`` says within it; outside, where Inductor compiles for CUDA graphs (then also
    compiling their kernels ahead, in threads kept for the process)."""
    enabled = _opaque.get()
    if enabled is not None:
        return enabled
    if not _compiling_for_cuda_graphs():
        return False
    _ahead.compile_ahead_from_now_on()
    return True


def opaque_automatically() -> bool:
    """Whether the ``ecc`` ops are opaque now by the automatic choice (outside ``opaque_ops``)."""
    return _opaque.get() is None and opaque_now()


@contextlib.contextmanager
def opaque_ops(enabled: bool = True, compile_ahead: bool = True) -> Iterator[None]:
    """Within it, torch.compile keeps each ``ecc`` op as an opaque custom-op call (``enabled``;
    False: inlined, as torch would; other libraries' ``triton_op``s are left as torch's own
    switch has them), and, with ``compile_ahead``, compiles the ops' kernels in threads while
    it traces them (``compile_ahead.compiling_ahead``). Outside it the choice is automatic
    (``opaque_now``)."""
    if not _installed:
        raise RuntimeError(f"opaque_ops needs the rule by which torch.library.triton_op's ops are decomposed under functionalization, "
                           f"which torch {torch.__version__} does not register as this package expects")
    with contextlib.ExitStack() as stack:
        tag, ours = torch.compiler.config.cache_key_tag, _CACHE_TAGS[bool(enabled)]
        stack.enter_context(torch.compiler.config.patch(cache_key_tag=f"{tag}+{ours}" if tag else ours))
        if enabled and compile_ahead:
            stack.enter_context(compiling_ahead())
        token = _opaque.set(bool(enabled))
        stack.callback(_opaque.reset, token)
        yield
