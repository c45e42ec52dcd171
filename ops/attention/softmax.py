"""The online softmax and the dots that feed it: scores, visibility (mask, causality, deferred
blocks), the folded scales of the clean paths, the float paths' split operands."""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _pv(acc, p, v, dtype: tl.constexpr, SPLIT_P: tl.constexpr, DOT_PRECISION: tl.constexpr, TRANSPOSED: tl.constexpr = False):
    """``acc + p @ v`` for ``v`` exact in ``dtype``; with ``SPLIT_P`` (bfloat16), p as the sum of
    two bfloat16 parts so that the weights keep ~16 bits instead of 8. ``TRANSPOSED``: computed
    as ``_pv_transposed`` does."""
    if TRANSPOSED:
        acc = _pv_transposed(acc, p, v, dtype, SPLIT_P, DOT_PRECISION)
    else:
        hi = p.to(dtype)
        acc = tl.dot(hi, v, acc, input_precision=DOT_PRECISION)
        if SPLIT_P:
            acc = tl.dot((p - hi.to(tl.float32)).to(dtype), v, acc, input_precision=DOT_PRECISION)
    return acc


@triton.jit
def _pv_transposed(acc, p, v, dtype: tl.constexpr, SPLIT_P: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """``_pv`` as ``(v^T p^T + acc^T)^T``: GQA's few query rows are the dot's N, which an MMA
    pads to 8, rather than its M, padded to 16, so the accumulator takes half the registers and
    the product half the MMAs. Where ``v`` was unpacked in the B operand's order (keys paired in
    a register, ``_v_operand_values``), its transpose is the A operand's, element for element,
    and moves nothing. sm_90a (Triton 3.6): the word path's main launch at 32 keys a block, int4
    200 -> 112 registers, Hamming(8,4) 242 -> 128, its loop 8% fewer instructions."""
    hi = p.to(dtype)
    acc_t = tl.dot(tl.trans(v), tl.trans(hi), tl.trans(acc), input_precision=DOT_PRECISION)
    if SPLIT_P:
        acc_t = tl.dot(tl.trans(v), tl.trans((p - hi.to(tl.float32)).to(dtype)), acc_t, input_precision=DOT_PRECISION)
    return tl.trans(acc_t)


@triton.jit
def _pow2_at_least(top):
    """The least power of two at least ``top`` (float32, >= 0; 1 where it is 0): rows of float16
    operands divided by it lie in [-1, 1], exactly as they were, short of float16's underflow."""
    bits = top.to(tl.int32, bitcast=True)
    return tl.where(bits == 0, 1.0, ((bits + 0x007FFFFF) & 0x7F800000).to(tl.float32, bitcast=True))


@triton.jit
def _channel_scaled_queries(q0, k_cols, c_scale, c_zero, c_dirty, D: tl.constexpr, HALF_OPERANDS: tl.constexpr,
                            dtype: tl.constexpr):
    """Keys per channel: the queries ``q0`` (columns ``k_cols``, operand order) times a row of
    channel scales ``c_scale``, as the dots take them: ``(q_s, q_unit, k_sum, k_dirty)``, with
    ``k_sum`` = sum_c q_c s_c z_c (``c_zero``: the zero points) of the same q * s, and ``k_dirty``
    whether the row's scales were struck (``c_dirty``). In float16, q * s is rounded, as the
    dense path rounds the dequantized keys (within the output's own rounding:
    tests/test_attention_schemes.py). With bfloat16 queries (``HALF_OPERANDS``) the dot takes
    float16 operands: q * s divided by a power of two at least its query row's largest |q_c s_c|
    (``q_unit``; exact, and no float16 overflow whatever the scales), then rounded to float16, 8x
    finer than bfloat16 (whose rounding of the dequantized keys is the dense path's error); the
    keys' INT4 values are exact in either. A second bfloat16 dot for the remainder, which this
    replaced, cost 15% (H200, batch 8 / 32k)."""
    q_scaled = q0.to(tl.float32) * tl.where(k_cols < D, c_scale, 0.0)[None, :]
    if HALF_OPERANDS:
        q_unit = _pow2_at_least(tl.max(tl.abs(q_scaled), axis=1))
        q_s = (q_scaled / q_unit[:, None]).to(tl.float16)
        q_scaled = q_s.to(tl.float32) * q_unit[:, None]
    else:
        q_unit = tl.full([q0.shape[0]], 1.0, tl.float32)
        q_s = q_scaled.to(dtype)
        q_scaled = q_s.to(tl.float32)
    k_sum = tl.sum(q_scaled * tl.where(k_cols < D, c_zero, 0.0)[None, :], axis=1)
    return q_s, q_unit, k_sum, tl.reduce_or(c_dirty, None)


@triton.jit
def _qk_float(q, k, s, dtype: tl.constexpr, SPLIT: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """``s + q @ k^T`` for float32 ``k``; with ``SPLIT`` (bfloat16), k as the sum of two
    bfloat16 parts, so that dequantized values are not rounded to 8 bits."""
    hi = k.to(dtype)
    s = tl.dot(q, tl.trans(hi), s, input_precision=DOT_PRECISION)
    if SPLIT:
        s = tl.dot(q, tl.trans((k - hi.to(tl.float32)).to(dtype)), s, input_precision=DOT_PRECISION)
    return s


@triton.jit
def _pv_float(acc, p, v, dtype: tl.constexpr, SPLIT: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """``acc + p @ v`` for float32 ``v``; with ``SPLIT`` (bfloat16), both as two bfloat16 parts
    (the product of the two small parts is left out)."""
    hi = v.to(dtype)
    acc = _pv(acc, p, hi, dtype, SPLIT, DOT_PRECISION)
    if SPLIT:
        acc = tl.dot(p.to(dtype), (v - hi.to(tl.float32)).to(dtype), acc, input_precision=DOT_PRECISION)
    return acc


@triton.jit
def _group_rows(kv_head, GQA: tl.constexpr, LQ: tl.constexpr, D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr):
    """The rows and columns of one KV head's query tile, as the dense kernels (window, fp8) hold
    it: row ``m`` is query head ``kv_head * GQA + m // LQ``, token ``m % LQ``. Returns (m, m_ok,
    head, qi, d, d_ok). Apart from ``_group_queries``, which loads the tile: the stores' addresses
    come from these, and to torch's analysis of what a kernel writes a value returned by a call
    depends on all of the call's inputs (with the query pointer among them, the query seemed
    written, and torch.compile copied it before each launch)."""
    m = tl.arange(0, BLOCK_M)
    head = kv_head * GQA + m // LQ
    d = tl.arange(0, BLOCK_D)
    return m, m < GQA * LQ, head, m % LQ, d, d < D


@triton.jit
def _group_queries(q_ptr, b, head, qi, d, m_ok, d_ok, stride_qb, stride_qh, stride_qm, stride_qd, EMULATE_BF16: tl.constexpr):
    """The query tile ``[BLOCK_M, BLOCK_D]`` at ``_group_rows``' rows and columns, in the dots'
    dtype; with ``EMULATE_BF16`` float32 (Triton's interpreter cannot multiply bfloat16 tiles)."""
    q = tl.load(q_ptr + b.to(tl.int64) * stride_qb + head[:, None] * stride_qh + qi[:, None] * stride_qm + d[None, :] * stride_qd,
                mask=m_ok[:, None] & d_ok[None, :], other=0.0)
    if EMULATE_BF16:
        q = q.to(tl.float32)
    return q


@triton.jit
def _visible_scores(s, rows, row_ok, m_ok, head, qi, last_visible, deferred, mask_ptr, b,
                    stride_mb, stride_mh, stride_mq, stride_ms, HAS_MASK: tl.constexpr, MASK_ROWS: tl.constexpr, CAUSAL: tl.constexpr):
    """Scores (log2 domain) with the float mask added and everything a query row may not see
    (rows past the end, a deferred block, the causal future, masked keys) at -inf. ``HAS_MASK``
    2: the mask was boolean (its hidden keys are -inf here), and a hidden key is -inf whatever
    its score, NaN included, as the reference's ``masked_fill``; 1: a float mask, added, as
    SDPA adds it (a NaN score stays NaN); 3: a boolean mask's own bytes, as int32 words of
    four keys (``mask_arguments``; ``MASK_ROWS`` only), masking as 2. With
    ``MASK_ROWS`` the mask is the same for every head and query of a sequence (a decoding
    step's mask, as transformers builds it: ``[B, 1, 1, S]``): one load per key row, where a
    load per (query row, key row) cost 40% of the call (H100, batch 8, 32k)."""
    visible = m_ok[:, None] & row_ok[None, :] & ((rows * 0 + deferred) == 0)[None, :]
    if CAUSAL:
        visible = visible & (rows[None, :] <= last_visible[:, None])
    if HAS_MASK == 3:  # a boolean mask's bytes, four keys a word: a key is visible where its byte is not 0
        word = tl.load(mask_ptr + b.to(tl.int64) * stride_mb + (rows >> 2) * stride_ms, mask=row_ok, other=0)
        visible = visible & (((word >> ((rows & 3) * 8)) & 0xFF) != 0)[None, :]
    elif HAS_MASK:
        if MASK_ROWS:
            added = tl.load(mask_ptr + b.to(tl.int64) * stride_mb + rows * stride_ms, mask=row_ok, other=0.0)[None, :]
        else:
            mask_ptrs = (mask_ptr + b.to(tl.int64) * stride_mb + head[:, None] * stride_mh + qi[:, None] * stride_mq
                         + rows[None, :] * stride_ms)
            added = tl.load(mask_ptrs, mask=visible, other=0.0)
        s += added * 1.4426950408889634
        if HAS_MASK == 2:
            visible = visible & (added != float("-inf"))
    return tl.where(visible, s, float("-inf"))


@triton.jit
def _folded_scales_softmax(s, rows, row_ok, q_sum, k_scale, k_zero, v_scale, v_zero, qk_scale, v_unit, m_i, l_i,
                           m_ok, head, qi, last_visible, deferred, mask_ptr, b, stride_mb, stride_mh, stride_mq, stride_ms,
                           HAS_ZERO: tl.constexpr, HAS_MASK: tl.constexpr, MASK_ROWS: tl.constexpr, CAUSAL: tl.constexpr):
    """One block of the online softmax where dequantization is folded into the dots: K = (v - z)
    * s per row, so q . K = s (q . v - z sum(q)) from ``s`` = q . v, and sum_n p_n s_n (v_n - z_n)
    likewise. ``k_scale`` .. ``v_zero`` are the rows' scales and zero points (``[BLOCK_N]``,
    decoded from their metadata). Returns the weights p * s / v_unit for the values v, the factor
    that rescales the accumulators, the new v_unit (the largest V scale so far: float16 weights
    stay in [0, 1] whatever the scales, and the factor is exactly 1 once neither it nor m moves),
    m, l, and the zero-point term to subtract (0 without zero points)."""
    if HAS_ZERO:
        s -= q_sum[:, None] * tl.where(row_ok, k_zero, 0.0)[None, :]
    # Under torch.compile a float argument may arrive as float64: keep the softmax in float32.
    s = s * (tl.where(row_ok, k_scale, 1.0) * qk_scale).to(tl.float32)[None, :]
    s = _visible_scores(s, rows, row_ok, m_ok, head, qi, last_visible, deferred, mask_ptr, b,
                        stride_mb, stride_mh, stride_mq, stride_ms, HAS_MASK, MASK_ROWS, CAUSAL)
    p, alpha, m_i, l_i = _online_softmax(s, m_i, l_i)
    # A deferred block's scales are as read, maybe corrupted (even NaN): they must not reach
    # the weights or the V unit, whose rows its zero weights would not mask.
    attended = row_ok & ((rows * 0 + deferred) == 0)
    v_scale = tl.where(attended, v_scale, 0.0)
    new_unit = tl.maximum(v_unit, tl.max(v_scale, axis=0))
    divisor = tl.where(new_unit > 0, new_unit, 1.0)  # 0 until a block has a non-zero V scale
    pw = p * (v_scale / divisor)[None, :]
    zero_term = tl.zeros([s.shape[0], 1], tl.float32)
    if HAS_ZERO:
        zero_term = tl.sum(pw * tl.where(attended, v_zero, 0.0)[None, :], axis=1)[:, None]
    return pw, (alpha * (v_unit / divisor))[:, None], new_unit, m_i, l_i, zero_term


@triton.jit
def _rescaled(acc, rescale):
    """``acc * rescale``, skipped (a branch the whole program takes) where every factor is
    exactly 1, as it is for most blocks once the running max and the V unit have settled."""
    if tl.max((rescale != 1.0).to(tl.int32)) != 0:
        acc = acc * rescale
    return acc


@triton.jit
def _online_softmax(s, m_i, l_i):
    """One block of the online softmax: (weights p, rescale factor of the old state, m, l)."""
    m_new = tl.maximum(m_i, tl.max(s, axis=1))
    m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
    # Exactly 1 where m did not move, rows that saw no key yet included (not exp2(-inf) = 0),
    # so that _rescaled can skip the accumulators.
    alpha = tl.where(m_new == m_i, 1.0, tl.exp2(m_i - m_safe))
    p = tl.exp2(s - m_safe[:, None])
    return p, alpha, m_new, l_i * alpha + tl.sum(p, axis=1)


@triton.jit
def _grouped_scales_softmax(s, rows, row_ok, q_sums, q_unit, k_scale, k_zero, v_scale, v_zero, qk_scale, v_unit, m_i, l_i,
                            m_ok, head, qi, last_visible, deferred, mask_ptr, b, stride_mb, stride_mh, stride_mq, stride_ms,
                            HAS_ZERO: tl.constexpr, HAS_MASK: tl.constexpr, MASK_ROWS: tl.constexpr, CAUSAL: tl.constexpr):
    """``_folded_scales_softmax`` over G scale groups a row. ``s`` ``[G * M, N]``: row ``g * M + m``
    holds q_g . v, the products of query row m over group g's columns (the queries' rows for
    group g are zero outside its columns), in units of ``q_unit`` ``[M]``; ``q_sums`` ``[G, M]``
    sum(q_g); ``k_scale`` .. ``v_zero`` ``[N, G]``. The scores are sum_g s_g (q_g . v - z_g
    sum(q_g)); returns the weights ``[G * M, N]``, row ``g * M + m`` the weights p * s_g / v_unit
    of group g's values (so the accumulator holds a row per group and query row, of which each
    column's group is kept), the factor that rescales the accumulator's rows ``[G * M, 1]``, the
    new v_unit (the largest V scale of any group so far), m, l, and the zero-point term
    ``[G * M, 1]`` (0 without zero points)."""
    G: tl.constexpr = k_scale.shape[1]
    M: tl.constexpr = m_i.shape[0]
    N: tl.constexpr = s.shape[1]
    s3 = tl.reshape(s, [G, M, N]) * q_unit[None, :, None]
    if HAS_ZERO:
        s3 -= q_sums[:, :, None] * tl.trans(tl.where(row_ok[:, None], k_zero, 0.0))[:, None, :]
    # Under torch.compile a float argument may arrive as float64: keep the softmax in float32.
    k_scale = tl.where(row_ok[:, None], k_scale, 1.0) * qk_scale
    scores = tl.sum(s3 * tl.trans(k_scale.to(tl.float32))[:, None, :], axis=0)
    scores = _visible_scores(scores, rows, row_ok, m_ok, head, qi, last_visible, deferred, mask_ptr, b,
                             stride_mb, stride_mh, stride_mq, stride_ms, HAS_MASK, MASK_ROWS, CAUSAL)
    p, alpha, m_i, l_i = _online_softmax(scores, m_i, l_i)
    # A deferred block's scales are as read, maybe corrupted: kept from the weights and the unit.
    attended = (row_ok & ((rows * 0 + deferred) == 0))[:, None]
    v_scale = tl.where(attended, v_scale, 0.0)
    new_unit = tl.maximum(v_unit, tl.max(tl.max(v_scale, axis=1), axis=0))
    divisor = tl.where(new_unit > 0, new_unit, 1.0)
    pw = p[None, :, :] * tl.trans(v_scale / divisor)[:, None, :]
    zero_term = tl.zeros([G, M], tl.float32)
    if HAS_ZERO:
        zero_term = tl.sum(pw * tl.trans(tl.where(attended, v_zero, 0.0))[:, None, :], axis=2)
    rescale = tl.zeros([G, M], tl.float32) + (alpha * (v_unit / divisor))[None, :]
    return (tl.reshape(pw, [G * M, N]), tl.reshape(rescale, [G * M, 1]), new_unit, m_i, l_i, tl.reshape(zero_term, [G * M, 1]))
