"""Erasure recovery by temporal-neighbour interpolation, against a per-element reference."""

from __future__ import annotations

import re

import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ecc_tensor.codecs import CODEC_NAMES
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


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seq=st.integers(1, 100), channels=st.integers(1, 20), density=st.sampled_from([0.0, 0.02, 0.3, 0.9, 1.0]),
       runs=st.booleans(), seed=st.integers(0, 2**31))
@example(seq=1, channels=1, density=0.0, runs=False, seed=0)  # a row alone: Triton 3.6 failed to compile it (H200)
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


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seq=st.integers(1, 70), channels=st.integers(1, 9), dtype=st.sampled_from([torch.float32, torch.float16, torch.bfloat16]),
       density=st.sampled_from([0.0, 0.1, 0.6, 1.0]), broadcast=st.booleans(), seed=st.integers(0, 2**31))
def test_interpolate_erasures_where_a_kernel_is_registered_returns_the_tensor_codes_bits(kernel_device, monkeypatch, seq, channels,
                                                                                          dtype, density, broadcast, seed):
    """Along the sequence (dim -2) on a device with the ops' kernel registered (CUDA; here the
    interpreter's CPU too), interpolate_erasures fills a float32 copy with the kernel: the same
    bits as the tensor code in each dtype it takes (a mean in float32, cast), the input left
    as it was."""
    from ecc_tensor import interp
    from ecc_tensor.ops.interp_kernels import interpolate_erasures_

    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(2, 3, seq, channels, generator=g) * 50).to(dtype)
    erased = torch.rand(2, 1 if broadcast else 3, seq, channels, generator=g) < density
    want = interp.interpolate_erasures(x, erased)  # the tensor code: no kernel for the CPU outside this test
    on_device = x.to(kernel_device, copy=True)
    with monkeypatch.context() as m:
        m.setitem(interp._ERASURE_KERNELS, kernel_device, interpolate_erasures_)
        got = interp.interpolate_erasures(on_device, erased.to(kernel_device)).cpu()
    bits = torch.int32 if dtype == torch.float32 else torch.int16
    assert got.dtype == dtype and torch.equal(got.view(bits), want.view(bits))
    assert torch.equal(on_device.cpu().view(bits), x.view(bits))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(codec="hamming84", seq=80, groups=2, lengths="short", density=0.2, seed=1)
@given(codec=st.sampled_from(["hamming84", "golay24", "secded72"]), seq=st.integers(1, 80), groups=st.sampled_from([0, 1, 2, 16]),
       lengths=st.sampled_from(["none", "scalar", "short", "per-sequence"]), density=st.sampled_from([0.01, 0.2, 0.7]),
       seed=st.integers(0, 2**31))
def test_the_kernel_reads_erasures_as_the_decode_left_them(kernel_device, codec, seq, groups, lengths, density, seed):
    """interpolate_decoded's kernel (codeword statuses, per-row group flags, per-sequence
    lengths; Golay's lanes map values to codewords through a table) equals its tensor code,
    also where whole tiles lie past the length (a preallocated cache's unwritten tail)."""
    from ecc_tensor.codecs import STATUS_DETECTED
    from ecc_tensor.interp import interpolate_decoded
    from ecc_tensor.ops.interp_kernels import interpolate_decoded_
    from ecc_tensor.storage import StorageLayout

    head_dim = 16
    layout = StorageLayout(codec, head_dim)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, seq, head_dim, generator=g)
    status = torch.where(torch.rand(2, 3, seq, layout.codewords_per_row, generator=g) < density, STATUS_DETECTED, 1).to(torch.uint8)
    group_erased = torch.rand(2, 3, seq, groups, generator=g) < density / 4 if groups else None
    length = {"none": None, "scalar": torch.tensor(max(seq - 3, 0)), "short": torch.tensor(min(seq, 5)),  # tiles of unwritten rows
              "per-sequence": torch.randint(0, seq + 1, (2, 1), generator=g)}[lengths]
    want = interpolate_decoded(x, status, layout, group_erased, length)
    moved = [None if t is None else t.to(kernel_device) for t in (x, status, group_erased, length)]
    got = interpolate_decoded_(moved[0], moved[1], layout, moved[2], moved[3]).cpu()
    assert torch.equal(got, want)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(codec="golay24", seq=70, groups=2, zero_points=True, lengths="short", dtype=torch.bfloat16, scales="wild", seed=3)
@given(codec=st.sampled_from(["hamming84", "golay24", "secded72"]), seq=st.integers(1, 70), groups=st.sampled_from([0, 1, 2]),
       zero_points=st.booleans(), lengths=st.sampled_from(["none", "short", "per-sequence"]),
       dtype=st.sampled_from([torch.float16, torch.bfloat16]), scales=st.sampled_from(["plain", "wild"]), seed=st.integers(0, 2**31))
