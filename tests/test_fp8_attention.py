"""``ecc::fp8_decode_attention``: the fused kernel over E4M3 words (in Triton's interpreter on
CPU, compiled on a GPU) against dequantize (float64) + float64 attention, NaN words included;
opcheck, torch.compile, bad arguments."""

from __future__ import annotations

import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.library import opcheck

import ecc_tensor.ops as ops
from ecc_tensor.attention import attention_reference
from ecc_tensor.fp8 import E4M3, from_e4m3, head_scale, to_e4m3
from ecc_tensor.ops import attention
from ecc_tensor.ops.attention.fp8 import triton_fp8_decode_attention

TOLERANCE = 1e-3  # relative error (norm) vs the float64 reference, as tests/test_attention.py


@pytest.fixture(autouse=True)
def many_splits(monkeypatch):
    """Short sequences split across programs too, so that the combine merges many partials."""
    monkeypatch.setattr(attention.plan, "MIN_SPLIT_KEYS", 1)


def fp8_cache(batch, kv_heads, seq, head_dim, flip_rate=0.0, seed=0):
    """(words, scale) for K and V; with ``flip_rate``, that fraction of the words with one bit
    flipped (NaN words among them)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(2):
        x = torch.randn(batch, kv_heads, seq, head_dim, generator=g) * torch.rand(batch, kv_heads, 1, 1, generator=g) * 4
        scale = head_scale(x)
        words = to_e4m3(x, scale).view(torch.uint8)
        flips = (torch.rand(words.shape, generator=g) < flip_rate).to(torch.uint8) << torch.randint(0, 8, words.shape, generator=g,
                                                                                                     dtype=torch.uint8)
        out.append(((words ^ flips).view(E4M3), scale))
    return out


def fused(query, k, v, seq_lens, device, attn_mask=None, is_causal=False, config="16,4,1,4"):
    to = lambda t: None if t is None else t.to(device)  # noqa: E731
    args = (to(query), *map(to, k), *map(to, v), to(seq_lens), to(attn_mask), is_causal, query.shape[-1] ** -0.5, config)
    # On CPU tensors the op runs its reference: call the kernel itself, which runs under
    # TRITON_INTERPRET=1 there (the op's CUDA branch).
    return (torch.ops.ecc.fp8_decode_attention if device == "cuda" else triton_fp8_decode_attention)(*args).cpu()


def reference(query, k, v, seq_lens, attn_mask=None, is_causal=False):
    kd, vd = (from_e4m3(words, scale, torch.float64) for words, scale in (k, v))
    return attention_reference(query, kd, vd, seq_lens, attn_mask, is_causal, query.shape[-1] ** -0.5, torch.float64)


def check(out, ref, dtype):
    """NaN exactly where the reference has NaN (a NaN word attended), the rest within the bound."""
    assert torch.equal(out.isnan(), ref.isnan())
    finite = ~ref.isnan()
    err = (out.double()[finite] - ref.double()[finite]).norm() / ref.double()[finite].norm().clamp_min(1e-12)
    assert err < (1e-6 if dtype == torch.float32 else TOLERANCE)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("lq,causal,masked", [(1, False, False), (2, True, False), (1, False, True)])
def test_fused_fp8_attention_matches_the_reference(dtype, lq, causal, masked, kernel_device):
    batch, q_heads, kv_heads, seq, head_dim = 2, 8, 2, 150, 64
    g = torch.Generator().manual_seed(1)
    query = torch.randn(batch, q_heads, lq, head_dim, generator=g).to(dtype)
    k, v = fp8_cache(batch, kv_heads, seq, head_dim)
    seq_lens = torch.tensor([150, 61])
    mask = torch.rand(batch, 1, 1, seq, generator=g) < 0.8 if masked else None
    check(fused(query, k, v, seq_lens, kernel_device, mask, causal), reference(query, k, v, seq_lens, mask, causal), dtype)


def test_nan_words_make_their_rows_nan_and_only_those(kernel_device):
    """A struck exponent bit can make an E4M3 word NaN (0x7F, 0xFF): the query rows that attend
    it come out NaN, as SDPA over the dequantized cache; a NaN past a sequence's end is never read."""
    batch, q_heads, kv_heads, seq, head_dim = 2, 4, 2, 64, 32
    query = torch.randn(batch, q_heads, 1, head_dim, generator=torch.Generator().manual_seed(2), dtype=torch.float16)
    k, v = fp8_cache(batch, kv_heads, seq, head_dim)
    seq_lens = torch.tensor([64, 40])
    words = k[0].view(torch.uint8).clone()
    words[0, 1, 7, 3] = 0x7F  # sequence 0, KV head 1: its query heads 2 and 3 see it
    words[1, 0, 50, 0] = 0xFF  # past sequence 1's 40 rows: never read
    k = (words.view(E4M3), k[1])
    out = fused(query, k, v, seq_lens, kernel_device)
    assert out.isnan().any(-1).flatten().tolist() == [False, False, True, True, False, False, False, False]
    check(out, reference(query, k, v, seq_lens), torch.float16)


