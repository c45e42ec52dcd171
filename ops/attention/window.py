"""The full-precision window's share of decode attention (:mod:`ecc_tensor.quant_scheme`): the
most recent tokens, kept in the model's dtype in a ring buffer (token ``p`` at row ``p % W``),
attended by the combine kernel itself for its one query row (``_window_share``) and merged
with the codewords' partials by their log-sum-exp.

A window holds a few hundred rows at most. As a kernel of its own (one program per (sequence,
KV head), tensor-core dots), it took 5.6-6.1 us at batch 8 / 32k on the H200
(benchmarks/RESULTS.md): mostly a launch's latency, and a partial written and read back. In
the combine kernel it is a few hundred float32 multiply-adds per thread, over rows that the
query row's GQA siblings read too (from L2)."""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _window_share(q_ptr, kw_ptr, vw_ptr, mask_ptr, b, kv_head, head, qi, last_visible, first, total, col, col_ok, qk_scale,
                  stride_qb, stride_qh, stride_qm, stride_qd, stride_kb, stride_kh, stride_kw, stride_kd,
                  stride_vb, stride_vh, stride_vw, stride_vd, stride_mb, stride_mh, stride_mq, stride_ms, W,
                  HAS_MASK: tl.constexpr, CAUSAL: tl.constexpr, BLOCK_N: tl.constexpr):
    """One query row's attention over the window's tokens ``[first, total)`` of sequence ``b``
    (KV head ``kv_head``, query head ``head``, query token ``qi``, which sees keys up to
    ``last_visible`` when ``CAUSAL``), in float32: (the accumulator, value ``col[c]`` at column
    ``c`` where ``col_ok``; m; l), log2 domain, as a split's partial. The mask and the online
    softmax as the main kernel's (``_visible_scores``, ``_online_softmax``): a row that sees
    no key has m = -inf."""
    q = tl.load(q_ptr + b.to(tl.int64) * stride_qb + head * stride_qh + qi * stride_qm + col * stride_qd, mask=col_ok,
                other=0.0).to(tl.float32)
    kw_base = kw_ptr + b.to(tl.int64) * stride_kb + kv_head * stride_kh
    vw_base = vw_ptr + b.to(tl.int64) * stride_vb + kv_head * stride_vh
    m_i = tl.full([], float("-inf"), tl.float32)
    l_i = tl.zeros([], tl.float32)
    acc = tl.zeros(col.shape, tl.float32)
    for p0 in range(first, total, BLOCK_N):
        pos = p0 + tl.arange(0, BLOCK_N)
        ok = pos < total
        slot = pos % W
        tile_ok = ok[:, None] & col_ok[None, :]
        k = tl.load(kw_base + slot[:, None] * stride_kw + col[None, :] * stride_kd, mask=tile_ok, other=0.0).to(tl.float32)
        s = tl.sum(k * q[None, :], axis=1) * qk_scale
        visible = ok
        if CAUSAL:
            visible = visible & (pos <= last_visible)
        if HAS_MASK:  # 2: a boolean mask, whose hidden keys are -inf whatever the score (_visible_scores)
            added = tl.load(mask_ptr + b.to(tl.int64) * stride_mb + head * stride_mh + qi * stride_mq + pos * stride_ms, mask=visible,
                            other=0.0)
            s += added * 1.4426950408889634  # log2(e): a literal, as Inductor's copy of the kernel has no globals
            if HAS_MASK == 2:
                visible = visible & (added != float("-inf"))
        s = tl.where(visible, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, axis=0))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        alpha = tl.where(m_new == m_i, 1.0, tl.exp2(m_i - m_safe))
        p = tl.exp2(s - m_safe)
        l_i = l_i * alpha + tl.sum(p, axis=0)
        v = tl.load(vw_base + slot[:, None] * stride_vw + col[None, :] * stride_vd, mask=tile_ok, other=0.0).to(tl.float32)
        acc = acc * alpha + tl.sum(p[:, None] * v, axis=0)
        m_i = m_new
    return acc, m_i, l_i
