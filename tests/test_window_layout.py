"""The recent window's 16-bit words in Golay (ecc_tensor.window_layout): round trips, the
``ecc`` ops against the reference, what a codeword corrects and detects, the msb fault model's
bits."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ecc_tensor.ops  # noqa: F401  (registers torch.ops.ecc)
from ecc_tensor import lanes
from ecc_tensor.codecs import CODEC_NAMES, get_codec
from ecc_tensor.window_layout import WindowLayout, window_layout

TABLES = get_codec("golay24").tables("cpu")


def _words(shape, seed, dtype=torch.float16):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-(1 << 15), 1 << 15, shape, dtype=torch.int32, generator=g).to(torch.int16).view(dtype)


@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_every_mode_with_a_code_stores_its_window_in_golay(codec):
    layout = window_layout(codec, 128)
    if not get_codec(codec).decodes:
        assert layout is None  # int4: bare words
    else:
        assert layout.code_name == "golay24" and layout.row_bytes == 520


@settings(max_examples=40, deadline=None)
@given(head_dim=st.integers(1, 40), rows=st.integers(1, 4), seed=st.integers(0, 2**31 - 1),
       dtype=st.sampled_from([torch.float16, torch.bfloat16]))
def test_words_round_trip_and_the_ops_store_what_the_reference_stores(head_dim, rows, seed, dtype):
    layout = WindowLayout("golay24", head_dim)
    words = _words((rows, head_dim), seed, dtype)
    stored = layout.store(words, TABLES)
    assert stored.shape == (rows, layout.row_bytes)
    assert torch.equal(stored[:, : 2 * head_dim], words.view(torch.uint8))  # the data bytes are the words
    assert torch.equal(torch.ops.ecc.encode(layout.nibbles(words), TABLES.encode_table, TABLES.syndrome_table, "golay24"), stored)
    got, status, erased = layout.load(stored, TABLES)
    assert torch.equal(got, words.view(torch.int16)) and not status.any() and not erased.any()
    nibbles, op_status = torch.ops.ecc.decode(stored, TABLES.encode_table, TABLES.syndrome_table, "golay24", 4 * head_dim)
    assert torch.equal(layout.words(nibbles), got) and torch.equal(op_status, status)


@settings(max_examples=60, deadline=None)
@given(head_dim=st.integers(1, 24), flips=st.integers(1, 4), seed=st.integers(0, 2**31 - 1))
def test_a_codeword_corrects_three_flips_and_detects_four_erasing_its_words(head_dim, flips, seed):
    """Flip ``flips`` bits of one Golay codeword of a row: up to three read back the words as
    written; four are detected, erasing exactly the words with a nibble in that codeword."""
    layout = WindowLayout("golay24", head_dim)
    words = _words((1, head_dim), seed)
    stored = layout.store(words, TABLES)
    g = torch.Generator().manual_seed(seed)
    unit = int(torch.randint(layout.storage.codewords_per_row, (1,), generator=g))
    # The codeword's stored bits: every bit of its data nibbles (none for padding) and of its
    # parity nibbles (lanes.py), nibble n at byte n // 2, low nibble first.
    nibbles = [n for n in (*lanes.unit_values(4 * head_dim)[unit].tolist(), *lanes.unit_parity_nibbles(4 * head_dim)[unit].tolist())
               if n >= 0]
    candidates = [(n // 2, 4 * (n % 2) + b) for n in nibbles for b in range(4)]
    struck = stored.clone()
    for i in torch.randperm(len(candidates), generator=g)[:flips].tolist():
        byte, bit = candidates[i]
        struck[0, byte] ^= 1 << bit
    got, status, erased = layout.load(struck, TABLES)
    if flips <= 3:
        assert torch.equal(got, words.view(torch.int16)) and int(status[0, unit]) == 1
    else:
        assert int(status[0, unit]) == 2
        units = lanes.value_units(4 * head_dim).view(head_dim, 4)
        assert torch.equal(erased[0], (units == unit).any(-1))
    assert int((status != 0).sum()) == 1  # no other codeword touched


def test_the_msb_fault_model_strikes_each_words_top_exponent_bit():
    layout = WindowLayout("golay24", 8)
    words = _words((1, 8), 0)
    stored = layout.store(words, TABLES)
    struck = stored ^ layout.msb_bits().to(torch.uint8)
    assert torch.equal(struck[:, :16].view(torch.int16), words.view(torch.int16) ^ (1 << 14))  # bit 14 of each word only
    assert torch.equal(struck[:, 16:], stored[:, 16:])
    got, status, _ = layout.load(struck, TABLES)  # at most three flips a codeword (a word's fourth nibble each): corrected
    struck_units = torch.zeros(layout.storage.codewords_per_row, dtype=torch.bool)
    struck_units[lanes.value_units(32)[3::4]] = True  # the codewords holding each word's nibble 3 (bits 12-15)
    assert torch.equal(got, words.view(torch.int16)) and torch.equal(status[0] == 1, struck_units) and not (status == 2).any()

