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


# -- the cache modes int4-secded72(-interp): storage, ops, interpolation, the cache ----------
def test_registered_with_the_blocks_layout_and_a_row_of_128_is_72_bytes():
    from ecc_tensor.codecs import get_codec
    from ecc_tensor.modes import get_mode
    from ecc_tensor.storage import StorageLayout

    assert get_codec("secded72") is secded72
    layout = StorageLayout("secded72", 128)
    assert layout.kind == "blocks" and layout.units == 8 and layout.row_bytes == 72 and layout.exposed_bits_per_byte == 8
    assert get_mode("int4-secded72").storage_bits() == (4.5, 1.0)  # scales in Golay, as every coded mode
    # The row is an int4 row, then the check bytes; msb strikes bit 3 of each value, never a check bit.
    msb = layout.value_msb_bits()
    assert msb[:64].tolist() == [0x88] * 64 and not msb[64:].any()
    values = torch.randint(0, 16, (3, 128), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    row = layout.store(values)
    assert torch.equal(row[:, :64], StorageLayout("int4", 128).store(values))
    assert torch.equal(row[:, 64:], secded72.encode(values)[..., 8])
    assert torch.equal(layout.load(row)[0], values)


def test_a_detected_codeword_is_interpolated_only_in_the_interp_mode():
    """Two flips in one codeword of one row: its 16 values are detected; the -interp mode
    replaces them with the neighbours' mean, the plain mode keeps them as read; counters agree."""
    import ecc_tensor.ops as ops
    from ecc_tensor.counters import counters_to_dict, new_counters
    from ecc_tensor.interp import interpolate_erasures

    x = torch.randn(1, 2, 6, 32, generator=torch.Generator().manual_seed(0))
    stored, meta = ops.quantize_encode(x, "secded72")
    clean = ops.decode_dequantize(stored, meta, "secded72", 32)
    noisy = stored.clone()
    noisy[0, 1, 3, 9] ^= 0b11  # codeword 1 of row 3 (data bytes 8-15): two flips in its second data byte
    for interpolate in (False, True):
        counters = new_counters()
        out = ops.decode_dequantize(noisy, meta, "secded72", 32, interpolate=interpolate, counters=counters)
        counts = counters_to_dict(counters)
        assert counts["detected"] == 1 and counts["corrected"] == 0 and counts["read"] == 2 * 6 * 2
        erased = torch.zeros_like(clean, dtype=torch.bool)
        erased[0, 1, 3, 16:32] = True
        assert torch.equal(out[~erased], clean[~erased])  # everything else as written
        if interpolate:
            assert torch.equal(out, interpolate_erasures(clean, erased))
        else:
            assert not torch.equal(out[erased], clean[erased])  # the flipped values, kept as read


@pytest.mark.parametrize("mode", ["int4-secded72", "int4-secded72-interp"])
def test_the_cache_modes_decode_what_int4_stores_and_correct_single_flips(mode):
    from transformers import LlamaConfig, LlamaForCausalLM

    from ecc_tensor.faults import FaultModel
    from ecc_tensor.integrations.hf import ECCCache, cache_argument

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                         initializer_range=0.3)).eval()
    ids = torch.randint(0, 64, (1, 24), generator=torch.Generator().manual_seed(1))

    def logits(mode, fault=None):
        cache = ECCCache(model.config, 1, 32, mode=mode, fault=fault)
        with torch.no_grad():
            return model(ids, **cache_argument(model, cache), use_cache=True).logits, cache.stats()

    int4, _ = logits("int4")
    clean, stats = logits(mode)
    assert torch.equal(clean, int4) and stats["corrected"] == 0
    faulted, stats = logits(mode, FaultModel("msb", 1.0, seed=0, targets="values"))  # one flip in every value: 16 a codeword
    assert stats["detected"] > 0 and stats["silent"] == 0
    single, stats = logits(mode, FaultModel("bsc", 3e-4, seed=3, targets="values"))
    assert stats["corrected"] > 0 and stats["detected"] == 0 and stats["silent"] == 0 and torch.equal(single, int4)


def test_attention_over_secded72_decodes_with_the_codec_kernels_as_the_reference(kernel_device):
    """The fused attention does not know SECDED(72,64) yet: on a GPU ``ecc::decode_attention``
    decodes K/V with the codec kernels (here on ``kernel_device``) and attends with the
    reference. That decode equals the reference's, counters and interpolation included."""
    import ecc_tensor.ops as ops
    from ecc_tensor.attention import dequantize_cache, written_mask
    from ecc_tensor.codecs import CodecTables
    from ecc_tensor.counters import new_counters
    from ecc_tensor.faults import METADATA_ADDRESS, FaultModel
    from ecc_tensor.metadata import codec_tables
    from ecc_tensor.ops.library import _decode_for_attention

    x = torch.randn(2, 2, 40, 32, generator=torch.Generator().manual_seed(0))
    stored, meta = ops.quantize_encode(x, "secded72")
    stored, _ = FaultModel("bsc", 0.01, seed=1).apply(stored, 8, step=0)
    meta, _ = FaultModel("bsc", 0.01, seed=2).apply(meta, 8, offset=METADATA_ADDRESS, step=0)
    seq_lens = torch.tensor([40, 23])
    tables = codec_tables("secded72", "cpu")
    want_counts, got_counts = new_counters(), new_counters(kernel_device)
    want = dequantize_cache(stored, meta, CodecTables(*tables[:2]), CodecTables(*tables[2:]), "secded72", 32, 1, True, True,
                            written_mask(seq_lens, 40), want_counts, torch.float32)
    got = _decode_for_attention(stored.to(kernel_device), meta.to(kernel_device), *codec_tables("secded72", kernel_device), "secded72",
                                32, 1, True, True, seq_lens.to(kernel_device), got_counts, torch.float32)
    written = written_mask(seq_lens, 40).expand_as(want)
    assert torch.equal(got.cpu()[written], want[written])
    assert torch.equal(got_counts.cpu(), want_counts) and int(want_counts[3]) > 0  # some codewords detected
