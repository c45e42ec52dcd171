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
    """Where the fused attention does not read SECDED(72,64) (head_dim 32 here), on a GPU
    ``ecc::decode_attention`` decodes K/V with the codec kernels (here on ``kernel_device``)
    and attends with the reference. That decode equals the reference's, counters and
    interpolation included."""
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


def test_the_fallback_through_the_tensor_counts_each_sequence_as_the_reference(kernel_device, monkeypatch):
    """``ecc_decode_attention`` over SECDED(72,64) at head_dim 32, which the fused attention
    does not read, with the tensors' one written length, which ``attended_lengths`` expands to
    the batch (stride 0): the codec kernels' decode (on the CPU, Triton's interpreter behind
    ``_on_gpu``) gives the reference's output and counts for every sequence. The decode in one
    launch for the batch once read the later sequences' lengths past that one element (the
    counts of an H100's eager decoding steps)."""
    from ecc_tensor import ECCInt4Tensor, ecc_decode_attention
    from ecc_tensor.counters import new_counters
    from ecc_tensor.faults import FaultModel
    from ecc_tensor.ops import library

    g = torch.Generator().manual_seed(3)
    x, query = torch.randn(3, 2, 40, 32, generator=g), torch.randn(3, 4, 1, 32, generator=g)
    key, value = (ECCInt4Tensor.from_float(t, codec="secded72") for t in (x, -x))
    for i, t in enumerate((key, value)):
        t.stored.copy_(FaultModel("bsc", 0.01, seed=i).apply(t.stored, 8, step=0)[0])
        t.seq_len, t.interpolate = torch.tensor(23), True  # a preallocated cache's written rows
    want_counts = new_counters()
    want = ecc_decode_attention(query, key, value, counters=want_counts)
    if kernel_device == "cpu":
        monkeypatch.setattr(library, "_on_gpu", lambda t: True)
    else:
        query, key, value = query.to(kernel_device), key.to(kernel_device), value.to(kernel_device)
    got_counts = new_counters(kernel_device)
    got = ecc_decode_attention(query, key, value, counters=got_counts)
    torch.testing.assert_close(got.cpu(), want, rtol=1e-4, atol=1e-4)
    assert torch.equal(got_counts.cpu(), want_counts)
    assert int(want_counts[0]) == 2 * 3 * 2 * 23 * 2 and int(want_counts[3]) > 0  # K and V, 3 sequences, 2 heads, 23 rows, 2 codewords


def _faulted_cache(batch, kv_heads, seq, head_dim, ber, meta_ber, seed):
    """K and V of random values as SECDED(72,64) storage and metadata, bsc faults at ``ber`` on
    the values and ``meta_ber`` on the scales' codewords."""
    import ecc_tensor.ops as ops
    from ecc_tensor.faults import METADATA_ADDRESS, FaultModel

    g = torch.Generator().manual_seed(seed)
    parts = []
    for i in range(2):
        stored, meta = ops.quantize_encode(torch.randn(batch, kv_heads, seq, head_dim, generator=g), "secded72")
        stored, _ = FaultModel("bsc", ber, seed=seed + i).apply(stored, 8, step=0)
        meta, _ = FaultModel("bsc", meta_ber, seed=seed + 10 + i).apply(meta, 8, offset=METADATA_ADDRESS, step=0)
        parts.append((stored, meta))
    return parts


@pytest.mark.parametrize("head_dim,dtype,interpolate", [
    (128, torch.float16, True), (128, torch.bfloat16, True), (128, torch.float32, True), (128, torch.float16, False),
    (64, torch.float32, False), (64, torch.bfloat16, True),
])
def test_fused_attention_over_secded72_matches_the_reference(head_dim, dtype, interpolate, kernel_device, monkeypatch):
    """The fused kernel's blocks path (clean blocks as int4 words after a syndrome check, the
    others decoded, corrected and interpolated by the deferred launch) against decode +
    dequantize + float64 attention: the output within the acceptance bound, the counts equal,
    with corrected and detected codewords and scales in the mix."""
    from test_attention import TOLERANCE, fused, reference, relative_error

    from ecc_tensor.counters import counters_to_dict
    from ecc_tensor.ops import attention

    monkeypatch.setattr(attention.plan, "MIN_SPLIT_KEYS", 1)  # many splits, so the combine kernel merges partials
    k, v = _faulted_cache(2, 2, 150, head_dim, 0.003, 0.02, seed=5)
    query = torch.randn(2, 4, 1, head_dim, generator=torch.Generator().manual_seed(2)).to(dtype)
    seq_lens = torch.tensor([143, 77])
    out, counters = fused(query, k, v, "secded72", head_dim, interpolate, seq_lens, kernel_device)
    ref, ref_counters = reference(query, k, v, "secded72", head_dim, interpolate, seq_lens)
    assert relative_error(out, ref) < TOLERANCE
    assert torch.equal(counters, ref_counters)
    c = counters_to_dict(counters)
    assert c["corrected"] > 0 and c["detected"] > 0 and c["meta_corrected"] > 0 and c["meta_detected"] > 0


