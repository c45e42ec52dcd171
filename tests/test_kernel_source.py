"""The cache around the source text torch.compile collects for each call site of a user
Triton kernel (``ecc_tensor.ops.kernel_source``): one walk of a kernel's helpers, not one per
call site, with the text torch's function gives."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import torch
import triton
import triton.language as tl

from ecc_tensor.ops import kernel_source, mutation_analysis
from ecc_tensor.ops.attention.kernel import _decode_attention_kernel


@triton.jit
def _foreign_kernel(x_ptr, N: tl.constexpr):  # defined outside ecc_tensor: never cached
    tl.store(x_ptr + tl.arange(0, N), tl.zeros([N], tl.float32))


def _torch_function():
    module = importlib.import_module(kernel_source._MODULE)
    function = getattr(module, kernel_source._NAME)
    return getattr(function, "__wrapped__", function)


_ONE_WALK = """
import importlib
import types
from ecc_tensor.ops import kernel_source
from ecc_tensor.ops.attention.kernel import _decode_attention_kernel
from ecc_tensor.ops.fault_kernels import _inject_kernel

module = importlib.import_module(kernel_source._MODULE)
torch_source = getattr(module, kernel_source._NAME)
torch_source = getattr(torch_source, "__wrapped__", torch_source)
calls = []

def counting(kernel, *args, **kwargs):
    calls.append(kernel)
    return torch_source(kernel, *args, **kwargs)

cached = kernel_source.memoized(counting)
expected = torch_source(_decode_attention_kernel)
assert "def _window_partial" in expected and "def _decode_attention_kernel" in expected  # its helpers' source too
for _ in range(3):  # three call sites
    assert cached(_decode_attention_kernel) == expected
assert cached(_decode_attention_kernel, None) == expected and cached(_decode_attention_kernel, epilogue_fusion=None) == expected
assert len(calls) == 1 and cached.hits == 4
assert cached(_inject_kernel) == torch_source(_inject_kernel) and len(calls) == 2  # another kernel, its own text

foreign = types.SimpleNamespace(fn=lambda x_ptr: None)  # another package's kernel (of __main__): torch's function every time
counting_only = kernel_source.memoized(lambda kernel, *args, **kwargs: calls.append(args) or "text")
for _ in range(2):
    counting_only(foreign)
fused = (object(), "@triton.jit\\ndef _decode_attention_kernel(): pass")  # a fused epilogue brings its own source
for _ in range(2):
    counting_only(_decode_attention_kernel, fused)
assert len(calls) == 6
print("ok")
"""


def test_one_walk_per_kernel_with_torch_s_text():
    """Compiled kernels, not the interpreter's (torch reads a JITFunction's source), so in a
    process without ``TRITON_INTERPRET``."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run([sys.executable, "-c", _ONE_WALK], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stdout + result.stderr


def test_installed_when_a_compile_first_analyses_a_kernel_of_this_package(monkeypatch):
    """Not at import (Inductor's module is slow to import): the mutation analysis's cache installs
    it at its first kernel of this package."""
    module = importlib.import_module(kernel_source._MODULE)
    original = _torch_function()
    monkeypatch.setattr(module, kernel_source._NAME, original)
    analysis = mutation_analysis.memoized(lambda kernel, kwargs, tma: {})
    analysis(_foreign_kernel, {"x_ptr": torch.empty(2)}, {})
    assert getattr(module, kernel_source._NAME) is original
    analysis(_decode_attention_kernel, {"q_ptr": torch.empty(2)}, {})
    installed = getattr(module, kernel_source._NAME)
    assert installed is not original and installed.__wrapped__ is original
    assert kernel_source.install() and getattr(module, kernel_source._NAME) is installed  # once
    monkeypatch.setenv("ECC_TENSOR_NO_ANALYSIS_CACHE", "1")
    monkeypatch.setattr(module, kernel_source._NAME, original)
    assert not kernel_source.install() and getattr(module, kernel_source._NAME) is original
