"""``ecc_tensor.ops.opaque_ops`` keeps this package's ops opaque under torch.compile, and only them."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch._dynamo.testing import AotEagerAndRecordGraphs
from torch.library import triton_op

import ecc_tensor.ops as ops
from ecc_tensor.metadata import codec_tables
from ecc_tensor.ops import opaque, opaque_ops


@triton_op("ecc_test_other_library::scaled", mutates_args=())
def _other_librarys_op(x: torch.Tensor) -> torch.Tensor:
    return x * 3


def _traced(opaque_on: bool | None) -> str:
    """The AOT graph of a function calling an ``ecc`` op and another library's ``triton_op``
    (``opaque_on`` None: outside ``opaque_ops``)."""
    tables = codec_tables("hamming84", "cpu")

    def step(x):
        stored, meta = torch.ops.ecc.quantize_encode(x, *tables, "hamming84", None, True)
        return stored, meta, torch.ops.ecc_test_other_library.scaled(x)

    torch._dynamo.reset()
    backend = AotEagerAndRecordGraphs()
    x = torch.randn(4, 16)
    with contextlib.nullcontext() if opaque_on is None else opaque_ops(opaque_on, compile_ahead=False):
        got = torch.compile(step, fullgraph=True, backend=backend)(x)
    assert torch.equal(got[2], x * 3)
    return "\n".join(str(g.graph) for g in backend.fw_graphs)


def test_opaque_ops_keep_this_packages_ops_as_calls_and_no_other_librarys():
    """Under ``opaque_ops`` the ``ecc`` op stays a call while another library's ``triton_op``
    is still traced into (its body's ``mul``), as torch's own global switch would not have it;
    without it both are traced into."""
    graph = _traced(True)
    assert "ecc.quantize_encode" in graph
    assert "ecc_test_other_library.scaled" not in graph and "aten.mul" in graph
    graph = _traced(False)
    assert "ecc.quantize_encode" not in graph and "ecc_test_other_library.scaled" not in graph
    assert torch._functorch.config.decompose_custom_triton_ops  # torch's switch, never touched


def test_opaque_ops_tag_the_compile_caches_key_either_way():
    """torch's compile caches key on ``torch.compiler.config.cache_key_tag``: extended within
    ``opaque_ops`` by the way it sets (a user's own tag kept), so that neither way's graphs are
    served for the other's or for the automatic choice's; restored after."""
    before = torch.compiler.config.cache_key_tag
    with opaque_ops(compile_ahead=False):
        assert torch.compiler.config.cache_key_tag == "ecc_tensor.ops.opaque_ops"
    with torch.compiler.config.patch(cache_key_tag="mine"), opaque_ops(compile_ahead=False):
        assert torch.compiler.config.cache_key_tag == "mine+ecc_tensor.ops.opaque_ops"
    with opaque_ops(False):
        assert torch.compiler.config.cache_key_tag == "ecc_tensor.ops.inlined_ops"
    assert torch.compiler.config.cache_key_tag == before


@pytest.mark.parametrize("cudagraphs", [True, False])
def test_outside_opaque_ops_the_ops_are_opaque_where_inductor_compiles_for_cuda_graphs(monkeypatch, cudagraphs):
    """The automatic choice: with ``torch._inductor.config.triton.cudagraphs`` on (as
    ``torch.compile(mode="reduce-overhead")`` has it while it compiles) the ``ecc`` op stays a
    call and its kernels are to compile ahead for the rest of the process; off, it is traced
    into. ``opaque_ops(False)`` inlines it with graphs too. Other libraries' ops are traced into
    either way."""
    import torch._inductor.config as inductor_config

    made = []
    monkeypatch.setattr(opaque._ahead, "compile_ahead_from_now_on", lambda: made.append(True))  # no pool kept in the test process
    with inductor_config.patch({"triton.cudagraphs": cudagraphs}):
        assert opaque.opaque_now() is cudagraphs
        graph = _traced(None)
        assert ("ecc.quantize_encode" in graph) is cudagraphs
        assert "ecc_test_other_library.scaled" not in graph
        assert bool(made) is cudagraphs
        assert "ecc.quantize_encode" not in _traced(False)
    assert not opaque.opaque_now()  # Inductor's default: no CUDA graphs


def test_every_ecc_op_is_scoped():
    """``library.OPS`` (what ``opaque.install`` wraps) is every op of the ``ecc`` namespace."""
    names = {f"ecc::{name}" for name in dir(torch.ops.ecc) if isinstance(getattr(torch.ops.ecc, name), torch._ops.OpOverloadPacket)}
    assert {op._qualname for op in ops.library.OPS} == names == set(ops.op_kernels.op_kernels())


def test_opaque_ops_say_so_where_torch_registers_no_rule_to_wrap(monkeypatch):
    assert not opaque.install((_Bare(),))
    monkeypatch.setattr(opaque, "_installed", False)
    with pytest.raises(RuntimeError, match="functionalization"), opaque_ops():
        pass


class _Bare:
    """An op definition without torch's functionalization rule."""
    _torch_dispatch_fns: dict = {}
