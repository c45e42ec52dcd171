"""``ecc::decode_attention`` under the quantization schemes (:mod:`ecc_tensor.quant_scheme`):
keys quantized per channel (their scales folded into the queries on the word path, decoded
and interpolated per channel on the unit path) and the full-precision window (one more program of the
main launch, merged by the combine kernel), against the op's reference, and ``ECCInt4Tensor``'s
per-channel and windowed construction."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import ecc_tensor.ops as ops
from ecc_tensor import ECCInt4Tensor
from ecc_tensor.attention import quantize_encode_channels
from ecc_tensor.codecs import CodecTables
from ecc_tensor.counters import new_counters
from ecc_tensor.metadata import MetadataLayout, codec_tables
from ecc_tensor.ops import attention
from ecc_tensor.quant_scheme import QuantScheme
from ecc_tensor.storage import StorageLayout
from test_attention import make_cache
from test_quant_scheme import expected_read

TOLERANCE = 1e-3  # relative error (norm) vs the float64 reference, as tests/test_attention.py


@pytest.fixture(autouse=True)
def many_splits(monkeypatch):
    monkeypatch.setattr(attention.plan, "MIN_SPLIT_KEYS", 1)


def channel_cache(codec, batch, heads, seq, dim, block, symmetric, flip_rate, seed, block_growth=1.0):
    """Keys per channel over blocks of ``block`` rows, values per token, both encoded; then
    ``flip_rate`` of the K and V bytes struck and, where the scales have a code, four flips in
    the first byte of the second block's metadata row (one detected Golay codeword: its
    channels' scales erased, interpolated from the neighbouring blocks; int4's unprotected
    scales are left alone, whose corruption reaches beyond float32's range). Each block's keys
    ``block_growth`` times the block's before it."""
    g = torch.Generator().manual_seed(seed)
    t = codec_tables(codec, "cpu")
    k = torch.randn(batch, heads, seq, dim, generator=g) * (1 + 3 * torch.rand(dim, generator=g))  # outlier channels
    k = k * block_growth ** (torch.arange(seq) // block)[:, None].float()
    blocks = -(-seq // block)
    k_stored, k_meta = quantize_encode_channels(F.pad(k, (0, 0, 0, blocks * block - seq)), block, CodecTables(*t[:2]),
                                                CodecTables(*t[2:]), codec, symmetric)
    k_stored = k_stored[:, :, :seq].contiguous()
    v_stored, v_meta = ops.quantize_encode(torch.randn(batch, heads, seq, dim, generator=g), codec, None, symmetric)
    if flip_rate:
        keep = (1 << StorageLayout(codec, dim).exposed_bits_per_byte) - 1
        struck = []
        for x in (k_stored, v_stored):
            hit = (torch.rand(x.shape, generator=g) < flip_rate).to(torch.uint8)
            struck.append(x ^ (hit * torch.randint(1, 256, x.shape, dtype=torch.uint8, generator=g) & keep))
        k_stored, v_stored = struck
        if codec != "int4":  # one detected scale codeword in the middle block's row of every (sequence, head)
            k_meta = k_meta.clone()
            k_meta[:, :, 1, 0] ^= 0x0F
    return k_stored, k_meta, v_stored, v_meta


CASES = {
    # batch, kv heads, GQA, seq, head_dim, channel block, query tokens, window rows, flip rate, dtype
    "window-gqa": (2, 2, 2, 200, 64, 32, 1, 48, 0.0, torch.float16),
    "faults-causal": (1, 1, 4, 160, 64, 32, 2, 40, 0.02, torch.float16),
    "no-window-bf16": (1, 1, 1, 128, 64, 32, 1, 0, 0.03, torch.bfloat16),
    "clean-bf16-gqa": (2, 2, 4, 160, 64, 32, 1, 0, 0.0, torch.bfloat16),  # the main launch's float16 scores (no block deferred)
}


@pytest.mark.parametrize(("codec", "case", "symmetric"), [
    *((codec, case, True) for codec in ("int4", "hamming84", "secded72") for case in CASES),
    ("int4", "faults-causal", False),  # zero points on the word path
    ("secded72", "faults-causal", False),  # the blocks path's deferred launch: values erased per channel, zero points
    ("golay24", "faults-causal", False),  # the general unit path, zero points; slow in the interpreter
])
def test_fused_per_channel_keys_and_window_match_the_reference(codec, case, symmetric, kernel_device):
    """The kernel (the interpreter without a GPU) against the op's float64 reference: outputs
    within the tolerance and every counter equal, across splits, GQA, causal speculative
    queries, faults in values and in channel scales (interpolated), windows shorter than the
    sequence, zero points. (Interpreted kernels are slow: the GPU test takes every case for every code.)"""
    check_against_reference(codec, *CASES[case], symmetric, kernel_device)


GPU_CASES = {**CASES, "long-window": (4, 8, 4, 4096, 128, 128, 1, 256, 0.001, torch.float16),
             "long-faults-bf16": (2, 4, 2, 2000, 128, 128, 3, 200, 0.01, torch.bfloat16)}
# Each case once per code: zero points on three faulted ones (float16 short and long, bfloat16:
# the deferred launch's repair with zero points), faults-causal both ways. Every case both ways
# was 48 cases of compiles, more than one device call finished.
GPU_RUNS = [("window-gqa", True), ("faults-causal", True), ("faults-causal", False), ("no-window-bf16", False),
            ("clean-bf16-gqa", True), ("long-window", False), ("long-faults-bf16", True)]


@pytest.mark.cuda
@pytest.mark.parametrize("codec", ["int4", "hamming84", "golay24", "secded72"])
@pytest.mark.parametrize(("case", "symmetric"), GPU_RUNS,
                         ids=[f"{'symmetric' if symmetric else 'zero-points'}-{case}" for case, symmetric in GPU_RUNS])
def test_fused_per_channel_keys_and_window_match_the_reference_on_the_gpu(codec, case, symmetric):
    """The compiled kernels (SECDED(72,64): the codec kernels and the reference) as above."""
    check_against_reference(codec, *GPU_CASES[case], symmetric, "cuda")


def fused_attention(device):
    """The fused attention on ``device``: on CPU tensors the op runs its reference, so there
    the kernel itself is called (Triton's interpreter, which conftest.py sets without a GPU)."""
    return attention.triton_decode_attention if device == "cpu" else torch.ops.ecc.decode_attention


@pytest.mark.parametrize(("codec", "dim"), [("int4", 64), ("hamming84", 64), ("secded72", 128), ("golay24", 128)])
@pytest.mark.parametrize(("symmetric", "strike", "dtype"),
                         [(True, 0, torch.float16), (False, 0, torch.float16), (True, 0x0F, torch.float16), (True, 0, torch.bfloat16)],
                         ids=["symmetric", "zero-points", "struck-scales", "bf16"])
@pytest.mark.parametrize("scale_rows", [1, 2], ids=["row-a-step", "two-rows-a-step"])
def test_each_split_reads_its_blocks_of_channel_scales_in_turn(codec, dim, symmetric, strike, dtype, scale_rows, kernel_device,
                                                               monkeypatch):
    """Splits over several blocks of channel scales each (two splits of 96 and 57 rows, blocks
    of 32): the main launch's outer loop steps through them, the next block's scales read ahead
    (on the word, blocks and lane paths), and each block of keys must take its own. Every other
    case here splits a sequence into programs of a block of scales or less, where a loop that
    read the wrong row of scales from the second block on passed them all. Struck: the second
    row of scales detected (int4: an unprotected scale changed), which must defer the blocks it
    covers and no others (no other case strikes a row of scales inside a split over several).
    bfloat16: each row's queries take their own power-of-two unit (each block's keys 4x the
    last's, so that the units differ). Two rows a step (the configuration's ``scale_rows``): each
    key block selects its own row's scaled queries, unit, zero-point term and dirty flag; splits
    of 160 and 121 rows (five blocks and four), so that steps read the next two rows ahead and
    the first split ends on a step of one row."""
    monkeypatch.setattr(attention.plan, "MIN_SPLIT_KEYS", 1 << 20)
    monkeypatch.setattr(attention.plan, "_multiprocessors", lambda device: 1)
    seq = 160 if scale_rows == 1 else 288
    plan = attention.LaunchPlan.make(codec, dim, 1, False, batch=1, q_heads=2, kv_heads=1, lq=1, seq=seq, device=torch.device("cpu"),
                                     channel_block=32)
    assert plan.splits == 2 and plan.split_len == (96 if scale_rows == 1 else 160)
    main = plan.main
    config = f"{main['block_n']},{main['num_warps']},{main['num_stages']},{main['waves']},{main['maxnreg']},{scale_rows}"
    check_against_reference(codec, 1, 1, 2, seq, dim, 32, 1, 0, 0.0, dtype, symmetric, kernel_device, strike_scales=strike,
                            block_growth=4.0 if dtype == torch.bfloat16 else 1.0, config=config)


@pytest.mark.parametrize("codec", ["hamming84", "hamming74"])
@pytest.mark.parametrize("flips", [0x01, 0x0F], ids=["corrected", "detected"])
def test_a_struck_row_of_channel_scales_alone_defers_the_blocks_it_covers(codec, flips, kernel_device):
    """No value struck, one codeword of the second row of channel scales struck by one flip
    (corrected) or four (detected, its scales interpolated): the main launch reads the row's
    data bits as stored (channel_scales.py), so it must leave every block the row covers to
    the deferred launch, which decodes it as the reference does. (With values struck too, as
    in the cases above, every block is deferred by its values anyway.)"""
    check_against_reference(codec, 1, 1, 2, 128, 64, 32, 1, 0, 0.0, torch.float16, True, kernel_device, strike_scales=flips)


@pytest.mark.parametrize("codec", ["secded72", "golay24"])
@pytest.mark.parametrize("flips", [0x01, 0x0F], ids=["corrected", "detected"])
def test_a_struck_row_of_channel_scales_defers_on_the_lane_and_blocks_paths(codec, flips, kernel_device):
    """As above at head_dim 128, where Golay's lane path and SECDED(72,64)'s blocks path fold the
    channel scales into the queries (before 2026-12-03 evening they took the unit path and the
    reference): a struck row of scales defers its blocks, whose keys the deferred launch
    dequantizes per channel (SECDED: ``_block_slab`` per channel; Golay: the unit path)."""
    plan = attention.LaunchPlan.make(codec, 128, 1, True, batch=1, q_heads=4, kv_heads=2, lq=1, seq=128, device=torch.device("cpu"),
                                     channel_block=32)
    assert plan.storage["LANES"] or plan.storage["BLOCKS"]
    # The scales are read into float32 words first: by a pass of their own on the lane path, by
    # each main program on the blocks path.
    assert (plan.channel_scales_pass, plan.channel_scales_in_main) == ((False, True) if plan.storage["BLOCKS"] else (True, False))
    check_against_reference(codec, 1, 1, 2, 128, 128, 32, 1, 0, 0.0, torch.float16, True, kernel_device, strike_scales=flips)


@pytest.mark.parametrize("codec", ["int4", "hamming84"])
def test_bfloat16_queries_beyond_float16s_range_over_channel_keys(codec, kernel_device):
    """The main launch's scores over keys per channel take float16 operands with bfloat16
    queries: q_c s_c scaled by a power of two per query row, so that queries far beyond
    float16's range (here |q_c s_c| up to ~1e6) neither overflow nor lose their precision."""
    check_against_reference(codec, 1, 2, 2, 96, 64, 32, 1, 0, 0.0, torch.bfloat16, True, kernel_device, query_scale=1e6)


@pytest.mark.parametrize("codec", ["int4", "hamming84"])
@pytest.mark.parametrize("mask_rows", [True, False], ids=["one-mask-row", "per-head"])
def test_a_mask_reaches_the_codewords_and_the_window(codec, mask_rows, kernel_device):
    """A boolean mask (one row a sequence, as a decoding step's, or one per head and query
    token) hides keys among the codeword rows and in the window alike, in the kernel as in the
    reference; causal speculative queries on top."""
    masked = "rows" if mask_rows else "heads"
    check_against_reference(codec, 2, 2, 2, 200, 64, 32, 2, 48, 0.0, torch.float16, True, kernel_device, masked=masked)


@pytest.mark.parametrize(("codec", "groups", "dim", "lq"), [("int4", 2, 48, 3), ("golay24", 1, 48, 2)],
                         ids=["int4-grouped-causal", "golay-causal"])
def test_a_window_beside_per_token_keys_matches_the_reference(codec, groups, dim, lq, kernel_device):
    """The window beside keys quantized per token (``key_quant="token"`` with a residual
    length): the main launch's window program writes its partial as the combine kernel reads
    the unit path's (grouped scales: two values a unit, slot after slot) and the lane layout's
    (value order), with causal speculative queries and struck values; outputs within the
    tolerance, counters equal."""
    batch, heads, seq, window = 1, 2, 100, 37
    (k_stored, k_meta), (v_stored, v_meta) = make_cache(codec, batch, heads, seq, dim, group_size=dim // groups if groups > 1 else None,
                                                        flip_rate=0.01, seed=5)
    g = torch.Generator().manual_seed(3)
    query = torch.randn(batch, 2 * heads, lq, dim, generator=g).half()
    seq_lens = torch.tensor([seq - 3])
    k_window, v_window = (torch.randn(batch, heads, window, dim, generator=g).half() for _ in range(2))
    results = []
    for fn, q, at in ((torch.ops.ecc.decode_attention, query.double(), "cpu"), (fused_attention(kernel_device), query, kernel_device)):
        to = lambda t: t.to(at)  # noqa: E731
        counters = new_counters(at)
        out = fn(to(q), *map(to, (k_stored, k_meta, v_stored, v_meta)), *codec_tables(codec, at), codec, dim, groups, True, True,
                 to(seq_lens), counters, None, lq > 1, dim**-0.5, None, quantized_lens=to(seq_lens - 20), k_window=to(k_window),
                 v_window=to(v_window))
        results.append((out.double().cpu(), counters.cpu()))
    (want, want_counts), (got, got_counts) = results
    assert float((got - want).norm() / want.norm()) < TOLERANCE
    assert torch.equal(got_counts, want_counts)
    assert codec == "int4" or int(want_counts[1]) > 0  # struck values corrected, counted alike


def check_against_reference(codec, batch, heads, gqa, seq, dim, block, lq, window, flip_rate, dtype, symmetric, device,
                            strike_scales=0, query_scale=1.0, masked=None, block_growth=1.0, config=None):
    k_stored, k_meta, v_stored, v_meta = channel_cache(codec, batch, heads, seq, dim, block, symmetric, flip_rate, seed=1,
                                                       block_growth=block_growth)
    if strike_scales:  # the first byte of the second row of channel scales
        k_meta = k_meta.clone()
        k_meta[:, :, 1, 0] ^= strike_scales
    g = torch.Generator().manual_seed(2)
    query = (torch.randn(batch, heads * gqa, lq, dim, generator=g) * query_scale).to(dtype)
    seq_lens = torch.tensor([seq - 7, seq, seq - 100, seq][:batch], dtype=torch.int64)
    scheme = dict(key_channel_block=block)
    if window:
        scheme.update(quantized_lens=torch.clamp(seq_lens - 40, min=0) // block * block,
                      k_window=torch.randn(batch, heads, window, dim, generator=g).to(dtype),
                      v_window=torch.randn(batch, heads, window, dim, generator=g).to(dtype))
    mask = None
    if masked:  # a tenth of the keys hidden
        mask = torch.rand(batch, 1 if masked == "rows" else heads * gqa, 1 if masked == "rows" else lq, seq, generator=g) > 0.1
    results = []
    for fn, q, at in ((torch.ops.ecc.decode_attention, query.double(), "cpu"), (fused_attention(device), query, device)):
        counters = new_counters(at)
        to = lambda t: t.to(at) if isinstance(t, torch.Tensor) else t  # noqa: E731
        out = fn(to(q), *map(to, (k_stored, k_meta, v_stored, v_meta)), *codec_tables(codec, at), codec, dim, 1, symmetric, True,
                 to(seq_lens), counters, None if mask is None else to(mask), lq > 1, dim**-0.5, config,
                 **{name: to(t) for name, t in scheme.items()})
        results.append((out.double().cpu(), counters.cpu()))
    (want, want_counts), (got, got_counts) = results
    assert float((got - want).norm() / want.norm()) < (4e-3 if dtype == torch.bfloat16 else TOLERANCE)  # the output's rounding
    assert torch.equal(got_counts, want_counts)
    if flip_rate and codec != "int4":
        assert int(want_counts[3]) > 0 and int(want_counts[9]) > 0  # values and channel scales detected, and interpolated
    if strike_scales and codec != "int4":  # int4's scales are plain float32 words: a changed one, nothing counted
        assert int(want_counts[9 if strike_scales == 0x0F else 7]) == batch * heads  # one scale codeword a (sequence, head)


@pytest.mark.parametrize("codec, where", [("int4", "window"), ("hamming84", "window"), ("int4", "channel scale")])
def test_a_nan_reaches_the_output_as_in_the_reference(codec, where, kernel_device):
    """A NaN among the scores a query sees (a struck window word, a struck unprotected channel
    scale) makes its output NaN, in the kernel as in the reference and SDPA; the other heads
    are unharmed. (The combine kernel used to take a NaN partial for one that saw nothing:
    zeros.)"""
    batch, heads, seq, dim, block = 1, 2, 96, 16, 32
    k_stored, k_meta, v_stored, v_meta = channel_cache(codec, batch, heads, seq, dim, block, True, 0.0, seed=1)
    g = torch.Generator().manual_seed(2)
    query = torch.randn(batch, heads, 1, dim, generator=g).half()
    k_window, v_window = (torch.randn(batch, heads, 64, dim, generator=g).half() for _ in range(2))
    if where == "window":
        k_window[0, 1, 3, 2] = float("nan")  # token 67: in the window, which holds tokens [64, 96)
    else:  # channel 2's scale in KV head 1's first block (int4's scales are the float32 words themselves)
        k_meta = k_meta.clone()
        k_meta.view(torch.float32)[0, 1, 0, 2] = float("nan")
    outs = []
    # The reference, then the kernel (on CPU tensors: in the interpreter).
    for fn, at in ((torch.ops.ecc.decode_attention, "cpu"), (fused_attention(kernel_device), kernel_device)):
        to = lambda t: t.to(at)  # noqa: E731
        outs.append(fn(to(query), *map(to, (k_stored, k_meta, v_stored, v_meta)), *codec_tables(codec, at), codec, dim, 1, True,
                       False, to(torch.tensor([seq])), new_counters(at), None, False, dim**-0.5, None, key_channel_block=block,
                       quantized_lens=to(torch.tensor([64])), k_window=to(k_window), v_window=to(v_window)).cpu())
    want, got = outs
    assert want[0, 1].isnan().all() and not want[0, 0].isnan().any()
    torch.testing.assert_close(got, want, rtol=2e-3, atol=2e-3, equal_nan=True)


def test_unaligned_int4_channel_scales_are_read_as_bytes(kernel_device):
    """int4's channel scales are loaded as float32 words only where their rows are 4-byte
    aligned (``K_META_WORDS``, as ``META_WORDS`` for row scales): a metadata view at an odd
    offset takes the byte path, and reads the same scales."""
    batch, heads, seq, dim, block = 1, 2, 96, 16, 32
    k_stored, k_meta, v_stored, v_meta = channel_cache("int4", batch, heads, seq, dim, block, True, 0.0, seed=3)
    shifted = torch.empty(k_meta.numel() + 1, dtype=torch.uint8)[1:].view(k_meta.shape)
    shifted.copy_(k_meta)
    layout = MetadataLayout("int4", dim)
    meta = attention.plan.meta_constants(MetadataLayout("int4"), v_meta)
    assert attention.key_meta_constants(layout, dim, block, meta, k_meta)["K_META_WORDS"] == layout.row_bytes // 4
    assert attention.key_meta_constants(layout, dim, block, meta, shifted)["K_META_WORDS"] == 0
    query = torch.randn(batch, heads, 1, dim, generator=torch.Generator().manual_seed(4)).half()
    if kernel_device != "cpu":  # the same misaligned view on the GPU
        on_gpu = torch.empty(k_meta.numel() + 1, dtype=torch.uint8, device=kernel_device)[1:].view(k_meta.shape)
        shifted = on_gpu.copy_(shifted)
    to = lambda t: t.to(kernel_device)  # noqa: E731
    outs = [fused_attention(kernel_device)(to(query), to(k_stored), km if km is shifted else to(km), to(v_stored), to(v_meta),
                                           *codec_tables("int4", kernel_device), "int4", dim, 1, True, False,
                                           to(torch.tensor([seq])), new_counters(kernel_device), None, False, dim**-0.5, None,
                                           key_channel_block=block)
            for km in (k_meta, shifted)]
    assert torch.equal(outs[0], outs[1])


def test_the_blocks_paths_main_programs_read_coded_channel_scales_at_any_byte_offset(kernel_device):
    """On the blocks path each main program reads its coded rows of channel scales itself
    (``K_CODED_BASE``: their first byte past a 32-bit word): views of the metadata at byte
    offsets 1-3, one with a struck scale codeword, attend exactly as the aligned tensor. (The
    interpreter reads words at any byte; the GPU faults on a word read off its alignment.)"""
    batch, heads, seq, dim, block = 1, 2, 96, 64, 32
    k_stored, k_meta, v_stored, v_meta = channel_cache("secded72", batch, heads, seq, dim, block, True, 0.0, seed=5)
    k_meta[0, 1, 2, 4] ^= 0x10  # one corrected codeword
    plan = attention.LaunchPlan.make("secded72", dim, 1, False, batch=batch, q_heads=heads, kv_heads=heads, lq=1, seq=seq,
                                     device=torch.device(kernel_device), stored=(k_stored, v_stored), channel_block=block)
    assert plan.channel_scales_in_main and not plan.channel_scales_pass
    query = torch.randn(batch, heads, 1, dim, generator=torch.Generator().manual_seed(6)).half()
    to = lambda t: t.to(kernel_device)  # noqa: E731
    tables = codec_tables("secded72", kernel_device)

    def attend(km):
        counters = new_counters(kernel_device)
        out = fused_attention(kernel_device)(to(query), to(k_stored), km, to(v_stored), to(v_meta), *tables, "secded72", dim, 1, True,
                                             False, to(torch.tensor([seq])), counters, None, False, dim**-0.5, None,
                                             key_channel_block=block)
        return out, counters

    want, want_counts = attend(to(k_meta))
    assert want_counts.any()  # the struck codeword was seen
    for offset in (1, 2, 3):
        view = torch.empty(k_meta.numel() + offset, dtype=torch.uint8, device=kernel_device)[offset:].view(k_meta.shape)
        got, counts = attend(view.copy_(to(k_meta)))
        assert torch.equal(got, want) and torch.equal(counts, want_counts), offset


@pytest.mark.parametrize("codec", ["int4", "hamming84", "golay24"])
@pytest.mark.parametrize("axis", ["token", "channel"])
@pytest.mark.parametrize("length", [3, 4, 5, 12, 13])  # shorter than the window, at it, one past, whole blocks, one past
def test_from_float_per_channel_or_windowed_reads_back_the_scheme(codec, axis, length):
    residual = 4
    x = torch.randn(2, 2, length, 16, generator=torch.Generator().manual_seed(length)).to(torch.bfloat16)
    x[..., 5] *= 40  # an outlier channel
    t = ECCInt4Tensor.from_float(x, codec, axis=axis, channel_block=4, residual_length=residual)
    scheme = QuantScheme(key_quant=axis, channel_block=4, residual_length=residual)
    want, rows, block = expected_read(x, scheme, 0), scheme.quantized_rows(0, length), scheme.channel_block if axis == "channel" else 1
    assert int(t.quantized_rows()) == rows and t.window.shape[-2] == residual + (4 if axis == "channel" else 0)
    assert (t.channel_block == 4) == (axis == "channel") and "residual_length=4" in repr(t)
    counters = new_counters()
    torch.testing.assert_close(t.dequantize(counters=counters), want, rtol=0, atol=0)
    assert int(counters[0]) == 2 * 2 * rows * StorageLayout(codec, 16).codewords_per_row
    # Values beside the keys take the keys' boundary (window_block); attention over both,
    # through SDPA's dispatch, is dense attention over what they read.
    v = torch.randn(2, 2, length, 16, generator=torch.Generator().manual_seed(7)).to(torch.bfloat16)
    tv = ECCInt4Tensor.from_float(v, codec, residual_length=residual, window_block=block)
    assert int(tv.quantized_rows()) == rows
    q = torch.randn(2, 4, 1, 16, generator=torch.Generator().manual_seed(8)).to(torch.bfloat16)
    got = F.scaled_dot_product_attention(q, t, tv, enable_gqa=True)
    dense = F.scaled_dot_product_attention(q.float(), t.dequantize().float(), tv.dequantize().float(), enable_gqa=True)
    torch.testing.assert_close(got.float(), dense, rtol=2e-2, atol=2e-2)
    # Whole-tensor copies keep the scheme; ops that move rows refuse it.
    assert torch.equal(t.clone().dequantize(), t.dequantize()) and t.detach().window is not None
    with pytest.raises(NotImplementedError, match="dequantize"):
        t[:, :, :2]


def test_from_float_refuses_what_a_scheme_cannot_hold():
    x = torch.randn(1, 1, 8, 16, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="key_quant"):
        ECCInt4Tensor.from_float(x, "hamming84", axis="row")
    with pytest.raises(ValueError, match="group_size"):
        ECCInt4Tensor.from_float(x, "hamming84", axis="channel", group_size=8)
    with pytest.raises(ValueError, match="16-bit"):
        ECCInt4Tensor.from_float(x.float(), "hamming84", residual_length=2)


def test_the_op_checks_a_schemes_arguments():
    codec, dim = "hamming84", 64
    k_stored, k_meta, v_stored, v_meta = channel_cache(codec, 1, 1, 64, dim, 32, True, 0.0, seed=0)
    args = lambda **kw: dict(dict(key_channel_block=32), **kw)  # noqa: E731
    q, lens = torch.randn(1, 1, 1, dim), torch.tensor([64])

    def call(k_meta=k_meta, **kw):
        return torch.ops.ecc.decode_attention(q, k_stored, k_meta, v_stored, v_meta, *codec_tables(codec, "cpu"), codec, dim, 1, True,
                                              False, lens, new_counters(), None, False, 0.125, None, **kw)

    call(**args())
    with pytest.raises(ValueError, match="channel scales a block"):
        call(**args(key_channel_block=16))
    with pytest.raises(ValueError, match="non-negative int"):
        call(**args(key_channel_block=-1))
    with pytest.raises(ValueError, match="together"):
        call(**args(quantized_lens=torch.tensor([32])))
    window = torch.zeros(1, 1, 8, dim)
    with pytest.raises(ValueError, match="ring buffer"):
        call(**args(quantized_lens=torch.tensor([32]), k_window=window[..., :8], v_window=window))
    with pytest.raises(ValueError, match="quantized_lens must be int64"):
        call(**args(quantized_lens=torch.tensor([32.0]), k_window=window, v_window=window))
