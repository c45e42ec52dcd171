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
way. The switch is torch's own (``torch._functorch.config.decompose_custom_triton_ops``), so it
holds for every ``triton_op`` compiled under it, not only these, and torch's compile caches key on
it. It must be on whenever torch.compile traces (the first call, and any recompile), not only
when ``torch.compile`` is called.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from .compile_ahead import compiling_ahead


@contextlib.contextmanager
def opaque_ops(enabled: bool = True, compile_ahead: bool = True) -> Iterator[None]:
    """Within it, torch.compile keeps every ``torch.library.triton_op`` (the ``ecc`` ops among
    them) as an opaque custom-op call (``enabled``; False: inlined, torch's default), and, with
    ``compile_ahead``, compiles the ``ecc`` ops' kernels in threads while it traces them
    (``compile_ahead.compiling_ahead``)."""
    if not hasattr(torch._functorch.config, "decompose_custom_triton_ops"):
        raise RuntimeError(f"opaque_ops needs torch._functorch.config.decompose_custom_triton_ops, which torch {torch.__version__} "
                           "does not have")
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch._functorch.config.patch(decompose_custom_triton_ops=not enabled))
        if enabled and compile_ahead:
            stack.enter_context(compiling_ahead())
        yield
