"""``FP8KVTensor``: E4M3 words and per-head scales as one tensor; its views, moves and slices,
and SDPA over it (fused for a few query tokens, dense otherwise), eager and compiled."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from ecc_tensor.fp8 import E4M3, from_e4m3, head_scale, to_e4m3
from ecc_tensor.fp8_tensor import FP8KVTensor, fp8_attention_applies


def fp8_tensor(batch=2, heads=2, seq=24, head_dim=16, seed=0, seq_len=None):
    x = torch.randn(batch, heads, seq, head_dim, generator=torch.Generator().manual_seed(seed)) * 3
    scale = head_scale(x)
    return FP8KVTensor(to_e4m3(x, scale), scale, x.shape, torch.float32, seq_len=seq_len)


def test_dequantize_is_the_words_times_their_heads_scale():
    t = fp8_tensor()
    assert torch.equal(t.dequantize(), from_e4m3(t.words, t.scale, torch.float32))
    assert t.dequantize(torch.float16).dtype == torch.float16
    assert "FP8KVTensor" in repr(t)


def test_bad_construction_is_refused():
    t = fp8_tensor()
    with pytest.raises(ValueError, match="float8_e4m3fn"):
        FP8KVTensor(t.words.float(), t.scale, t.shape, torch.float32)
    with pytest.raises(ValueError, match="scales"):
        FP8KVTensor(t.words, t.scale[:1], t.shape, torch.float32)


def test_views_copies_moves_and_slices():
    t = fp8_tensor(seq_len=torch.tensor(10))
    for view in (t.detach(), t.clone(), t.contiguous(), t.to("cpu")):
        assert isinstance(view, FP8KVTensor) and torch.equal(view.dequantize(), t.dequantize()) and int(view.seq_len) == 10
    half = t.to(torch.float16)
    assert half.dtype == torch.float16 and torch.equal(half.words.view(torch.uint8), t.words.view(torch.uint8))
    with pytest.raises(ValueError, match="floating"):
        t.to(torch.int32)
    rows = t[:, :, 3:9]
    assert rows.seq_len is None and torch.equal(rows.dequantize(), t.dequantize()[:, :, 3:9])
    head = t[:, 1:]
    assert head.scale.shape == (2, 1, 1, 1) and torch.equal(head.dequantize(), t.dequantize()[:, 1:])
    with pytest.raises(NotImplementedError, match="head_dim"):
        t[..., :8]
    ones = torch.ones(2, 2, 1, 24)
    assert torch.equal(torch.matmul(ones, t), ones @ t.dequantize())  # other ops: dequantized first
    with pytest.raises(NotImplementedError, match="select"):
        t[0]  # would leave [B, H, S, D]


@pytest.mark.parametrize("lq", [1, 3])
def test_sdpa_reads_the_words_for_a_few_queries_and_dequantizes_otherwise(lq):
    k, v = fp8_tensor(seed=1), fp8_tensor(seed=2)
    q = torch.randn(2, 4, lq, 16, generator=torch.Generator().manual_seed(3))
    assert fp8_attention_applies(q, k, v, enable_gqa=True) and not fp8_attention_applies(q, k, v)  # GQA needs enable_gqa
    got = F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
    want = F.scaled_dot_product_attention(q, k.dequantize(), v.dequantize(), enable_gqa=True)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # the causal top-left mask and dropout are not the fused kernel's: dense SDPA
    assert not fp8_attention_applies(q, k, v, is_causal=True, enable_gqa=True)
    got = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    torch.testing.assert_close(got, F.scaled_dot_product_attention(q, k.dequantize(), v.dequantize(), is_causal=True, enable_gqa=True))


def test_seq_len_bounds_the_rows_attended():
    k, v = fp8_tensor(seed=1, seq_len=torch.tensor(10)), fp8_tensor(seed=2)
    q = torch.randn(2, 2, 1, 16, generator=torch.Generator().manual_seed(3))
    got = F.scaled_dot_product_attention(q, k, v)
    want = F.scaled_dot_product_attention(q, k.dequantize()[:, :, :10], v.dequantize()[:, :, :10])
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_compiled_sdpa_over_fp8_tensors_has_no_graph_breaks():
    torch._dynamo.reset()
    k, v = fp8_tensor(seed=1, seq_len=torch.tensor(20)), fp8_tensor(seed=2)
    q = torch.randn(2, 4, 1, 16, generator=torch.Generator().manual_seed(3))
    attend = lambda q, k, v: F.scaled_dot_product_attention(q, k, v, enable_gqa=True)  # noqa: E731
    torch.testing.assert_close(torch.compile(attend, fullgraph=True)(q, k, v), attend(q, k, v), rtol=1e-5, atol=1e-5)
    assert k.words.dtype == E4M3


@settings(max_examples=15, deadline=None)
@given(batch=st.integers(1, 2), kv_heads=st.integers(1, 2), group=st.sampled_from([1, 2]), lq=st.integers(1, 3),
       seq=st.integers(1, 40), written=st.integers(0, 40), head_dim=st.sampled_from([8, 16]), seed=st.integers(0, 2**16))
def test_sdpa_over_fp8_tensors_property(batch, kv_heads, group, lq, seq, written, head_dim, seed):
    """Any shape, GQA group, query tokens and written length: SDPA over FP8KVTensor K/V (fused)
    equals SDPA over their dequantized written rows."""
    written = min(written, seq)
    k = fp8_tensor(batch, kv_heads, seq, head_dim, seed, seq_len=torch.tensor(written))
    v = fp8_tensor(batch, kv_heads, seq, head_dim, seed + 1)
    q = torch.randn(batch, kv_heads * group, lq, head_dim, generator=torch.Generator().manual_seed(seed + 2))
    got = F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
    want = F.scaled_dot_product_attention(q, k.dequantize()[:, :, :written], v.dequantize()[:, :, :written], enable_gqa=True)
    if written == 0:  # nothing to attend: the fused op's zeros, where SDPA over no keys gives NaN
        assert torch.equal(got, torch.zeros_like(got))
    else:
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
