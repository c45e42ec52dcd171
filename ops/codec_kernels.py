"""Triton kernels for the codec op family: store (quantize + encode + pack) and load
(unpack + syndrome-decode + dequantize), with thin launchers beside them.

Both kernels work on a ``[rows, head_dim]`` view (rows = every leading dim flattened) and on
storage units (:mod:`ecc_tensor.storage`): a program takes ``BLOCK_R`` rows and all units of
each row. Encode and syndrome decoding are table gathers (the codec's ``encode_table`` and
``syndrome_table``, passed in as tensors), exactly the reference's arithmetic, so results
agree bit for bit: quantization rounds half to even with an exact floor-based rint, and
scales use IEEE division as PyTorch does.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.library import wrap_triton

from ecc_tensor.interp import interpolate_erasures
from ecc_tensor.storage import StorageLayout, written_rows


@triton.jit
def _rint(x):
    """Round half to even, exactly (x - floor(x) is exact in fp32 for our magnitudes)."""
    r = tl.floor(x)
    frac = x - r
    odd = (r - 2.0 * tl.floor(r * 0.5)) == 1.0
    up = (frac > 0.5) | ((frac == 0.5) & odd)
    return tl.where(up, r + 1.0, r)


@triton.jit
def _to_bf16_rne(x):
    """float32 -> bfloat16 rounding to nearest even, as PyTorch's cast (and the GPU's cvt.rn)
    does; spelled out in bits because Triton's interpreter truncates instead. Finite x only."""
    bits = x.to(tl.uint32, bitcast=True)
    bits = bits + 0x7FFF + ((bits >> 16) & 1)
    return (bits >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)


@triton.jit
def _row_block(R, BLOCK_R: tl.constexpr):
    """This program's BLOCK_R rows: indices, in-range mask, and int64 indices for addressing."""
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    return rows, rows < R, rows.to(tl.int64)


@triton.jit
def _unit_word(ptrs, mask, UNIT_BYTES: tl.constexpr):
    """The ``UNIT_BYTES`` bytes at each of ``ptrs`` as a little-endian int32 word; ``mask`` may
    be None (every lane reads)."""
    word = tl.zeros(ptrs.shape, tl.int32)
    for b in tl.static_range(UNIT_BYTES):
        if mask is None:
            byte = tl.load(ptrs + b)
        else:
            byte = tl.load(ptrs + b, mask=mask, other=0)
        word = word | (byte.to(tl.int32) << (8 * b))
    return word


# Golay's lane layout (ecc_tensor.lanes), computed from head_dim alone: the kernels derive
# each codeword's places from its index, as ecc_tensor.lanes.LaneLayout.unit does, rather
# than read a map that would have to be passed in (and built per call under torch.compile).
# The layout's parameters are recomputed here in plain arithmetic (Triton compiles calls to
# JIT and constexpr functions only); tests/test_lanes.py checks them against lane_layout.

@triton.constexpr_function
def _lanes_data_words(D):
    return (int(D) + 7) // 8


@triton.constexpr_function
def _lanes_chunks(D):
    return _lanes_data_words(D) // 4


@triton.constexpr_function
def _lanes_tails(D):
    """How many tail words: each chunk's fourth, and a last chunk of one or two words."""
    r = _lanes_data_words(D) % 4
    return _lanes_chunks(D) + (r if r < 3 else 0)


@triton.constexpr_function
def _lanes_last_chunk_group(D):
    """1 if a last chunk of three words is the first of the other groups, else 0."""
    return int(_lanes_data_words(D) % 4 == 3)


@triton.constexpr_function
def _lanes_groups(D):
    """The groups beyond the chunk groups: a last chunk of three words, then the tail groups."""
    return _lanes_last_chunk_group(D) + _lanes_tails(D) // 3


