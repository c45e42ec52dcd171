"""Launch options as one kernel object per configuration under torch.compile
(``ecc_tensor.ops.launch_options``). That a compiled model's side table then holds one entry per
kernel and options whatever its layers is checked where kernels can be traced, without Triton's
interpreter: ``tests/test_mutation_analysis.py``, through ``tools/compile_analysis_cost.py``."""

from __future__ import annotations

import pytest
from torch._library.triton import set_wrap_triton_enabled
from torch._subclasses.fake_tensor import FakeTensorMode

from ecc_tensor.ops import launch_options
from ecc_tensor.ops.attention.kernel import _decode_attention_kernel


def test_eager_launches_take_their_options_as_keywords():
    with set_wrap_triton_enabled(False), FakeTensorMode():  # as a triton_op's eager body runs, even inside a trace
        kernel, options = launch_options.kernel_and_options(_decode_attention_kernel, 4, 2, 128)
        assert kernel is _decode_attention_kernel and options == dict(num_warps=4, num_stages=2, maxnreg=128)
        assert launch_options.kernel_and_options(_decode_attention_kernel, 1) == (_decode_attention_kernel, dict(num_warps=1))


def test_direct_calls_outside_tracing_take_their_options_as_keywords():
    # torch's wrapper on (its default), no tracing: a launcher called directly runs the kernel
    assert launch_options.kernel_and_options(_decode_attention_kernel, 4, 2) == (_decode_attention_kernel, dict(num_warps=4, num_stages=2))


def test_traced_one_autotuner_per_configuration():
    with FakeTensorMode():  # as torch.compile traces an op's body
        first, options = launch_options.kernel_and_options(_decode_attention_kernel, 4, 2, 128)
        assert options == {} and first.fn is _decode_attention_kernel and len(first.configs) == 1
        config = first.configs[0]
        assert (config.num_warps, config.num_stages, config.maxnreg, config.kwargs) == (4, 2, 128, {})
        assert launch_options.kernel_and_options(_decode_attention_kernel, 4, 2, 128)[0] is first
        assert launch_options.kernel_and_options(_decode_attention_kernel, 4, 3, 128)[0] is not first


def test_dependent_launches_only_on_cuda_gpus_from_hopper():
    import torch

    assert not launch_options.dependent_launches(torch.device("cpu"))
    assert launch_options.dependent_launches(torch.device("meta")) == 0


def test_dependent_launches_only_where_turned_on(monkeypatch):
    monkeypatch.setattr(launch_options, "DEPENDENT_LAUNCHES", True)
    monkeypatch.setattr(launch_options, "_capability_at_least_hopper", lambda index: True)
    monkeypatch.setattr(launch_options.torch.version, "hip", None)
    assert launch_options.dependent_launches(launch_options.torch.device("cuda", 0)) == 1  # GDC: wait, then let the next start
    monkeypatch.setattr(launch_options, "LAUNCH_DEPENDENTS_AT", "end")
    assert launch_options.dependent_launches(launch_options.torch.device("cuda", 0)) == 2  # GDC: wait; let the next start late
    monkeypatch.setattr(launch_options, "LAUNCH_DEPENDENTS_AT", "midway")
    with pytest.raises(ValueError, match="LAUNCH_DEPENDENTS_AT"):
        launch_options.dependent_launches(launch_options.torch.device("cuda", 0))
    monkeypatch.setattr(launch_options, "DEPENDENT_LAUNCHES", False)
    assert not launch_options.dependent_launches(launch_options.torch.device("cuda", 0))


def test_dependent_launch_keyword_where_the_kernel_runs():
    assert launch_options.dependent_option(True) == {"launch_pdl": True} and launch_options.dependent_option(False) == {}
    kernel, options = launch_options.kernel_and_options(_decode_attention_kernel, 4, 2, dependent=True)
    assert kernel is _decode_attention_kernel and options == dict(num_warps=4, num_stages=2, launch_pdl=True)
    with set_wrap_triton_enabled(False), FakeTensorMode():  # a triton_op's eager body
        assert launch_options.dependent_option(True) == {"launch_pdl": True}


def test_traced_dependent_launches_stay_plain():
    with FakeTensorMode():  # torch.compile's trace: one triton.Config, which carries no launch_pdl
        assert launch_options.dependent_option(True) == {}
        tuner, options = launch_options.kernel_and_options(_decode_attention_kernel, 4, 2, dependent=True)
        assert options == {} and tuner is launch_options.kernel_and_options(_decode_attention_kernel, 4, 2)[0]
