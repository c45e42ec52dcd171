"""The cache around torch.compile's mutation analysis of user Triton kernels
(``ecc_tensor.ops.mutation_analysis``): one analysis per kernel specialization, not per call site."""

from __future__ import annotations

import importlib

import pytest
import torch
import triton
import triton.language as tl

from ecc_tensor.ops import codec_kernels, mutation_analysis


@triton.jit
def _foreign_kernel(x_ptr, N: tl.constexpr):  # defined outside ecc_tensor: never cached
    tl.store(x_ptr + tl.arange(0, N), tl.zeros([N], tl.float32))


def _counting():
    calls = []

    def analysis(kernel, kwargs, tma_descriptor_metadata):
        calls.append(kernel)
        return {"writes": [name for name, v in kwargs.items() if isinstance(v, torch.Tensor)]}

    return calls, mutation_analysis.memoized(analysis)


def test_one_analysis_per_kernel_constexprs_and_argument_types():
    calls, cached = _counting()
    kernel = codec_kernels._load_kernel
    site = lambda **over: {"stored_ptr": torch.empty(4, dtype=torch.uint8), "out_ptr": torch.empty(2), "R": 7, "D": 128, **over}  # noqa: E731
    first = cached(kernel, site(), {})
    assert cached(kernel, site(), {}) == first and len(calls) == 1  # another call site: new tensors, same types
    assert cached.hits == 1
    cached(kernel, site(D=64), {})  # another constexpr
    cached(kernel, site(out_ptr=torch.empty(2, dtype=torch.float16)), {})  # another dtype
    cached(kernel, site(R=1), {})  # another scalar: Triton specializes on some values
    assert len(calls) == 4
    cached(kernel, site(R=1), {})
    assert len(calls) == 4 and cached.hits == 2
    import sympy

    cached(kernel, site(R=sympy.Symbol("s0")), {})  # a symbolic size: the IR takes 2 for it, whatever the symbol
    cached(kernel, site(R=sympy.Symbol("s1") + 1), {})
    assert len(calls) == 5 and cached.hits == 3


def test_a_kernel_launched_with_launch_options_is_analysed_once():
    """torch wraps a kernel launched with ``num_warps`` (or ``maxnreg``) in a new one-config
    Autotuner at every call site; the analysis depends on the kernel and that config's
    constexprs, not on the Autotuner, so every layer's call site after the first is answered
    from the cache (keyed on the Autotuner, the fused attention's analysis ran once per call
    site and was most of a protected model's trace: tools/compile_analysis_cost.py)."""
    from triton.runtime.autotuner import Autotuner

    calls, cached = _counting()
    kernel = codec_kernels._load_kernel

    def call_site(**constexprs):  # as torch builds it for a launch with num_warps=4
        return Autotuner(kernel, kernel.arg_names, [triton.Config(constexprs, num_warps=4)], [], None, None)

    args = {"stored_ptr": torch.empty(4, dtype=torch.uint8), "R": 7}
    for _ in range(3):
        cached(call_site(), args, {})
    assert len(calls) == 1 and cached.hits == 2
    cached(call_site(D=64), args, {})  # a config's constexprs reach the IR
    assert len(calls) == 2
    cached(kernel, args, {})  # the bare kernel: the IR without the config's constexprs
    assert len(calls) == 3


