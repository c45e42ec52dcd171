"""The full-precision window's share of decode attention (:mod:`ecc_tensor.quant_scheme`): the
most recent tokens, kept in the model's dtype in a ring buffer (token ``p`` at row ``p % W``),
attended into one more partial result per (sequence, KV head), which the combine kernel merges
with the codewords' partials by their log-sum-exp. The window holds a few hundred rows at most,
so one program per (sequence, KV head) walks it: the main launch's last program of each
(``_decode_attention_kernel`` with ``WINDOW``). As a launch of its own it took 6 us at batch 8
/ 32k on the H200, 4-8% of the fast paths' time; as programs of the main launch it runs where
the main launch leaves a multiprocessor's slot free (benchmarks/RESULTS.md, "The window in the
main launch")."""

from __future__ import annotations

import triton
import triton.language as tl

from .softmax import _group_queries, _group_rows, _online_softmax, _pv, _visible_scores


@triton.jit
def _window_partial(
    bh, q_ptr, kw_ptr, vw_ptr, seq_lens_ptr, kv_lens_ptr, stride_lens, mask_ptr, o_ptr, ml_ptr,
    qk_scale,  # softmax scale * log2(e)
    stride_qb, stride_qh, stride_qm, stride_qd, stride_mb, stride_mh, stride_mq, stride_ms,
    W,  # rows of the ring buffer: ``[B, HKV, W, D]``, contiguous
    HKV: tl.constexpr, GQA: tl.constexpr, LQ: tl.constexpr, D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr,
    BLOCK_N: tl.constexpr, HAS_MASK: tl.constexpr, MASK_ROWS: tl.constexpr, CAUSAL: tl.constexpr, DOT_PRECISION: tl.constexpr,
    EMULATE_BF16: tl.constexpr, SPLIT_P: tl.constexpr,
    # The combine kernel's partial layout: value d at column (d % OUT_UNIT_VALUES) * OUT_BLOCK_U + d // OUT_UNIT_VALUES.
    OUT_UNIT_VALUES: tl.constexpr, OUT_BLOCK_U: tl.constexpr, PART_COLS: tl.constexpr,
):
    """Attends the window of (sequence, KV head) ``bh``: tokens ``[kv_lens[b], seq_lens[b])``,
    into partial ``bh`` of ``o_ptr`` / ``ml_ptr``."""
    b = bh // HKV
    total = tl.load(seq_lens_ptr + b * stride_lens).to(tl.int32)
    first = tl.load(kv_lens_ptr + b * stride_lens).to(tl.int32)  # the window holds tokens [first, total)
    m, m_ok, head, qi, d, d_ok = _group_rows(bh % HKV, GQA, LQ, D, BLOCK_M, BLOCK_D)
    q = _group_queries(q_ptr, b, head, qi, d, m_ok, d_ok, stride_qb, stride_qh, stride_qm, stride_qd, EMULATE_BF16)
    dtype: tl.constexpr = q.dtype
    last_visible = total - LQ + qi
    base = bh.to(tl.int64) * W * D
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    for p0 in range(first, total, BLOCK_N):
        pos = p0 + tl.arange(0, BLOCK_N)
        ok = pos < total
        tile = base + (pos % W)[:, None] * D + d[None, :]
        tile_ok = ok[:, None] & d_ok[None, :]
        k = tl.load(kw_ptr + tile, mask=tile_ok, other=0.0).to(dtype)
        # Both products transposed, as the main launch's: GQA's few query rows are the MMA's N,
        # padded to 8, not its M, padded to 16, so that the window takes no more registers
        # than the main loop it shares a launch with (one warp, 128 registers over int4).
        s = tl.trans(tl.dot(k, tl.trans(q), input_precision=DOT_PRECISION)) * qk_scale
        s = _visible_scores(s.to(tl.float32), pos, ok, m_ok, head, qi, last_visible, 0, mask_ptr, b,
                            stride_mb, stride_mh, stride_mq, stride_ms, HAS_MASK, MASK_ROWS, CAUSAL)
        p, alpha, m_i, l_i = _online_softmax(s, m_i, l_i)
        v = tl.load(vw_ptr + tile, mask=tile_ok, other=0.0).to(dtype)
        acc = _pv(acc * alpha[:, None], p, v, dtype, SPLIT_P, DOT_PRECISION, True)
    part = bh.to(tl.int64) * BLOCK_M + m
    col = (d % OUT_UNIT_VALUES) * OUT_BLOCK_U + d // OUT_UNIT_VALUES
    tl.store(o_ptr + part[:, None] * PART_COLS + col[None, :], acc, mask=m_ok[:, None] & d_ok[None, :])
    tl.store(ml_ptr + part * 2, m_i)
    tl.store(ml_ptr + part * 2 + 1, l_i)