def test_lengths_past_the_storage_attend_every_stored_row(kernel_device):
    """A length past the stored rows reads no further than the storage: every stored row is
    attended, as the reference attends them."""
    query = torch.randn(2, 4, 1, 32, generator=torch.Generator().manual_seed(4), dtype=torch.float16)
    k, v = fp8_cache(2, 2, 40, 32)
    long = torch.tensor([45, 300])
    out = fused(query, k, v, long, kernel_device)
    check(out, reference(query, k, v, long), torch.float16)
    assert torch.equal(out, fused(query, k, v, torch.tensor([40, 40]), kernel_device))


@settings(max_examples=12, deadline=None)
@given(batch=st.integers(1, 3), kv_heads=st.integers(1, 2), group=st.sampled_from([1, 2, 4]), lq=st.integers(1, 3),
       head_dim=st.sampled_from([16, 32, 48]), seq=st.integers(1, 130), causal=st.booleans(), flip_rate=st.sampled_from([0.0, 0.002]),
       seed=st.integers(0, 2**16))
def test_fused_fp8_attention_property(batch, kv_heads, group, lq, head_dim, seq, causal, flip_rate, seed):
    """Any shape, GQA group, query tokens, sequence lengths (zero included) and bit flips: as
    the reference. (CPU interpreter, or the GPU where there is one.)"""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    g = torch.Generator().manual_seed(seed)
    query = torch.randn(batch, kv_heads * group, lq, head_dim, generator=g, dtype=torch.float16)
    k, v = fp8_cache(batch, kv_heads, seq, head_dim, flip_rate, seed)
    seq_lens = torch.randint(0, seq + 1, (batch,), generator=g)
    if causal:
        seq_lens = seq_lens.clamp_min(min(lq, seq))
    check(fused(query, k, v, seq_lens, device, is_causal=causal), reference(query, k, v, seq_lens, is_causal=causal), torch.float16)


def test_opcheck_and_compile():
    batch, q_heads, kv_heads, seq, head_dim = 2, 4, 2, 20, 16
    query = torch.randn(batch, q_heads, 1, head_dim, generator=torch.Generator().manual_seed(3))
    k, v = fp8_cache(batch, kv_heads, seq, head_dim)
    seq_lens = torch.tensor([20, 9])
    before = [t.view(torch.uint8).clone() for t in (k[0], v[0])]
    # opcheck's schema test compares the inputs before and after the call arithmetically, which
    # torch does not implement for float8 on CPU; the words are checked unchanged here instead.
    utils = ("test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic")
    opcheck(torch.ops.ecc.fp8_decode_attention, (query, *k, *v, seq_lens, None, False, 0.25), test_utils=utils)
    opcheck(torch.ops.ecc.fp8_decode_attention, (query, *k, *v, seq_lens, torch.ones(batch, 1, 1, seq, dtype=torch.bool), False, 0.25),
            test_utils=utils)
    assert all(torch.equal(b, t.view(torch.uint8)) for b, t in zip(before, (k[0], v[0])))
    eager = ops.fp8_decode_attention(query, k, v, seq_lens=seq_lens)
    compiled = torch.compile(lambda q: ops.fp8_decode_attention(q, k, v, seq_lens=seq_lens), fullgraph=True)(query)
    # Compiled, Inductor fuses the reference's float32 arithmetic its own way: equal to rounding.
    assert torch.allclose(eager, compiled, atol=1e-6) and torch.allclose(eager, reference(query, k, v, seq_lens).float(), atol=1e-5)


