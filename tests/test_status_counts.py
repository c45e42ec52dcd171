"""The fused attention's codeword counts, three in one reduction (``ops/attention/units.py``:
``_status_fields``, ``_sum_counts``): exact against a plain count for every status pattern,
where the packed fields hold the sums and where they would not (the unpacked fallback)."""

from __future__ import annotations

import pytest
import torch
import triton
import triton.language as tl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecc_tensor.ops.attention.units import _status_fields, _sum_counts


@triton.jit
def _count_kernel(k_ptr, v_ptr, out_ptr, N: tl.constexpr, U: tl.constexpr, AT_MOST: tl.constexpr):
    offs = tl.arange(0, N)[:, None] * U + tl.arange(0, U)[None, :]
    k = tl.load(k_ptr + offs)
    v = tl.load(v_ptr + offs)
    corrected, parity_only, detected = _sum_counts(_status_fields(k) + _status_fields(v), AT_MOST)
    u = tl.arange(0, U)
    tl.store(out_ptr + u, corrected)
    tl.store(out_ptr + U + u, parity_only)
    tl.store(out_ptr + 2 * U + u, detected)


def _counts(k: torch.Tensor, v: torch.Tensor, at_most: int, device) -> torch.Tensor:
    n, u = k.shape
    out = torch.empty(3, u, dtype=torch.int32, device=device)
    _count_kernel[(1,)](k.to(device), v.to(device), out, N=n, U=u, AT_MOST=at_most)
    return out.cpu()


def _expected(k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    # status 1 corrected, 3 parity-only, 2 detected, 0 clean; per column, summed over rows
    return torch.stack([((k == s).sum(0) + (v == s).sum(0)) for s in (1, 3, 2)]).to(torch.int32)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])  # the fixture is a constant
@given(seed=st.integers(0, 2**31 - 1), weights=st.lists(st.integers(0, 9), min_size=4, max_size=4).filter(any))
def test_packed_counts_equal_the_plain_counts(seed, weights, kernel_device):
    g = torch.Generator().manual_seed(seed)
    draw = torch.tensor(weights, dtype=torch.float)
    k = torch.multinomial(draw, 16 * 8, replacement=True, generator=g).reshape(16, 8).to(torch.int32)
    v = torch.multinomial(draw, 16 * 8, replacement=True, generator=g).reshape(16, 8).to(torch.int32)
    assert torch.equal(_counts(k, v, 2 * 16, kernel_device), _expected(k, v))


@pytest.mark.parametrize("status", [1, 2, 3])
def test_counts_past_a_field_unpack_before_reducing(status, kernel_device):
    """1,024 codewords of one status in a column: a packed field (ten bits) would wrap to 0 and
    carry into the next; with ``AT_MOST`` at or above 1,024 the sums are unpacked first."""
    k = torch.full((512, 2), status, dtype=torch.int32)
    v = k.clone()
    assert torch.equal(_counts(k, v, 2 * 512, kernel_device), _expected(k, v))
    assert int(_expected(k, v).max()) == 1024
