"""SECDED(72,64), the Hsiao code over 16 INT4 values: every single flip corrected, every double
flip detected, systematic, checked input."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ecc_tensor.codecs.secded72 import SECDED72, secded72

values16 = st.lists(st.integers(0, 15), min_size=16, max_size=16).map(lambda v: torch.tensor(v, dtype=torch.uint8))


def flipped(codeword: torch.Tensor, positions) -> torch.Tensor:
    """Copies of a ``[9]`` codeword, one row ``[1, 9]`` per set of bit positions (0-71), with
    those bits flipped."""
    out = codeword.repeat(len(positions), 1)
    for row, bits in enumerate(positions):
        for b in bits:
            out[row, b // 8] ^= 1 << (b % 8)
    return out[:, None]


def test_columns_are_distinct_odd_and_balanced():
    cols = secded72.data_columns.tolist() + [1 << j for j in range(8)]
    assert len(set(cols)) == 72 and all(bin(c).count("1") % 2 == 1 for c in cols)
    rows = [sum((c >> j) & 1 for c in secded72.data_columns.tolist()) for j in range(8)]
    assert rows == [26] * 8


@settings(max_examples=60, deadline=None)
@given(values16)
def test_clean_codewords_are_systematic_and_decode_clean(values):
    word = secded72.encode(values)
    assert word.shape == (1, 9)
    assert torch.equal(word[0, :8], values[0::2] | (values[1::2] << 4))  # the int4 layout
    out, status = secded72.decode(word)
    assert torch.equal(out, values) and status.tolist() == [0]


@settings(max_examples=60, deadline=None)
@given(values16)
def test_every_single_flip_in_all_72_positions_is_corrected(values):
    word = secded72.encode(values)[0]
    out, status = secded72.decode(flipped(word, [(b,) for b in range(72)]))
    assert (status == 1).all() and torch.equal(out, values.repeat(72, 1))
    assert out.shape == (72, 16) and status.shape == (72, 1)


@settings(max_examples=10, deadline=None)
@given(values16)
def test_every_one_of_the_2556_double_flips_is_detected(values):
    word = secded72.encode(values)[0]
    pairs = list(itertools.combinations(range(72), 2))
    assert len(pairs) == 2556
    _, status = secded72.decode(flipped(word, pairs))
    assert (status == 2).all()


def test_rows_of_codewords_and_a_triple_flip_is_never_clean():
    g = torch.Generator().manual_seed(0)
    values = torch.randint(0, 16, (3, 5, 128), dtype=torch.uint8, generator=g)
    words = secded72.encode(values)
    assert words.shape == (3, 5, 8, 9)  # 128 values: 8 codewords, 72 bytes
    out, status = secded72.decode(words)
    assert torch.equal(out, values) and (status == 0).all()
    word = words[0, 0, 0]
    triples = [t for i, t in enumerate(itertools.combinations(range(72), 3)) if i % 97 == 0]
    _, status = secded72.decode(flipped(word, triples))
    assert (status != 0).all()  # odd syndrome: corrected (perhaps wrongly) or detected, never unseen


@pytest.mark.parametrize("bad, message", [
    (torch.zeros(15, dtype=torch.uint8), "multiple of 16"),
    (torch.zeros(16, dtype=torch.int64), "torch.uint8"),
    (torch.full((16,), 16, dtype=torch.uint8), r"\[0, 15\]"),
])
def test_bad_values_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        secded72.encode(bad)


def test_bad_codewords_are_refused():
    with pytest.raises(ValueError, match=r"uint8 tensor \[..., 9\]"):
        SECDED72().decode(torch.zeros(2, 8, dtype=torch.uint8))
