"""Golay's lane layout (ecc_tensor.lanes): the reference's maps, and the kernels' arithmetic
that recomputes them from head_dim."""

from __future__ import annotations

import pytest
import torch
import triton
import triton.language as tl
from hypothesis import given, settings
from hypothesis import strategies as st

from ecc_tensor import lanes
from ecc_tensor.ops import codec_kernels
from ecc_tensor.storage import StorageLayout

HEAD_DIMS = list(range(1, 70)) + [80, 96, 100, 112, 127, 128, 129, 160, 200, 255, 256]


@pytest.mark.parametrize("head_dim", HEAD_DIMS)
def test_every_value_in_one_codeword_and_every_parity_nibble_in_one_place(head_dim):
    layout = lanes.lane_layout(head_dim)
    values = lanes.unit_values(head_dim)
    parity = lanes.unit_parity_nibbles(head_dim)
    assert sorted(values[values >= 0].tolist()) == list(range(head_dim))
    assert (values >= 0).any(-1).all()  # no codeword of padding only
    assert parity.flatten().unique().numel() == parity.numel()
    assert parity.min() >= 8 * layout.data_words and parity.max() < 8 * layout.row_words
    assert layout.row_words % 2 == 0  # whole 8-byte units
    assert -(-head_dim // 3) <= layout.units <= -(-head_dim // 3) + 2  # few padding slots
    assert torch.equal(lanes.value_units(head_dim), torch.tensor([int((values == v).any(-1).nonzero()) for v in range(head_dim)]))


def test_head_dim_128_is_43_codewords_in_136_bytes():
    layout = StorageLayout("golay24", 128)
    assert layout.units == 43 and layout.row_bytes == 136


@settings(max_examples=40, deadline=None)
@given(head_dim=st.sampled_from(HEAD_DIMS), seed=st.integers(0, 2**31 - 1))
def test_round_trip_and_any_single_flip_is_corrected(head_dim, seed):
    layout = StorageLayout("golay24", head_dim)
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 16, (3, head_dim), dtype=torch.uint8, generator=g)
    stored = layout.store(x)
    values, status = layout.load(stored)
    assert torch.equal(values, x) and not status.any()
    bits = 8 * layout.row_bytes
    flipped = stored[:1].repeat(bits, 1)
    flipped[torch.arange(bits), torch.arange(bits) // 8] ^= (1 << (torch.arange(bits) % 8)).to(torch.uint8)
    values, status = layout.load(flipped)
    assert torch.equal(values, x[:1].expand(bits, -1)) and not status.eq(2).any()


@triton.jit
def _lane_maps_kernel(values_ptr, parity_ptr, owner_ptr, D: tl.constexpr, U: tl.constexpr, BLOCK_U: tl.constexpr,
                      NIBBLES: tl.constexpr):
    u = tl.arange(0, BLOCK_U)
    ok = u < U
    for i in tl.static_range(3):
        tl.store(values_ptr + u * 3 + i, codec_kernels._lane_value(u, i, D), mask=ok)
        tl.store(parity_ptr + u * 3 + i, codec_kernels._lane_parity_nibble(u, i, D), mask=ok)
    n = tl.arange(0, NIBBLES)
    unit, t, owned = codec_kernels._lane_parity_owner(n, D)
    tl.store(owner_ptr + n, tl.where(owned, unit * 3 + t, -1))


@pytest.mark.parametrize("head_dim", HEAD_DIMS)
def test_kernel_arithmetic_is_the_reference_layout(head_dim, kernel_device):
    """The kernels place codewords from head_dim alone: value slots (head_dim for padding),
    parity nibbles, and the inverse (parity nibble -> codeword, nibble) the store kernel uses."""
    layout = lanes.lane_layout(head_dim)
    units, nibbles = layout.units, 8 * layout.row_words
    values = torch.empty(units * 3, dtype=torch.int32, device=kernel_device)
    parity = torch.empty_like(values)
    owner = torch.empty(triton.next_power_of_2(nibbles), dtype=torch.int32, device=kernel_device)
    _lane_maps_kernel[(1,)](values, parity, owner, D=head_dim, U=units, BLOCK_U=triton.next_power_of_2(units),
                            NIBBLES=owner.numel())
    want_values = lanes.unit_values(head_dim)
    want_parity = lanes.unit_parity_nibbles(head_dim)
    assert torch.equal(values.cpu().long().view(units, 3), torch.where(want_values >= 0, want_values, head_dim))
    assert torch.equal(parity.cpu().long().view(units, 3), want_parity)
    want_owner = torch.full((owner.numel(),), -1, dtype=torch.int64)
    want_owner[want_parity.flatten()] = torch.arange(units * 3)
    assert torch.equal(owner.cpu().long(), want_owner)


@pytest.mark.parametrize("head_dim", [8, 16])
def test_metadata_rows_compile_time_places_are_the_reference_layout(head_dim):
    """A metadata row (one scale group: 8 or 16 nibbles) in the lane layout: the kernels'
    compile-time value and parity places of each codeword are LaneLayout.unit's."""
    from ecc_tensor.ops.codec_kernels import _lane_unit_parity, _lane_unit_value

    layout = lanes.lane_layout(head_dim)
    for u in range(layout.units):
        values, parity = layout.unit(u)
        assert [_lane_unit_value.fn(head_dim, u, i) for i in range(3)] == values
        assert [_lane_unit_parity.fn(head_dim, u, t) for t in range(3)] == parity
