"""The CPU run's two patches of Triton's interpreter (``tools/interpreter_speed.py``) change
nothing that runs: helpers called inside a launch still see the interpreter's language, and
the launch leaves ``triton.language`` as it found it."""

import os

import pytest
import torch
import triton
import triton.language as tl

pytestmark = pytest.mark.skipif(os.environ.get("TRITON_INTERPRET", "") in ("", "0"), reason="the interpreter's patches")


@triton.jit
def _inner(x):
    return tl.where(x > 2, x * 3, x).to(tl.float16).to(tl.float32)


@triton.jit
def _outer(x):
    return tl.sum(_inner(x + 1), axis=0)  # a helper calling a helper


@triton.jit
def _kernel(x_ptr, out_ptr, N: tl.constexpr):
    i = tl.arange(0, N)
    x = tl.load(x_ptr + i)
    tl.store(out_ptr + i, _inner(x))
    tl.store(out_ptr + N + i, tl.zeros([N], tl.float32) + _outer(x))


def test_nested_helpers_run_as_before_and_the_language_is_restored():
    from triton.runtime import interpreter

    assert getattr(interpreter._patch_lang, "skips_nested", False)  # conftest installed it
    load = tl.load
    x = torch.arange(8, dtype=torch.float32)
    out = torch.empty(16)
    for _ in range(2):  # a second launch patches afresh after the first restored
        _kernel[(1,)](x, out, N=8)
        inner = torch.where(x > 2, x * 3, x)
        assert torch.equal(out[:8], inner)
        assert torch.equal(out[8:], torch.full((8,), float(torch.where(x + 1 > 2, (x + 1) * 3, x + 1).sum())))
        assert tl.load is load and tl.core.is_builtin(tl.load)
