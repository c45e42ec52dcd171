"""Grouped scales on the fused attention's word path: the plan that routes them there, the
kernel against dequantize + float64 attention (interpreter on CPU, compiled on the GPU), with
faults in the values and in the scales, and the pass that reads coded grouped scales."""

from __future__ import annotations

import pytest
import torch

from ecc_tensor.ops import attention
from ecc_tensor.ops.attention import channel_scales
from test_attention import fused, make_cache, many_splits, reference, relative_error  # noqa: F401 (many_splits: autouse)


@pytest.mark.parametrize("codec,head_dim,groups,word_path", [
    ("int4", 128, 4, True), ("hamming84", 128, 4, True), ("hamming74", 64, 8, True), ("int4", 96, 3, True),
    ("int4", 128, 2, True), ("hamming84", 16, 4, True),  # Hamming's words hold 4 values: groups of 4
    ("int4", 16, 4, False),  # groups of 4 split int4's words of 8 values
    ("hamming84", 128, 16, False),  # more than MAX_WORD_PATH_GROUPS
    ("golay24", 128, 4, False), ("secded72", 128, 4, False),
])
def test_grouped_scales_take_the_word_path_where_words_fit_groups(codec, head_dim, groups, word_path):
    storage = attention.storage_constants(codec, head_dim, groups)
    assert bool(storage["PACKED"]) == word_path
    plan = attention.LaunchPlan.make(codec, head_dim, groups, False, batch=2, q_heads=8, kv_heads=2, lq=1, seq=512,
                                     device=torch.device("cpu"))
    # Coded scales are read by a pass first; int4's float32 words are read where they lie.
    assert plan.grouped_scales_pass == (word_path and codec != "int4")
    if word_path:
        assert plan.main["maxnreg"] == 0  # a cap of 128 registers spilled (plan._GROUPED_CONFIGS)


def test_keys_per_channel_keep_grouped_values_off_the_word_path():
    assert not attention.storage_constants("int4", 128, 4, channel_block=128)["PACKED"]
    assert attention.storage_constants("int4", 128, 1, channel_block=128)["PACKED"]