def test_the_kernel_interpolates_a_half_precision_output_from_the_decoded_codes(kernel_device, codec, seq, groups, zero_points,
                                                                                 lengths, dtype, scales, seed):
    """Into float16/bfloat16 (``decode_dequantize``'s path): the neighbours dequantized again
    from the INT4 codes and scales give, bit for bit, the tensor code over the float32
    dequantization, cast; also for scales a fault made wild (huge, tiny, negative, inf, NaN)."""
    from ecc_tensor.codecs import STATUS_DETECTED
    from ecc_tensor.interp import interpolate_decoded
    from ecc_tensor.ops.interp_kernels import interpolate_decoded_
    from ecc_tensor.storage import StorageLayout

    head_dim = 16
    layout = StorageLayout(codec, head_dim)
    g = torch.Generator().manual_seed(seed)
    lead = (2, 3, seq)
    codes = torch.randint(0, 16, (*lead, head_dim), generator=g).to(torch.uint8)
    n_groups = max(groups, 1)
    scale = torch.rand(*lead, n_groups, generator=g) * 0.5 + 1e-3
    if scales == "wild":
        wild = torch.tensor([3e38, 1e-40, -2.5, float("inf"), float("nan"), 7e4])
        pick = torch.rand(*lead, n_groups, generator=g) < 0.3
        scale = torch.where(pick, wild[torch.randint(0, len(wild), scale.shape, generator=g)], scale)
    zero = torch.randn(*lead, n_groups, generator=g) * 4 if zero_points else None
    offset = (zero if zero_points else torch.full_like(scale, 8.0)).repeat_interleave(head_dim // n_groups, dim=-1)
    x = (codes.float() - offset) * scale.repeat_interleave(head_dim // n_groups, dim=-1)  # the decode's arithmetic
    status = torch.where(torch.rand(*lead, layout.codewords_per_row, generator=g) < 0.2, STATUS_DETECTED, 1).to(torch.uint8)
    group_erased = torch.rand(*lead, groups, generator=g) < 0.05 if groups else None
    length = {"none": None, "short": torch.tensor(min(seq, 5)), "per-sequence": torch.randint(0, seq + 1, (2, 1), generator=g)}[lengths]
    want = interpolate_decoded(x, status, layout, group_erased, length).to(dtype)
    kept = torch.cat([scale, zero], dim=-1) if zero_points else scale
    moved = [None if t is None else t.to(kernel_device) for t in (x.to(dtype), status, group_erased, length, codes, kept)]
    got = interpolate_decoded_(*moved[:2], layout, *moved[2:4], decoded=(moved[4], moved[5])).cpu()
    nan = got.isnan()
    assert got.dtype == dtype and torch.equal(nan, want.isnan())
    assert torch.equal(got.view(torch.int16)[~nan], want.view(torch.int16)[~nan])


def test_the_kernels_launch_within_cudas_grid_for_a_sequence_of_2m_rows(monkeypatch):
    """A sequence of 65,536 tiles of 32 rows (the codec benchmark's flat 2M rows) launches on one
    grid axis: CUDA caps the others at 65,535 ("invalid argument" on the H200). The launches are
    recorded, not run."""
    from ecc_tensor.ops import interp_kernels

    grids = []

    class Recorder:
        def __getitem__(self, grid):
            grids.append(grid)
            return lambda *args, **kwargs: None

    monkeypatch.setattr(interp_kernels, "wrap_triton", lambda kernel: Recorder())
    seq = 65_536 * 32 + 1
    x = torch.zeros(seq, 1)
    interp_kernels.interpolate_unit_erasures_(x, torch.zeros(seq, 1, dtype=torch.uint8), 1)
    tiles = 65_537
    assert grids == [(-(-tiles // interp_kernels._TILES_PER_SUMMARY),), (tiles,)]
    assert all(len(grid) == 1 or max(grid[1:]) <= 65_535 for grid in grids)


def test_the_decode_paths_kernels_fuse_no_product_into_an_addition_on_hopper(run_compile_tool):
    """Compiled for sm_90a (no GPU needed), the decode and the interpolation from the kept INT4
    codes hold no ``fma.rn.f32``: a product fused into the mean of two neighbours is rounded
    once where PyTorch rounds twice, and the H200 gave -inf where the reference gave NaN (wild
    scales). The interpreter computes each product alone, so only this count sees it on a CPU."""
    result = run_compile_tool("fused_products.py", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    counts = re.findall(r"^(\w+) +(\w+) +([\w-]+) +(\w+) +fma=(\d+)$", result.stdout, re.M)
    assert {(c[0], c[3]) for c in counts} == {(codec, kernel) for codec in CODEC_NAMES for kernel in ("load", "interpolate")}, result.stdout
    assert all(n == "0" for *_, n in counts), result.stdout
