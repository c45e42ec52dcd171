"""Each ``ecc`` op's kernels as torch's AOTAutograd cache keys them (``ops/op_kernels.py``):
every kernel an op launches is in torch's list for the op, so that a changed kernel is not
loaded from the cache in a graph compiled before the change."""

from __future__ import annotations

import inspect
import sys

import pytest
import torch
from torch._library.triton import get_triton_kernels_for_op
from triton.runtime.autotuner import Autotuner

from ecc_tensor import ops
from ecc_tensor.attention import quantize_encode_channels
from ecc_tensor.codecs import CodecTables
from ecc_tensor.counters import new_counters
from ecc_tensor.faults import FaultModel
from ecc_tensor.fp8 import head_scale, to_e4m3
from ecc_tensor.metadata import codec_tables
from ecc_tensor.ops import library, op_kernels


@pytest.fixture
def launches(monkeypatch):
    """The kernels launched since the list was last cleared, the ops' kernel paths taken on
    CPU tensors (Triton's interpreter)."""
    launched = []
    for name, module in list(sys.modules.items()):
        real = getattr(module, "wrap_triton", None)
        if name.startswith("ecc_tensor.ops") and real is not None:
            def recording(kernel, real=real):
                launched.append(kernel.fn if isinstance(kernel, Autotuner) else kernel)
                return real(kernel)

            monkeypatch.setattr(module, "wrap_triton", recording)
    monkeypatch.setattr(library, "_on_gpu", lambda t: True)
    return launched


def _calls():
    g = torch.Generator().manual_seed(0)
    values = torch.randint(0, 16, (2, 2, 8, 16), dtype=torch.uint8, generator=g)
    stored = ops.encode(values, "hamming84")
    x = torch.randn(2, 2, 64, 32, generator=g)
    k, v = ops.quantize_encode(x, "hamming84"), ops.quantize_encode(-x, "hamming84")
    t = codec_tables("hamming84", "cpu")
    channel_k = quantize_encode_channels(x, 32, CodecTables(*t[:2]), CodecTables(*t[2:]), "hamming84", True)
    query = torch.randn(2, 4, 1, 32, generator=g)
    seq = torch.tensor([64, 40])
    grouped = ops.quantize_encode(x, "secded72", 16)
    fp8 = [(to_e4m3(c * x, scale), scale) for c in (1, -1) for scale in [head_scale(c * x)]]
    attend = dict(seq_lens=seq, counters=new_counters())
    return {
        "ecc::encode": [lambda: ops.encode(values, "hamming84")],
        "ecc::decode": [lambda: ops.decode(stored, "hamming84", 16)],
        "ecc::quantize_encode": [lambda: ops.quantize_encode(x, "hamming84")],
        "ecc::decode_dequantize": [lambda: ops.decode_dequantize(*k, "hamming84", 32, interpolate=True)],
        "ecc::inject": [lambda: ops.inject(stored, 8, FaultModel("bsc", 1e-2, 0), step=0)],
        "ecc::decode_attention": [
            lambda: ops.decode_attention(query, k, v, "hamming84", interpolate=True, **attend),
            lambda: torch.ops.ecc.decode_attention(query, *channel_k, *v, *t, "hamming84", 32, 1, True, True, seq, new_counters(),
                                                   None, False, 32**-0.5, None, key_channel_block=32),
            # Grouped scales over SECDED(72,64), which the fused attention does not read: the codec kernels.
            lambda: ops.decode_attention(query, grouped, grouped, "secded72", groups=2, interpolate=True, **attend),
        ],
        "ecc::fp8_decode_attention": [lambda: ops.fp8_decode_attention(query, *fp8, seq_lens=seq)],
    }


def test_every_kernel_an_op_launches_is_listed_for_it(launches):
    calls = _calls()
    ecc_ops = {f"ecc::{name}" for name in dir(torch.ops.ecc) if isinstance(getattr(torch.ops.ecc, name), torch._ops.OpOverloadPacket)}
    assert set(calls) == set(op_kernels.op_kernels()) == ecc_ops  # every op
    for name, op_calls in calls.items():
        launched = []
        for call in op_calls:
            launches.clear()
            call()
            assert launches, f"{name}: no kernel launched"
            launched += launches
        listed = get_triton_kernels_for_op(name)
        missing = {k.__name__ for k in launched if not any(k is known for known in listed)}
        assert not missing, f"{name} launches {sorted(missing)}, which torch's AOTAutograd cache would not key on"


def test_register_is_idempotent():
    before = {name: list(get_triton_kernels_for_op(name)) for name in op_kernels.op_kernels()}
    assert op_kernels.register()
    for name, kernels in before.items():
        assert len(get_triton_kernels_for_op(name)) == len(kernels) and kernels


def test_no_kernel_parameter_has_a_default():
    """Every kernel an op launches takes each of its parameters from the launcher: Inductor's
    launcher for a user kernel counts a parameter that a call leaves to its default, and the
    compiled call then fails (on the H200, 2026-12-05, a constexpr with a default that the
    launch left out: ``TypeError: launcher() missing 1 required positional argument: '_grid_2'``)."""
    defaulted = {
        f"{kernel.__name__}({param.name})"
        for kernels in op_kernels.op_kernels().values() for kernel in kernels
        for param in inspect.signature(kernel.fn).parameters.values() if param.default is not inspect.Parameter.empty
    }
    assert not defaulted, f"kernel parameters with defaults: {sorted(defaulted)}"