def grouped_cache(codec, batch, kv_heads, seq, head_dim, groups, symmetric, flip_rate, meta_flips, meta_bits, seed):
    """``test_attention.make_cache`` with groups that differ in magnitude by 10x each, so that a
    value dequantized with another group's scale (or zero point) is far off."""
    group_factor = 10.0 ** torch.arange(groups).repeat_interleave(head_dim // groups) / 10
    return make_cache(codec, batch, kv_heads, seq, head_dim, group_size=head_dim // groups, symmetric=symmetric, flip_rate=flip_rate,
                      meta_flips=meta_flips, meta_bits=meta_bits, seed=seed, column_scale=group_factor)


@pytest.mark.parametrize("codec,head_dim,groups,symmetric,flip_rate,meta_flips,meta_bits,interpolate", [
    ("int4", 64, 2, True, 0.0, 0.0, 1, False),
    ("int4", 64, 4, False, 0.0, 0.0, 1, False),
    ("int4", 96, 3, False, 0.0, 0.0, 1, False),  # three groups: the tiles' fourth is padding
    ("hamming84", 32, 4, True, 0.02, 0.0, 1, False),
    ("hamming84", 32, 4, False, 0.02, 0.01, 1, True),  # corrected flips in the scales defer their blocks
    ("hamming84", 32, 2, False, 0.0, 0.01, 4, True),  # detected scales: their groups interpolated
    ("hamming74", 64, 8, False, 0.01, 0.01, 1, False),
])
def test_grouped_word_path_matches_the_reference(codec, head_dim, groups, symmetric, flip_rate, meta_flips, meta_bits, interpolate,
                                                 kernel_device):
    assert attention.storage_constants(codec, head_dim, groups)["PACKED"]
    # The repair pass (interpolation) runs value by value in the interpreter: one sequence there.
    batch, kv_heads, seq = (1, 1, 64) if interpolate else (2, 2, 96)
    k, v = grouped_cache(codec, batch, kv_heads, seq, head_dim, groups, symmetric, flip_rate, meta_flips, meta_bits, seed=groups)
    query = torch.randn(batch, 4 * kv_heads, 1, head_dim, generator=torch.Generator().manual_seed(1))
    seq_lens = torch.tensor([seq, 61][:batch])
    out, counters = fused(query, k, v, codec, head_dim, interpolate, seq_lens, kernel_device, groups=groups, symmetric=symmetric)
    ref, ref_counters = reference(query, k, v, codec, head_dim, interpolate, seq_lens, groups=groups, symmetric=symmetric)
    assert torch.equal(counters, ref_counters)
    if meta_flips:  # the scales were struck: corrected (one bit) or detected (four), as the case says
        assert counters[9 if meta_bits == 4 else 7] > 0
    assert torch.equal(out.isfinite(), ref.isfinite())
    finite = ref.isfinite()
    assert relative_error(out[finite], ref[finite]) < 1e-5


@pytest.mark.parametrize("codec,symmetric", [("int4", False), ("hamming84", True)])
def test_grouped_word_path_takes_bfloat16_queries(codec, symmetric, kernel_device):
    """bfloat16 queries: the dots take float16 operands (each query row over a power of two),
    as with one scale a row; within the output's own rounding."""
    head_dim, groups = 64, 4
    k, v = grouped_cache(codec, 1, 2, 80, head_dim, groups, symmetric, 0.0, 0.0, 1, seed=3)
    query = torch.randn(1, 8, 1, head_dim, generator=torch.Generator().manual_seed(2)).to(torch.bfloat16)
    seq_lens = torch.tensor([80])
    out, _ = fused(query, k, v, codec, head_dim, False, seq_lens, kernel_device, groups=groups, symmetric=symmetric)
    ref, _ = reference(query.float(), k, v, codec, head_dim, False, seq_lens, groups=groups, symmetric=symmetric)
    assert relative_error(out.float(), ref) < 4e-3


@pytest.mark.parametrize("row_bytes,rows", [(1026, 2), (2049, 2), (66, 32), (33, 64), (8, 128)])
def test_the_scales_pass_takes_more_rows_a_program_where_rows_are_short(row_bytes, rows):
    """Rows of channel scales (hundreds of bytes) two a program; grouped scales, a row a token,
    up to 128: a million two-row programs took 0.7 ms (H100, benchmarks/RESULTS.md)."""
    assert channel_scales.rows_per_program(row_bytes) == rows



@pytest.mark.parametrize("struck", ["k", "v"])
def test_one_struck_scale_defers_its_block(struck, kernel_device):
    """One flipped exponent bit in one row's first group scale, of K or of V alone (the other's
    scales clean): the pass flags the row, the main launch defers its block, the deferred launch
    corrects it. Attended as read, the scale would be off by a factor of ~2^64."""
    head_dim, groups = 32, 4
    (k_stored, k_meta), (v_stored, v_meta) = grouped_cache("hamming84", 1, 1, 64, head_dim, groups, True, 0.0, 0.0, 1, seed=5)
    meta = k_meta if struck == "k" else v_meta
    meta[0, 0, 37, 6] ^= 0x40  # Golay unit 2's data byte: nibbles 6-7 of scale 0, the exponent's top bit
    query = torch.randn(1, 4, 1, head_dim, generator=torch.Generator().manual_seed(3))
    seq_lens = torch.tensor([64])
    k, v = (k_stored, k_meta), (v_stored, v_meta)
    out, counters = fused(query, k, v, "hamming84", head_dim, False, seq_lens, kernel_device, groups=groups)
    ref, ref_counters = reference(query, k, v, "hamming84", head_dim, False, seq_lens, groups=groups)
    assert torch.equal(counters, ref_counters) and int(counters[7]) == 1
    assert relative_error(out, ref) < 1e-5
