"""The fused attention's codeword counts, three in one reduction (``ops/attention/status_counts.py``:
``_status_fields``, ``_sum_counts``): exact against a plain count for every status pattern,
where the packed fields hold the sums and where they would not (the unpacked fallback)."""

from __future__ import annotations

import pytest
import torch
import triton
import triton.language as tl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecc_tensor.ops.attention.row_meta import _row_meta
from ecc_tensor.ops.attention.status_counts import _status_fields, _sum_counts


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


@triton.jit
def _row_meta_kernel(meta_ptr, menc_ptr, msyn_ptr, words_ptr, flags_ptr, counts_ptr, n_rows, N: tl.constexpr, MK: tl.constexpr,
                     MPO_SYN: tl.constexpr, HAS_ZERO: tl.constexpr, META_UNITS: tl.constexpr, MUV: tl.constexpr, MUB: tl.constexpr,
                     MRB: tl.constexpr, META_LANES: tl.constexpr):
    rows = tl.arange(0, N)
    row_ok = rows < n_rows
    corrected, parity_only, detected, any_detected, scale, offset = _row_meta(meta_ptr, rows, row_ok, menc_ptr, msyn_ptr, MK, MPO_SYN,
                                                                                HAS_ZERO, META_UNITS, MUV, MUB, MRB, META_LANES)
    tl.store(words_ptr + 2 * rows, scale.to(tl.int32, bitcast=True), mask=row_ok)
    tl.store(words_ptr + 2 * rows + 1, (offset + tl.zeros([N], tl.float32)).to(tl.int32, bitcast=True), mask=row_ok)
    tl.store(flags_ptr + rows, any_detected.to(tl.int32), mask=row_ok)
    tl.store(counts_ptr, corrected)
    tl.store(counts_ptr + 1, parity_only)
    tl.store(counts_ptr + 2, detected)


@pytest.mark.parametrize("symmetric", [True, False])
def test_row_meta_decodes_each_rows_metadata_as_the_reference(symmetric, kernel_device):
    """``row_meta._row_meta``, what every deferred launch with one scale a row reads its rows'
    metadata with: each row's scale and offset (zero point, or 8), whether it holds a detected
    codeword, and the corrected / parity-only / detected counts, against ``MetadataLayout.load``
    over rows with flipped bits (one to four in a codeword: corrected, or detected)."""
    from ecc_tensor.metadata import MetadataLayout, codec_tables
    from ecc_tensor.ops.attention.plan import meta_constants
    from ecc_tensor.ops.codec_kernels import nibble_parity_table

    layout = MetadataLayout("hamming84", 1, symmetric)
    n, rows = 32, 29  # a block's rows, the last three past the sequence
    g = torch.Generator().manual_seed(3 + symmetric)
    scale = torch.rand(n, 1, generator=g) * 0.1
    zero = None if symmetric else torch.rand(n, 1, generator=g) * 15
    _, _, menc, msyn = codec_tables("hamming84", "cpu")
    stored = layout.store(scale, zero)
    # 0-4 bits of one byte's low nibble, so of one Golay codeword: 1-3 corrected, 4 detected
    flips = torch.randint(0, 5, (n,), generator=g)
    stored[torch.arange(n), torch.arange(n) % layout.row_bytes] ^= ((1 << flips) - 1).to(torch.uint8)
    meta = stored.contiguous()
    constants = meta_constants(layout, meta)
    assert constants["META_LANES"] == (8 if symmetric else 16)  # one scale a row: Golay's lanes, read as words
    with pytest.raises(ValueError, match="start on a 32-bit word"):  # the launcher copies such views
        meta_constants(layout, torch.zeros(meta.numel() + 1, dtype=torch.uint8)[1:].view(meta.shape))
    words_ref, status_ref, _ = layout.load(stored[:rows])
    words = torch.zeros(n, 2, dtype=torch.int32, device=kernel_device)
    flags = torch.zeros(n, dtype=torch.int32, device=kernel_device)
    counts = torch.zeros(3, dtype=torch.int32, device=kernel_device)
    _row_meta_kernel[(1,)](meta.to(kernel_device), nibble_parity_table(menc, 12).to(kernel_device), msyn.to(kernel_device), words, flags,
                           counts, rows, N=n, MK=constants["MK"], MPO_SYN=constants["MPO_SYN"], HAS_ZERO=not symmetric,
                           META_UNITS=constants["META_UNITS"], MUV=constants["MUV"], MUB=constants["MUB"], MRB=constants["MRB"],
                           META_LANES=constants["META_LANES"])
    words, flags, counts = words.cpu()[:rows], flags.cpu()[:rows].bool(), counts.cpu()
    assert torch.equal(flags, (status_ref == 2).any(-1))
    assert flags.any() and (status_ref == 1).any()  # both kinds of rows occur
    clean_rows = ~flags  # a detected codeword's nibbles are read as stored, in whatever order
    assert torch.equal(words[clean_rows, 0], words_ref[clean_rows, 0].view(torch.int32))
    offsets = torch.full((rows,), 8.0) if symmetric else words_ref[:, 1]
    assert torch.equal(words[clean_rows, 1], offsets[clean_rows].contiguous().view(torch.int32))
    assert counts.tolist() == [int((status_ref == 1).sum()), int((status_ref == 3).sum()), int((status_ref == 2).sum())]
