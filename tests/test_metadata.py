"""Whole-footprint protection: the scales and zero points stored in Golay codewords (every mode
with a code), faults that strike them, the fp16 oracle, and counting as the paper does."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ecc_tensor import counters as C
from ecc_tensor.codecs import STATUS_CLEAN, STATUS_CORRECTED, STATUS_DETECTED, STATUS_PARITY_ONLY, get_codec
from ecc_tensor.faults import METADATA_ADDRESS, FaultModel
from ecc_tensor.interp import interpolate_erasures
from ecc_tensor.metadata import METADATA_CODEC, MetadataLayout, metadata_codec
from ecc_tensor.modes import get_mode
from ecc_tensor.quant import dequantize_int4, quantize_int4
from ecc_tensor.simulate import roundtrip
from ecc_tensor.storage import StorageLayout

PROTECTED = ("hamming74", "hamming84", "golay24")
SPECIAL = [1.0, -0.0, 3.4e38, 1.2e-38, 1e-45, float("inf"), 0.07142857, 7.0, -2.5]


def scale_words(n: int, seed: int = 0) -> torch.Tensor:
    """``n >= 9`` float32 words: special values, then random bit patterns (NaNs included)."""
    g = torch.Generator().manual_seed(seed)
    bits = torch.randint(-(2**31), 2**31, (n - len(SPECIAL),), generator=g, dtype=torch.int64).to(torch.int32)
    return torch.cat([torch.tensor(SPECIAL, dtype=torch.float32), bits.view(torch.float32)])


def flip_bit(meta: torch.Tensor, bit: int) -> torch.Tensor:
    out = meta.clone()
    out[..., bit // 8] ^= 1 << (bit % 8)
    return out


def exposed_bits(layout: MetadataLayout) -> list[int]:
    per_byte = layout.exposed_bits_per_byte
    return [8 * b + i for b in range(layout.row_bytes) for i in range(per_byte)]


# -- the stored form ------------------------------------------------------------------------
@pytest.mark.parametrize("codec", PROTECTED + ("int4",))
@pytest.mark.parametrize("groups,symmetric", [(1, True), (1, False), (3, True), (2, False)])
def test_metadata_roundtrip_is_bit_exact(codec, groups, symmetric):
    layout = MetadataLayout(codec, groups, symmetric)
    words = scale_words(40 * layout.words).reshape(-1, layout.words)
    scale, zero = layout.split(words)
    stored = layout.store(scale, zero)
    assert stored.dtype == torch.uint8 and stored.shape[-1] == layout.row_bytes
    read, status, erased = layout.load(stored)
    assert torch.equal(read.view(torch.int32), words.view(torch.int32))
    assert (status == STATUS_CLEAN).all() and not erased.any()


def test_int4_metadata_is_the_float32_itself():
    scale = scale_words(30).reshape(-1, 1)
    assert torch.equal(MetadataLayout("int4").store(scale), scale.view(torch.uint8).reshape(-1, 4))


@pytest.mark.parametrize("codec,row_bytes,asymmetric,grouped", [
    ("int4", 4, 8, 12),
    # Golay whatever the values' code: lanes for one group (whole words), 3-byte codewords for several
    ("hamming74", 16, 24, 24), ("hamming84", 16, 24, 24), ("golay24", 16, 24, 24),
])
def test_metadata_bytes_per_row(codec, row_bytes, asymmetric, grouped):
    assert metadata_codec(codec) == ("int4" if codec == "int4" else METADATA_CODEC)
    assert MetadataLayout(codec).row_bytes == row_bytes
    assert MetadataLayout(codec, 1, symmetric=False).row_bytes == asymmetric
    assert MetadataLayout(codec, 3).row_bytes == grouped


@pytest.mark.parametrize("codec", PROTECTED)
def test_every_single_flip_of_a_stored_scale_is_corrected(codec):
    """Every exposed bit of the stored scale, flipped alone, for special and random scales."""
    layout = MetadataLayout(codec, 1, symmetric=False)
    words = scale_words(60).reshape(-1, 2)
    stored = layout.store(*layout.split(words))
    for bit in exposed_bits(layout):
        read, status, erased = layout.load(flip_bit(stored, bit))
        assert torch.equal(read.view(torch.int32), words.view(torch.int32)), bit
        assert not erased.any() and not (status == STATUS_DETECTED).any()
        fixed = int(((status == STATUS_CORRECTED) | (status == STATUS_PARITY_ONLY)).sum())
        # One codeword per row corrected; only a stored bit no codeword uses (Golay's lane
        # padding) leaves every codeword clean, and never a bit of the words themselves.
        assert fixed == stored.shape[0] or (fixed == 0 and bit >= 32 * layout.words)


def flip_patterns(stored: torch.Tensor, patterns: torch.Tensor) -> torch.Tensor:
    """Row ``i`` of the result: ``stored[i % len(stored)]`` with the bits of ``patterns[i]``
    (``[N, w]`` bit indices) flipped."""
    rows = stored[torch.arange(patterns.shape[0]) % stored.shape[0]].clone()
    for j in range(patterns.shape[1]):
        byte, bit = patterns[:, j] // 8, patterns[:, j] % 8
        rows[torch.arange(rows.shape[0]), byte] ^= (1 << bit).to(torch.uint8)
    return rows


@pytest.mark.parametrize("flips", [2, 3])
def test_every_double_and_triple_flip_of_a_stored_scale_is_corrected(flips):
    """Exhaustive over the 16 stored bytes of a scale (whatever the values' code): Golay
    corrects three flips a codeword, so any two or three flips in a row are corrected. (The
    values' Hamming(8,4), which first stored the scales, miscorrects three flips in one
    codeword silently.)"""
    layout = MetadataLayout("hamming84")
    words = scale_words(31).reshape(-1, 1)
    stored = layout.store(words)
    patterns = torch.tensor(list(itertools.combinations(exposed_bits(layout), flips)))
    read, status, erased = layout.load(flip_patterns(stored, patterns))
    want = words[torch.arange(patterns.shape[0]) % words.shape[0]]
    assert not erased.any() and not (status == STATUS_DETECTED).any()
    assert torch.equal(read.view(torch.int32), want.view(torch.int32))


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31), symmetric=st.booleans(), groups=st.sampled_from([1, 3]))
def test_four_flips_of_a_stored_scale_are_never_silent(seed, symmetric, groups):
    """Any four flips in a row's metadata are corrected or detected: a scale read is either
    right or erased (50,000 random patterns a case)."""
    layout = MetadataLayout("hamming84", groups, symmetric)
    g = torch.Generator().manual_seed(seed)
    words = scale_words(40 * layout.words, seed).reshape(-1, layout.words)
    stored = layout.store(*layout.split(words))
    bits = torch.tensor(exposed_bits(layout))
    patterns = torch.stack([bits[torch.randperm(len(bits), generator=g)[:4]] for _ in range(50_000)])
    read, _, erased = layout.load(flip_patterns(stored, patterns))
    want = words[torch.arange(patterns.shape[0]) % words.shape[0]]
    assert ((read.view(torch.int32) == want.view(torch.int32)) | erased).all()
    assert erased.any()  # four flips in one codeword do happen among them


# -- counting as the paper does -------------------------------------------------------------
def test_parity_bit_alone_counts_as_parity_only():
    codec = get_codec("hamming84")
    values = torch.arange(16, dtype=torch.uint8)
    received = codec.encode(values) ^ 0x80
    decoded, status = codec.decode(received)
    assert torch.equal(decoded, values) and (status == STATUS_CORRECTED).all()  # the codec API: corrected
    _, detail = codec.decode_words(received)
    assert (detail == STATUS_PARITY_ONLY).all()
    layout = StorageLayout("hamming84", 16)
    counters = C.new_counters()
    C.add_decode_counts(counters, layout.load(layout.store(values[None]) ^ 0x80)[1])
    c = C.counters_to_dict(counters)
    assert (c["parity_only"], c["corrected"], c["detected"]) == (16, 0, 0)
    assert get_codec("hamming74").parity_only_syndrome is None and get_codec("golay24").parity_only_syndrome is None


def test_stored_bits_per_value():
    assert get_mode("int12-golay").stored_bits_per_value == 8.5
    assert get_mode("int4-hamming84").stored_bits_per_value == 8
    assert get_mode("int4-hamming").stored_bits_per_value == 8  # a byte per 7-bit codeword
    assert get_mode("int4").stored_bits_per_value == 4
    assert get_mode("fp16").stored_bits_per_value == get_mode("fp16-unprotected").stored_bits_per_value == 16
    assert get_mode("int4").metadata_bits_per_value == 32 / 128
    assert get_mode("int4-hamming84-interp").metadata_bits_per_value == 128 / 128
    assert get_mode("int12-golay").metadata_bits_per_value == 128 / 128
    assert get_mode("fp16").metadata_bits_per_value == 0
    # 4 scales and 4 zero points: 64 nibbles in 22 Golay codewords
    assert get_mode("int4-hamming84").storage_bits(64, group_size=16, symmetric=False) == (8.0, 8 * 66 / 64)


# -- faults on the whole footprint ----------------------------------------------------------
def kv(seed=0, shape=(2, 3, 64, 32)):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g).cumsum(-2) * 0.2


def old_roundtrip(x, codec, fault, interpolate, group_size=None, symmetric=True):
    """The read before scales were stored in codewords: values faulted (write event 0), exact
    float32 scales."""
    layout = StorageLayout(codec, x.shape[-1])
    q, scale, zero = quantize_int4(x, group_size, symmetric)
    stored, _ = fault.apply(layout.store(q), layout.exposed_bits_per_byte, step=0, eligible=layout.value_msb_bits())
    values, status = layout.load(stored)
    out = dequantize_int4(values, scale, zero)
    if interpolate:
        out = interpolate_erasures(out, layout.erased_values(status), dim=-2)
    return out


@pytest.mark.parametrize("mode", ["int4", "int4-hamming", "int4-hamming84", "int4-hamming84-interp", "int12-golay"])
@pytest.mark.parametrize("kind", ["bsc", "msb", "burst"])
def test_values_target_is_the_values_only_read(mode, kind):
    x = kv(1)
    m = get_mode(mode)
    for group_size, symmetric in [(None, True), (16, False)]:
        out, counters = roundtrip(x, m, FaultModel(kind, 2e-2, seed=4, targets="values"), group_size=group_size, symmetric=symmetric)
        want = old_roundtrip(x, m.codec, FaultModel(kind, 2e-2, seed=4), m.interpolate, group_size, symmetric)
        assert torch.equal(out, want)
        c = C.counters_to_dict(counters)
        assert c["meta_injected"] == c["meta_corrected"] == c["meta_detected"] == c["meta_silent"] == 0 and c["meta_read"] > 0


@pytest.mark.parametrize("codec", ["int4", "hamming84", "golay24"])
def test_metadata_bytes_flip_at_the_ber(codec):
    """Flipped metadata bits within 5 sigma of Binomial(exposed metadata bits, ber)."""
    x = kv(2, (4, 4, 128, 32))
    ber = 1e-2
    _, counters = roundtrip(x, get_mode({"int4": "int4", "hamming84": "int4-hamming84", "golay24": "int12-golay"}[codec]),
                            FaultModel("bsc", ber, seed=6))
    layout = MetadataLayout(codec)
    trials = x.numel() // x.shape[-1] * layout.row_bytes * layout.exposed_bits_per_byte
    sigma = math.sqrt(trials * ber * (1 - ber))
    assert abs(int(counters[C.META_INJECTED]) - trials * ber) <= 5 * sigma


def test_unprotected_scales_are_silently_wrong_and_protected_ones_not():
    x = kv(3, (4, 4, 256, 64))
    silent = {}
    for mode in ("int4", "int4-hamming84-interp", "int12-golay"):
        _, counters = roundtrip(x, mode, FaultModel("bsc", 1e-3, seed=7))
        silent[mode] = int(counters[C.META_SILENT])
        assert int(counters[C.META_INJECTED]) > 0
    assert silent["int4"] > 0 and silent["int4-hamming84-interp"] == 0 and silent["int12-golay"] == 0


def test_detected_scale_is_interpolated_from_the_neighbours():
    """A scale with four flips in one Golay codeword: its row's values are erased and read
    back as the mean of the rows before and after it; without -interp, flagged."""
    x = kv(4, (1, 1, 5, 8))
    layout = MetadataLayout("hamming84")
    q, scale, _ = quantize_int4(x)
    values = StorageLayout("hamming84", 8)
    stored, meta = values.store(q), layout.store(scale)
    meta[..., 2, 0] ^= 0b1111  # row 2: the scale's nibble 0, four data bits of the lanes' codeword 0: detected
    from ecc_tensor.attention import dequantize_cache

    tables, meta_tables = get_codec("hamming84").tables(), get_codec(METADATA_CODEC).tables()
    for interpolate in (True, False):
        counters = C.new_counters()
        out = dequantize_cache(stored, meta, tables, meta_tables, "hamming84", 8, 1, True, interpolate, None, counters,
                               torch.float32)
        clean = dequantize_int4(q, scale)
        assert int(counters[C.META_DETECTED]) == 1
        if interpolate:
            assert torch.equal(out[..., 2, :], (clean[..., 1, :] + clean[..., 3, :]) * 0.5)
        assert torch.equal(out[..., [0, 1, 3, 4], :], clean[..., [0, 1, 3, 4], :])


def test_msb_strikes_the_values_most_significant_bits_in_every_mode():
    x = kv(5, (2, 2, 64, 16))
    for mode in ("int4", "int4-hamming", "int4-hamming84", "int12-golay"):
        m = get_mode(mode)
        layout = StorageLayout(m.codec, 16)
        q, _, _ = quantize_int4(x)
        stored = layout.store(q)
        fault = FaultModel("msb", 0.05, seed=2, targets="values")
        flipped, n = fault.apply(stored, layout.exposed_bits_per_byte, step=0, eligible=layout.value_msb_bits())
        changed = (flipped ^ stored).to(torch.int64)
        assert int(n) > 0 and not (changed & ~layout.value_msb_bits()).any()
        # Each value's MSB flips with probability 4 * BER in every mode: 5 sigma of Binomial.
        trials, p = q.numel(), 0.2
        assert abs(int(n) - trials * p) <= 5 * math.sqrt(trials * p * (1 - p))
        values, status = layout.load(flipped)
        if m.codec == "int4":
            assert torch.equal(values ^ q, ((values ^ q) & 8))  # only bit 3 of a value ever changes


def test_fp16_oracle_is_never_faulted_and_fp16_unprotected_is():
    x = kv(6)
    fault = FaultModel("bsc", 1e-2, seed=1)
    oracle, c = roundtrip(x, "fp16", fault)
    assert torch.equal(oracle, x.to(torch.float16).to(x.dtype)) and int(c[C.INJECTED]) == 0
    faulted, c = roundtrip(x, "fp16-unprotected", FaultModel("bsc", 1e-2, seed=1))
    bits = x.numel() * 16
    assert abs(int(c[C.INJECTED]) - bits * 1e-2) <= 5 * math.sqrt(bits * 1e-2)  # 16 exposed bits per value
    assert int(c[C.SILENT]) > 0 and not torch.equal(faulted, oracle)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31), groups=st.sampled_from([1, 2, 4]), symmetric=st.booleans(),
       codec=st.sampled_from(PROTECTED + ("int4",)))
def test_metadata_faults_do_not_depend_on_chunking(seed, groups, symmetric, codec):
    """Flips of a metadata row are a function of (seed, address, bit, step): two halves at
    their offsets are the whole."""
    layout = MetadataLayout(codec, groups, symmetric)
    words = scale_words(30 * layout.words, seed).reshape(-1, layout.words)
    stored = layout.store(*layout.split(words))
    fm = FaultModel("bsc", 0.05, seed=seed)
    bits = layout.exposed_bits_per_byte
    whole, _ = fm.apply(stored, bits, offset=METADATA_ADDRESS, step=2)
    half = stored.shape[0] // 2
    head, _ = fm.apply(stored[:half], bits, offset=METADATA_ADDRESS, step=2)
    tail, _ = fm.apply(stored[half:], bits, offset=METADATA_ADDRESS + half * layout.row_bytes, step=2)
    assert torch.equal(whole, torch.cat([head, tail]))
