"""``call_op``: the ops called from Python below their custom-op autograd layers in eager mode,
as the ops themselves otherwise (tracing, fake tensors, compile, inputs needing a gradient)."""

import torch
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode

import ecc_tensor.ops as ops
from ecc_tensor.counters import new_counters
from ecc_tensor.metadata import codec_tables
from ecc_tensor.ops.dispatch import call_op


def _attention_args(query=None):
    x = torch.randn(1, 2, 40, 16, generator=torch.Generator().manual_seed(0))
    k, v = ops.quantize_encode(x, "hamming84"), ops.quantize_encode(-x, "hamming84")
    query = torch.randn(1, 4, 1, 16, generator=torch.Generator().manual_seed(1)) if query is None else query
    return (query, *k, *v, *codec_tables("hamming84", "cpu"), "hamming84", 16, 1, True, True, torch.tensor([40]), new_counters("cpu"),
            None, False, 0.25)


def _versions_bumped(query=None):
    """(output, counters, the counters' version after) through the op and through ``call_op``.
    Versions are bumped by the ADInplaceOrView kernels (the op's, and those of the in-place
    writes in its body): below them, none is."""
    results = []
    for call in (lambda *a: torch.ops.ecc.decode_attention(*a), lambda *a: call_op(torch.ops.ecc.decode_attention, *a)):
        args = _attention_args(query)
        out = call(*args)
        results.append((out, args[15], args[15]._version))
    return results


def test_call_op_gives_the_op_result_without_its_inplace_view_kernel():
    """Eager, nothing needing a gradient: the same output and counts as the op, below the
    ADInplaceOrView kernels (the counters' version not bumped)."""
    (want, want_counts, op_version), (got, counts, version) = _versions_bumped()
    assert torch.equal(got, want) and torch.equal(counts, want_counts) and want_counts.sum() > 0
    assert version == 0 < op_version


def test_call_op_dispatches_through_autograd_when_an_input_needs_a_gradient():
    (_, _, op_version), (_, _, version) = _versions_bumped(torch.randn(1, 4, 1, 16, requires_grad=True))
    assert version == op_version


def test_call_op_under_fake_tensors_and_compile():
    """A dispatch mode (fake tensors) sees the op; a compiled function calling it has no graph
    break and the eager result."""
    with FakeTensorMode(allow_non_fake_inputs=True) as mode:
        x = mode.from_tensor(torch.randn(2, 16))
        stored, meta = call_op(torch.ops.ecc.quantize_encode, x, *codec_tables("hamming84", "cpu"), "hamming84", 16, True)
    assert isinstance(stored, FakeTensor) and stored.shape == (2, 16)

    def read(x):
        stored, meta = call_op(torch.ops.ecc.quantize_encode, x, *codec_tables("hamming84", "cpu"), "hamming84", 16, True)
        return call_op(torch.ops.ecc.decode_dequantize, stored, meta, *codec_tables("hamming84", "cpu"), "hamming84", 16, 1, True, False,
                       new_counters("cpu"), torch.float32, None)

    x = torch.randn(3, 16, generator=torch.Generator().manual_seed(2))
    torch._dynamo.reset()
    compiled = torch.compile(read, fullgraph=True, backend="eager")
    assert torch.equal(compiled(x), read(x))