def test_a_compiled_decoding_step_analyses_each_kernel_once_whatever_its_layers(run_compile_tool):
    """A tiny Llama's decoding step over an ECCCache compiled (aot_eager, the ops routed to
    their Triton kernels, no GPU needed): torch's analysis runs once per kernel specialization,
    as many times at three layers as at one, and torch's kernel side table holds one entry per
    kernel and launch options (``ops/launch_options.py``), not one per call site."""
    import json

    result = run_compile_tool("compile_analysis_cost.py", "--modes", "int4-secded72", "--layers", "1", "3", "--json", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    one, three = (json.loads(line) for line in result.stdout.splitlines() if line.startswith("{"))
    assert one["generated"] == three["generated"] > 0, (one, three)
    assert one["kernels"] == three["kernels"] > 0, (one, three)
    assert three["cached"] > one["cached"] > 0


def test_results_are_copies_and_the_rest_goes_to_torch():
    calls, cached = _counting()
    kernel = codec_kernels._load_kernel
    got = cached(kernel, {"x": torch.empty(1)}, {})
    got["writes"].append("changed")
    assert cached(kernel, {"x": torch.empty(1)}, {}) == {"writes": ["x"]}
    for _ in range(2):
        cached(_foreign_kernel, {"x_ptr": torch.empty(1), "N": 4}, {})  # not this package's
        cached(kernel, {"x": torch.empty(1)}, {"x": ("stable", ([4],))})  # TMA descriptors
        cached(kernel, {"x": torch.empty(1), "table": [1, 2]}, {})  # unhashable
    assert len(calls) == 1 + 6


def test_install_wraps_torchs_function_once_unless_turned_off(monkeypatch):
    module = importlib.import_module(mutation_analysis._MODULE)
    name = next(n for n in mutation_analysis._NAMES if hasattr(module, n))
    installed = getattr(module, name)
    assert getattr(installed, "cache", None) is not None  # by importing ecc_tensor.ops
    assert mutation_analysis.current() is installed
    assert mutation_analysis.install() and getattr(module, name) is installed
    monkeypatch.setattr(module, name, installed.__wrapped__)
    monkeypatch.setenv("ECC_TENSOR_NO_ANALYSIS_CACHE", "1")
    assert not mutation_analysis.install() and getattr(module, name) is installed.__wrapped__


@pytest.mark.skipif(not torch.cuda.is_available(), reason="torch.compile of Triton kernels needs CUDA")
def test_a_compiled_model_analyses_each_kernel_once():
    """Two layers compiled: the second layer's call sites are answered from the cache."""
    from ecc_tensor import ECCInt4Tensor

    cached = mutation_analysis.current()
    torch._dynamo.reset()
    cached.cache.clear()
    hits = cached.hits
    x = torch.randn(2, 4, 64, 128, device="cuda", dtype=torch.float16)
    fn = lambda x: ECCInt4Tensor.from_float(x, "hamming84").dequantize() + ECCInt4Tensor.from_float(2 * x, "hamming84").dequantize()  # noqa: E731
    assert torch.equal(torch.compile(fn, fullgraph=True)(x), fn(x))
    assert cached.hits > hits and len(cached.cache) > 0


def test_no_kernel_seems_to_write_an_input_of_its_op(run_compile_tool):
    """torch's analysis of what each kernel writes (``tools/kernel_writes.py``: each op the cache
    runs, compiled per codec and head_dim, the analysis done for Hopper without a GPU) names no
    input of the op but the counters: a tensor it named would be copied whole
    before every launch. The stored codewords and the syndrome table once were, for SECDED(72,64),
    through a helper that returned the store's columns with the decoded values, and the query
    of the window's and FP8's attention, through one that returned its rows with the loaded tile."""
    import json

    from ecc_tensor.codecs import CODEC_NAMES

    result = run_compile_tool("kernel_writes.py", "--head-dims", "32", "128", "--json", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    launches = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    ops = ("encode", "dequantize", "interpolate", "inject", "attention", "channel-attention")
    assert {(x["op"], x["codec"]) for x in launches} == {(op, c) for op in ops for c in CODEC_NAMES} | {("fp8-attention", "fp8")}
    assert {"_store_kernel", "_load_kernel", "_interpolate_kernel", "_inject_kernel", "_decode_attention_kernel",
            "_fp8_decode_attention_kernel", "_combine_splits_kernel"} <= {x["kernel"] for x in launches}
    grouped = run_compile_tool("kernel_writes.py", "--head-dims", "128", "--group-size", "32", "--asymmetric", "--ops", "dequantize",
                               "interpolate", "attention", "--json", timeout=600)
    assert grouped.returncode == 0, grouped.stderr[-3000:]
    launches += [json.loads(line) for line in grouped.stdout.splitlines() if line.startswith("{")]
    assert [x for x in launches if x["inputs_written"]] == []
