"""Fused decode attention over stored codewords: FlashDecoding with the ECC decode in registers.

One program takes one (sequence, KV head) pair and one split of the key axis. It holds the
queries of every query head of that KV head's group (grouped-query attention) and of every
query token (``LQ``, a few for speculative decoding) as the ``BLOCK_M`` rows of one tile, walks
its keys ``BLOCK_N`` at a time, and for each block: loads the codeword bytes of K, decodes
and corrects them (syndrome table gathers, the reference's arithmetic), dequantizes, computes
``Q K^T`` on the tensor cores, does the same for V, and updates an online softmax. A second
kernel combines the splits by their log-sum-exp. No dense K/V ever reaches memory.

Values are handled per storage *unit* (:mod:`ecc_tensor.storage`): a unit holds
``UNIT_VALUES`` values (1 for Hamming, 2 for int4, 3 for Golay). A tile of units
``[BLOCK_N, BLOCK_U]`` is decoded once and expanded to ``[BLOCK_N, BLOCK_U * UVP]`` values
(``UVP``: ``UNIT_VALUES`` padded to a power of two), column ``c`` holding value
``(c // UVP) * UNIT_VALUES + c % UVP`` of the row. The queries are gathered into the same
column order once per program, so the dot products need no interleaving of Golay's
3-value units; padding columns are zero in Q and never written to the output.

Detected-uncorrectable codewords (``INTERP``) are replaced in the dequantized domain by the
mean of their nearest non-erased neighbours along the sequence, found by an on-demand search
outward from the erased units (rare: only blocks that contain an erasure pay for it), with the
same arithmetic and precedence as :func:`ecc_tensor.interp.interpolate_erasures`.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.library import wrap_triton

from ecc_tensor.storage import StorageLayout

from .codec_kernels import _to_bf16_rne

LOG2E = 1.4426950408889634


@triton.jit
def _load_units(stored_ptr, rows, u, mask, ROW_BYTES: tl.constexpr, UNIT_BYTES: tl.constexpr):
    """Units ``u`` of ``rows`` (``[N, 1]`` or ``[N, U]``) as little-endian int32 words ``[N, U]``."""
    ptrs = stored_ptr + rows.to(tl.int64) * ROW_BYTES + u[None, :] * UNIT_BYTES
    word = tl.load(ptrs, mask=mask, other=0).to(tl.int32)
    for b in tl.static_range(1, UNIT_BYTES):
        word = word | (tl.load(ptrs + b, mask=mask, other=0).to(tl.int32) << (8 * b))
    return word


@triton.jit
def _decode_units(word, enc_ptr, syn_ptr, mask, K: tl.constexpr, DECODE: tl.constexpr):
    """(corrected data word, corrected flag, detected flag) of each unit, as the reference."""
    if DECODE:
        data_mask: tl.constexpr = (1 << K) - 1
        syndrome = (tl.load(enc_ptr + (word & data_mask), mask=mask, other=0) ^ word) >> K
        leader = tl.load(syn_ptr + syndrome, mask=mask, other=0)
        correctable = leader >= 0
        data = tl.where(correctable, word ^ leader, word) & data_mask
        return data, (syndrome != 0) & correctable, ~correctable
    else:
        return word, word < 0, word < 0  # int4: nothing to correct (words are >= 0)


@triton.jit
def _unit_values(data, UNIT_VALUES: tl.constexpr, UVP: tl.constexpr):
    """Data words ``[N, U]`` -> INT4 values ``[N, U * UVP]`` in the unit column order."""
    if UVP == 1:
        return data & 15
    i = tl.arange(0, UVP)
    vals = (data[:, :, None] >> (4 * i)[None, None, :]) & 15
    vals = tl.where((i < UNIT_VALUES)[None, None, :], vals, 8)  # padding columns: any value
    return tl.reshape(vals, [data.shape[0], data.shape[1] * UVP])


@triton.jit
def _expand(x, UVP: tl.constexpr):
    """A per-unit tile ``[N, U]`` repeated for each of the unit's value columns."""
    if UVP == 1:
        return x
    return tl.reshape(tl.broadcast_to(x[:, :, None], [x.shape[0], x.shape[1], UVP]), [x.shape[0], x.shape[1] * UVP])