@triton.constexpr_function
def _lanes_leftover_word(D, i):
    """Data word of the ``i``-th tail word left over (0 if there is none)."""
    k, tails = _lanes_chunks(D), _lanes_tails(D)
    j = 3 * (tails // 3) + int(i)
    if j >= tails:
        return 0
    return 4 * j + 3 if j < k else 4 * k + j - k


@triton.constexpr_function
def _lanes_leftover_values(D):
    left = _lanes_tails(D) % 3
    return sum(min(8, int(D) - 8 * _lanes_leftover_word(D, i)) for i in range(left))


@triton.constexpr_function
def _lanes_leftover_codewords(D):
    return (_lanes_leftover_values(D) + 2) // 3


@triton.constexpr_function
def _lanes_parity_words(D):
    k = _lanes_chunks(D)
    extra = 3 * _lanes_groups(D) + (12 * _lanes_leftover_codewords(D) + 31) // 32
    return max(3 * k + extra, 4 * k - 1) if k else extra


@triton.jit
def _lanes_slot(e, k: tl.constexpr):
    """``LaneLayout.parity_slot``."""
    return tl.where(e < k, 4 * e + 3, 4 * k + e - k)


@triton.jit
def _lane_value(u, SLOT: tl.constexpr, D: tl.constexpr):
    """The value index in slot ``SLOT`` of codeword ``u`` of the lane layout; ``D`` (out of
    range, as every value past the row) for padding. ``LaneLayout.unit``, in tensor ops."""
    k: tl.constexpr = _lanes_chunks(D)
    G: tl.constexpr = _lanes_groups(D)
    R3: tl.constexpr = _lanes_last_chunk_group(D)
    K: tl.constexpr = _lanes_leftover_codewords(D)
    lane = u % 8
    g = u // 8 - k
    j = 3 * (g - R3) + SLOT  # tail index
    word = tl.where(g < R3, 4 * k + SLOT, tl.where(j < k, 4 * j + 3, 4 * k + j - k))
    left = u - 8 * (k + G) + SLOT * K
    v_left = tl.where(left < 8, 8 * _lanes_leftover_word(D, 0) + left, 8 * _lanes_leftover_word(D, 1) + left - 8)
    v_left = tl.where(left < _lanes_leftover_values(D), v_left, D)
    v = tl.where(u < 8 * k, 32 * (u // 8) + 8 * SLOT + lane, tl.where(u < 8 * (k + G), 8 * word + lane, v_left))
    return tl.minimum(v, D)


@triton.jit
def _lane_parity_nibble(u, T: tl.constexpr, D: tl.constexpr):
    """The row nibble holding parity nibble ``T`` (reversed) of codeword ``u``."""
    M: tl.constexpr = _lanes_data_words(D)
    k: tl.constexpr = _lanes_chunks(D)
    G: tl.constexpr = _lanes_groups(D)
    K: tl.constexpr = _lanes_leftover_codewords(D)
    lane = u % 8
    chunk = 8 * (M + 4 * (u // 8) + T) + lane
    group = 8 * (M + _lanes_slot(3 * (u // 8 - k) + T, k)) + lane
    s = K * T + u - 8 * (k + G)
    left = 8 * (M + _lanes_slot(3 * G + s // 8, k)) + s % 8
    return tl.where(u < 8 * k, chunk, tl.where(u < 8 * (k + G), group, left))


@triton.jit
def _lane_parity_owner(n, D: tl.constexpr):
    """Row nibble ``n`` of the parity region -> (codeword, parity nibble, whether it holds one):
    the inverse of ``_lane_parity_nibble``."""
    M: tl.constexpr = _lanes_data_words(D)
    k: tl.constexpr = _lanes_chunks(D)
    G: tl.constexpr = _lanes_groups(D)
    K: tl.constexpr = _lanes_leftover_codewords(D)
    s = n // 8 - M
    lane = n % 8
    is_chunk = (s < 4 * k) & (s % 4 < 3)
    e = tl.where(s < 4 * k, s // 4, k + s - 4 * k)
    is_group = e < 3 * G
    stream = 8 * (e - 3 * G) + lane
    t_left = stream // tl.maximum(K, 1)
    u = tl.where(is_chunk, 8 * (s // 4) + lane, tl.where(is_group, 8 * (k + e // 3) + lane, 8 * (k + G) + stream % tl.maximum(K, 1)))
    t = tl.where(is_chunk, s % 4, tl.where(is_group, e % 3, t_left))
    ok = (s >= 0) & (s < _lanes_parity_words(D)) & (is_chunk | is_group | ((K > 0) & (t_left < 3)))
    return u, t, ok


@triton.jit
def _reverse_nibble(x):
    """The 4 low bits of ``x`` in reverse order (the lane layout stores parity nibbles so)."""
    return ((x & 1) << 3) | ((x & 2) << 1) | ((x >> 1) & 2) | ((x >> 3) & 1)


@triton.jit
def _row_nibble(row_ptrs, n, mask):
    if mask is None:
        byte = tl.load(row_ptrs + n // 2).to(tl.int32)
    else:
        byte = tl.load(row_ptrs + n // 2, mask=mask, other=0).to(tl.int32)
    return (byte >> (4 * (n % 2))) & 15


@triton.jit
def _lane_words(row_ptrs, u, mask, D: tl.constexpr):
    """Codewords ``u`` of the lane layout at ``row_ptrs`` (each row's first byte), as int32."""
    word = tl.zeros(u.shape, tl.int32) if mask is None else tl.zeros(mask.shape, tl.int32)
    for i in tl.static_range(3):
        v = _lane_value(u, i, D)
        ok = v < D if mask is None else mask & (v < D)
        word = word | (_row_nibble(row_ptrs, tl.minimum(v, D - 1), ok) << (4 * i))
    for t in tl.static_range(3):
        word = word | (_reverse_nibble(_row_nibble(row_ptrs, _lane_parity_nibble(u, t, D), mask)) << (12 + 4 * t))
    return word


@triton.jit
def _unit_value(u, SLOT: tl.constexpr, UNIT_VALUES: tl.constexpr, LANES_D: tl.constexpr):
    """The value index in slot ``SLOT`` of unit ``u``; past the row (>= head_dim) for padding."""
    if LANES_D:
        return _lane_value(u, SLOT, LANES_D)
    return u * UNIT_VALUES + SLOT


@triton.jit
def _load_units(stored_ptr, rows, u, mask, ROW_BYTES: tl.constexpr, UNIT_BYTES: tl.constexpr, LANES_D: tl.constexpr):
    """Units ``u`` of ``rows`` (``[N, 1]`` or ``[N, U]``) as little-endian int32 words ``[N, U]``;
    ``LANES_D``: Golay's lane layout, of that head_dim."""
    if LANES_D:
        return _lane_words(stored_ptr + rows.to(tl.int64) * ROW_BYTES, u[None, :], mask, LANES_D)
    return _unit_word(stored_ptr + rows.to(tl.int64) * ROW_BYTES + u[None, :] * UNIT_BYTES, mask, UNIT_BYTES)


def nibble_parity_table(encode_table: torch.Tensor, k: int) -> torch.Tensor:
    """``[k // 4 * 16]`` int32: entry ``16 * j + v`` is the codeword of the data word ``v << 4j``
    (one table per data nibble), which ``_syndrome_decode`` reads instead of the ``2^k``-entry
    encode table. Made with tensor ops on the table's device, so that it traces. A 4-bit code's
    encode table is its own nibble table."""
    if k <= 4:
        return encode_table
    nibbles = torch.arange(16, device=encode_table.device)
    shifts = 4 * torch.arange(k // 4, device=encode_table.device)
    return encode_table[(nibbles[None, :] << shifts[:, None]).flatten()].contiguous()


@triton.jit
def _syndromes(word, parity_table_ptr, mask, K: tl.constexpr):
    """Syndrome of each codeword: parity received ^ parity of the data received.

    The code is linear, so the codeword of the data is the XOR of the codewords of its nibbles
    (``parity_table_ptr``: ``nibble_parity_table``). Those tables fit in one or two cache lines,
    where a gather into Golay's 4096-entry encode table scatters a warp over 16 KiB. ``mask``
    may be None (every lane reads; the indices are in range whatever the word)."""
    parity = tl.zeros_like(word)
    for j in tl.static_range(K // 4):
        index = 16 * j + ((word >> (4 * j)) & 15)
        if mask is None:
            parity ^= tl.load(parity_table_ptr + index)
        else:
            parity ^= tl.load(parity_table_ptr + index, mask=mask, other=0)
    return (parity ^ word) >> K


@triton.jit
def _syndrome_decode(word, parity_table_ptr, syndrome_table_ptr, mask, K: tl.constexpr):
    """(corrected data word, corrected flag, detected flag) of each codeword, as the reference:
    the syndrome (``_syndromes``) and its coset leader, gathered only for non-zero syndromes
    (entry 0 is the zero pattern)."""
    data_mask: tl.constexpr = (1 << K) - 1
    syndrome = _syndromes(word, parity_table_ptr, mask, K)
    leader = tl.load(syndrome_table_ptr + syndrome, mask=mask & (syndrome != 0), other=0)
    correctable = leader >= 0
    data = tl.where(correctable, word ^ leader, word) & data_mask
    return data, (syndrome != 0) & correctable, ~correctable


@triton.jit
def _stored_value(x_ptr, scale_ptr, zero_ptr, rows64, col, ok, D: tl.constexpr, GROUP: tl.constexpr, GROUPS: tl.constexpr,
                  QUANTIZE: tl.constexpr, SYMMETRIC: tl.constexpr):
    """The INT4 value (int32, 0 where not ``ok``) of columns ``col`` of ``rows64``: read, or
    quantized with the scales phase 1 wrote."""
    if QUANTIZE:
        xv = tl.load(x_ptr + rows64[:, None] * D + col[None, :], mask=ok, other=0.0).to(tl.float32)
        s_idx = rows64[:, None] * GROUPS + (col // GROUP)[None, :]
        s = tl.load(scale_ptr + s_idx, mask=ok, other=1.0)
        if SYMMETRIC:
            q = tl.minimum(tl.maximum(_rint(tl.math.div_rn(xv, s)), -8.0), 7.0) + 8.0
        else:
            z = tl.load(zero_ptr + s_idx, mask=ok, other=0.0)
            q = tl.minimum(tl.maximum(_rint(tl.math.div_rn(xv, s) + z), 0.0), 15.0)
        return tl.where(ok, q, 0.0).to(tl.int32)
    return tl.load(x_ptr + rows64[:, None] * D + col[None, :], mask=ok, other=0).to(tl.int32)


@triton.jit
def _store_kernel(
    x_ptr,  # [R, D]: float (QUANTIZE) or uint8 INT4 values
    out_ptr,  # [R, ROW_BYTES] uint8
    scale_ptr,  # [R, GROUPS] float32, written when QUANTIZE
    zero_ptr,  # [R, GROUPS] float32, written when QUANTIZE and not SYMMETRIC
    encode_table_ptr,  # int32 [2^k]
    R,
    D: tl.constexpr,
    GROUP: tl.constexpr,
    GROUPS: tl.constexpr,
    UNITS: tl.constexpr,
    UNIT_VALUES: tl.constexpr,
    UNIT_BYTES: tl.constexpr,
    ROW_BYTES: tl.constexpr,
    LANES_D: tl.constexpr,  # Golay's lane layout, of this head_dim; 0 for units one after another
    ENCODE: tl.constexpr,
    QUANTIZE: tl.constexpr,
    SYMMETRIC: tl.constexpr,
    BLOCK_R: tl.constexpr,
    BLOCK_G: tl.constexpr,
    BLOCK_GS: tl.constexpr,
    BLOCK_U: tl.constexpr,
):
    rows, row_ok, rows64 = _row_block(R, BLOCK_R)
    if QUANTIZE:
        # Phase 1: per-group scale (and zero point) from the whole group.
        g = tl.arange(0, BLOCK_G)
        e = tl.arange(0, BLOCK_GS)
        cols = g[:, None] * GROUP + e[None, :]
        m = row_ok[:, None, None] & ((g[:, None] < GROUPS) & (e[None, :] < GROUP))[None, :, :]
        xg = tl.load(x_ptr + rows64[:, None, None] * D + cols[None, :, :], mask=m, other=0.0).to(tl.float32)
        gm = row_ok[:, None] & (g < GROUPS)[None, :]
        s_ptrs = rows64[:, None] * GROUPS + g[None, :]
        if SYMMETRIC:
            amax = tl.max(tl.abs(xg), axis=2)
            scale = tl.where(amax > 0, tl.math.div_rn(amax, tl.zeros_like(amax) + 7.0), 1.0)
        else:
            lo = tl.min(tl.where(m, xg, float("inf")), axis=2)
            hi = tl.max(tl.where(m, xg, float("-inf")), axis=2)
            scale = tl.where(hi > lo, tl.math.div_rn(hi - lo, tl.zeros_like(hi) + 15.0), 1.0)
            tl.store(zero_ptr + s_ptrs, tl.math.div_rn(-lo, scale), mask=gm)
        tl.store(scale_ptr + s_ptrs, scale, mask=gm)
        tl.debug_barrier()  # phase 2 gathers scales by group from memory

    if LANES_D:
        # Golay's lane layout: the data region is the values' INT4 packing; each parity
        # nibble is made from its codeword's values (ecc_tensor.lanes).
        b = tl.arange(0, BLOCK_U)
        ok = row_ok[:, None] & (b < ROW_BYTES)[None, :]
        lo = _stored_value(x_ptr, scale_ptr, zero_ptr, rows64, 2 * b, ok & (2 * b < D)[None, :], D, GROUP, GROUPS, QUANTIZE, SYMMETRIC)
        hi = _stored_value(x_ptr, scale_ptr, zero_ptr, rows64, 2 * b + 1, ok & (2 * b + 1 < D)[None, :], D, GROUP, GROUPS, QUANTIZE, SYMMETRIC)
        byte = lo | (hi << 4)
        for h in tl.static_range(2):
            unit, t, owned = _lane_parity_owner(2 * b + h, LANES_D)
            unit_ok = ok & owned[None, :]
            data = tl.zeros([BLOCK_R, BLOCK_U], dtype=tl.int32)
            for i in tl.static_range(3):
                col = _lane_value(unit, i, LANES_D)
                data = data | (_stored_value(x_ptr, scale_ptr, zero_ptr, rows64, col, unit_ok & (col < D)[None, :], D, GROUP,
                                             GROUPS, QUANTIZE, SYMMETRIC) << (4 * i))
            word = tl.load(encode_table_ptr + data, mask=unit_ok, other=0)
            nibble = _reverse_nibble((word >> (12 + 4 * t)[None, :]) & 15)
            byte = byte | tl.where(unit_ok, nibble << (4 * h), 0)
        tl.store(out_ptr + rows64[:, None] * ROW_BYTES + b[None, :], byte.to(tl.uint8), mask=ok)
    else:
        # Pack UNIT_VALUES values per unit, encode, write UNIT_BYTES bytes.
        u = tl.arange(0, BLOCK_U)
        unit_ok = row_ok[:, None] & (u < UNITS)[None, :]
        data = tl.zeros([BLOCK_R, BLOCK_U], dtype=tl.int32)
        for i in tl.static_range(UNIT_VALUES):
            col = u * UNIT_VALUES + i
            data = data | (_stored_value(x_ptr, scale_ptr, zero_ptr, rows64, col, unit_ok & (col < D)[None, :], D, GROUP, GROUPS,
                                         QUANTIZE, SYMMETRIC) << (4 * i))
        if ENCODE:
            word = tl.load(encode_table_ptr + data, mask=unit_ok, other=0)
        else:
            word = data
        out_row = out_ptr + rows64[:, None] * ROW_BYTES + u[None, :] * UNIT_BYTES
        for b in tl.static_range(UNIT_BYTES):
            tl.store(out_row + b, ((word >> (8 * b)) & 0xFF).to(tl.uint8), mask=unit_ok)


@triton.jit
def _load_kernel(
    stored_ptr,  # [R, ROW_BYTES] uint8
    out_ptr,  # [R, D]: OUT dtype (DEQUANT) or uint8 values
    status_ptr,  # [R, STATUS_COLS] uint8
    scale_ptr,
    zero_ptr,
    parity_table_ptr,  # int32 [K // 4 * 16]: nibble_parity_table
    syndrome_table_ptr,
    counters_ptr,  # int64 [5]: read, corrected, detected, injected, silent
    seq_len_ptr,  # int64 []: rows with (row % SEQ) >= seq_len are not counted (HAS_LEN)
    R,
    SEQ,
    D: tl.constexpr,
    K: tl.constexpr,
    GROUP: tl.constexpr,
    GROUPS: tl.constexpr,
    UNITS: tl.constexpr,
    UNIT_VALUES: tl.constexpr,
    UNIT_BYTES: tl.constexpr,
    ROW_BYTES: tl.constexpr,
    LANES_D: tl.constexpr,
    DECODE: tl.constexpr,
    DEQUANT: tl.constexpr,
    HAS_ZERO: tl.constexpr,
    COUNT: tl.constexpr,
    HAS_LEN: tl.constexpr,
    BLOCK_R: tl.constexpr,
    BLOCK_U: tl.constexpr,
):
    rows, row_ok, rows64 = _row_block(R, BLOCK_R)
    u = tl.arange(0, BLOCK_U)
    unit_ok = row_ok[:, None] & (u < UNITS)[None, :]
    counted = unit_ok
    if HAS_LEN:
        counted = counted & ((rows % SEQ) < tl.load(seq_len_ptr))[:, None]
    word = _load_units(stored_ptr, rows64[:, None], u, unit_ok, ROW_BYTES, UNIT_BYTES, LANES_D)

    if DECODE:
        data, corrected, detected = _syndrome_decode(word, parity_table_ptr, syndrome_table_ptr, unit_ok, K)
        status = tl.where(corrected, 1, tl.where(detected, 2, 0))
        tl.store(status_ptr + rows64[:, None] * UNITS + u[None, :], status.to(tl.uint8), mask=unit_ok)
        if COUNT:
            n_units = tl.sum(tl.sum(counted.to(tl.int64), axis=1), axis=0)
            n_corrected = tl.sum(tl.sum((counted & corrected).to(tl.int64), axis=1), axis=0)
            n_detected = tl.sum(tl.sum((counted & detected).to(tl.int64), axis=1), axis=0)
            tl.atomic_add(counters_ptr + 0, n_units)
            tl.atomic_add(counters_ptr + 1, n_corrected)
            tl.atomic_add(counters_ptr + 2, n_detected)
    else:
        data = word

    for i in tl.static_range(UNIT_VALUES):
        col = _unit_value(u, i, UNIT_VALUES, LANES_D)
        ok = unit_ok & (col < D)[None, :]
        v = (data >> (4 * i)) & 15
        if not DECODE:  # int4: one "codeword" per value, never corrected
            tl.store(status_ptr + rows64[:, None] * D + col[None, :], tl.zeros_like(v).to(tl.uint8), mask=ok)
            if COUNT:
                n_values = tl.sum(tl.sum((ok & counted).to(tl.int64), axis=1), axis=0)
                tl.atomic_add(counters_ptr + 0, n_values)
        if DEQUANT:
            s_idx = rows64[:, None] * GROUPS + (col // GROUP)[None, :]
            s = tl.load(scale_ptr + s_idx, mask=ok, other=1.0)
            if HAS_ZERO:
                offset = tl.load(zero_ptr + s_idx, mask=ok, other=0.0)
            else:
                offset = 8.0
            x = (v.to(tl.float32) - offset) * s
            if out_ptr.dtype.element_ty == tl.bfloat16:
                x = _to_bf16_rne(x)
            tl.store(out_ptr + rows64[:, None] * D + col[None, :], x.to(out_ptr.dtype.element_ty), mask=ok)
        else:
            tl.store(out_ptr + rows64[:, None] * D + col[None, :], v.to(tl.uint8), mask=ok)


def _pow2(n: int) -> int:
    return triton.next_power_of_2(max(1, n))


def _rows_per_program(layout: StorageLayout) -> int:
    # About 4K values per program keeps registers in check for head_dim up to 256.
    return max(1, min(64, 4096 // _pow2(layout.units * layout.unit_values)))


def launch_store(
    x: torch.Tensor,
    layout: StorageLayout,
    encode_table: torch.Tensor,
    *,
    quantize: bool,
    group_size: int,
    symmetric: bool,
    out: torch.Tensor,
    scale: torch.Tensor | None,
    zero: torch.Tensor | None,
) -> None:
    """Fill ``out`` (and ``scale``/``zero``) from ``x`` ``[..., head_dim]`` (contiguous)."""
    rows = x.numel() // layout.head_dim
    block_r = _rows_per_program(layout)
    groups = layout.head_dim // group_size
    dummy = out  # never dereferenced where a pointer is not needed
    wrap_triton(_store_kernel)[(triton.cdiv(rows, block_r),)](
        x,
        out,
        scale if scale is not None else dummy,
        zero if zero is not None else dummy,
        encode_table,
        rows,
        D=layout.head_dim,
        GROUP=group_size,
        GROUPS=groups,
        UNITS=layout.units,
        UNIT_VALUES=layout.unit_values,
        UNIT_BYTES=layout.unit_bytes,
        ROW_BYTES=layout.row_bytes,
        LANES_D=layout.head_dim if layout.lanes else 0,
        ENCODE=layout.codec_name != "int4",
        QUANTIZE=quantize,
        SYMMETRIC=symmetric,
        BLOCK_R=block_r,
        BLOCK_G=_pow2(groups),
        BLOCK_GS=_pow2(group_size),
        BLOCK_U=_pow2(layout.row_bytes if layout.lanes else layout.units),
    )


def launch_load(
    stored: torch.Tensor,
    layout: StorageLayout,
    encode_table: torch.Tensor,
    syndrome_table: torch.Tensor,
    *,
    out: torch.Tensor,
    status: torch.Tensor,
    scale: torch.Tensor | None,
    zero: torch.Tensor | None,
    counters: torch.Tensor | None,
    seq_len: torch.Tensor | None = None,
) -> None:
    """Decode ``stored`` into ``out`` (values, or floats when ``scale`` is given) and ``status``."""
    rows = stored.numel() // layout.row_bytes
    block_r = _rows_per_program(layout)
    groups = scale.shape[-1] if scale is not None else 1
    wrap_triton(_load_kernel)[(triton.cdiv(rows, block_r),)](
        stored,
        out,
        status,
        scale if scale is not None else out,
        zero if zero is not None else out,
        nibble_parity_table(encode_table, layout.codec.k),
        syndrome_table,
        counters if counters is not None else status,
        seq_len if seq_len is not None else status,
        rows,
        stored.shape[-2] if stored.dim() >= 2 else 1,
        D=layout.head_dim,
        K=layout.codec.k,
        GROUP=layout.head_dim // groups,
        GROUPS=groups,
        UNITS=layout.units,
        UNIT_VALUES=layout.unit_values,
        UNIT_BYTES=layout.unit_bytes,
        ROW_BYTES=layout.row_bytes,
        LANES_D=layout.head_dim if layout.lanes else 0,
        DECODE=layout.codec_name != "int4",
        DEQUANT=scale is not None,
        HAS_ZERO=zero is not None,
        COUNT=counters is not None,
        HAS_LEN=seq_len is not None,
        BLOCK_R=block_r,
        BLOCK_U=_pow2(layout.units),
    )


def triton_encode(values: torch.Tensor, encode_table: torch.Tensor, codec: str) -> torch.Tensor:
    layout = StorageLayout(codec, values.shape[-1])
    out = values.new_empty(*values.shape[:-1], layout.row_bytes)
    launch_store(
        values.contiguous(), layout, encode_table, quantize=False, group_size=layout.head_dim,
        symmetric=True, out=out, scale=None, zero=None,
    )
    return out


def triton_decode(
    stored: torch.Tensor, encode_table: torch.Tensor, syndrome_table: torch.Tensor, codec: str, head_dim: int
) -> tuple[torch.Tensor, torch.Tensor]:
    layout = StorageLayout(codec, head_dim)
    values = stored.new_empty(*stored.shape[:-1], head_dim)
    status = stored.new_empty(*stored.shape[:-1], layout.codewords_per_row)
    launch_load(
        stored.contiguous(), layout, encode_table, syndrome_table,
        out=values, status=status, scale=None, zero=None, counters=None,
    )
    return values, status


def triton_quantize_encode(
    x: torch.Tensor, encode_table: torch.Tensor, codec: str, group_size: int | None, symmetric: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    layout = StorageLayout(codec, x.shape[-1])
    group = layout.head_dim if group_size is None else group_size
    if group < 1 or layout.head_dim % group:
        raise ValueError(f"group_size must be a positive divisor of the last dimension {layout.head_dim}, got {group_size!r}")
    lead = x.shape[:-1]
    stored = torch.empty(*lead, layout.row_bytes, dtype=torch.uint8, device=x.device)
    scale = torch.empty(*lead, layout.head_dim // group, dtype=torch.float32, device=x.device)
    zero = scale.new_empty(0) if symmetric else torch.empty_like(scale)
    launch_store(
        x.contiguous(), layout, encode_table, quantize=True, group_size=group, symmetric=symmetric,
        out=stored, scale=scale, zero=None if symmetric else zero,
    )
    return stored, scale, zero


def triton_decode_dequantize(
    stored: torch.Tensor,
    scale: torch.Tensor,
    zero: torch.Tensor | None,
    encode_table: torch.Tensor,
    syndrome_table: torch.Tensor,
    codec: str,
    head_dim: int,
    interpolate: bool,
    counters: torch.Tensor,
    dtype: torch.dtype,
    seq_len: torch.Tensor | None = None,
) -> torch.Tensor:
    """The kernel decodes and dequantizes; interpolation (a scan along the sequence) then runs
    as the reference's tensor code on the float32 result, as the reference does."""
    layout = StorageLayout(codec, head_dim)
    lead = stored.shape[:-1]
    out = torch.empty(*lead, head_dim, dtype=torch.float32 if interpolate else dtype, device=stored.device)
    status = stored.new_empty(*lead, layout.codewords_per_row)
    launch_load(
        stored.contiguous(), layout, encode_table, syndrome_table, out=out, status=status,
        scale=scale.contiguous(), zero=None if zero is None else zero.contiguous(), counters=counters,
        seq_len=seq_len,
    )
    if interpolate:
        erased = layout.erased_values(status, written_rows(stored, seq_len))
        out = interpolate_erasures(out, erased, dim=-2).to(dtype)
    return out
