"""The one-byte codes decoded four codewords a word (``ops/byte_words.py``: ``_word_decode``,
which the word path's deferred launch reads its blocks with) and its statuses counted a word at
a time (``ops/attention/status_counts.py``: ``_status_word_fields``): every byte value in every
position of a word against the codec's own decode and the kernels' codeword-at-a-time decode
(``units._decode_units``); on CUDA through PTX's byte permutes, in the interpreter without."""

from __future__ import annotations

import pytest
import torch
import triton
import triton.language as tl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecc_tensor.codecs import get_codec
from ecc_tensor.ops.attention.status_counts import _status_word_fields, _sum_counts
from ecc_tensor.ops.attention.units import _decode_units
from ecc_tensor.ops.byte_words import _word_decode, nibble_constants
from ecc_tensor.ops.codec_kernels import parity_only_syndrome


@triton.jit
def _word_decode_kernel(words_ptr, data_ptr, status_ptr, unit_data_ptr, unit_status_ptr, n, C0: tl.constexpr, C1: tl.constexpr,
                        C2: tl.constexpr, C3: tl.constexpr, PBITS: tl.constexpr, PAR_LO: tl.constexpr, PAR_HI: tl.constexpr,
                        FLIP_LO: tl.constexpr, FLIP_HI: tl.constexpr, DET: tl.constexpr, PO_SYN: tl.constexpr, PTX: tl.constexpr,
                        BLOCK: tl.constexpr):
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    ok = i < n
    words = tl.load(words_ptr + i, mask=ok, other=0)
    data, status = _word_decode(words, C0, C1, C2, C3, PBITS, FLIP_LO, FLIP_HI, DET, PO_SYN, PTX)
    tl.store(data_ptr + i, data, mask=ok)
    tl.store(status_ptr + i, status, mask=ok)
    for b in tl.static_range(4):  # each byte by the codeword-at-a-time decode
        unit = ((words >> (8 * b)) & 0xFF).to(tl.int32)
        d, s = _decode_units(unit, None, None, None, 4, True, True, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS, PO_SYN)
        tl.store(unit_data_ptr + 4 * i + b, d, mask=ok)
        tl.store(unit_status_ptr + 4 * i + b, s, mask=ok)


def _bytes(words: torch.Tensor) -> torch.Tensor:
    """int32 words -> their four bytes, ``[n * 4]`` int64, byte 0 first."""
    w = words.cpu().to(torch.int64) & 0xFFFFFFFF
    return torch.stack([(w >> (8 * b)) & 0xFF for b in range(4)], 1).flatten()


def _every_byte_everywhere(seed: int) -> torch.Tensor:
    """Words holding each byte value in each of the four positions, the other bytes random, then
    random words: int32."""
    g = torch.Generator().manual_seed(seed)
    value = torch.arange(256).repeat_interleave(4)
    position = torch.arange(4).repeat(256)
    others = torch.randint(0, 2**32, (value.numel(),), generator=g, dtype=torch.int64)
    words = (others & ~(0xFF << (8 * position))) | (value << (8 * position))
    words = torch.cat([words, torch.randint(0, 2**32, (2048,), generator=g, dtype=torch.int64)])
    return torch.where(words >= 2**31, words - 2**32, words).to(torch.int32)


@pytest.mark.parametrize("codec", ["hamming74", "hamming84"])
def test_word_decode_is_each_codewords_decode(codec, kernel_device):
    """Data and status of every codeword of every word, as the codec decodes it and as the
    kernels' codeword-at-a-time decode does (which also tells parity-only, 3, from corrected)."""
    c = nibble_constants(codec)
    code = get_codec(codec)
    words = _every_byte_everywhere(0).to(kernel_device)
    n = words.numel()
    data, status = torch.empty_like(words), torch.empty_like(words)
    unit_data = torch.empty(4 * n, dtype=torch.int32, device=kernel_device)
    unit_status = torch.empty_like(unit_data)
    _word_decode_kernel[(triton.cdiv(n, 512),)](
        words.view(torch.uint32), data, status, unit_data, unit_status, n, c["C0"], c["C1"],
        c["C2"], c["C3"], c["PBITS"], c["PAR_LO"], c["PAR_HI"], c["FLIP_LO"], c["FLIP_HI"], c["DET"], parity_only_syndrome(code),
        kernel_device == "cuda", 512)
    got_data, got_status = _bytes(data), _bytes(status)
    assert torch.equal(got_data, unit_data.cpu().to(torch.int64))
    assert torch.equal(got_status, unit_status.cpu().to(torch.int64))
    codewords = _bytes(words)
    if codec == "hamming74":
        codewords = codewords & 0x7F  # bit 7 of a byte is no codeword bit
    values, statuses = code.decode(codewords.to(torch.uint8))
    assert torch.equal(got_data, values.to(torch.int64))
    assert torch.equal(torch.where(got_status == 3, 1, got_status), statuses.to(torch.int64))  # the codec reads parity-only as 1
    assert set(got_status.unique().tolist()) == ({0, 1} if codec == "hamming74" else {0, 1, 2, 3})


@triton.jit
def _word_counts_kernel(k_ptr, v_ptr, out_ptr, N: tl.constexpr, W: tl.constexpr):
    offs = tl.arange(0, N)[:, None] * W + tl.arange(0, W)[None, :]
    corrected, parity_only, detected = _sum_counts(_status_word_fields(tl.load(k_ptr + offs)) + _status_word_fields(tl.load(v_ptr + offs)),
                                                   8 * N)
    w = tl.arange(0, W)
    tl.store(out_ptr + w, corrected)
    tl.store(out_ptr + W + w, parity_only)
    tl.store(out_ptr + 2 * W + w, detected)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])  # the fixture is a constant
@given(seed=st.integers(0, 2**31 - 1), weights=st.lists(st.integers(0, 9), min_size=4, max_size=4).filter(any))
def test_word_counts_are_each_bytes_status_counted(seed, weights, kernel_device):
    """A word's four byte statuses (0 clean, 1 corrected, 2 detected, 3 parity-only) counted
    by ``_status_word_fields``, summed over rows, K and V: each word column's plain counts."""
    g = torch.Generator().manual_seed(seed)
    draw = torch.tensor(weights, dtype=torch.float)
    n, w = 32, 8
    k, v = (torch.multinomial(draw, n * w * 4, replacement=True, generator=g).reshape(n, w, 4) for _ in range(2))
    pack = lambda s: (s[..., 0] | s[..., 1] << 8 | s[..., 2] << 16 | s[..., 3] << 24).to(torch.int32)  # noqa: E731
    out = torch.empty(3, w, dtype=torch.int32, device=kernel_device)
    _word_counts_kernel[(1,)](pack(k).to(kernel_device), pack(v).to(kernel_device), out, N=n, W=w)
    expected = torch.stack([((k == s).sum((0, 2)) + (v == s).sum((0, 2))) for s in (1, 3, 2)]).to(torch.int32)
    assert torch.equal(out.cpu(), expected)