def test_fused_attention_over_secded72_attends_the_interpolated_values(kernel_device):
    """Many detected codewords (runs of them, at the sequence's ends too): the fused output
    follows the interpolated K/V, not the values as read."""
    from test_attention import fused, reference, relative_error

    from ecc_tensor.counters import counters_to_dict

    k, v = _faulted_cache(1, 2, 70, 64, 0.03, 0.0, seed=7)
    query = torch.randn(1, 2, 2, 64, generator=torch.Generator().manual_seed(4))
    seq_lens = torch.tensor([70])
    out, counters = fused(query, k, v, "secded72", 64, True, seq_lens, kernel_device)
    ref, ref_counters = reference(query, k, v, "secded72", 64, True, seq_lens)
    as_read, _ = reference(query, k, v, "secded72", 64, False, seq_lens)
    assert torch.equal(counters, ref_counters) and counters_to_dict(counters)["detected"] > 20
    assert relative_error(out, ref) < 1e-5  # float32 queries: ieee dots
    assert relative_error(out, as_read) > 1e-2


def test_fused_attention_reads_secded72_at_power_of_two_head_dims_with_one_scale():
    """And with keys per channel over blocks of rows the word path's key blocks (32) tile."""
    from ecc_tensor.ops import attention

    aligned = torch.empty(1, dtype=torch.uint8)
    assert attention.has_kernel("secded72", 128, 1, aligned) and attention.has_kernel("secded72", 64, 1)
    assert not attention.has_kernel("secded72", 32, 1)  # check bytes not a whole word
    assert not attention.has_kernel("secded72", 96, 1)
    assert not attention.has_kernel("secded72", 128, 2)  # grouped scales
    assert not attention.has_kernel("secded72", 128, 1, torch.empty(2, dtype=torch.uint8)[1:])  # unaligned
    assert attention.has_kernel("secded72", 128, 1, channel_block=128) and attention.has_kernel("secded72", 64, 1, channel_block=32)
    assert not attention.has_kernel("secded72", 128, 1, channel_block=48)
    assert all(attention.has_kernel(name, 20, 2) for name in ("int4", "hamming74", "hamming84", "golay24"))


@settings(max_examples=200, deadline=None)
@given(lo=st.integers(0, 2**32 - 1), hi=st.integers(0, 2**32 - 1))
def test_check_bits_are_rotations_of_the_data_words(lo, hi):
    """The arithmetic the kernels' ``_block_check`` does, in Python: the XOR over offsets ``r``
    of the data bytes whose representative holds ``r`` (two 32-bit words, masked by whole
    bytes), rotated by ``r``, folded to one byte, equals H times the data bits."""
    from ecc_tensor.codecs.secded72 import BYTE_OFFSETS

    acc = 0
    for r in range(8):
        masked = 0
        for b in range(8):
            if BYTE_OFFSETS[b] >> r & 1:
                masked ^= (lo if b < 4 else hi) & (0xFF << (8 * (b % 4)))
        acc ^= ((masked << r) | (masked >> (32 - r))) & 0xFFFFFFFF
    acc ^= acc >> 16
    acc ^= acc >> 8
    data = torch.tensor(list((lo | hi << 32).to_bytes(8, "little")), dtype=torch.uint8)
    assert acc & 0xFF == int(secded72._check_byte(data, secded72.data_columns))


def test_no_check_misses_a_flip_of_the_same_bit_in_every_byte():
    """The column assignment leaves no regular pattern a codeword: flipping bit ``c`` of all 8
    data bytes, or the most significant bit of all 16 values (the msb fault model at rate 1),
    gives a non-zero syndrome."""
    data = torch.randint(0, 16, (16,), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    codeword = secded72.encode(data)
    patterns = [[8 * b + c for b in range(8)] for c in range(8)] + [[8 * b + c for b in range(8) for c in (3, 7)]]
    _, status = secded72.decode(flipped(codeword[0], patterns))
    assert (status != 0).all()
