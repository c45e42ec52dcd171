"""Erasure recovery by temporal-neighbour interpolation, against a per-element reference."""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecc_tensor.interp import interpolate_erasures


def reference(x: torch.Tensor, erased: torch.Tensor) -> torch.Tensor:
    """Per-element loops over a [seq, channels] tensor, straight from the definition in ecc_tensor.interp."""
    out = x.clone()
    seq, channels = x.shape
    for c in range(channels):
        for t in range(seq):
            if not erased[t, c]:
                continue
            before = [u for u in range(t - 1, -1, -1) if not erased[u, c]][:1]
            after = [u for u in range(t + 1, seq) if not erased[u, c]][:1]
            neighbours = [x[u, c] for u in before + after]
            if neighbours:
                out[t, c] = sum(neighbours) / len(neighbours)
    return out


@settings(max_examples=100, deadline=None)
@given(seq=st.integers(1, 12), channels=st.integers(1, 4), density=st.floats(0, 1), seed=st.integers(0, 2**31))
def test_matches_reference(seq, channels, density, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(seq, channels, generator=g)
    erased = torch.rand(seq, channels, generator=g) < density
    assert torch.allclose(interpolate_erasures(x, erased, dim=0), reference(x, erased))


def test_examples():
    x = torch.tensor([10.0, 1.0, 2.0, 30.0, 40.0, 4.0, 50.0]).view(-1, 1)
    erased = torch.tensor([1, 0, 0, 1, 1, 0, 1], dtype=torch.bool).view(-1, 1)
    # t0: only the next neighbour (1); t3, t4: between 2 and 4; t6: only the previous (4).
    assert interpolate_erasures(x, erased, dim=0).view(-1).tolist() == [1.0, 1.0, 2.0, 3.0, 3.0, 4.0, 4.0]


def test_all_erased_is_kept_as_read_and_none_erased_is_identity():
    x = torch.randn(2, 3, 5, 4)
    assert torch.equal(interpolate_erasures(x, torch.ones_like(x, dtype=torch.bool)), x)
    assert torch.equal(interpolate_erasures(x, torch.zeros_like(x, dtype=torch.bool)), x)


def test_batched_layout_uses_the_sequence_axis_only():
    x = torch.randn(2, 3, 6, 4, dtype=torch.float16)
    erased = torch.rand(2, 3, 6, 4) < 0.3
    out = interpolate_erasures(x, erased, dim=-2)
    assert out.dtype == torch.float16
    for b in range(2):
        for h in range(3):
            assert torch.allclose(out[b, h].float(), reference(x[b, h].float(), erased[b, h]), atol=1e-3)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seq=st.integers(1, 100), channels=st.integers(1, 20), density=st.sampled_from([0.0, 0.02, 0.3, 0.9, 1.0]),
       runs=st.booleans(), seed=st.integers(0, 2**31))
def test_the_kernel_interpolates_what_the_tensor_code_does(kernel_device, seq, channels, density, runs, seed):
    """ops/interp_kernels.py bit for bit with interpolate_erasures: tiles of 32 rows, neighbours
    beyond the tile (long runs of erasures, whole erased columns), sequences shorter than a tile."""
    from ecc_tensor.ops.interp_kernels import interpolate_erasures_

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 2, seq, channels, generator=g)
    erased = torch.rand(2, 2, seq, channels, generator=g) < density
    if runs and seq > 3:
        start = int(torch.randint(0, seq - 2, (1,), generator=g))
        erased[:, 1, start : start + 70] = True  # across tiles, to the end of short sequences
    want = interpolate_erasures(x, erased, dim=-2)
    got = interpolate_erasures_(x.to(kernel_device), erased.to(kernel_device)).cpu()
    assert torch.equal(got, want)
