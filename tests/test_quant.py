"""INT4 quantization: range, round-trip error bound, groups, bad input."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ecc_tensor.quant import dequantize_int4, quantize_int4


@settings(max_examples=80, deadline=None)
@given(
    lead=st.lists(st.integers(1, 4), min_size=0, max_size=3),
    groups=st.integers(1, 4),
    group_size=st.sampled_from([1, 2, 3, 8, 32]),
    symmetric=st.booleans(),
    scale=st.floats(1e-3, 1e3),
    seed=st.integers(0, 2**31),
    dtype=st.sampled_from([torch.float32, torch.float16, torch.bfloat16]),
)
def test_roundtrip_within_half_a_step(lead, groups, group_size, symmetric, scale, seed, dtype):
    x = (torch.randn(*lead, groups * group_size, generator=torch.Generator().manual_seed(seed)) * scale).to(dtype)
    q, s, z = quantize_int4(x, group_size, symmetric)
    assert q.dtype == torch.uint8 and q.shape == x.shape and int(q.max()) <= 15
    assert s.shape == (*lead, groups) and s.dtype == torch.float32
    assert (z is None) == symmetric
    y = dequantize_int4(q, s, z)
    step = s.repeat_interleave(group_size, -1)
    assert ((x.float() - y).abs() <= step / 2 * (1 + 1e-5) + 1e-30).all()


def test_symmetric_is_the_papers_formula():
    x = torch.tensor([[-7.0, -3.5, 0.0, 1.0, 7.0]])
    q, s, z = quantize_int4(x)
    assert float(s) == 1.0 and z is None
    assert q.tolist() == [[1, 4, 8, 9, 15]]  # clamp(round(x / s), -8, 7) + 8, ties to even


def test_asymmetric_uses_all_16_levels():
    x = torch.linspace(-1.0, 3.0, 16).reshape(1, 16)
    q, s, z = quantize_int4(x, symmetric=False)
    assert q.tolist() == [list(range(16))]
    assert torch.allclose(dequantize_int4(q, s, z), x, atol=1e-6)


def test_all_zero_group_roundtrips_to_zero():
    for symmetric in (True, False):
        q, s, z = quantize_int4(torch.zeros(2, 8), 4, symmetric)
        assert torch.equal(dequantize_int4(q, s, z), torch.zeros(2, 8))


def test_groups_are_independent():
    x = torch.tensor([[1.0, -1.0, 100.0, -100.0]])
    q, s, _ = quantize_int4(x, group_size=2)
    assert s.tolist() == [pytest.approx([1 / 7, 100 / 7])]


def test_dequantize_dtype():
    q, s, z = quantize_int4(torch.randn(3, 8))
    assert dequantize_int4(q, s, z, dtype=torch.bfloat16).dtype == torch.bfloat16


@pytest.mark.parametrize("group_size", [0, 3, -1, 2.0])
def test_bad_group_size(group_size):
    with pytest.raises(ValueError, match="group_size"):
        quantize_int4(torch.randn(2, 8), group_size)


def test_bad_inputs():
    with pytest.raises(ValueError, match="floating-point"):
        quantize_int4(torch.ones(4, dtype=torch.int32))
    with pytest.raises(ValueError, match="dimension"):
        quantize_int4(torch.tensor(1.0))
    q, s, _ = quantize_int4(torch.randn(2, 8), 4)
    with pytest.raises(ValueError, match="does not match"):
        dequantize_int4(q, s[:1])


def test_zero_point_of_a_group_starting_at_zero_is_positive_zero():
    """Its stored bits are those of +0.0, as the compiled kernel writes them (Triton negates as 0 - x)."""
    q = quantize_int4(torch.tensor([[0.0, 1.0, 2.0], [0.0, 0.0, 0.0]]), symmetric=False)
    assert q.zero.view(torch.int32).flatten().tolist() == [0, 0]
