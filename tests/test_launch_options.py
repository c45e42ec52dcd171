"""Launch options as one kernel object per configuration under torch.compile
(``ecc_tensor.ops.launch_options``). That a compiled model's side table then holds one entry per
kernel and options whatever its layers is checked where kernels can be traced, without Triton's
interpreter: ``tests/test_mutation_analysis.py``, through ``tools/compile_analysis_cost.py``."""

from __future__ import annotations

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
