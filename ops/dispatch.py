"""Calling the ``ecc`` ops from Python in eager mode without the autograd layers of a custom op,
which cost more than a decoding step's kernels.

A ``torch.library`` custom op runs an Autograd kernel and, where it mutates an argument (the
counters of ``ecc::decode_attention`` and ``ecc::decode_dequantize``), an ADInplaceOrView
kernel before its own. For an op of many arguments the second one is slow: it re-reads the
op's schema for each argument (``torch._library.utils.fill_defaults``), about 130 us a call
for ``ecc::decode_attention``'s 24 on a CPU core, where the op's own Python takes about 100
(benchmarks/RESULTS.md). Neither layer has work to do for these ops when no input needs a
gradient (they define none) and nothing traces them, so ``call_op`` dispatches below both,
as the custom op's own kernels do. Under ``torch.compile``, a Python dispatch mode (fake
tensors, export, ``make_fx``) or with an input that needs a gradient it calls the op as is.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import _get_current_dispatch_mode


def _needs_dispatch(args: tuple, kwargs: dict) -> bool:
    if torch.compiler.is_compiling() or _get_current_dispatch_mode() is not None:
        return True
    if torch.is_grad_enabled():
        return any(isinstance(a, torch.Tensor) and a.requires_grad for a in (*args, *kwargs.values()))
    return False


def call_op(op, *args, **kwargs):
    """``op(*args, **kwargs)`` for an ``ecc`` op: in eager mode, below its Autograd and
    ADInplaceOrView kernels (see the module docstring); its counters' version is then not
    bumped, which only autograd reads."""
    if _needs_dispatch(args, kwargs):
        return op(*args, **kwargs)
    with torch._C._AutoDispatchBelowADInplaceOrView():
        return op(*args, **kwargs)
