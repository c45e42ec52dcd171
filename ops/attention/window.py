"""The full-precision window's share of decode attention (:mod:`ecc_tensor.quant_scheme`): the
most recent tokens, kept in the model's dtype in a ring buffer (token ``p`` at row ``p % W``),
attended by a kernel of their own into one more partial result per (sequence, KV head), which
the combine kernel merges with the codewords' partials by their log-sum-exp. The window holds
a few hundred rows at most, so one program per (sequence, KV head) walks it."""

from __future__ import annotations

import triton
import triton.language as tl

from .softmax import _group_queries, _online_softmax, _pv, _visible_scores


@triton.jit
def _window_attention_kernel(
    q_ptr, kw_ptr, vw_ptr, seq_lens_ptr, kv_lens_ptr, mask_ptr, o_ptr, ml_ptr,
    qk_scale,  # softmax scale * log2(e)
    stride_qb, stride_qh, stride_qm, stride_qd, stride_kb, stride_kh, stride_kw, stride_kd,
    stride_vb, stride_vh, stride_vw, stride_vd, stride_mb, stride_mh, stride_mq, stride_ms,
    W,  # rows of the ring buffer
    HKV: tl.constexpr, GQA: tl.constexpr, LQ: tl.constexpr, D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr,
    BLOCK_N: tl.constexpr, HAS_MASK: tl.constexpr, MASK_ROWS: tl.constexpr, CAUSAL: tl.constexpr, DOT_PRECISION: tl.constexpr,
    EMULATE_BF16: tl.constexpr, SPLIT_P: tl.constexpr,
    # The combine kernel's partial layout: value d at column (d % OUT_UNIT_VALUES) * OUT_BLOCK_U + d // OUT_UNIT_VALUES.
    OUT_UNIT_VALUES: tl.constexpr, OUT_BLOCK_U: tl.constexpr, PART_COLS: tl.constexpr,
):
    bh = tl.program_id(0)
    b = bh // HKV
    total = tl.load(seq_lens_ptr + b).to(tl.int32)
    first = tl.load(kv_lens_ptr + b).to(tl.int32)  # the window holds tokens [first, total)
    q, m, m_ok, head, qi, d, d_ok = _group_queries(q_ptr, b, bh % HKV, stride_qb, stride_qh, stride_qm, stride_qd, GQA, LQ, D, BLOCK_M,
                                                   BLOCK_D, EMULATE_BF16)
    dtype: tl.constexpr = q.dtype
    last_visible = total - LQ + qi
    kw_base = kw_ptr + b.to(tl.int64) * stride_kb + (bh % HKV) * stride_kh
    vw_base = vw_ptr + b.to(tl.int64) * stride_vb + (bh % HKV) * stride_vh
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    for p0 in range(first, total, BLOCK_N):
        pos = p0 + tl.arange(0, BLOCK_N)
        ok = pos < total
        slot = pos % W
        tile_ok = ok[:, None] & d_ok[None, :]
        k = tl.load(kw_base + slot[:, None] * stride_kw + d[None, :] * stride_kd, mask=tile_ok, other=0.0).to(dtype)
        s = tl.dot(q, tl.trans(k), input_precision=DOT_PRECISION) * qk_scale
        s = _visible_scores(s.to(tl.float32), pos, ok, m_ok, head, qi, last_visible, 0, mask_ptr, b,
                            stride_mb, stride_mh, stride_mq, stride_ms, HAS_MASK, MASK_ROWS, CAUSAL)
        p, alpha, m_i, l_i = _online_softmax(s, m_i, l_i)
        v = tl.load(vw_base + slot[:, None] * stride_vw + d[None, :] * stride_vd, mask=tile_ok, other=0.0).to(dtype)
        acc = _pv(acc * alpha[:, None], p, v, dtype, SPLIT_P, DOT_PRECISION)
    part = bh.to(tl.int64) * BLOCK_M + m
    col = (d % OUT_UNIT_VALUES) * OUT_BLOCK_U + d // OUT_UNIT_VALUES
    tl.store(o_ptr + part[:, None] * PART_COLS + col[None, :], acc, mask=m_ok[:, None] & d_ok[None, :])
    tl.store(ml_ptr + part * 2, m_i)
    tl.store(ml_ptr + part * 2 + 1, l_i)
