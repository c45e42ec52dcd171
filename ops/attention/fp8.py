"""Fused decode attention over an FP8 (E4M3) cache with a scale per (sequence, KV head): the
``fp8`` mode's keys and values (:mod:`ecc_tensor.fp8`, the cache vLLM users pick), attended
without a dequantized copy. FlashDecoding as the codewords' kernel: one program per
(sequence, KV head) and split of the key axis, the group's query rows as one tile, its
partials merged by the same combine kernel (in value order, no deferred launch).

E4M3 values are exact in float16, so the keys and values enter the dots as read (with
bfloat16 queries too: the dots take float16 operands, the queries scaled per row); the K scale
multiplies the float32 scores and the V scale the partial accumulator, where
dequantizing first (``from_e4m3``) rounds every value times its scale to the model dtype. NaN
words (a struck exponent) give NaN scores and outputs, as SDPA over the dequantized cache does."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..compile_ahead import wrap_triton
from ..codec_kernels import _pow2
from ..launch_options import _after_previous_launch, dependent_launches, dependent_option, kernel_and_options
from .kernel import LOG2E, _combine_splits_kernel
from .launch import mask_arguments
from .plan import MIN_BLOCK_M, combine_tiles, parse_config, plan_splits
from .softmax import _group_queries, _group_rows, _online_softmax, _pow2_at_least, _pv, _rescaled, _visible_scores

# (block_n, num_warps, num_stages, programs per multiprocessor): one-warp programs of 32 keys,
# as the codewords' kernel, the fastest of tools/sweep_attention.py --codecs fp8 on the H200 at
# batch 8 / 32k (161 us against 244 for the best of four warps) and tied at batch 1
# (benchmarks/RESULTS.md, 2026-12-04). For sm_90a it takes 250 registers in float16, 242 in
# bfloat16, no spills (tools/kernel_resources.py --codecs fp8): 8 fit an SM; 16 a SM is the
# split count the plan makes from it.
FP8_CONFIG = "32,1,2,16"


@triton.jit
def _e4m3_values(bits, dtype: tl.constexpr, FIX_NAN: tl.constexpr):
    """uint8 E4M3 words -> ``dtype`` (exact). ``FIX_NAN``: Triton's interpreter converts the
    NaN words (magnitude 0x7F) to 480; on the GPU the hardware conversion gives NaN
    (``tests/test_fp8_attention.py`` checks it there: passed on the H200, 2026-12-04)."""
    x = bits.to(tl.float8e4nv, bitcast=True).to(dtype)
    if FIX_NAN:
        x = tl.where((bits & 0x7F) == 0x7F, float("nan"), x.to(tl.float32)).to(dtype)
    return x


@triton.jit
def _fp8_block(acc, m_i, l_i, q, k_base, v_base, n0, end, d, d_ok, m_ok, head, qi, last_visible, score_scale,
               stride_ks, stride_kd, stride_vs, stride_vd, mask_ptr, b, stride_mb, stride_mh, stride_mq, stride_ms,
               dtype: tl.constexpr, D: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, TAIL: tl.constexpr,
               WIDE_OFFSETS: tl.constexpr, HAS_MASK: tl.constexpr, MASK_ROWS: tl.constexpr, CAUSAL: tl.constexpr,
               DOT_PRECISION: tl.constexpr, FIX_NAN: tl.constexpr):
    """One block of ``BLOCK_N`` key rows from ``n0`` into the online softmax. ``TAIL``: the
    split's partial last block, its rows past ``end`` masked (read as zeros: a NaN word there
    must not reach the accumulator through a zero weight); otherwise every row is read
    unmasked. Offsets within a (sequence, head) slab in 32 bits unless ``WIDE_OFFSETS``."""
    rows = n0 + tl.arange(0, BLOCK_N)
    row_ok = rows < end
    if WIDE_OFFSETS:
        row_k, row_v = rows.to(tl.int64) * stride_ks, rows.to(tl.int64) * stride_vs
    else:
        row_k, row_v = rows * stride_ks, rows * stride_vs
    k_ptrs = k_base + row_k[:, None] + d[None, :] * stride_kd
    v_ptrs = v_base + row_v[:, None] + d[None, :] * stride_vd
    if TAIL:
        tile_ok = row_ok[:, None] & d_ok[None, :]
        k_bits = tl.load(k_ptrs, mask=tile_ok, other=0)
        v_bits = tl.load(v_ptrs, mask=tile_ok, other=0)
    elif BLOCK_D != D:
        k_bits = tl.load(k_ptrs, mask=d_ok[None, :], other=0)
        v_bits = tl.load(v_ptrs, mask=d_ok[None, :], other=0)
    else:
        k_bits = tl.load(k_ptrs)
        v_bits = tl.load(v_ptrs)
    k = _e4m3_values(k_bits, dtype, FIX_NAN)
    # Scores as (K q^T)^T: the few query rows are the dot's N (padded to 8), not its M (16).
    s = tl.trans(tl.dot(k, tl.trans(q), input_precision=DOT_PRECISION)) * score_scale[:, None]
    s = _visible_scores(s, rows, row_ok, m_ok, head, qi, last_visible, 0, mask_ptr, b,
                        stride_mb, stride_mh, stride_mq, stride_ms, HAS_MASK, MASK_ROWS, CAUSAL)
    p, alpha, m_i, l_i = _online_softmax(s, m_i, l_i)
    acc = _pv(_rescaled(acc, alpha[:, None]), p, _e4m3_values(v_bits, dtype, FIX_NAN), dtype, False, DOT_PRECISION, True)
    return acc, m_i, l_i


@triton.jit(do_not_specialize=["stride_lens"])  # an expanded length (0) and lengths (1) run one compiled kernel
def _fp8_decode_attention_kernel(
    q_ptr, k_ptr, v_ptr, k_scale_ptr, v_scale_ptr, seq_lens_ptr, stride_lens, mask_ptr, o_part_ptr, ml_part_ptr,
    qk_scale,  # softmax scale * log2(e)
    split_len, splits, S,
    stride_qb, stride_qh, stride_qm, stride_qd, stride_kb, stride_kh, stride_ks, stride_kd,
    stride_vb, stride_vh, stride_vs, stride_vd, stride_mb, stride_mh, stride_mq, stride_ms,
    stride_ksb, stride_ksh, stride_vsb, stride_vsh,
    HKV: tl.constexpr, GQA: tl.constexpr, LQ: tl.constexpr, D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr,
    BLOCK_N: tl.constexpr, HAS_MASK: tl.constexpr, MASK_ROWS: tl.constexpr, CAUSAL: tl.constexpr, DOT_PRECISION: tl.constexpr,
    EMULATE_BF16: tl.constexpr, HALF_OPERANDS: tl.constexpr, FIX_NAN: tl.constexpr, WIDE_OFFSETS: tl.constexpr,
    GDC: tl.constexpr,  # launch_options.dependent_launches: its combine is launched dependent on it
):
    _after_previous_launch(GDC)
    bh = tl.program_id(0)
    split = tl.program_id(1)
    b = bh // HKV
    kv_head = bh % HKV
    length = tl.load(seq_lens_ptr + b * stride_lens).to(tl.int32)
    total = tl.minimum(length, S)  # a length past the storage attends every stored row, as the reference
    start = split * split_len
    end = tl.minimum(start + split_len, total)
    m, m_ok, head, qi, d, d_ok = _group_rows(kv_head, GQA, LQ, D, BLOCK_M, BLOCK_D)
    q = _group_queries(q_ptr, b, head, qi, d, m_ok, d_ok, stride_qb, stride_qh, stride_qm, stride_qd, EMULATE_BF16)
    # The K scale in the scores (float32: under torch.compile a float argument may be float64),
    # a factor per query row.
    k_scale = tl.load(k_scale_ptr + b * stride_ksb + kv_head * stride_ksh)
    score_scale = tl.full([BLOCK_M], 1.0, tl.float32) * (k_scale * qk_scale).to(tl.float32)
    if HALF_OPERANDS:
        # bfloat16 queries: the dots take float16 operands, as the codewords' kernel's clean
        # paths do. E4M3 values are exact in float16, and hardware converts them to it
        # (to bfloat16 only through float16: a conversion per value). Each query row divided by
        # a power of two at least its largest |q| (exact; no float16 overflow), rounded to
        # float16, 8x finer than bfloat16; the power of two goes into the row's score factor.
        # The weights enter the PV dot in float16 too, as with float16 queries.
        q32 = q.to(tl.float32)
        q_unit = _pow2_at_least(tl.max(tl.abs(q32), axis=1))
        q = (q32 / q_unit[:, None]).to(tl.float16)
        score_scale = score_scale * q_unit
    dtype: tl.constexpr = q.dtype
    last_visible = length - LQ + qi
    k_base = k_ptr + b.to(tl.int64) * stride_kb + kv_head.to(tl.int64) * stride_kh
    v_base = v_ptr + b.to(tl.int64) * stride_vb + kv_head.to(tl.int64) * stride_vh
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    # Whole blocks unmasked (every row is below the split's end), then the partial last one,
    # if any, with its rows masked: the masked loads and their zeros only where needed.
    full_end = start + tl.maximum(end - start, 0) // BLOCK_N * BLOCK_N
    for n0 in range(start, full_end, BLOCK_N):
        acc, m_i, l_i = _fp8_block(acc, m_i, l_i, q, k_base, v_base, n0, end, d, d_ok, m_ok, head, qi, last_visible, score_scale,
                                   stride_ks, stride_kd, stride_vs, stride_vd, mask_ptr, b, stride_mb, stride_mh, stride_mq, stride_ms,
                                   dtype, D, BLOCK_D, BLOCK_N, False, WIDE_OFFSETS, HAS_MASK, MASK_ROWS, CAUSAL, DOT_PRECISION,
                                   FIX_NAN)
    if full_end < end:
        acc, m_i, l_i = _fp8_block(acc, m_i, l_i, q, k_base, v_base, full_end, end, d, d_ok, m_ok, head, qi, last_visible, score_scale,
                                   stride_ks, stride_kd, stride_vs, stride_vd, mask_ptr, b, stride_mb, stride_mh, stride_mq, stride_ms,
                                   dtype, D, BLOCK_D, BLOCK_N, True, WIDE_OFFSETS, HAS_MASK, MASK_ROWS, CAUSAL, DOT_PRECISION,
                                   FIX_NAN)
    acc = acc * tl.load(v_scale_ptr + b * stride_vsb + kv_head * stride_vsh)
    # The combine kernel's partials: 2 * splits slots per (sequence, KV head), value order.
    part = (bh.to(tl.int64) * 2 * splits + split) * BLOCK_M + m
    tl.store(o_part_ptr + part[:, None] * BLOCK_D + d[None, :], acc, mask=m_ok[:, None] & d_ok[None, :])
    tl.store(ml_part_ptr + part * 2, m_i)
    tl.store(ml_part_ptr + part * 2 + 1, l_i)


def needs_wide_offsets(*words: torch.Tensor) -> bool:
    """Whether an offset within one (sequence, head) slab of these ``[B, H, S, D]`` byte
    tensors can pass 2^31: the kernel's offsets are 32-bit where they fit (one register and
    one multiply per address fewer)."""
    return max((t.shape[2] - 1) * t.stride(2) + (t.shape[3] - 1) * t.stride(3) for t in words) >= 2**31


def triton_fp8_decode_attention(query: torch.Tensor, k_words: torch.Tensor, k_scale: torch.Tensor, v_words: torch.Tensor,
                                v_scale: torch.Tensor, seq_lens: torch.Tensor, attn_mask: torch.Tensor | None, is_causal: bool,
                                scale: float, config: str | None = None) -> torch.Tensor:
    """See ``ecc::fp8_decode_attention``; arguments are validated there. ``k_scale``/``v_scale``
    broadcast to ``[B, Hkv, 1, 1]``; ``config`` overrides ``FP8_CONFIG``."""
    cfg = parse_config(config or FP8_CONFIG)
    batch, q_heads, lq, head_dim = query.shape
    kv_heads, seq = k_words.shape[1], k_words.shape[2]
    group = q_heads // kv_heads
    block_n = cfg["block_n"]
    split_len, splits = plan_splits(batch * kv_heads, seq, block_n, query.device, cfg["waves"])
    block_m = max(MIN_BLOCK_M, _pow2(group * lq))
    block_d = _pow2(max(head_dim, 16))
    emulate_bf16 = query.dtype == torch.bfloat16 and query.device.type == "cpu"  # CPU tensors: interpreter
    k_scale, v_scale = (s.float().expand(batch, kv_heads, 1, 1) for s in (k_scale, v_scale))
    o_part = torch.empty(2 * batch * kv_heads * splits * block_m * block_d, dtype=torch.float32, device=query.device)
    ml_part = torch.empty(2 * batch * kv_heads * splits * block_m * 2, dtype=torch.float32, device=query.device)
    has_mask, mask, mask_strides, mask_rows = mask_arguments(attn_mask, (batch, q_heads, lq, seq), o_part)
    dot_precision = "ieee" if query.dtype == torch.float32 or emulate_bf16 else "tf32"
    k_bytes, v_bytes = k_words.view(torch.uint8), v_words.view(torch.uint8)
    wide_offsets = needs_wide_offsets(k_bytes, v_bytes)
    gdc = dependent_launches(query.device)
    kernel, options = kernel_and_options(_fp8_decode_attention_kernel, cfg["num_warps"], cfg["num_stages"], cfg["maxnreg"])
    wrap_triton(kernel)[(batch * kv_heads, splits)](
        query, k_bytes, v_bytes, k_scale, v_scale, seq_lens, seq_lens.stride(0), mask, o_part, ml_part, scale * LOG2E, split_len,
        splits, seq,
        *query.stride(), *k_bytes.stride(), *v_bytes.stride(), *mask_strides, *k_scale.stride()[:2], *v_scale.stride()[:2],
        HKV=kv_heads, GQA=group, LQ=lq, D=head_dim, BLOCK_M=block_m, BLOCK_D=block_d, BLOCK_N=block_n, HAS_MASK=has_mask,
        MASK_ROWS=mask_rows, CAUSAL=is_causal, DOT_PRECISION=dot_precision, EMULATE_BF16=emulate_bf16,
        HALF_OPERANDS=query.dtype == torch.bfloat16, FIX_NAN=query.device.type != "cuda",
        WIDE_OFFSETS=wide_offsets, GDC=gdc,
        **options,
    )
    out = torch.empty_like(query, memory_format=torch.contiguous_format)
    col_programs, block_c, block_s = combine_tiles(batch * kv_heads * group * lq, block_d, splits, query.device)
    wrap_triton(_combine_splits_kernel)[(batch * kv_heads, group * lq, col_programs)](
        o_part, ml_part, o_part, ml_part, out, *out.stride(), splits, splits,
        HKV=kv_heads, GQA=group, LQ=lq, D=head_dim, UNITS=head_dim, UNIT_VALUES=1, SLOTS=1, BLOCK_M=block_m, BLOCK_U=block_d,
        PART_COLS=block_d, BLOCK_S=block_s, HAS_WINDOW=False, BLOCK_C=block_c, GDC=gdc, **dependent_option(gdc),
    )
    return out
