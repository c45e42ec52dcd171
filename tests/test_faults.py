"""Fault models: Philox known answers, flip statistics, reproducibility, burst shape, bad input."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ecc_tensor.faults import FAULT_KINDS, FaultModel
from ecc_tensor.philox import philox4x32, probability_threshold


def bits_of(words: torch.Tensor, width: int) -> torch.Tensor:
    return (words.to(torch.int64).reshape(-1, 1) >> torch.arange(width)) & 1


@pytest.mark.parametrize(
    "counter,seed,expected",
    [  # Random123's kat_vectors for philox4x32_10
        ((0, 0, 0, 0), 0, (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
        ((0xFFFFFFFF,) * 4, 0xFFFFFFFFFFFFFFFF, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
        ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), 0x299F31D0A4093822, (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
    ],
)
def test_philox_known_answers(counter, seed, expected):
    c0, *rest = counter
    out = philox4x32(torch.tensor([c0]), *rest, seed)
    assert tuple(int(o) for o in out) == expected


def test_probability_threshold_edges():
    assert probability_threshold(0.0) == 0
    assert probability_threshold(1.0) == 1 << 32
    assert probability_threshold(0.5) == 1 << 31


@pytest.mark.parametrize("kind", ["bsc", "msb"])
@pytest.mark.parametrize("ber", [1e-3, 1e-2, 0.2])
@pytest.mark.parametrize("bits", [4, 8, 24])
def test_flip_count_is_binomial(kind, ber, bits):
    """Within 5 sigma of Binomial(N, p) over the N bits that may flip: all exposed bits at
    p = ber (bsc); the top bit of each bare word at p = min(1, 4 ber) (msb: the flips bsc puts
    into an INT4 value, all on its most significant bit)."""
    n_words = 40_000
    dtype = torch.int32 if bits > 8 else torch.uint8
    fm = FaultModel(kind, ber, seed=1234)
    words = torch.zeros(n_words, dtype=dtype)
    flipped, n = fm.apply(words, bits)
    trials, p = (n_words * bits, ber) if kind == "bsc" else (n_words, min(1.0, ber * 4))
    sigma = math.sqrt(trials * p * (1 - p))
    assert abs(int(n) - trials * p) <= 5 * sigma
    assert int(n) == int(bits_of(flipped, 32).sum())  # the count is what was flipped
    assert not (flipped.to(torch.int64) >> bits).any()  # only exposed bits


def test_msb_flips_only_the_top_bits():
    fm = FaultModel("msb", 0.05, seed=3, msb_bits=2)
    flipped, n = fm.apply(torch.zeros(10_000, dtype=torch.uint8), 8)
    per_bit = bits_of(flipped, 8).sum(0)
    assert int(n) > 0 and per_bit[:6].sum() == 0 and (per_bit[6:] > 0).all()


def test_msb_flips_only_the_eligible_bits_at_the_same_draws():
    """Given the bits that hold a value's MSB per word position, msb strikes those alone, and
    a bit eligible in both calls flips in both (the same Philox draw)."""
    words = torch.zeros(20_000, 4, dtype=torch.uint8)
    fm = FaultModel("msb", 0.02, seed=8)
    eligible = torch.tensor([0x88, 0x08, 0x80, 0x00])
    flipped, n = fm.apply(words, 8, step=1, eligible=eligible)
    hit = flipped.to(torch.int64)
    assert not (hit & ~eligible).any() and int(n) == int(bits_of(flipped, 8).sum())
    per_position = bits_of(flipped, 8).reshape(-1, 4, 8).sum(0)
    for position, mask in enumerate(eligible.tolist()):
        for bit in range(8):
            count = int(per_position[position, bit])
            if mask >> bit & 1:  # Binomial(20000, 0.08), 5 sigma
                assert abs(count - 20_000 * 0.08) <= 5 * math.sqrt(20_000 * 0.08 * 0.92)
            else:
                assert count == 0
    wider, _ = fm.apply(words, 8, step=1, eligible=torch.tensor([0xFF, 0xFF, 0xFF, 0xFF]))
    assert torch.equal(wider & eligible.to(torch.uint8), flipped)


def test_targets():
    assert FaultModel().targets == "all" and FaultModel().strikes_metadata
    assert not FaultModel(targets="values").strikes_metadata
    with pytest.raises(ValueError, match="unknown fault targets"):
        FaultModel(targets="scales")


def test_burst_rate_and_run_length():
    length, bits, n_words = 8, 8, 100_000
    fm = FaultModel("burst", 1e-3, seed=11, burst_len=length)
    flipped, n = fm.apply(torch.zeros(n_words, dtype=torch.uint8), bits)
    stream = bits_of(flipped, bits).reshape(-1).tolist()
    runs, position = [], 0
    for value, group in itertools.groupby(stream):
        size = len(list(group))
        if value:
            runs.append((size, position + size == len(stream)))
        position += size
    inner = [size for size, at_end in runs if not at_end]
    assert min(inner) >= length  # runs only merge, never shrink, away from the stream's end
    assert sum(size == length for size in inner) >= 0.95 * len(inner)
    # Expected flips ber * N; the count of runs is ~Poisson, so sigma ~ length * sqrt(runs).
    expected = 1e-3 * n_words * bits
    assert abs(int(n) - expected) <= 5 * length * math.sqrt(expected / length)


def test_page_faults_stay_in_faulty_pages():
    fm = FaultModel("page", 1e-2, seed=5, page_words=256, page_fraction=0.25)
    flipped, n = fm.apply(torch.zeros(256 * 400, dtype=torch.uint8), 8)
    hits_per_page = bits_of(flipped, 8).reshape(400, -1).sum(-1)
    faulty = hits_per_page > 0
    assert 0.15 < faulty.float().mean() < 0.35  # ~25% of pages, at 8 sigma of Binomial(400, .25)
    # Inside a faulty page every bit flips with probability ber / page_fraction = 4%.
    rate = hits_per_page[faulty].sum() / (faulty.sum() * 256 * 8)
    assert abs(float(rate) - 0.04) < 0.005


@settings(max_examples=30, deadline=None)
@given(
    kind=st.sampled_from(FAULT_KINDS),
    seed=st.integers(0, 2**63 - 1),
    ber=st.floats(1e-3, 0.5),
    n_words=st.integers(1, 300),
    split=st.integers(0, 300),
    bits=st.sampled_from([4, 7, 8, 16, 24]),
)
def test_same_seed_same_flips_however_chunked(kind, seed, ber, n_words, split, bits):
    dtype = torch.int32 if bits > 8 else torch.uint8
    words = torch.randint(0, 1 << bits, (n_words,)).to(dtype)
    split = min(split, n_words)
    fm = FaultModel(kind, ber, seed=seed, page_words=16, burst_len=5)
    whole, n_whole = fm.apply(words, bits, step=3)
    again, n_again = FaultModel(kind, ber, seed=seed, page_words=16, burst_len=5).apply(words, bits, step=3)
    head, n_head = fm.apply(words[:split], bits, step=3)
    tail, n_tail = fm.apply(words[split:], bits, offset=split, step=3)
    assert torch.equal(whole, again) and int(n_whole) == int(n_again)
    assert torch.equal(whole, torch.cat([head, tail])) and int(n_whole) == int(n_head) + int(n_tail)


def test_successive_events_draw_fresh_faults_and_reset_repeats_them():
    fm = FaultModel("bsc", 0.1, seed=9)
    words = torch.zeros(1000, dtype=torch.uint8)
    first, _ = fm.apply(words, 8)
    second, _ = fm.apply(words, 8)
    assert not torch.equal(first, second)
    fm.reset()
    assert torch.equal(fm.apply(words, 8)[0], first)
    assert torch.equal(fm.apply(words, 8, step=0)[0], first)


def test_different_seeds_differ():
    words = torch.zeros(1000, dtype=torch.uint8)
    a, _ = FaultModel("bsc", 0.1, seed=1).apply(words, 8)
    b, _ = FaultModel("bsc", 0.1, seed=2).apply(words, 8)
    assert not torch.equal(a, b)


def test_ber_zero_and_one():
    words = torch.randint(0, 256, (100,), dtype=torch.uint8)
    same, n = FaultModel("bsc", 0.0).apply(words, 8)
    assert torch.equal(same, words) and int(n) == 0
    inverted, n = FaultModel("bsc", 1.0).apply(words, 8)
    assert torch.equal(inverted, ~words) and int(n) == 800


def test_fp16_words_as_int16():
    x = torch.randn(1000, dtype=torch.float16)
    flipped, n = FaultModel("bsc", 0.01, seed=4).apply(x.view(torch.int16), 16)
    assert flipped.dtype == torch.int16 and int((flipped != x.view(torch.int16)).sum()) > 0


def test_sites():
    assert FaultModel(site="write").at_write and not FaultModel(site="write").at_read
    assert FaultModel(site="read").at_read and not FaultModel(site="read").at_write
    assert FaultModel(site="both").at_read and FaultModel(site="both").at_write
    assert FaultModel("random").kind == "bsc"


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"ber": -0.1}, r"\[0, 1\]"),
        ({"ber": 1.5}, r"\[0, 1\]"),
        ({"ber": float("nan")}, r"\[0, 1\]"),
        ({"kind": "cosmic"}, "unknown fault model"),
        ({"site": "disk"}, "unknown fault site"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**63}, "seed"),
        ({"burst_len": 0}, "burst_len"),
        ({"page_fraction": 0.0}, "page_fraction"),
    ],
)
def test_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FaultModel(**kwargs)


def test_bad_words():
    fm = FaultModel("bsc", 0.1)
    with pytest.raises(ValueError, match="integer tensor"):
        fm.apply(torch.zeros(3), 8)
    with pytest.raises(ValueError, match="bits_per_word"):
        fm.apply(torch.zeros(3, dtype=torch.uint8), 9)
    with pytest.raises(ValueError, match="bits_per_word"):
        fm.apply(torch.zeros(3, dtype=torch.uint8), 0)