@triton.jit
def _dequantize(vals, rows, cols, row_ok, scale_ptr, zero_ptr, GROUPS: tl.constexpr, GROUP: tl.constexpr, HAS_ZERO: tl.constexpr):
    """``(v - offset) * scale`` in float32 for values ``[N, C]`` of ``rows`` at value ``cols``."""
    rows64 = rows.to(tl.int64)
    if GROUPS == 1:
        s = tl.load(scale_ptr + rows64, mask=row_ok, other=1.0)[:, None]
        if HAS_ZERO:
            off = tl.load(zero_ptr + rows64, mask=row_ok, other=0.0)[:, None]
        else:
            off = 8.0
    else:
        idx = rows64[:, None] * GROUPS + tl.minimum(cols // GROUP, GROUPS - 1)[None, :]
        s = tl.load(scale_ptr + idx, mask=row_ok[:, None], other=1.0)
        if HAS_ZERO:
            off = tl.load(zero_ptr + idx, mask=row_ok[:, None], other=0.0)
        else:
            off = 8.0
    return (vals.to(tl.float32) - off) * s


@triton.jit
def _neighbour_values(stored_ptr, scale_ptr, zero_ptr, enc_ptr, syn_ptr, rows, u, cols, erased, seq_len,
                      ROW_BYTES: tl.constexpr, UNIT_BYTES: tl.constexpr, K: tl.constexpr,
                      UNIT_VALUES: tl.constexpr, UVP: tl.constexpr, GROUPS: tl.constexpr, GROUP: tl.constexpr,
                      HAS_ZERO: tl.constexpr):
    """Interpolated values ``[N, U * UVP]`` (float32) for the erased units ``[N, U]``: the
    mean of the nearest non-erased unit at the same position before and after (rows below
    ``seq_len``), the one that exists, or NaN where neither does (keep the value as read)."""
    prev_row = tl.full(erased.shape, -1, tl.int32)
    next_row = tl.full(erased.shape, -1, tl.int32)
    pend_prev = erased
    pend_next = erased
    t = 1
    while tl.max((pend_prev | pend_next).to(tl.int32)) > 0:
        r = rows[:, None] - t
        ok = pend_prev & (r >= 0)
        _, _, det = _decode_units(_load_units(stored_ptr, r, u, ok, ROW_BYTES, UNIT_BYTES), enc_ptr, syn_ptr, ok, K, True)
        prev_row = tl.where(ok & ~det, r, prev_row)
        pend_prev = ok & det
        r = rows[:, None] + t
        ok = pend_next & (r < seq_len)
        _, _, det = _decode_units(_load_units(stored_ptr, r, u, ok, ROW_BYTES, UNIT_BYTES), enc_ptr, syn_ptr, ok, K, True)
        next_row = tl.where(ok & ~det, r, next_row)
        pend_next = ok & det
        t += 1
    has_prev = prev_row >= 0
    has_next = next_row >= 0
    prev_vals = _gathered_values(stored_ptr, scale_ptr, zero_ptr, enc_ptr, syn_ptr, prev_row, u, cols, has_prev,
                                 ROW_BYTES, UNIT_BYTES, K, UNIT_VALUES, UVP, GROUPS, GROUP, HAS_ZERO)
    next_vals = _gathered_values(stored_ptr, scale_ptr, zero_ptr, enc_ptr, syn_ptr, next_row, u, cols, has_next,
                                 ROW_BYTES, UNIT_BYTES, K, UNIT_VALUES, UVP, GROUPS, GROUP, HAS_ZERO)
    hp = _expand(has_prev, UVP)
    hn = _expand(has_next, UVP)
    both = (prev_vals + next_vals) * 0.5
    return tl.where(hp & hn, both, tl.where(hp, prev_vals, tl.where(hn, next_vals, float("nan"))))


@triton.jit
def _gathered_values(stored_ptr, scale_ptr, zero_ptr, enc_ptr, syn_ptr, row, u, cols, ok,
                     ROW_BYTES: tl.constexpr, UNIT_BYTES: tl.constexpr, K: tl.constexpr,
                     UNIT_VALUES: tl.constexpr, UVP: tl.constexpr, GROUPS: tl.constexpr, GROUP: tl.constexpr,
                     HAS_ZERO: tl.constexpr):
    """Dequantized values ``[N, U * UVP]`` of unit ``u`` at a per-unit ``row`` ``[N, U]``."""
    word = _load_units(stored_ptr, row, u, ok, ROW_BYTES, UNIT_BYTES)
    data, _, _ = _decode_units(word, enc_ptr, syn_ptr, ok, K, True)
    vals = _unit_values(data, UNIT_VALUES, UVP).to(tl.float32)
    row_v = _expand(tl.maximum(row, 0), UVP).to(tl.int64)
    ok_v = _expand(ok, UVP)
    if GROUPS == 1:
        idx = row_v
    else:
        idx = row_v * GROUPS + tl.minimum(cols // GROUP, GROUPS - 1)[None, :]
    s = tl.load(scale_ptr + idx, mask=ok_v, other=1.0)
    if HAS_ZERO:
        off = tl.load(zero_ptr + idx, mask=ok_v, other=0.0)
    else:
        off = 8.0
    return (vals - off) * s


@triton.jit
def _decode_attention_kernel(
    q_ptr, k_ptr, ks_ptr, kz_ptr, v_ptr, vs_ptr, vz_ptr, enc_ptr, syn_ptr,
    seq_lens_ptr, mask_ptr, counters_ptr, o_part_ptr, ml_part_ptr,
    qk_scale,  # softmax scale * log2(e)
    split_len,  # keys per split, a multiple of BLOCK_N
    stride_qb, stride_qh, stride_qm, stride_qd,
    stride_mb, stride_mh, stride_mq, stride_ms,
    S,  # keys per sequence in storage (max length)
    HKV: tl.constexpr, GQA: tl.constexpr, LQ: tl.constexpr, D: tl.constexpr, K: tl.constexpr,
    ROW_BYTES: tl.constexpr, UNITS: tl.constexpr, UNIT_VALUES: tl.constexpr, UNIT_BYTES: tl.constexpr, UVP: tl.constexpr,
    GROUPS: tl.constexpr, GROUP: tl.constexpr,
    DECODE: tl.constexpr, HAS_ZERO: tl.constexpr, INTERP: tl.constexpr, COUNT: tl.constexpr,
    HAS_MASK: tl.constexpr, CAUSAL: tl.constexpr, DOT_PRECISION: tl.constexpr, EMULATE_BF16: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_U: tl.constexpr, SPLITS: tl.constexpr,
):
    bh = tl.program_id(0)
    split = tl.program_id(1)
    b = bh // HKV
    seq_len = tl.load(seq_lens_ptr + b).to(tl.int32)
    start = split * split_len
    end = tl.minimum(start + split_len, seq_len)

    BLOCK_C: tl.constexpr = BLOCK_U * UVP
    m = tl.arange(0, BLOCK_M)
    m_ok = m < GQA * LQ
    head = (bh % HKV) * GQA + m // LQ
    qi = m % LQ
    c = tl.arange(0, BLOCK_C)
    col = (c // UVP) * UNIT_VALUES + c % UVP  # the value each column holds
    col_ok = ((c % UVP) < UNIT_VALUES) & (col < D)
    u = tl.arange(0, BLOCK_U)
    u_ok = u < UNITS

    q_ptrs = q_ptr + b.to(tl.int64) * stride_qb + head[:, None] * stride_qh + qi[:, None] * stride_qm + col[None, :] * stride_qd
    q = tl.load(q_ptrs, mask=m_ok[:, None] & col_ok[None, :], other=0.0)
    if EMULATE_BF16:  # Triton's interpreter cannot multiply bfloat16 tiles: float32 dots of bf16 values
        dtype = tl.float32
        q = q.to(tl.float32)
    else:
        dtype = q.dtype

    store_off = bh.to(tl.int64) * S  # first row of this (sequence, KV head) in storage
    k_base = k_ptr + store_off * ROW_BYTES
    v_base = v_ptr + store_off * ROW_BYTES
    ks_base = ks_ptr + store_off * GROUPS
    vs_base = vs_ptr + store_off * GROUPS
    kz_base = kz_ptr + store_off * GROUPS
    vz_base = vz_ptr + store_off * GROUPS

    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_C], tl.float32)
    counts = tl.zeros([BLOCK_N, BLOCK_U], tl.int32)  # corrected + (detected << 16), per tile slot
    last_visible = seq_len - LQ + qi  # causal: the last key each query row may see

    for n0 in range(start, end, BLOCK_N):
        rows = n0 + tl.arange(0, BLOCK_N)
        row_ok = rows < end
        unit_mask = row_ok[:, None] & u_ok[None, :]

        # K: decode, dequantize (and interpolate) the block, then the scores.
        k_data, k_corr, k_det = _decode_units(_load_units(k_base, rows[:, None], u, unit_mask, ROW_BYTES, UNIT_BYTES), enc_ptr, syn_ptr, unit_mask, K, DECODE)
        kf = _dequantize(_unit_values(k_data, UNIT_VALUES, UVP), rows, col, row_ok, ks_base, kz_base, GROUPS, GROUP, HAS_ZERO)
        if INTERP:
            k_erased = k_det & unit_mask
            if tl.max(k_erased.to(tl.int32)) > 0:
                repl = _neighbour_values(k_base, ks_base, kz_base, enc_ptr, syn_ptr, rows, u, col, k_erased, seq_len,
                                         ROW_BYTES, UNIT_BYTES, K, UNIT_VALUES, UVP, GROUPS, GROUP, HAS_ZERO)
                kf = tl.where(_expand(k_erased, UVP) & (repl == repl), repl, kf)
        if EMULATE_BF16:
            kf = _to_bf16_rne(kf).to(tl.float32)
        s = tl.dot(q, tl.trans(kf.to(dtype)), input_precision=DOT_PRECISION) * qk_scale

        visible = m_ok[:, None] & row_ok[None, :]
        if CAUSAL:
            visible = visible & (rows[None, :] <= last_visible[:, None])
        if HAS_MASK:
            mask_ptrs = mask_ptr + b.to(tl.int64) * stride_mb + head[:, None] * stride_mh + qi[:, None] * stride_mq + rows[None, :] * stride_ms
            s += tl.load(mask_ptrs, mask=visible, other=0.0) * 1.4426950408889634
        s = tl.where(visible, s, float("-inf"))

        m_new = tl.maximum(m_i, tl.max(s, axis=1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        alpha = tl.exp2(m_i - m_safe)
        p = tl.exp2(s - m_safe[:, None])
        l_i = l_i * alpha + tl.sum(p, axis=1)
        m_i = m_new

        # V: the same, then the weighted sum.
        v_data, v_corr, v_det = _decode_units(_load_units(v_base, rows[:, None], u, unit_mask, ROW_BYTES, UNIT_BYTES), enc_ptr, syn_ptr, unit_mask, K, DECODE)
        vf = _dequantize(_unit_values(v_data, UNIT_VALUES, UVP), rows, col, row_ok, vs_base, vz_base, GROUPS, GROUP, HAS_ZERO)
        if INTERP:
            v_erased = v_det & unit_mask
            if tl.max(v_erased.to(tl.int32)) > 0:
                repl = _neighbour_values(v_base, vs_base, vz_base, enc_ptr, syn_ptr, rows, u, col, v_erased, seq_len,
                                         ROW_BYTES, UNIT_BYTES, K, UNIT_VALUES, UVP, GROUPS, GROUP, HAS_ZERO)
                vf = tl.where(_expand(v_erased, UVP) & (repl == repl), repl, vf)
        vf = tl.where(col_ok[None, :], vf, 0.0)
        if EMULATE_BF16:
            vf = _to_bf16_rne(vf).to(tl.float32)
        acc = acc * alpha[:, None] + tl.dot(p.to(dtype), vf.to(dtype), input_precision=DOT_PRECISION)

        if COUNT:
            counts += (k_corr & unit_mask).to(tl.int32) + (v_corr & unit_mask).to(tl.int32)
            counts += ((k_det & unit_mask).to(tl.int32) + (v_det & unit_mask).to(tl.int32)) << 16

    part = bh.to(tl.int64) * SPLITS + split
    tl.store(o_part_ptr + (part * BLOCK_M + m[:, None]) * BLOCK_C + c[None, :], acc)
    tl.store(ml_part_ptr + (part * BLOCK_M + m) * 2, m_i)
    tl.store(ml_part_ptr + (part * BLOCK_M + m) * 2 + 1, l_i)
    if COUNT:
        n_rows = tl.maximum(end - start, 0).to(tl.int64)
        tl.atomic_add(counters_ptr + 0, 2 * n_rows * (UNITS if DECODE else D))
        if DECODE:
            tl.atomic_add(counters_ptr + 1, tl.sum(tl.sum(counts & 0xFFFF, axis=1).to(tl.int64), axis=0))
            tl.atomic_add(counters_ptr + 2, tl.sum(tl.sum(counts >> 16, axis=1).to(tl.int64), axis=0))


@triton.jit
def _combine_splits_kernel(
    o_part_ptr, ml_part_ptr, out_ptr,
    stride_ob, stride_oh, stride_om, stride_od,
    HKV: tl.constexpr, GQA: tl.constexpr, LQ: tl.constexpr, D: tl.constexpr, UNIT_VALUES: tl.constexpr, UVP: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_C: tl.constexpr, SPLITS: tl.constexpr, BLOCK_S: tl.constexpr,
):
    """out = sum_s exp(m_s - M) acc_s / sum_s exp(m_s - M) l_s, for one query row; rows that
    saw no key at all (every key masked) are written as zeros."""
    bh = tl.program_id(0)
    m = tl.program_id(1)
    sp = tl.arange(0, BLOCK_S)
    sp_ok = sp < SPLITS
    c = tl.arange(0, BLOCK_C)
    part = bh.to(tl.int64) * SPLITS + sp
    m_s = tl.load(ml_part_ptr + (part * BLOCK_M + m) * 2, mask=sp_ok, other=float("-inf"))
    l_s = tl.load(ml_part_ptr + (part * BLOCK_M + m) * 2 + 1, mask=sp_ok, other=0.0)
    m_max = tl.max(m_s, axis=0)
    m_max = tl.where(m_max == float("-inf"), 0.0, m_max)
    w = tl.exp2(m_s - m_max)
    acc = tl.load(o_part_ptr + (part[:, None] * BLOCK_M + m) * BLOCK_C + c[None, :], mask=sp_ok[:, None], other=0.0)
    num = tl.sum(acc * w[:, None], axis=0)
    den = tl.sum(l_s * w, axis=0)
    out = tl.where(den > 0, num / tl.where(den > 0, den, 1.0), 0.0)
    if out_ptr.dtype.element_ty == tl.bfloat16:
        out = _to_bf16_rne(out)
    col = (c // UVP) * UNIT_VALUES + c % UVP
    col_ok = ((c % UVP) < UNIT_VALUES) & (col < D)
    b = bh // HKV
    head = (bh % HKV) * GQA + m // LQ
    qi = m % LQ
    ptrs = out_ptr + b.to(tl.int64) * stride_ob + head * stride_oh + qi * stride_om + col * stride_od
    tl.store(ptrs, out.to(out_ptr.dtype.element_ty), mask=col_ok)


def _pow2(n: int) -> int:
    return triton.next_power_of_2(max(1, n))


def _multiprocessors(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count
    return 4


def plan_splits(batch_heads: int, seq: int, block_n: int, device: torch.device) -> tuple[int, int]:
    """(keys per split, number of splits): enough programs to fill the GPU about four times
    over, each with a whole number of key blocks."""
    blocks = triton.cdiv(max(seq, 1), block_n)
    want = max(1, triton.cdiv(4 * _multiprocessors(device), batch_heads))
    splits = min(blocks, want, 256)
    split_len = triton.cdiv(blocks, splits) * block_n
    return split_len, triton.cdiv(max(seq, 1), split_len)


def triton_decode_attention(
    query: torch.Tensor,
    k_stored: torch.Tensor,
    k_scale: torch.Tensor,
    k_zero: torch.Tensor | None,
    v_stored: torch.Tensor,
    v_scale: torch.Tensor,
    v_zero: torch.Tensor | None,
    encode_table: torch.Tensor,
    syndrome_table: torch.Tensor,
    codec: str,
    head_dim: int,
    interpolate: bool,
    seq_lens: torch.Tensor,
    counters: torch.Tensor,
    attn_mask: torch.Tensor | None,
    is_causal: bool,
    scale: float,
    block_n: int = 64,
) -> torch.Tensor:
    """See ``ecc::decode_attention``; arguments are validated there."""
    batch, q_heads, lq, _ = query.shape
    kv_heads, seq = k_stored.shape[1], k_stored.shape[2]
    layout = StorageLayout(codec, head_dim)
    groups = k_scale.shape[-1]
    uvp = _pow2(layout.unit_values)
    block_u = max(_pow2(layout.units), 16 // uvp if 16 % uvp == 0 else 16)
    block_m = max(16, _pow2((q_heads // kv_heads) * lq))
    block_c = block_u * uvp
    split_len, splits = plan_splits(batch * kv_heads, seq, block_n, query.device)
    emulate_bf16 = query.dtype == torch.bfloat16 and query.device.type == "cpu"  # CPU tensors: interpreter

    out = torch.empty_like(query, memory_format=torch.contiguous_format)
    o_part = torch.empty(batch * kv_heads * splits * block_m * block_c, dtype=torch.float32, device=query.device)
    ml_part = torch.empty(batch * kv_heads * splits * block_m * 2, dtype=torch.float32, device=query.device)
    if attn_mask is not None:
        mask = attn_mask.expand(batch, q_heads, lq, seq)
        mask_strides = mask.stride()
    else:
        mask, mask_strides = o_part, (0, 0, 0, 0)
    wrap_triton(_decode_attention_kernel)[(batch * kv_heads, splits)](
        query, k_stored, k_scale, k_zero if k_zero is not None else k_scale,
        v_stored, v_scale, v_zero if v_zero is not None else v_scale,
        encode_table, syndrome_table, seq_lens, mask, counters, o_part, ml_part,
        scale * LOG2E, split_len,
        *query.stride(), *mask_strides,
        seq,
        HKV=kv_heads, GQA=q_heads // kv_heads, LQ=lq, D=head_dim, K=layout.codec.k,
        ROW_BYTES=layout.row_bytes, UNITS=layout.units, UNIT_VALUES=layout.unit_values, UNIT_BYTES=layout.unit_bytes,
        UVP=uvp, GROUPS=groups, GROUP=head_dim // groups,
        DECODE=codec != "int4", HAS_ZERO=k_zero is not None, INTERP=interpolate and codec != "int4", COUNT=True,
        HAS_MASK=attn_mask is not None, CAUSAL=is_causal,
        DOT_PRECISION="ieee" if query.dtype == torch.float32 or emulate_bf16 else "tf32", EMULATE_BF16=emulate_bf16,
        BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_U=block_u, SPLITS=splits,
    )
    wrap_triton(_combine_splits_kernel)[(batch * kv_heads, (q_heads // kv_heads) * lq)](
        o_part, ml_part, out, *out.stride(),
        HKV=kv_heads, GQA=q_heads // kv_heads, LQ=lq, D=head_dim, UNIT_VALUES=layout.unit_values, UVP=uvp,
        BLOCK_M=block_m, BLOCK_C=block_c, SPLITS=splits, BLOCK_S=_pow2(splits),
    )
    return out