def test_bad_arguments_raise_value_errors():
    query = torch.zeros(1, 4, 1, 16)
    k, v = fp8_cache(1, 2, 8, 16)
    lens = torch.tensor([8])
    call = torch.ops.ecc.fp8_decode_attention
    with pytest.raises(ValueError, match="float8_e4m3fn"):
        call(query, k[0].view(torch.uint8), k[1], *v, lens, None, False, 0.25)
    with pytest.raises(ValueError, match="multiple of KV heads"):
        call(torch.zeros(1, 3, 1, 16), *k, *v, lens, None, False, 0.25)
    with pytest.raises(ValueError, match="do not match the query"):
        call(torch.zeros(1, 4, 1, 32), *k, *v, lens, None, False, 0.25)
    with pytest.raises(ValueError, match="k_scale"):
        call(query, k[0], torch.ones(2), *v, lens, None, False, 0.25)
    with pytest.raises(ValueError, match="seq_lens"):
        call(query, *k, *v, lens.int(), None, False, 0.25)
    with pytest.raises(ValueError, match="attn_mask"):
        call(query, *k, *v, lens, torch.ones(1, 1, 1, 5, dtype=torch.bool), False, 0.25)
    with pytest.raises(ValueError, match="attention config"):
        call(query, *k, *v, lens, None, False, 0.25, "64,4")


def test_kernel_compiles_for_hopper_without_spills(run_compile_tool):
    """The kernel compiled for sm_90a at its launch configuration (``FP8_CONFIG``), float16 and
    bfloat16: it fits the register file (250 and 242 registers with Triton 3.6), no spills, and
    every load of its key loop is issued ahead (the values a stage ahead, in registers)."""
    result = run_compile_tool("kernel_resources.py", "--codecs", "fp8")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if "registers" in line]
    assert len(lines) == 2, result.stdout
    for line in lines:
        assert "0 bytes spill stores" in line and int(re.search(r"Used (\d+) registers", line).group(1)) <= 255, line
        assert re.search(r"\b0 in loops not prefetched", line), line


def test_wide_offsets_path_matches_the_reference(monkeypatch, kernel_device):
    """The 64-bit offsets a slab past 2 GiB takes, forced on a small cache: as the reference;
    and the launcher's decision on strides that pass 2^31."""
    from ecc_tensor.ops.attention import fp8

    monkeypatch.setattr(fp8, "needs_wide_offsets", lambda *words: True)
    query = torch.randn(2, 4, 1, 32, generator=torch.Generator().manual_seed(5), dtype=torch.float16)
    k, v = fp8_cache(2, 2, 70, 32)
    seq_lens = torch.tensor([70, 33])
    check(fused(query, k, v, seq_lens, kernel_device), reference(query, k, v, seq_lens), torch.float16)
    monkeypatch.undo()
    small = torch.empty(1, 1, 8, 16, dtype=torch.uint8)
    assert not fp8.needs_wide_offsets(small, small)
    huge = torch.empty_strided((1, 1, 2, 16), (0, 0, 2**31, 1), dtype=torch.uint8, device="meta")  # strides only
    assert fp8.needs_wide_offsets(small, huge)


def test_bfloat16_queries_beyond_float16_range(kernel_device):
    """bfloat16 queries enter the dots in float16, each row scaled by a power of two: rows of
    magnitude 1e6 (past float16's 65504) and 1e-6 (float16 subnormals) give the reference's
    output, and a row of zeros gives the values' mean."""
    batch, q_heads, kv_heads, seq, head_dim = 1, 4, 1, 40, 32
    g = torch.Generator().manual_seed(6)
    query = torch.randn(batch, q_heads, 1, head_dim, generator=g)
    query[0, 0] *= 1e6
    query[0, 1] *= 1e-6
    query[0, 2] = 0
    query = query.to(torch.bfloat16)
    k, v = fp8_cache(batch, kv_heads, seq, head_dim)
    out = fused(query, k, v, torch.tensor([seq]), kernel_device)
    assert out.isfinite().all()
    check(out, reference(query, k, v, torch.tensor([seq])), torch.bfloat16)
