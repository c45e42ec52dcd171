"""Triton kernels for the codec op family: store (quantize + encode + pack, the scales encoded
too) and load (unpack + syndrome-decode the values and their scales + dequantize), with thin
launchers beside them.

Both kernels work on a ``[rows, head_dim]`` view (rows = every leading dim flattened) and on
storage units (:mod:`ecc_tensor.storage`): a program takes ``BLOCK_R`` rows and all units of
each row. Encode and syndrome decoding are table gathers (the codec's ``encode_table`` and
``syndrome_table``, passed in as tensors), exactly the reference's arithmetic, so results
agree bit for bit: scales use IEEE division as PyTorch does, and values are quantized to the
reference's INT4 codes exactly (:mod:`ops.int4_codes`).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.utils.weak import WeakTensorKeyDictionary

from ecc_tensor.codecs import STATUS_DETECTED, LinearBlockCode
from ecc_tensor.device_tables import made_outside_any_pool, tracing
from ecc_tensor.metadata import MetadataLayout
from ecc_tensor.storage import StorageLayout

from .compile_ahead import wrap_triton
from .interp_kernels import interpolate_decoded_
from .launch_options import kernel_and_options
from .int4_codes import fma_quotient_safe, int4_codes, quotients
from .byte_words import _byte_codeword_words, _word_bytes, _word_decode, _word_syndromes, nibble_constants
from .float_casts import _cast_for
from .lane_words import _lane_row_parity, _lane_row_syndromes, _scale_lane_row, _three_lane_syndromes
from .memo import aligned, lane_meta_aligned, memoized


@triton.jit
def _row_block(R, BLOCK_R: tl.constexpr):
    """This program's BLOCK_R rows: indices, in-range mask, and int64 indices for addressing."""
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    return rows, rows < R, rows.to(tl.int64)


@triton.jit
def _rows_counted(R, SEQ, seq_len_ptr, row_counted, BLOCK_R: tl.constexpr, HAS_LEN: tl.constexpr, LEN_PER_LEAD: tl.constexpr):
    """How many of this program's rows are counted (``_row_block``'s in range and, with
    ``HAS_LEN``, ``row % SEQ < seq_len``), in scalar arithmetic: the sum over the rows' mask
    took block-wide reductions (shuffles, shared memory and a barrier) in every program. With
    a length per sequence (``LEN_PER_LEAD``) a program's rows may span two lengths: that sum
    (``row_counted``), as it is only for the attention's unfused fallback."""
    if LEN_PER_LEAD:
        return tl.sum(row_counted.to(tl.int32)).to(tl.int64)
    first = tl.program_id(0).to(tl.int64) * BLOCK_R
    last = tl.minimum(first + BLOCK_R, R)  # one past
    if HAS_LEN:
        length = tl.maximum(tl.minimum(tl.load(seq_len_ptr), SEQ), 0)  # rows of a sequence counted: its first ``length``
        # Counted rows below r: whole sequences' ``length`` each, then the last one's part.
        below_last = (last // SEQ) * length + tl.minimum(last % SEQ, length)
        below_first = (first // SEQ) * length + tl.minimum(first % SEQ, length)
        return below_last - below_first
    return last - first


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
def _lane_value(u, slot, D: tl.constexpr):
    """The value index in slot ``slot`` of codeword ``u`` of the lane layout; ``D`` (out of
    range, as every value past the row) for padding. ``LaneLayout.unit``, in tensor ops."""
    k: tl.constexpr = _lanes_chunks(D)
    G: tl.constexpr = _lanes_groups(D)
    R3: tl.constexpr = _lanes_last_chunk_group(D)
    K: tl.constexpr = _lanes_leftover_codewords(D)
    lane = u % 8
    g = u // 8 - k
    j = 3 * (g - R3) + slot  # tail index
    word = tl.where(g < R3, 4 * k + slot, tl.where(j < k, 4 * j + 3, 4 * k + j - k))
    left = u - 8 * (k + G) + slot * K
    v_left = tl.where(left < 8, 8 * _lanes_leftover_word(D, 0) + left, 8 * _lanes_leftover_word(D, 1) + left - 8)
    v_left = tl.where(left < _lanes_leftover_values(D), v_left, D)
    v = tl.where(u < 8 * k, 32 * (u // 8) + 8 * slot + lane, tl.where(u < 8 * (k + G), 8 * word + lane, v_left))
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
    """The 4 low bits of ``x`` (0-15) in reverse order (the lane layout stores parity nibbles
    so): entry ``x`` of a 16-nibble table held in one 64-bit constant, one shift."""
    return ((tl.full(x.shape, 0xF7B3D591E6A2C480, tl.uint64) >> (4 * x).to(tl.uint64)) & 15).to(x.dtype)


@triton.jit
def _reverse_nibbles(x):
    """Each of the eight nibbles of 32-bit ``x`` with its bits in reverse order, in place: two
    swaps for all eight, where ``_reverse_nibble`` takes about seven operations for each."""
    x = ((x >> 1) & 0x55555555) | ((x & 0x55555555) << 1)
    return ((x >> 2) & 0x33333333) | ((x & 0x33333333) << 2)


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
def _unit_value(u, slot, UNIT_VALUES: tl.constexpr, LANES_D: tl.constexpr):
    """The value index in slot ``slot`` of unit ``u``; past the row (>= head_dim) for padding."""
    if LANES_D:
        return _lane_value(u, slot, LANES_D)
    return u * UNIT_VALUES + slot


@triton.jit
def _load_units(stored_ptr, rows, u, mask, ROW_BYTES: tl.constexpr, UNIT_BYTES: tl.constexpr, LANES_D: tl.constexpr):
    """Units ``u`` of ``rows`` (``[N, 1]`` or ``[N, U]``) as little-endian int32 words ``[N, U]``;
    ``LANES_D``: Golay's lane layout, of that head_dim."""
    if LANES_D:
        return _lane_words(stored_ptr + rows.to(tl.int64) * ROW_BYTES, u[None, :], mask, LANES_D)
    return _unit_word(stored_ptr + rows.to(tl.int64) * ROW_BYTES + u[None, :] * UNIT_BYTES, mask, UNIT_BYTES)


# Built once per encode table (a codec's tables are cached per device): made per call, the
# table cost four small kernels, about 6 us a call on the H200 (benchmarks/RESULTS.md).
_NIBBLE_TABLES = WeakTensorKeyDictionary()  # encode table -> (its version, its nibble table)
# Tables replaced after their encode table changed in place, kept alive: a CUDA graph recorded
# with one still reads its memory.
_REPLACED_NIBBLE_TABLES: list[torch.Tensor] = []


def nibble_parity_table(encode_table: torch.Tensor, k: int) -> torch.Tensor:
    """``[k // 4 * 16]`` int32: entry ``16 * j + v`` is the codeword of the data word ``v << 4j``
    (one table per data nibble), which ``_syndrome_decode`` reads instead of the ``2^k``-entry
    encode table. Made with tensor ops on the table's device, so that it traces; kept for the
    next call with the same table. While tracing it is made anew (it belongs to the trace);
    while a CUDA graph records, a kept one is read (it was made outside any graph's memory
    pool: ``device_tables.made_outside_any_pool``, and lives as long as its encode table) and
    none is kept. A 4-bit code's encode table is its own nibble table."""
    if k <= 4:
        return encode_table
    if not _traceless(encode_table):
        return _nibble_table(encode_table, k)
    cached = _NIBBLE_TABLES.get(encode_table)
    if cached is not None and cached[0] == encode_table._version:
        return cached[1]
    if _capturing(encode_table):  # the graph's pool would hold a kept one: made for this graph only
        return _nibble_table(encode_table, k)
    if encode_table.device.type == "cuda":  # kept: so made outside any CUDA graph's pool
        table = made_outside_any_pool(lambda: _nibble_table(encode_table, k), encode_table.device)
    else:
        table = _nibble_table(encode_table, k)
    if cached is not None:
        _REPLACED_NIBBLE_TABLES.append(cached[1])
    _NIBBLE_TABLES[encode_table] = (encode_table._version, table)
    return table


def _nibble_table(encode_table: torch.Tensor, k: int) -> torch.Tensor:
    nibbles = torch.arange(16, device=encode_table.device)
    shifts = 4 * torch.arange(k // 4, device=encode_table.device)
    return encode_table[(nibbles[None, :] << shifts[:, None]).flatten()].contiguous()


def _traceless(table: torch.Tensor) -> bool:
    """A plain tensor outside tracing (a table made while tracing belongs to the trace)."""
    return type(table) is torch.Tensor and not tracing()


def _capturing(table: torch.Tensor) -> bool:
    """Whether a CUDA graph records on the current stream of ``table``'s device."""
    return table.device.type == "cuda" and torch.cuda.is_current_stream_capturing()


def block_offsets(layout: StorageLayout) -> int:
    """The kernels' ``BLOCKS`` switch: for the ``"blocks"`` layout (SECDED(72,64)) its codec's
    ``byte_offsets`` packed a byte each (byte ``B`` at bits ``8B..8B+7``; see ``_block_check``),
    else 0."""
    if not layout.blocks:
        return 0
    return sum(int(x) << (8 * b) for b, x in enumerate(layout.codec.byte_offsets))


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
def _syndrome_decode(word, parity_table_ptr, syndrome_table_ptr, mask, K: tl.constexpr, PO_SYN: tl.constexpr):
    """(corrected data word, status) of each codeword, as the reference: the syndrome
    (``_syndromes``) and its coset leader, gathered only for non-zero syndromes (entry 0 is the
    zero pattern). Status 0 clean, 1 corrected, 2 detected, 3 parity-only (the syndrome
    ``PO_SYN`` of the overall parity bit alone; -1 for codes without one)."""
    data_mask: tl.constexpr = (1 << K) - 1
    syndrome = _syndromes(word, parity_table_ptr, mask, K)
    leader = tl.load(syndrome_table_ptr + syndrome, mask=mask & (syndrome != 0), other=0)
    correctable = leader >= 0
    data = tl.where(correctable, word ^ leader, word) & data_mask
    return data, _status(syndrome, correctable, PO_SYN)


@triton.constexpr_function
def _offset_bytes(offsets, r):
    """The data bytes (0-3: data bits 0-31, 4-7: 32-63) whose orbit representative
    (``block_offsets``) holds offset ``r``."""
    offsets, r = int(offsets), int(r)
    return [b for b in range(8) if (offsets >> (8 * b + r)) & 1]


@triton.constexpr_function
def _offset_mask(offsets, word, r):
    """``_offset_bytes`` in data word ``word`` (0 or 1), as a mask of whole bytes."""
    return sum(0xFF << (8 * (b - 4 * int(word))) for b in _offset_bytes(offsets, r) if b // 4 == int(word))


@triton.constexpr_function
def _prmt_ptx(selector):
    return f"prmt.b32 $0, $1, $2, {hex(int(selector))};"


@triton.jit
def _prmt(a, b, SELECTOR: tl.constexpr):
    """PTX ``prmt``: the bytes of ``a`` (0-3) and ``b`` (4-7) that ``SELECTOR``'s nibbles name."""
    return tl.inline_asm_elementwise(_prmt_ptx(SELECTOR), "=r,r,r", [a, b], dtype=tl.uint32, is_pure=True, pack=1)


@triton.constexpr_function
def _top_offset(offsets):
    """The highest offset any byte's representative holds."""
    return max(r for r in range(8) if _offset_bytes(offsets, r))


@triton.jit
def _offset_word(a, b, OFFSETS: tl.constexpr, R: tl.constexpr):
    """A word whose bytes XOR-fold to the XOR of the data bytes whose representative holds
    offset ``R`` (uint32): those bytes in their own lanes."""
    MA: tl.constexpr = _offset_mask(OFFSETS, 0, R)
    MB: tl.constexpr = _offset_mask(OFFSETS, 1, R)
    if MB == 0:
        x = a & MA
    elif MA == 0:
        x = b & MB
    else:
        x = (a & MA) ^ (b & MB)
    return x


@triton.jit
def _block_parity_word(lo, hi, OFFSETS: tl.constexpr):
    """A uint32 word whose four bytes XOR-fold to the check byte of SECDED(72,64) codewords with
    data bits ``lo`` (0-31) and ``hi`` (32-63). Data bit ``c`` of byte ``B`` has the column
    ``OFFSETS``' byte ``B`` rotated by ``c`` (:mod:`ecc_tensor.codecs.secded72`), so the check
    byte is the XOR over offsets ``r`` of the bytes holding ``r``, rotated by ``r``; rotating a
    32-bit word by ``r`` rotates each of its bytes by ``r`` once they are folded into one.
    Horner's scheme over ``r``: a byte selection, a rotation and an XOR per offset."""
    a = lo.to(tl.uint32, bitcast=True)
    b = hi.to(tl.uint32, bitcast=True)
    TOP: tl.constexpr = _top_offset(OFFSETS)
    acc = _offset_word(a, b, OFFSETS, TOP)
    for i in tl.static_range(1, TOP + 1):
        acc = ((acc << 1) | (acc >> 31)) ^ _offset_word(a, b, OFFSETS, TOP - i)
    return acc


@triton.jit
def _block_check(lo, hi, OFFSETS: tl.constexpr):
    """The check bits of SECDED(72,64) codewords whose 64 data bits are ``lo`` (bits 0-31) and
    ``hi`` (32-63), in the dtype of ``lo``: ``_block_parity_word`` folded to a byte."""
    acc = _block_parity_word(lo, hi, OFFSETS)
    acc ^= acc >> 16
    acc ^= acc >> 8
    return (acc & 0xFF).to(lo.dtype, bitcast=True)


@triton.jit
def _block_decode(lo, hi, check, OFFSETS: tl.constexpr, syndrome_table_ptr, mask):
    """(lo, hi, status) of SECDED(72,64) codewords, as the reference: the syndrome, and for a
    non-zero one the codeword bit a single flip there gives (``syndrome_table_ptr``; 64-71 the
    check bits, whose flip leaves the data valid), or -1: detected."""
    syndrome = _block_check(lo, hi, OFFSETS) ^ check
    position = tl.load(syndrome_table_ptr + syndrome, mask=mask & (syndrome != 0), other=0)
    flip = (syndrome != 0) & (position >= 0)
    one = tl.full(lo.shape, 1, tl.int32)
    lo = lo ^ tl.where(flip & (position < 32), one << (position & 31), 0)
    hi = hi ^ tl.where(flip & (position >= 32) & (position < 64), one << (position & 31), 0)
    status = tl.where(syndrome == 0, 0, tl.where(position >= 0, 1, 2))
    return lo, hi, status


@triton.jit
def _status(syndrome, correctable, PO_SYN: tl.constexpr):
    """The decode status from a syndrome and whether its coset leader is correctable."""
    fixed = tl.where(syndrome == PO_SYN, 3, 1)
    return tl.where(syndrome == 0, 0, tl.where(correctable, fixed, 2))


@triton.constexpr_function
def _lane_unit_value(D, u, i):
    """The value index in slot ``i`` of codeword ``u`` of the lane layout of ``D <= 16`` values
    (-1: padding), for codewords known at compile time: a metadata row's one or two data words
    are all left over, codeword ``u`` holding values ``u, u + K, u + 2K`` (``K = ceil(D / 3)``).
    ``LaneLayout.unit`` in arithmetic (tests/test_lanes.py checks that they agree)."""
    D, u, i = int(D), int(u), int(i)
    if D > 16:
        raise ValueError("lane metadata rows hold at most 16 nibbles")
    v = u + i * ((D + 2) // 3)
    return v if v < D else -1


@triton.constexpr_function
def _lane_unit_parity(D, u, t):
    """The row nibble holding parity nibble ``t`` (reversed) of codeword ``u`` of such a row:
    nibble ``K t + u`` of the parity stream after the data words."""
    D, u, t = int(D), int(u), int(t)
    return 8 * ((D + 7) // 8) + ((D + 2) // 3) * t + u


@triton.constexpr_function
def _lane_unit_uses_word(D, u, j):
    """Whether codeword ``u`` of such a row has a data or parity nibble in its int32 word ``j``."""
    values = [_lane_unit_value(D, u, i) for i in range(3)]
    nibbles = [v for v in values if v >= 0] + [_lane_unit_parity(D, u, t) for t in range(3)]
    return any(n // 8 == int(j) for n in nibbles)


@triton.constexpr_function
def _lane_row_words(D):
    """Upper bound of the int32 words of such a row that hold nibbles (the loop bound)."""
    return (_lane_unit_parity(D, (int(D) + 2) // 3 - 1, 2) // 8) + 1


@triton.jit
def _meta_unit(row_ptrs, U: tl.constexpr, mask, MUB: tl.constexpr, LANES_D: tl.constexpr):
    """Unit ``U`` of the metadata rows at ``row_ptrs`` as an int32 word: ``MUB`` bytes at
    ``U * MUB``, or with ``LANES_D`` codeword ``U`` of Golay's lane layout of that many values.
    The lane layout's rows are whole aligned int32 words (16 or 24 bytes): each word holding
    one of the codeword's six nibbles is loaded once (two or three loads, not six: fewer
    loads, and Triton's coalescing pass is quadratic in a kernel's loads)."""
    row_ptrs = row_ptrs + tl.zeros(mask.shape, tl.int32)  # the mask's shape (rows may be [N, 1], the mask [N, U])
    if LANES_D:
        word = tl.zeros(mask.shape, tl.int32)
        row_words = row_ptrs.to(tl.pointer_type(tl.int32))
        for j in tl.static_range(_lane_row_words(LANES_D)):
            if _lane_unit_uses_word(LANES_D, U, j):
                w = tl.load(row_words + j, mask=mask, other=0)
                for i in tl.static_range(3):
                    if (_lane_unit_value(LANES_D, U, i) >= 0) and (_lane_unit_value(LANES_D, U, i) // 8 == j):
                        word = word | (((w >> (4 * (_lane_unit_value(LANES_D, U, i) % 8))) & 15) << (4 * i))
                reversed_w = _reverse_nibbles(w)  # the word's parity nibbles in place (unused where it holds none)
                for t in tl.static_range(3):
                    if _lane_unit_parity(LANES_D, U, t) // 8 == j:
                        word = word | (((reversed_w >> (4 * (_lane_unit_parity(LANES_D, U, t) % 8))) & 15) << (12 + 4 * t))
    else:
        word = _unit_word(row_ptrs + U * MUB, mask, MUB)
    return word


@triton.jit
def _meta_word_at(row_ptrs, W: tl.constexpr, mask, parity_table_ptr, syndrome_table_ptr, K: tl.constexpr, PO_SYN: tl.constexpr,
                  DECODE: tl.constexpr, MUV: tl.constexpr, MUB: tl.constexpr, LANES_D: tl.constexpr, META_UNITS: tl.constexpr):
    """``_meta_word`` of a word known at compile time (one scale group): each unit holding one
    of its nibbles is loaded and decoded once (Golay: three codewords, not eight); ``LANES_D``:
    Golay's lane layout (``MetadataLayout``), whose every codeword is visited."""
    bits = tl.zeros(mask.shape, tl.int32)
    detected = tl.zeros(mask.shape, tl.int1)
    if LANES_D:
        for u in tl.static_range(META_UNITS):
            word = _meta_unit(row_ptrs, u, mask, MUB, LANES_D)
            if DECODE:
                word, status = _syndrome_decode(word, parity_table_ptr, syndrome_table_ptr, mask, K, PO_SYN)
            for i in tl.static_range(3):
                if (_lane_unit_value(LANES_D, u, i) >= 8 * W) and (_lane_unit_value(LANES_D, u, i) < 8 * W + 8):
                    bits = bits | (((word >> (4 * i)) & 15) << (4 * (_lane_unit_value(LANES_D, u, i) - 8 * W)))
                    if DECODE:
                        detected = detected | (status == 2)
        return bits, detected
    for u in tl.static_range((8 * W) // MUV, (8 * W + 7) // MUV + 1):
        word = _unit_word(row_ptrs + u * MUB, mask, MUB)
        if DECODE:
            word, status = _syndrome_decode(word, parity_table_ptr, syndrome_table_ptr, mask, K, PO_SYN)
            detected = detected | (status == 2)
        for i in tl.static_range(MUV):
            if (u * MUV + i >= 8 * W) and (u * MUV + i < 8 * W + 8):
                bits = bits | (((word >> (4 * i)) & 15) << (4 * (u * MUV + i - 8 * W)))
    return bits, detected


@triton.jit
def _tile_meta_word(meta_data, meta_status, mu, W: tl.constexpr, MUV: tl.constexpr, DETECTED: tl.constexpr):
    """``_meta_word_at`` from units already loaded and decoded: ``meta_data`` and ``meta_status``
    (``[R, MU]``, ``_syndrome_decode``'s) hold unit ``mu`` of each row. Word ``W``'s nibbles are
    placed where each unit holds them and summed along the row (disjoint bits: the sum is their
    OR), its detected flag the rows' reduction over the units it spans; no load."""
    parts = tl.zeros(meta_data.shape, tl.int32)
    for i in tl.static_range(MUV):
        at = mu * MUV + i - 8 * W  # the nibble's place in the word, where it is 0..7
        inside = (at >= 0) & (at < 8)
        nibble = (meta_data >> (4 * i)) & 15
        parts = parts | tl.where(inside[None, :], nibble << (4 * tl.where(inside, at, 0))[None, :], 0)
    spanned = (mu * MUV + MUV > 8 * W) & (mu * MUV < 8 * W + 8)
    detected = tl.max((spanned[None, :] & (meta_status == DETECTED)).to(tl.int32), axis=1) != 0
    return tl.sum(parts, axis=1), detected


@triton.jit
def _tile_group_words(meta_data, meta_status, mu, group, like, GROUPS: tl.constexpr, HAS_ZERO: tl.constexpr, MUV: tl.constexpr,
                      DETECTED: tl.constexpr):
    """Each value's group scale and zero point (float32 bits, ``like``'s shape; zero points 0 unless
    ``HAS_ZERO``) and whether a codeword holding either is detected, from a tile of its rows'
    metadata units (``_tile_meta_word``): each group's words a reduction a row, selected by the
    values' ``group`` (``[1, C]``). Callers that write it once per pass of the same tile get one
    copy of each reduction (Triton's CSE)."""
    s_bits = tl.zeros(like.shape, tl.int32)
    z_bits = s_bits
    detected = tl.zeros(like.shape, tl.int1)
    for g in tl.static_range(GROUPS):
        in_group = group == g
        g_bits, g_detected = _tile_meta_word(meta_data, meta_status, mu, g, MUV, DETECTED)
        s_bits = tl.where(in_group, g_bits[:, None], s_bits)
        detected = detected | (in_group & g_detected[:, None])
        if HAS_ZERO:
            g_bits, g_detected = _tile_meta_word(meta_data, meta_status, mu, GROUPS + g, MUV, DETECTED)
            z_bits = tl.where(in_group, g_bits[:, None], z_bits)
            detected = detected | (in_group & g_detected[:, None])
    return s_bits, z_bits, detected


@triton.constexpr_function
def _word_units(MUV):
    """The most units of ``MUV`` values that the 8 nibbles of a metadata word can span (a word
    starts at value ``8 w``, anywhere within a unit): 4 for Golay's 3-value units, 5 bound for
    int4's bytes."""
    return (int(MUV) - 1 + 7) // int(MUV) + 1


@triton.jit
def _put_unit(i: tl.constexpr, word, u0, u1, u2, u3, u4):
    """``(u0, .., u4)`` with ``u_i`` = ``word`` (five names, not a tuple built in a loop: the
    device's Triton is older than this one)."""
    if i == 0:
        u0 = word
    if i == 1:
        u1 = word
    if i == 2:
        u2 = word
    if i == 3:
        u3 = word
    if i == 4:
        u4 = word
    return u0, u1, u2, u3, u4


@triton.jit
def _unit_at(i: tl.constexpr, u0, u1, u2, u3, u4):
    """``u_i``."""
    if i == 0:
        return u0
    if i == 1:
        return u1
    if i == 2:
        return u2
    if i == 3:
        return u3
    return u4


@triton.jit
def _word_unit(row_ptrs, first, i: tl.constexpr, mask, MUV: tl.constexpr, MUB: tl.constexpr):
    """Unit ``i`` of those holding the metadata word whose first value is ``first``, as read,
    and where it is one of the word's: the last of ``_word_units`` is only where the word
    starts late in its first unit (the row may end before it otherwise). ``mask`` may be None."""
    spanned = first // MUV + i <= (first + 7) // MUV
    if mask is not None:
        spanned = mask & spanned
    return _unit_word(row_ptrs + (first // MUV + i) * MUB, spanned, MUB), spanned


@triton.jit
def _word_bits(u0, u1, u2, u3, u4, first, MUV: tl.constexpr):
    """The 32 bits of the metadata word whose first value is ``first``: its values ``first ..
    first + 7``, nibble by nibble, from its units ``u0 ..`` in order (``_word_unit``)."""
    tl.static_assert(_word_units(MUV) <= 5)
    bits = tl.zeros(first.shape, tl.int32)
    for j in tl.static_range(8):
        at = first % MUV + j  # the value's place counted from the first unit's start
        nibble = tl.zeros(first.shape, tl.int32)
        for i in tl.static_range(_word_units(MUV)):
            nibble = tl.where(at // MUV == i, (_unit_at(i, u0, u1, u2, u3, u4) >> (4 * (at % MUV))) & 15, nibble)
        bits = bits | (nibble << (4 * j))
    return bits


@triton.jit
def _meta_word(row_ptrs, w, mask, parity_table_ptr, syndrome_table_ptr, K: tl.constexpr, PO_SYN: tl.constexpr,
               DECODE: tl.constexpr, MUV: tl.constexpr, MUB: tl.constexpr):
    """Metadata word ``w`` (a scale or zero point, :mod:`ecc_tensor.metadata`) of the rows at
    ``row_ptrs``: (its float32 bits as int32, whether a codeword holding it is detected). Its
    eight nibbles are values ``8 w .. 8 w + 7`` of units of ``MUV`` values and ``MUB`` bytes,
    each unit loaded and decoded and corrected (``DECODE``) once, as the reference does (per
    nibble, Golay's 3-value units were loaded and decoded 8 times for 3 or 4 units). ``w`` is
    a constant (one group) or a tensor broadcastable with ``row_ptrs`` (a group per column)."""
    first = 8 * w + tl.zeros(mask.shape, tl.int32)
    detected = tl.zeros(mask.shape, tl.int1)
    u0 = tl.zeros(mask.shape, tl.int32)
    u1, u2, u3, u4 = u0, u0, u0, u0
    for i in tl.static_range(_word_units(MUV)):
        word, spanned = _word_unit(row_ptrs, first, i, mask, MUV, MUB)
        if DECODE:
            word, status = _syndrome_decode(word, parity_table_ptr, syndrome_table_ptr, spanned, K, PO_SYN)
            detected = detected | (spanned & (status == 2))
        u0, u1, u2, u3, u4 = _put_unit(i, word, u0, u1, u2, u3, u4)
    return _word_bits(u0, u1, u2, u3, u4, first, MUV), detected


@triton.jit
def _stored_value(x_ptr, scale_ptr, zero_ptr, rows64, col, ok, D: tl.constexpr, GROUP: tl.constexpr, GROUPS: tl.constexpr,
                  QUANTIZE: tl.constexpr, SYMMETRIC: tl.constexpr):
    """The INT4 value (int32, 0 where not ``ok``) of columns ``col`` of ``rows64``: read (a byte
    each, or nibble ``col % 8`` of int32 word ``col // 8``: a row of scales as stored), or
    quantized with the scales phase 1 wrote."""
    if QUANTIZE:
        xv = tl.load(x_ptr + rows64[:, None] * D + col[None, :], mask=ok, other=0.0).to(tl.float32)
        s_idx = rows64[:, None] * GROUPS + (col // GROUP)[None, :]
        s = tl.load(scale_ptr + s_idx, mask=ok, other=1.0)
        z = s if SYMMETRIC else tl.load(zero_ptr + s_idx, mask=ok, other=0.0)
        return tl.where(ok, int4_codes(tl.math.div_rn(xv, s), z, SYMMETRIC), 0)
    if x_ptr.dtype.element_ty == tl.int32:
        word = tl.load(x_ptr + rows64[:, None] * (D // 8) + (col // 8)[None, :], mask=ok, other=0)
        return (word >> (4 * (col % 8))[None, :]) & 15
    return tl.load(x_ptr + rows64[:, None] * D + col[None, :], mask=ok, other=0).to(tl.int32)


@triton.jit
def _quantized_rows(xg, scale, zero, gm, m, SYMMETRIC: tl.constexpr, FMA: tl.constexpr):
    """``_stored_value``'s INT4 values of phase 1's ``[BLOCK_R, GROUPS, GROUP]`` values ``xg`` with
    their groups' ``scale`` (and ``zero``; ``gm``: the groups, ``m``: the values in range) as still
    held in registers, in row order ``[BLOCK_R, GROUPS * GROUP]``: the values read once, no scale
    gathered back from memory (``WHOLE_ROWS``), a reciprocal per group (``ops.int4_codes``)."""
    recip = tl.math.div_rn(tl.zeros_like(scale) + 1.0, scale)
    quotient = quotients(xg, scale[:, :, None], recip[:, :, None], fma_quotient_safe(scale, gm) if FMA else 0)
    q = tl.where(m, int4_codes(quotient, zero[:, :, None], SYMMETRIC), 0)
    return tl.reshape(q, [xg.shape[0], xg.shape[1] * xg.shape[2]])


@triton.jit
def _value_at(q, x_ptr, scale_ptr, zero_ptr, rows64, col, ok, D: tl.constexpr, GROUP: tl.constexpr, GROUPS: tl.constexpr,
              QUANTIZE: tl.constexpr, SYMMETRIC: tl.constexpr, WHOLE_ROWS: tl.constexpr):
    """``_stored_value`` of columns ``col`` (a column per tile column): gathered from the row's
    values ``q`` (``_quantized_rows``) in registers when ``WHOLE_ROWS``, else read and quantized."""
    if WHOLE_ROWS and D == 1:
        # Every column reads value 0: a broadcast. Triton 3.6 cannot lower a gather from a
        # one-column tensor for sm_90 (an assertion in its OptimizeThreadLocality pass).
        return tl.where(ok, tl.broadcast_to(q, [q.shape[0], col.shape[0]]), 0)
    elif WHOLE_ROWS:
        index = tl.broadcast_to(tl.minimum(col, D - 1)[None, :], [q.shape[0], col.shape[0]])
        return tl.where(ok, tl.gather(q, index, axis=1), 0)
    else:
        # In an ``else``: Triton compiles a statement after a constexpr branch that returned,
        # and here ``scale_ptr`` is the uint8 output when phase 1 wrote the scales as metadata
        # rows (``meta_words``), which the read would not compile for.
        return _stored_value(x_ptr, scale_ptr, zero_ptr, rows64, col, ok, D, GROUP, GROUPS, QUANTIZE, SYMMETRIC)


@triton.jit
def _nibble_words(nibbles):
    """``[..., 2, 2, 2]`` nibbles (half, byte, nibble of a 32-bit word; the last varies fastest)
    -> ``[...]`` their words, nibble ``4 h + 2 b + n`` at bit ``4 (4 h + 2 b + n)``."""
    n0, n1 = tl.split(nibbles)
    b0, b1 = tl.split(n0 | (n1 << 4))
    h0, h1 = tl.split(b0 | (b1 << 8))
    return h0 | (h1 << 16)


@triton.jit
def _row_units(q, UNIT_VALUES: tl.constexpr, BLOCK_U: tl.constexpr):
    """The inverse of ``_row_values``: a block's 4-bit values in row order ``[BLOCK_R, UNIT_VALUES
    * BLOCK_U]`` -> (each unit's data nibbles, value i at bit 4i; values 8-15 of 16-value units),
    for units of 1, 2, 8 or 16 values. The values are then read as whole rows, not one column of
    every unit at a time."""
    rows: tl.constexpr = q.shape[0]
    if UNIT_VALUES == 1:
        data = q
        data_hi = q
    elif UNIT_VALUES == 2:
        lo, hi = tl.split(tl.reshape(q, [rows, BLOCK_U, 2]))
        data = lo | (hi << 4)
        data_hi = data
    elif UNIT_VALUES == 8:
        data = _nibble_words(tl.reshape(q, [rows, BLOCK_U, 2, 2, 2]))
        data_hi = data
    else:
        data, data_hi = tl.split(_nibble_words(tl.reshape(q, [rows, BLOCK_U, 2, 2, 2, 2])))
    return data, data_hi


@triton.jit
def _store_kernel(
    x_ptr,  # [R, D]: float (QUANTIZE) or uint8 INT4 values; or int32 [R, D / 8], eight values a word (low nibble first)
    out_ptr,  # [R, ROW_BYTES] uint8
    scale_ptr,  # [R, GROUPS] float32, written when QUANTIZE and not META_WORDS
    zero_ptr,  # [R, GROUPS] float32, written when QUANTIZE and not SYMMETRIC and not META_WORDS
    meta_ptr,  # [R, meta row bytes] uint8, the metadata rows, written when META_WORDS
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
    BLOCKS: tl.constexpr,  # SECDED(72,64)'s rows (an int4 row, then a check byte per 16 values): block_offsets, else 0
    ENCODE: tl.constexpr,
    QUANTIZE: tl.constexpr,
    SYMMETRIC: tl.constexpr,
    FMA: tl.constexpr,  # FMAs round once (a GPU; Triton's interpreter since 3.9): quotients by ops.int4_codes' refinement
    META_WORDS: tl.constexpr,  # the metadata rows written here (``meta_words``): 1 int4's float32 words, 2 a scale in Golay's lanes
    BLOCK_R: tl.constexpr,
    BLOCK_G: tl.constexpr,
    BLOCK_GS: tl.constexpr,
    BLOCK_U: tl.constexpr,
    ROW_ORDER: tl.constexpr,  # the values read in row order (``_row_units``), not slot by slot
    WHOLE_ROWS: tl.constexpr,  # phase 1's tile is the row, powers of two throughout: phase 2 quantizes it in registers
    LANE_WORDS: tl.constexpr,  # Golay's lanes at head_dim 128, aligned rows: the row made as words (``_lane_row_parity``)
    BYTE_WORDS: tl.constexpr,  # one-byte codewords, aligned rows: encoded four a word (``_byte_codeword_words``)
    C0: tl.constexpr, C1: tl.constexpr, C2: tl.constexpr, C3: tl.constexpr,  # byte_words.nibble_constants
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
            zero = scale  # unused when symmetric
        else:
            lo = tl.min(tl.where(m, xg, float("inf")), axis=2)
            hi = tl.max(tl.where(m, xg, float("-inf")), axis=2)
            scale = tl.where(hi > lo, tl.math.div_rn(hi - lo, tl.zeros_like(hi) + 15.0), 1.0)
            zero = tl.math.div_rn(0.0 - lo, scale)  # +0.0 for lo = 0, as the reference
        if META_WORDS == 1:  # int4: a metadata row is the float32 words, the scales then the zero points
            meta_words = meta_ptr.to(tl.pointer_type(tl.float32)) + rows64[:, None] * (GROUPS * (2 - SYMMETRIC)) + g[None, :]
            tl.store(meta_words, scale, mask=gm)
            if not SYMMETRIC:
                tl.store(meta_words + GROUPS, zero, mask=gm)
        elif META_WORDS == 2:  # one symmetric scale, in Golay's lane layout: four words
            w = tl.arange(0, 4)
            tl.store(meta_ptr.to(tl.pointer_type(tl.uint32)) + rows64[:, None] * 4 + w[None, :],
                     _scale_lane_row(tl.reshape(scale, [BLOCK_R])), mask=row_ok[:, None])
        else:
            tl.store(scale_ptr + s_ptrs, scale, mask=gm)
            if not SYMMETRIC:
                tl.store(zero_ptr + s_ptrs, zero, mask=gm)
        if not WHOLE_ROWS:
            tl.debug_barrier()  # phase 2 gathers scales by group from memory

    # Phase 2's values in row order: quantized in registers (WHOLE_ROWS), or read a row at a
    # time (ROW_ORDER); otherwise (Golay's lanes not WHOLE_ROWS, odd units) read by column below.
    if WHOLE_ROWS:
        q = _quantized_rows(xg, scale, zero, gm, m, SYMMETRIC, FMA)
    elif ROW_ORDER or LANE_WORDS:
        col = tl.arange(0, D if LANE_WORDS else UNIT_VALUES * BLOCK_U)
        q = _stored_value(x_ptr, scale_ptr, zero_ptr, rows64, col, row_ok[:, None] & (col < D)[None, :], D, GROUP, GROUPS, QUANTIZE,
                          SYMMETRIC)
    else:
        q = rows  # not read

    if LANE_WORDS:
        # Golay's lanes at head_dim 128: the data words (the row's INT4 packing), then the
        # parity of eight codewords at a time in word operations, where a codeword at a time
        # gathered its values and read a 4096-entry table.
        data, _ = _row_units(q, 8, 16)
        data = data.to(tl.uint32, bitcast=True)
        parity, last = _lane_row_parity(data)
        w = tl.arange(0, 16)
        row_words = out_ptr.to(tl.pointer_type(tl.uint32)) + rows64[:, None] * (ROW_BYTES // 4)
        tl.store(row_words + w[None, :], data, mask=row_ok[:, None])
        tl.store(row_words + 16 + w[None, :], parity, mask=row_ok[:, None])
        tail = tl.arange(0, 2)  # parity word 16, then the padding word
        tl.store(row_words + 32 + tail[None, :], tl.where(tail[None, :] == 0, last[:, None], 0), mask=row_ok[:, None])
    elif LANES_D:
        # Golay's lane layout: the data region is the values' INT4 packing; each parity
        # nibble is made from its codeword's values (ecc_tensor.lanes), gathered from ``q``
        # where it holds the row.
        b = tl.arange(0, BLOCK_U)
        ok = row_ok[:, None] & (b < ROW_BYTES)[None, :]
        lo = _value_at(q, x_ptr, scale_ptr, zero_ptr, rows64, 2 * b, ok & (2 * b < D)[None, :], D, GROUP, GROUPS, QUANTIZE, SYMMETRIC,
                       WHOLE_ROWS)
        hi = _value_at(q, x_ptr, scale_ptr, zero_ptr, rows64, 2 * b + 1, ok & (2 * b + 1 < D)[None, :], D, GROUP, GROUPS, QUANTIZE,
                       SYMMETRIC, WHOLE_ROWS)
        byte = lo | (hi << 4)
        for h in tl.static_range(2):
            unit, t, owned = _lane_parity_owner(2 * b + h, LANES_D)
            unit_ok = ok & owned[None, :]
            data = tl.zeros([BLOCK_R, BLOCK_U], dtype=tl.int32)
            for i in tl.static_range(3):
                col = _lane_value(unit, i, LANES_D)
                data = data | (_value_at(q, x_ptr, scale_ptr, zero_ptr, rows64, col, unit_ok & (col < D)[None, :], D, GROUP, GROUPS,
                                         QUANTIZE, SYMMETRIC, WHOLE_ROWS) << (4 * i))
            word = tl.load(encode_table_ptr + data, mask=unit_ok, other=0)
            nibble = _reverse_nibble((word >> (12 + 4 * t)[None, :]) & 15)
            byte = byte | tl.where(unit_ok, nibble << (4 * h), 0)
        tl.store(out_ptr + rows64[:, None] * ROW_BYTES + b[None, :], byte.to(tl.uint8), mask=ok)
    elif BLOCKS:
        # 16 values a codeword as two words (data bits 0-31, 32-63), stored as an int4 row;
        # their check bits after the row's data.
        # The data region is the row's INT4 packing, stored whole (``ROW_ORDER`` always holds).
        u = tl.arange(0, BLOCK_U)
        unit_ok = row_ok[:, None] & (u < UNITS)[None, :]
        lo, hi = _row_units(q, 16, BLOCK_U)
        check = _block_check(lo, hi, BLOCKS)
        out_row = out_ptr + rows64[:, None] * ROW_BYTES
        even, odd = tl.split(tl.reshape(q, [BLOCK_R, 8 * BLOCK_U, 2]))
        j = tl.arange(0, 8 * BLOCK_U)
        tl.store(out_row + j[None, :], (even | (odd << 4)).to(tl.uint8), mask=row_ok[:, None] & (j < UNITS * 8)[None, :])
        tl.store(out_row + UNITS * 8 + u[None, :], check.to(tl.uint8), mask=unit_ok)
    elif BYTE_WORDS:
        # Four codewords a word, made by word operations, where a codeword at a time read the
        # encode table.
        w = tl.arange(0, BLOCK_U // 4)
        row_words = out_ptr.to(tl.pointer_type(tl.uint32)) + rows64[:, None] * (ROW_BYTES // 4)
        tl.store(row_words + w[None, :], _byte_codeword_words(q, C0, C1, C2, C3).to(tl.uint32, bitcast=True),
                 mask=row_ok[:, None] & (w < ROW_BYTES // 4)[None, :])
    else:
        # Pack UNIT_VALUES values per unit, encode, write UNIT_BYTES bytes.
        u = tl.arange(0, BLOCK_U)
        unit_ok = row_ok[:, None] & (u < UNITS)[None, :]
        if ROW_ORDER:
            data, _ = _row_units(q, UNIT_VALUES, BLOCK_U)
        else:
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
def _words_to_bytes(w):
    """``[N, W]`` int32 words -> ``[N, 4 W]`` their bytes, little-endian (the last axis of the
    joins varies fastest: byte 2h + b of the word)."""
    halves = tl.join(w & 0xFFFF, (w >> 16) & 0xFFFF)
    octets = tl.join(halves & 0xFF, (halves >> 8) & 0xFF)
    return tl.reshape(octets, [w.shape[0], 4 * w.shape[1]])


@triton.jit
def _byte_values(words):
    """The data nibbles (each byte's low nibble) of ``[N, BLOCK_W]`` words of one-byte codewords
    as stored, in row order: byte b of word w at column ``4 w + b``."""
    return _words_to_bytes(words) & 15


@triton.jit
def _row_values(data, data_hi, UNIT_VALUES: tl.constexpr, BLOCK_U: tl.constexpr):
    """The 4-bit values of a block of units (``data``: each unit's data nibbles, value i at bit
    4i; ``data_hi``: values 8-15 of 16-value units) in row order, value i of unit u at column
    ``UNIT_VALUES * u + i``, for units of 1, 2, 8 or 16 values. The store then writes each row
    contiguously: a store per slot wrote single bytes ``UNIT_VALUES`` apart, one L2 transaction
    each (int4's decode ran at 2% of copy on the H200, its stores 63% of the stalls, ncu). The
    columns are the caller's ``tl.arange``: returned from here with the values, they made every
    store address depend, to torch's analysis of what a kernel writes, on all this call's inputs
    and so on the tensors they were decoded from (the stored codewords, the syndrome table),
    which torch.compile then copied whole before each launch."""
    # One return, after the branches: the compiler builds every statement that follows a
    # constexpr branch's return.
    if UNIT_VALUES == 1:
        values = data & 15
    elif UNIT_VALUES == 2:
        values = tl.reshape(tl.join(data & 15, (data >> 4) & 15), [data.shape[0], 2 * BLOCK_U])
    else:
        if UNIT_VALUES == 16:
            words = tl.join(data, data_hi)
        else:
            words = data
        halves = tl.join(words & 0xFFFF, (words >> 16) & 0xFFFF)
        octets = tl.join(halves & 0xFF, (halves >> 8) & 0xFF)
        nibbles = tl.join(octets & 15, (octets >> 4) & 15)  # the last axis varies fastest: nibble 4h + 2b + n
        values = tl.reshape(nibbles, [data.shape[0], UNIT_VALUES * BLOCK_U])
    return values


@triton.jit
def _load_kernel(
    stored_ptr,  # [R, ROW_BYTES] uint8
    out_ptr,  # [R, D]: OUT dtype (DEQUANT) or uint8 values
    status_ptr,  # [R, STATUS_COLS] uint8 (STATUS)
    meta_ptr,  # [R, META_ROW_BYTES] uint8 (DEQUANT)
    parity_table_ptr,  # int32 [K // 4 * 16]: nibble_parity_table
    syndrome_table_ptr,
    meta_parity_table_ptr,  # the metadata code's (ecc_tensor.metadata.metadata_codec), as above
    meta_syndrome_table_ptr,
    counters_ptr,  # int64 [12]: ecc_tensor.counters
    seq_len_ptr,  # int64 [] (or [R / LEN_ROWS], LEN_PER_LEAD): rows with (row % SEQ) >= seq_len are not counted (HAS_LEN)
    row_flags_ptr,  # [R] uint8: bit 0, a codeword of the row detected; bit 1, one not clean (ROW_FLAGS)
    decoded_ptr,  # [R, D] uint8: the decoded INT4 values (KEEP_DECODED)
    dq_ptr,  # [R, GROUPS * (1 + HAS_ZERO)] float32: the decoded scales, then zero points (KEEP_DECODED)
    group_flags_ptr,  # [R, GROUPS] uint8: 1 where a codeword holding the group's scale or zero point is detected (GROUP_FLAGS)
    R,
    SEQ,
    LEN_ROWS,  # LEN_PER_LEAD: the rows each length covers (those of one sequence: its heads' rows)
    D: tl.constexpr,
    K: tl.constexpr,
    PO_SYN: tl.constexpr,
    GROUP: tl.constexpr,
    GROUPS: tl.constexpr,
    UNITS: tl.constexpr,
    UNIT_VALUES: tl.constexpr,
    UNIT_BYTES: tl.constexpr,
    ROW_BYTES: tl.constexpr,
    LANES_D: tl.constexpr,
    BLOCKS: tl.constexpr,  # SECDED(72,64)'s rows (see _store_kernel)
    BLOCK_WORDS: tl.constexpr,  # BLOCKS, rows of whole aligned words: read as words (``block_words``)
    META_K: tl.constexpr,
    META_PO_SYN: tl.constexpr,
    META_UNITS: tl.constexpr,
    META_UNIT_VALUES: tl.constexpr,
    META_UNIT_BYTES: tl.constexpr,
    META_ROW_BYTES: tl.constexpr,
    META_LANES_D: tl.constexpr,  # Golay metadata in the lane layout of that many nibbles, else 0
    META_STATUS_COLS: tl.constexpr,
    DECODE: tl.constexpr,
    DEQUANT: tl.constexpr,
    HAS_ZERO: tl.constexpr,
    COUNT: tl.constexpr,
    HAS_LEN: tl.constexpr,
    LEN_PER_LEAD: tl.constexpr,  # HAS_LEN: a length per LEN_ROWS rows (a sequence of a batch), not one
    STATUS: tl.constexpr,  # the codewords' statuses stored: a third of int4's and Hamming's writes, unread without interpolation
    # With STATUS: a flag per row (bit 0: a codeword detected; bit 1: one not clean), the
    # statuses stored only in rows with bit 0 and the kept values (KEEP_DECODED) only in rows
    # with bit 1: what interpolation reads, which reads other rows' values from the codewords.
    ROW_FLAGS: tl.constexpr,
    DETECTED: tl.constexpr,  # the status of a detected codeword
    KEEP_DECODED: tl.constexpr,  # DEQUANT: the values and scales as decoded too, for the interpolation kernel
    # DEQUANT: each group's erasure flag, as the decode of its words finds it: what interpolation
    # reads, which the statuses gave only through torch ops over them (a fifth of the read's time).
    GROUP_FLAGS: tl.constexpr,
    BLOCK_R: tl.constexpr,
    BLOCK_U: tl.constexpr,
    BLOCK_MU: tl.constexpr,
    ROW_ORDER: tl.constexpr,  # the values stored in row order (``_row_values``), not slot by slot
    LANE_ROWS: tl.constexpr,  # Golay's lanes: bytes of the data region per tile (a power of two), read and stored as the row
    LANE_WORDS: tl.constexpr,  # Golay's lanes at head_dim 128, aligned rows: read as words, a clean tile not decoded
    BYTE_WORDS: tl.constexpr,  # one-byte codewords, rows of whole aligned word pairs: read as words, a clean tile not decoded
    META_ROW_WORDS: tl.constexpr,  # one symmetric scale in Golay's lanes, aligned rows: checked as words (``meta_row_words``)
    META_WORDS: tl.constexpr,  # unprotected float32 metadata (int4's), aligned rows: the scales loaded as words
    NIBBLE_WORDS: tl.constexpr,  # int4's rows of whole aligned words: read as words (``nibble_words``)
    BLOCK_W: tl.constexpr,  # NIBBLE_WORDS: the row's words, to a power of two
    C0: tl.constexpr, C1: tl.constexpr, C2: tl.constexpr, C3: tl.constexpr, PMASK: tl.constexpr,  # byte_words.nibble_constants
    PBITS: tl.constexpr, FLIP_LO: tl.constexpr, FLIP_HI: tl.constexpr, DET: tl.constexpr,
    PTX: tl.constexpr,
):
    rows, row_ok, rows64 = _row_block(R, BLOCK_R)
    u = tl.arange(0, BLOCK_U)
    unit_ok = row_ok[:, None] & (u < UNITS)[None, :]
    row_counted = row_ok
    if HAS_LEN:
        if LEN_PER_LEAD:
            row_counted = row_ok & ((rows % SEQ) < tl.load(seq_len_ptr + rows64 // LEN_ROWS, mask=row_ok, other=0))
        else:
            row_counted = row_ok & ((rows % SEQ) < tl.load(seq_len_ptr))
    counted = unit_ok & row_counted[:, None]
    n_counted = 0  # the counted rows, in scalar arithmetic, for the counts that need no decode
    if COUNT:
        n_counted = _rows_counted(R, SEQ, seq_len_ptr, row_counted, BLOCK_R, HAS_LEN, LEN_PER_LEAD)
    # A tile checked whole by word operations (LANE_WORDS, BYTE_WORDS) and found clean (nearly
    # always) skips the per-codeword work below: its statuses, kept values and counts are
    # known without them. Elsewhere this constant folds away.
    tile_dirty = tl.full([], 1, tl.int1)
    if LANE_WORDS:
        # The row's words: its data region (the INT4 packing, stored as read below) and the
        # syndromes of its 43 codewords eight at a time. Where the whole tile is clean (nearly
        # always), no codeword is decoded one by one: that takes three table gathers and six
        # nibble loads each.
        w = tl.arange(0, 16)
        row_words = stored_ptr.to(tl.pointer_type(tl.uint32)) + rows64[:, None] * (ROW_BYTES // 4)
        data_words = tl.load(row_words + w[None, :], mask=row_ok[:, None], other=0)
        dirty = _lane_row_syndromes(data_words, tl.load(row_words + 16 + w[None, :], mask=row_ok[:, None], other=0),
                                    tl.reshape(tl.load(row_words + 32, mask=row_ok[:, None], other=0), [BLOCK_R]))
        tile_dirty = tl.max(dirty) != 0
    if BLOCKS:
        if BLOCK_WORDS:  # rows of whole aligned words
            row_words = stored_ptr.to(tl.pointer_type(tl.int32)) + rows64[:, None] * (ROW_BYTES // 4)
            wj = tl.arange(0, 2 * BLOCK_U)
            pairs = tl.load(row_words + wj[None, :], mask=row_ok[:, None] & (wj < 2 * UNITS)[None, :], other=0)
            lo, hi = tl.split(tl.reshape(pairs, [BLOCK_R, BLOCK_U, 2]))
            cw = tl.arange(0, BLOCK_U // 4)
            check = _words_to_bytes(tl.load(row_words + 2 * UNITS + cw[None, :], mask=row_ok[:, None] & (cw < UNITS // 4)[None, :],
                                            other=0))
        else:
            row = stored_ptr + rows64[:, None] * ROW_BYTES
            lo = _unit_word(row + u[None, :] * 8, unit_ok, 4)
            hi = _unit_word(row + u[None, :] * 8 + 4, unit_ok, 4)
            check = tl.load(row + UNITS * 8 + u[None, :], mask=unit_ok, other=0).to(tl.int32)
        data, data_hi, status = _block_decode(lo, hi, check, BLOCKS, syndrome_table_ptr, unit_ok)
    elif BYTE_WORDS:
        # The rows as words, four codewords each, their syndromes eight codewords at a time
        # (``_word_syndromes``); a tile with a non-zero syndrome is decoded four codewords a word
        # (``_word_decode``). Hamming(7,4)'s bit 7 of a byte, which no fault model flips, is no
        # codeword bit and is ignored, as the fused attention ignores it (the reference refuses
        # such a codeword; decoded codeword by codeword, it indexed past the syndrome table).
        wi = tl.arange(0, BLOCK_U // 4)
        words = tl.load(stored_ptr.to(tl.pointer_type(tl.uint32)) + rows64[:, None] * (ROW_BYTES // 4) + wi[None, :],
                        mask=row_ok[:, None] & (wi < ROW_BYTES // 4)[None, :], other=0)
        x, y = tl.split(tl.reshape(words, [BLOCK_R, BLOCK_U // 8, 2]))
        tile_dirty = tl.max(_word_syndromes(x, y, C0, C1, C2, C3, PMASK, PTX)) != 0
        # A clean tile's values are stored from the words as read (``_byte_values``, pass -1
        # below); only a dirty tile takes the codewords one an element, a layout that costs a trip
        # of the whole tile through shared memory (16 KiB a program), decoded and stored again.
        data = tl.zeros([BLOCK_R, BLOCK_U], tl.int32)
        data_hi = data  # unused
        status = data
        if tile_dirty:
            data_words, status_words = _word_decode(words, C0, C1, C2, C3, PBITS, FLIP_LO, FLIP_HI, DET, PO_SYN, PTX)
            data = _word_bytes(data_words)
            status = _word_bytes(status_words)
    else:
        if LANE_WORDS:
            word = tl.zeros([BLOCK_R, BLOCK_U], tl.int32)  # a clean tile's: the fix-up pass below stores nothing
            data = word
            status = word
            if tile_dirty:
                word = _load_units(stored_ptr, rows64[:, None], u, unit_ok, ROW_BYTES, UNIT_BYTES, LANES_D)
                data, status = _syndrome_decode(word, parity_table_ptr, syndrome_table_ptr, unit_ok, K, PO_SYN)
        elif NIBBLE_WORDS:
            # int4's rows as 32-bit words of eight values (``_row_values`` in row order): one load a
            # word, where loads of single bytes took a trip through shared memory to that order.
            wi = tl.arange(0, BLOCK_W)
            word = tl.load(stored_ptr.to(tl.pointer_type(tl.int32)) + rows64[:, None] * (ROW_BYTES // 4) + wi[None, :],
                           mask=row_ok[:, None] & (wi < ROW_BYTES // 4)[None, :], other=0)
            data = word
        else:
            word = _load_units(stored_ptr, rows64[:, None], u, unit_ok, ROW_BYTES, UNIT_BYTES, LANES_D)
            data = word  # int4: the values as stored
            if DECODE:
                data, status = _syndrome_decode(word, parity_table_ptr, syndrome_table_ptr, unit_ok, K, PO_SYN)
        data_hi = word  # unused: a unit's values fit one word
    keep_row = row_ok  # rows whose decoded values are kept (KEEP_DECODED)
    if DECODE:
        if ROW_FLAGS:
            if tile_dirty:
                # Bit 0: a codeword detected (the statuses stored); bit 1: a codeword not clean
                # (the decoded values kept). A row with neither reads as stored.
                detected_row = tl.max(((status == DETECTED) & unit_ok).to(tl.int32), axis=1)
                unclean_row = tl.max(((status != 0) & unit_ok).to(tl.int32), axis=1)
                keep_row = row_ok & (unclean_row != 0)
                tl.store(row_flags_ptr + rows64, (detected_row | (unclean_row << 1)).to(tl.uint8), mask=row_ok)
                tl.store(status_ptr + rows64[:, None] * UNITS + u[None, :], status.to(tl.uint8),
                         mask=unit_ok & (detected_row != 0)[:, None])
            else:
                keep_row = row_ok & False
                tl.store(row_flags_ptr + rows64, tl.zeros([BLOCK_R], tl.uint8), mask=row_ok)
        elif STATUS:
            tl.store(status_ptr + rows64[:, None] * UNITS + u[None, :], status.to(tl.uint8), mask=unit_ok)
        if COUNT:
            if tile_dirty:
                _count_statuses(counters_ptr, status, counted, 0)
            else:  # every codeword clean: the read count alone, a row's worth each
                _count(counters_ptr, n_counted * UNITS)
    elif ROW_FLAGS:  # int4: nothing is ever detected or corrected
        keep_row = row_ok & False
        tl.store(row_flags_ptr + rows64, tl.zeros([BLOCK_R], tl.uint8), mask=row_ok)

    meta_rows = meta_ptr + rows64 * META_ROW_BYTES
    if DEQUANT:
        # The metadata codewords: their statuses, for the counts (each once); the scales below.
        mu = tl.arange(0, BLOCK_MU)
        mu_ok = row_ok[:, None] & (mu < META_STATUS_COLS)[None, :]
        meta_status = tl.zeros([BLOCK_R, BLOCK_MU], tl.int32)
        decode_meta = DECODE
        read_scale = True  # the scale read (and decoded) codeword by codeword below
        if META_ROW_WORDS:
            # A scale in Golay's lane layout (8 nibbles: its float32 word, then two parity
            # words): its three codewords checked with word operations, decoded one by one only
            # in a tile where one is dirty.
            meta_words = meta_ptr.to(tl.pointer_type(tl.uint32)) + rows64 * (META_ROW_BYTES // 4)
            scale_word = tl.load(meta_words, mask=row_ok, other=0)
            q0 = tl.load(meta_words + 1, mask=row_ok, other=0)
            q1 = tl.load(meta_words + 2, mask=row_ok, other=0)
            decode_meta = tl.max(_three_lane_syndromes(scale_word, q0, q1)) != 0
            read_scale = decode_meta
        meta_data = meta_status
        if decode_meta:
            meta_word = _load_units(meta_ptr, rows64[:, None], mu, mu_ok, META_ROW_BYTES, META_UNIT_BYTES, META_LANES_D)
            meta_data, meta_status = _syndrome_decode(meta_word, meta_parity_table_ptr, meta_syndrome_table_ptr, mu_ok, META_K,
                                                      META_PO_SYN)
        elif GROUPS > 1:
            # int4's grouped scales, unprotected: the row's bytes as one tile all the same, each
            # group's words taken from it below (read per value, a byte at a time, before).
            meta_data = _load_units(meta_ptr, rows64[:, None], mu, row_ok[:, None] & (mu < META_UNITS)[None, :], META_ROW_BYTES,
                                    META_UNIT_BYTES, 0)
        if COUNT:
            if decode_meta:
                _count_statuses(counters_ptr, meta_status, mu_ok & row_counted[:, None], 6)
            else:  # nothing decoded (int4, or a clean tile of META_ROW_WORDS): the read count alone
                _count(counters_ptr + 6, n_counted * META_STATUS_COLS)
        if GROUPS == 1:  # one scale per row: decoded once per row
            if META_ROW_WORDS:  # as read, unless its tile is dirty
                s_bits = scale_word.to(tl.int32, bitcast=True)
            else:
                s_bits = tl.zeros([BLOCK_R], tl.int32)  # read below
            group_erased = tl.zeros([BLOCK_R], tl.int1)  # a clean tile (META_ROW_WORDS) holds no detected codeword
            if META_WORDS:  # unprotected float32 words (int4), aligned: loaded as words
                meta_words = meta_ptr.to(tl.pointer_type(tl.int32)) + rows64 * (META_ROW_BYTES // 4)
                s_bits = tl.load(meta_words, mask=row_ok, other=0)
            elif read_scale:
                s_bits, group_erased = _meta_word_at(meta_rows, 0, row_ok, meta_parity_table_ptr, meta_syndrome_table_ptr, META_K,
                                                     META_PO_SYN, DECODE, META_UNIT_VALUES, META_UNIT_BYTES, META_LANES_D, META_UNITS)
            row_scale = s_bits.to(tl.float32, bitcast=True)[:, None]
            if KEEP_DECODED:
                tl.store(dq_ptr + rows64 * (1 + HAS_ZERO), s_bits.to(tl.float32, bitcast=True), mask=row_ok)
            if HAS_ZERO:
                if META_WORDS:
                    z_bits = tl.load(meta_words + 1, mask=row_ok, other=0)
                else:
                    z_bits, z_erased = _meta_word_at(meta_rows, 1, row_ok, meta_parity_table_ptr, meta_syndrome_table_ptr, META_K,
                                                     META_PO_SYN, DECODE, META_UNIT_VALUES, META_UNIT_BYTES, META_LANES_D, META_UNITS)
                    group_erased = group_erased | z_erased
                row_zero = z_bits.to(tl.float32, bitcast=True)[:, None]
                if KEEP_DECODED:
                    tl.store(dq_ptr + rows64 * 2 + 1, z_bits.to(tl.float32, bitcast=True), mask=row_ok)
            if GROUP_FLAGS:
                tl.store(group_flags_ptr + rows64, group_erased.to(tl.uint8), mask=row_ok)

    # Golay's lanes (LANE_ROWS): the data region is the row's INT4 packing, so the row as read
    # is stored whole first (pass -1), then each slot's values only where the decode changed
    # them, after a barrier (another thread may have stored that value in the first pass).
    # One-byte codewords as words (BYTE_WORDS): every value as read first (pass -1), then, in a
    # dirty tile alone, every value as decoded, after a barrier (pass 0). On both word paths a
    # clean tile skips the fix-up passes (Golay's three masked passes over every unit had
    # doubled a clean tile's work).
    for i in tl.static_range(-1 if (LANE_ROWS or BYTE_WORDS) else 0, 1 if ROW_ORDER else UNIT_VALUES):
        run = True  # a constexpr branch: every pass but the word paths' fix-ups
        if (BYTE_WORDS or LANE_WORDS) and i >= 0:
            run = tile_dirty
        if run:
            if BYTE_WORDS and i < 0:
                v = _byte_values(words)
                col = tl.arange(0, 4 * (BLOCK_U // 4))
                ok = row_ok[:, None] & (col < D)[None, :]
            elif BYTE_WORDS:
                tl.debug_barrier()
                v = _row_values(data, data_hi, UNIT_VALUES, BLOCK_U)
                col = tl.arange(0, UNIT_VALUES * BLOCK_U)
                ok = row_ok[:, None] & (col < D)[None, :]
            elif NIBBLE_WORDS:
                v = _row_values(data, data_hi, 8, BLOCK_W)
                col = tl.arange(0, 8 * BLOCK_W)
                ok = row_ok[:, None] & (col < D)[None, :]
            elif ROW_ORDER:
                v = _row_values(data, data_hi, UNIT_VALUES, BLOCK_U)
                col = tl.arange(0, UNIT_VALUES * BLOCK_U)
                ok = row_ok[:, None] & (col < D)[None, :]
            elif i < 0:
                if LANE_WORDS:
                    v = _row_values(data_words.to(tl.int32, bitcast=True), data_words, 8, 16)
                    col = tl.arange(0, 8 * 16)
                else:
                    b = tl.arange(0, LANE_ROWS)
                    packed = tl.load(stored_ptr + rows64[:, None] * ROW_BYTES + b[None, :], mask=row_ok[:, None] & (2 * b < D)[None, :],
                                     other=0).to(tl.int32)
                    v = _row_values(packed, packed, 2, LANE_ROWS)
                    col = tl.arange(0, 2 * LANE_ROWS)
                ok = row_ok[:, None] & (col < D)[None, :]
            else:
                col = _unit_value(u, i, UNIT_VALUES, LANES_D)
                ok = unit_ok & (col < D)[None, :]
                if i >= 8:  # SECDED(72,64): values 8-15 of a codeword are in its second word
                    v = (data_hi >> (4 * (i - 8))) & 15
                else:
                    v = (data >> (4 * i)) & 15
                if LANE_ROWS:
                    if i == 0:
                        tl.debug_barrier()
                    ok = ok & (v != ((word >> (4 * i)) & 15))
            if STATUS and not ROW_FLAGS and not DECODE:  # int4: one "codeword" per value, never corrected
                tl.store(status_ptr + rows64[:, None] * D + col[None, :], tl.zeros_like(v).to(tl.uint8), mask=ok)
            if DEQUANT:
                if GROUPS == 1:
                    s = row_scale
                    if HAS_ZERO:
                        offset = row_zero
                    else:
                        offset = 8.0
                else:
                    group = (tl.minimum(col, D - 1) // GROUP)[None, :]
                    # Each group's words from the metadata tile above (decoded; int4's as read), a
                    # reduction a row, then selected by column: read and decoded per value, with
                    # the units' byte and table loads of every pass, Golay's kernel with zero
                    # points held 244 loads and took 90 s to compile for sm_90a. Each pass writes
                    # the same reductions; Triton's CSE keeps one of each (Golay with zero points:
                    # 14 reductions in the kernel's IR, not one per pass). Grouped scales are
                    # stored sequentially, never in Golay's lanes (``MetadataLayout``).
                    tl.static_assert(META_LANES_D == 0)
                    s_bits, z_bits, group_erased = _tile_group_words(meta_data, meta_status, mu, group, ok, GROUPS, HAS_ZERO,
                                                                     META_UNIT_VALUES, DETECTED)
                    s = s_bits.to(tl.float32, bitcast=True)
                    if HAS_ZERO:
                        offset = z_bits.to(tl.float32, bitcast=True)
                    else:
                        offset = 8.0
                    # By each group's first column (Golay's lanes: in the pass that stores every value).
                    leads = ok & (col % GROUP == 0)[None, :]
                    if KEEP_DECODED:
                        dq_row = dq_ptr + rows64[:, None] * (GROUPS * (1 + HAS_ZERO))
                        tl.store(dq_row + group, s, mask=leads)
                        if HAS_ZERO:
                            tl.store(dq_row + GROUPS + group, offset, mask=leads)
                    if GROUP_FLAGS:
                        tl.store(group_flags_ptr + rows64[:, None] * GROUPS + group, group_erased.to(tl.uint8), mask=leads)
                if KEEP_DECODED and not (BYTE_WORDS and i < 0):
                    if tile_dirty:  # a clean tile keeps no row's values
                        tl.store(decoded_ptr + rows64[:, None] * D + col[None, :], v.to(tl.uint8), mask=ok & keep_row[:, None])
                dequantized = (v.to(tl.float32) - offset) * s
                tl.store(out_ptr + rows64[:, None] * D + col[None, :], _cast_for(dequantized, out_ptr), mask=ok)
            else:
                tl.store(out_ptr + rows64[:, None] * D + col[None, :], v.to(tl.uint8), mask=ok)
    if COUNT and not DECODE:  # int4's values, each its own "codeword": once per program
        _count(counters_ptr + 0, n_counted * D)


@triton.jit
def _count(counter_ptr, n):
    """Add ``n`` to a counter: a relaxed atomic (the counters are read after the kernel: no
    ordering, no fences), none for 0."""
    tl.atomic_add(counter_ptr, n, mask=n > 0, sem="relaxed")


@triton.jit
def _count_statuses(counters_ptr, status, counted, FIRST: tl.constexpr):
    """Add the counted codewords and their corrected, parity-only and detected ones to the
    counters from ``FIRST`` (0: the values', 6: the metadata's). One reduction for the four
    counts (16 bits each of an int64: a program holds fewer than 2^16 codewords) and relaxed
    atomics, none where the count is 0: four reductions and acq_rel atomics, each a barrier and
    fences, were most of a load kernel's time (H200, ncu)."""
    tl.static_assert(status.numel < 65536, "a program's codewords must fit the 16-bit count fields")
    counts = tl.where(counted, 1 + ((status == 1).to(tl.int64) << 16) + ((status == 3).to(tl.int64) << 32)
                      + ((status == 2).to(tl.int64) << 48), 0)
    packed = tl.sum(tl.sum(counts, axis=1), axis=0)
    for field in tl.static_range(4):
        _count(counters_ptr + FIRST + field, (packed >> (16 * field)) & 0xFFFF)


# Host-side arithmetic of the launchers in plain Python: ``triton.cdiv`` and
# ``triton.next_power_of_2`` are constexpr functions (Triton 3.6+), each call from Python a few
# microseconds of argument unwrapping, about 45 us of every fused attention call. Plain
# arithmetic, so that they also take torch.compile's symbolic sizes.
def _cdiv(a: int, b: int) -> int:
    return (a + b - 1) // b


def _pow2(n: int) -> int:
    """The least power of two >= ``n`` (1 for ``n`` <= 1), as ``triton.next_power_of_2``."""
    n = max(1, n) - 1
    for shift in (1, 2, 4, 8, 16, 32):
        n |= n >> shift
    return n + 1


# Rows per program of each launch, as a multiple of about 4K values (``_rows_per_program``), by
# what it does and the storage layout: the fastest of 4K, 8K and 16K values a program (4 warps;
# 8 warps were slower) on the H200 (benchmarks/RESULTS.md, "Rows per program"; bench_codecs,
# 256 MiB). More rows made Golay's and int4's reads 1.3-1.5x faster, and Hamming's kernels and
# int4's store 1.2-1.3x slower; the read that keeps values for interpolation prefers fewer rows
# than the plain one (registers). Golay's dequantizing read takes 8K under its register cap below
# (16K without one).
_ROWS_FACTOR = {
    "quantize": {"lanes": 2},  # store kernel: quantize_encode
    "encode": {"lanes": 4},  # store kernel: INT4 values in
    "decode": {"nibbles": 2, "lanes": 2, "blocks": 4},  # load kernel: INT4 values out
    "dequantize": {"nibbles": 4, "lanes": 2, "blocks": 2},  # load kernel: floats out
    "interpolate": {"nibbles": 2, "lanes": 2, "blocks": 2},  # load kernel: floats, values kept for interpolation
}

# Registers a thread of each load launch may hold (``maxnreg``; absent: Triton's choice), by
# storage layout. The rare dirty tile's decode sets a launch's register count (Hamming's 122,
# Golay's 94-158, where a clean tile needs about 40), and with it how few programs an SM holds
# at once: too few loads in flight for a read bound by bytes. Capped, the dirty path spills
# (Hamming's 268 bytes at 80) and the clean one runs 1.1-1.2x faster (H100, medians of three:
# benchmarks/RESULTS.md, "Register caps on the codec reads").
_REGISTER_CAP = {
    "decode": {"bytes": 80, "lanes": 80},
    "dequantize": {"bytes": 80, "lanes": 64},
    "interpolate": {"bytes": 80, "lanes": 80, "blocks": 80},
}


def _rows_per_program(layout: StorageLayout, launch: str) -> int:
    """Rows of ``layout`` a program of ``launch`` (a ``_ROWS_FACTOR`` key) takes: about 4K values
    (registers in check for head_dim up to 256), times the layout's factor."""
    return max(1, min(64, 4096 // _pow2(layout.units * layout.unit_values))) * _ROWS_FACTOR[launch].get(layout.codec.layout, 1)


def _load_launch(dequant: bool, keep: bool) -> str:
    """The ``_ROWS_FACTOR`` / ``_REGISTER_CAP`` key of a load launch."""
    return ("interpolate" if keep else "dequantize") if dequant else "decode"


@memoized
def register_cap(layout: StorageLayout, dequant: bool, keep: bool) -> int:
    """The load launch's ``maxnreg`` (0: none), looked up once per layout as the constants are
    (``layout.codec`` is a registry lookup, on every launch's path)."""
    return _REGISTER_CAP.get(_load_launch(dequant, keep), {}).get(layout.codec.layout, 0)


def parity_only_syndrome(codec: LinearBlockCode) -> int:
    """The kernels' ``PO_SYN``: the syndrome of a flipped overall parity bit alone, or -1."""
    return -1 if codec.parity_only_syndrome is None else codec.parity_only_syndrome


def meta_constants(meta: MetadataLayout) -> dict:
    """The metadata layout's constants, as the load kernel takes them."""
    storage = meta.storage
    return dict(META_K=storage.codec.k, META_PO_SYN=parity_only_syndrome(storage.codec), META_UNITS=storage.units,
                META_UNIT_VALUES=storage.unit_values, META_UNIT_BYTES=storage.unit_bytes,
                META_ROW_BYTES=storage.row_bytes, META_LANES_D=storage.head_dim if storage.lanes else 0)


def row_order(layout: StorageLayout) -> bool:
    """Whether the store kernel reads a block's values and the load kernel writes them in row
    order (``_row_units``, ``_row_values``): units of 1, 2, 8 or 16 values one after another.
    Golay's lanes keep a read and a store per slot."""
    return not layout.lanes and layout.unit_values in (1, 2, 8, 16)


def whole_rows(layout: StorageLayout, groups: int) -> bool:
    """Whether the store kernel's phase 1 tile of ``groups`` scale groups is the row in order,
    with no padding (powers of two throughout), so that phase 2 quantizes it in registers: in
    row order (``row_order``, over whole units) or, for Golay's lanes, gathered in registers."""
    group = layout.head_dim // groups
    tile = _pow2(groups) == groups and _pow2(group) == group
    return tile and (layout.lanes or (row_order(layout) and _pow2(layout.units) * layout.unit_values == layout.head_dim))


def lane_words(layout: StorageLayout, *stored: torch.Tensor) -> bool:
    """Whether the kernels move rows of Golay's lane layout as 32-bit words: head_dim 128 (the
    structure ``_lane_row_parity`` makes), rows of whole aligned words."""
    return layout.lanes and layout.head_dim == 128 and aligned(*stored)


def byte_words(layout: StorageLayout, *stored: torch.Tensor) -> bool:
    """Whether the kernels move rows of one-byte codewords (Hamming's) as 32-bit words, the
    encode making four codewords a word (``_byte_codeword_words``), the decode checking eight at
    a time (``_word_syndromes``): rows of whole pairs of aligned words."""
    return layout.codec.layout == "bytes" and layout.row_bytes % 8 == 0 and aligned(*stored)


def block_words(layout: StorageLayout, *stored: torch.Tensor) -> bool:
    """Whether the load kernel reads SECDED(72,64)'s rows as 32-bit words: rows of whole aligned
    words (a multiple of four codewords: 8 data bytes and a check byte each). The store kernel
    writes bytes: written as words, the check bytes packed four a word, its quantize_encode ran
    4% slower on the H200."""
    return layout.blocks and layout.row_bytes % 4 == 0 and aligned(*stored)


def nibble_words(layout: StorageLayout, *stored: torch.Tensor) -> bool:
    """Whether the load kernel reads int4's rows as 32-bit words, eight values each: rows of
    whole aligned words."""
    return layout.nibbles and layout.row_bytes % 4 == 0 and aligned(*stored)


def meta_row_words(meta_layout: MetadataLayout, *meta: torch.Tensor) -> bool:
    """Whether the load kernel checks each row's scale as words: one symmetric scale group in
    Golay's lane layout (8 nibbles, 16 bytes a row: the float32 word and two parity words), rows
    of aligned words."""
    storage = meta_layout.storage
    return storage.lanes and storage.head_dim == 8 and storage.row_bytes == 16 and aligned(*meta)


def _layout_constants(layout: StorageLayout) -> dict:
    """The row layout's constants, as the store and the load kernel both take them."""
    return dict(D=layout.head_dim, UNITS=layout.units, UNIT_VALUES=layout.unit_values, UNIT_BYTES=layout.unit_bytes,
                ROW_BYTES=layout.row_bytes, LANES_D=layout.head_dim if layout.lanes else 0, BLOCKS=block_offsets(layout))


@memoized
def fma_rounds_once(device_type: str) -> bool:
    """Whether Triton's FMA rounds once where kernels on ``device_type`` run: compiled for a GPU,
    or in the interpreter from Triton 3.9 on (before, it multiplied and added, rounding twice)."""
    if device_type != "cpu":
        return True
    from triton.runtime import interpreter

    return hasattr(getattr(interpreter, "_interpreter", None), "fma_fp32")


def meta_words(layout: StorageLayout, groups: int, symmetric: bool, meta_aligned: bool) -> int:
    """How the store kernel writes the metadata rows itself when it quantizes whole rows in
    registers (``whole_rows``) into aligned rows, rather than leaving the scales to a second
    launch: 1, the float32 words themselves (``int4``, every grouping); 2, one symmetric scale in
    Golay's lane layout (``meta_row_words``), its parity made with word operations; 0 otherwise."""
    if not (whole_rows(layout, groups) and meta_aligned):
        return 0
    if not layout.codec.decodes:
        return 1
    return 2 if symmetric and groups == 1 and meta_row_words(MetadataLayout(layout.codec_name, 1, True)) else 0


@memoized
def _store_constants(layout: StorageLayout, group_size: int, quantize: bool, symmetric: bool, out_aligned: bool,
                     fma: bool, meta_aligned: bool) -> dict:
    """The store kernel's constants (``launch_store``; ``out_aligned``, ``meta_aligned``: the
    output, the metadata start on a 32-bit word; ``fma``: ``fma_rounds_once``)."""
    groups = layout.head_dim // group_size
    return dict(
        **_layout_constants(layout),
        GROUP=group_size,
        GROUPS=groups,
        ENCODE=layout.codec.decodes,
        QUANTIZE=quantize,
        SYMMETRIC=symmetric,
        FMA=fma,
        META_WORDS=meta_words(layout, groups, symmetric, meta_aligned) if quantize else 0,
        BLOCK_R=_rows_per_program(layout, "quantize" if quantize else "encode"),
        BLOCK_G=_pow2(groups),
        BLOCK_GS=_pow2(group_size),
        BLOCK_U=_pow2(layout.row_bytes if layout.lanes else layout.units),
        ROW_ORDER=row_order(layout),
        WHOLE_ROWS=quantize and whole_rows(layout, groups),
        LANE_WORDS=out_aligned and lane_words(layout),
        BYTE_WORDS=out_aligned and byte_words(layout),
        **{k: v for k, v in nibble_constants(layout.codec_name).items() if k in ("C0", "C1", "C2", "C3")},
    )


def launch_store(
    x: torch.Tensor,
    layout: StorageLayout,
    encode_table: torch.Tensor,
    *,
    quantize: bool,
    group_size: int,
    symmetric: bool,
    out: torch.Tensor,
    meta: torch.Tensor | None = None,
    meta_encode_table: torch.Tensor | None = None,
) -> None:
    """Fill ``out`` from ``x`` ``[..., head_dim]`` (contiguous; or int32 words ``[..., head_dim /
    8]`` whose nibbles, low first, are the values) and, when quantizing, ``meta``: the scales (and
    zero points) the kernel computes, written by the kernel as metadata rows where it can
    (``meta_words``), else encoded by a second launch (``meta_encode_table``: the metadata
    code's) as a row of values of the metadata layout, read from the float32 words themselves
    (``MetadataLayout.nibbles`` as tensor code wrote int64 intermediates eight times the
    scales' size)."""
    rows = x.numel() // (layout.head_dim // 8 if x.dtype == torch.int32 else layout.head_dim)
    constants = _store_constants(layout, group_size, quantize, symmetric, aligned(out), fma_rounds_once(out.device.type),
                                 meta is not None and aligned(meta))
    groups = constants["GROUPS"]
    separate = quantize and not constants["META_WORDS"]  # the scales to a second launch
    scale = torch.empty(rows, groups, dtype=torch.float32, device=x.device) if separate else out
    zero = scale if symmetric or not separate else torch.empty_like(scale)
    wrap_triton(_store_kernel)[(_cdiv(rows, constants["BLOCK_R"]),)](x, out, scale, zero, meta if meta is not None else out,
                                                                      encode_table, rows, **constants)
    if separate:
        meta_layout = MetadataLayout(layout.codec_name, groups, symmetric)
        words = scale if symmetric else torch.cat([scale, zero], dim=-1)
        launch_store(words.view(torch.int32), meta_layout.storage, meta_encode_table, quantize=False,
                     group_size=meta_layout.storage.head_dim, symmetric=True, out=meta)


def launch_load(
    stored: torch.Tensor,
    layout: StorageLayout,
    encode_table: torch.Tensor,
    syndrome_table: torch.Tensor,
    *,
    out: torch.Tensor,
    status: torch.Tensor | None,
    meta: torch.Tensor | None = None,
    meta_tables: tuple[torch.Tensor, torch.Tensor] | None = None,
    meta_layout: MetadataLayout | None = None,
    counters: torch.Tensor | None = None,
    seq_len: torch.Tensor | None = None,
    decoded: tuple[torch.Tensor, torch.Tensor] | None = None,
    row_flags: torch.Tensor | None = None,
    group_flags: torch.Tensor | None = None,
) -> None:
    """Decode ``stored`` into ``out`` (values, or floats when ``meta`` is given, with
    ``meta_tables``: the metadata code's encode and syndrome tables) and ``status`` (None: not
    stored, the counts still made). With ``meta``,
    ``decoded`` (uint8 ``[rows, head_dim]``, float32 ``[rows, groups * (1 + has zero
    points)]``) receives the values and scales as decoded as well. With ``row_flags`` (uint8
    ``[rows]``), a row's flag says whether one of its codewords is detected (bit 0) and whether
    one is not clean (bit 1): ``status`` is stored only in rows with bit 0 and ``decoded``'s
    values only in rows with bit 1 (elsewhere both are left as they were; such a row's values
    are its codewords' data bits as stored). With ``meta``, ``group_flags`` (uint8 ``[rows,
    groups]``) receives 1 where a codeword holding the group's scale or zero point is detected,
    0 elsewhere. ``seq_len``: int64, ``[]``, or ``[stored.shape[0]]``, a length per sequence
    (rows along dim -2 of ``stored[b]`` at or past ``seq_len[b]`` are not counted)."""
    rows = stored.numel() // layout.row_bytes
    per_lead = seq_len is not None and seq_len.dim() > 0
    len_rows = rows  # the rows each length covers
    if per_lead:
        if stored.dim() < 3 or seq_len.shape != stored.shape[:1]:
            raise ValueError(f"a length per sequence needs storage [B, ..., S, row_bytes] and lengths [B], got {tuple(stored.shape)} "
                             f"and {tuple(seq_len.shape)}")
        seq_len = seq_len.contiguous()  # read at seq_len + b: lengths expanded from one (stride 0), as callers pass them, made whole
        len_rows = rows // max(seq_len.numel(), 1)
    meta_layout = meta_layout or MetadataLayout(layout.codec_name)
    if meta is not None:
        meta = lane_meta_aligned(meta_layout, meta)
    constants = _load_constants(layout, meta_layout, meta is not None, decoded is not None, aligned(stored),
                                meta is not None and aligned(meta))
    parity_table = encode_table if layout.blocks else nibble_parity_table(encode_table, layout.codec.k)
    if meta is not None:
        meta_parity_table = nibble_parity_table(meta_tables[0], meta_layout.storage.codec.k)
        meta_syndrome_table = meta_tables[1]
    else:  # not read
        meta_parity_table, meta_syndrome_table = parity_table, syndrome_table
    # The pointer passed for a tensor the launch neither reads nor writes: one of its own, never
    # the stored bytes, which torch.compile would copy if it took them for written.
    unused = status if status is not None else stored.new_empty(16)
    cap = register_cap(layout, meta is not None, decoded is not None)
    kernel, options = kernel_and_options(_load_kernel, 4, maxnreg=cap) if cap else (_load_kernel, {})
    wrap_triton(kernel)[(_cdiv(rows, constants["BLOCK_R"]),)](
        stored,
        out,
        status if status is not None else unused,
        meta if meta is not None else unused,
        parity_table,
        syndrome_table,
        meta_parity_table,
        meta_syndrome_table,
        counters if counters is not None else unused,
        seq_len if seq_len is not None else unused,
        row_flags if row_flags is not None else unused,
        *(decoded if decoded is not None else (unused, unused)),
        group_flags if group_flags is not None else unused,
        rows,
        stored.shape[-2] if stored.dim() >= 2 else 1,
        len_rows,
        **constants,
        COUNT=counters is not None,
        HAS_LEN=seq_len is not None,
        LEN_PER_LEAD=per_lead,
        STATUS=status is not None,
        ROW_FLAGS=row_flags is not None,
        KEEP_DECODED=decoded is not None,
        GROUP_FLAGS=group_flags is not None,
        PTX=stored.device.type == "cuda" and torch.version.hip is None,
        **options,
    )


@memoized
def _load_constants(layout: StorageLayout, meta_layout: MetadataLayout, dequant: bool, keep: bool, stored_aligned: bool,
                    meta_aligned: bool) -> dict:
    """The load kernel's constants that follow from the layouts and the alignment of the
    stored rows and of the metadata rows (``launch_load``)."""
    return dict(
        **_layout_constants(layout),
        K=layout.codec.k,
        PO_SYN=parity_only_syndrome(layout.codec),
        GROUP=layout.head_dim // meta_layout.groups,
        GROUPS=meta_layout.groups,
        **meta_constants(meta_layout),
        META_STATUS_COLS=meta_layout.codewords_per_row,
        DECODE=layout.codec.decodes,
        DEQUANT=dequant,
        HAS_ZERO=not meta_layout.symmetric,
        DETECTED=STATUS_DETECTED,
        BLOCK_R=_rows_per_program(layout, _load_launch(dequant, keep)),
        BLOCK_U=_pow2(layout.units),
        BLOCK_MU=_pow2(meta_layout.codewords_per_row),
        ROW_ORDER=row_order(layout),
        LANE_ROWS=_pow2((layout.head_dim + 1) // 2) if layout.lanes else 0,
        LANE_WORDS=stored_aligned and lane_words(layout),
        BYTE_WORDS=stored_aligned and byte_words(layout),
        META_ROW_WORDS=dequant and layout.codec.decodes and meta_aligned and meta_row_words(meta_layout),
        META_WORDS=dequant and meta_aligned and not meta_layout.storage.codec.decodes and meta_layout.storage.row_bytes % 4 == 0,
        NIBBLE_WORDS=stored_aligned and nibble_words(layout),
        BLOCK_WORDS=stored_aligned and block_words(layout),
        BLOCK_W=_pow2(max(1, layout.row_bytes // 4)),
        **{k: v for k, v in nibble_constants(layout.codec_name).items()
           if k in ("C0", "C1", "C2", "C3", "PMASK", "PBITS", "FLIP_LO", "FLIP_HI", "DET")},
    )


def triton_encode(values: torch.Tensor, encode_table: torch.Tensor, codec: str) -> torch.Tensor:
    layout = StorageLayout(codec, values.shape[-1])
    out = values.new_empty(*values.shape[:-1], layout.row_bytes)
    launch_store(values.contiguous(), layout, encode_table, quantize=False, group_size=layout.head_dim, symmetric=True, out=out)
    return out


def triton_decode(
    stored: torch.Tensor, encode_table: torch.Tensor, syndrome_table: torch.Tensor, codec: str, head_dim: int
) -> tuple[torch.Tensor, torch.Tensor]:
    layout = StorageLayout(codec, head_dim)
    values = stored.new_empty(*stored.shape[:-1], head_dim)
    status = stored.new_empty(*stored.shape[:-1], layout.codewords_per_row)
    launch_load(stored.contiguous(), layout, encode_table, syndrome_table, out=values, status=status)
    return values, status


def triton_quantize_encode(
    x: torch.Tensor, encode_table: torch.Tensor, meta_encode_table: torch.Tensor, codec: str, group_size: int | None,
    symmetric: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    layout = StorageLayout(codec, x.shape[-1])
    group = layout.head_dim if group_size is None else group_size
    if not isinstance(group, int) or group < 1 or layout.head_dim % group:
        raise ValueError(f"group_size must be a positive divisor of the last dimension {layout.head_dim}, got {group_size!r}")
    lead = x.shape[:-1]
    meta_layout = MetadataLayout(codec, layout.head_dim // group, symmetric)
    stored = torch.empty(*lead, layout.row_bytes, dtype=torch.uint8, device=x.device)
    meta = torch.empty(*lead, meta_layout.row_bytes, dtype=torch.uint8, device=x.device)
    launch_store(x.contiguous(), layout, encode_table, quantize=True, group_size=group, symmetric=symmetric, out=stored, meta=meta,
                 meta_encode_table=meta_encode_table)
    return stored, meta


def triton_decode_dequantize(
    stored: torch.Tensor,
    meta: torch.Tensor,
    encode_table: torch.Tensor,
    syndrome_table: torch.Tensor,
    meta_encode_table: torch.Tensor,
    meta_syndrome_table: torch.Tensor,
    codec: str,
    head_dim: int,
    groups: int,
    symmetric: bool,
    interpolate: bool,
    counters: torch.Tensor,
    dtype: torch.dtype,
    seq_len: torch.Tensor | None = None,
) -> torch.Tensor:
    """The kernel decodes the values and their scales and dequantizes them; when interpolating,
    the interpolation kernels (:mod:`ops.interp_kernels`) then fill the erased values in place.
    They take the mean of the neighbours' float32 values: into a float16 or bfloat16 output the
    decode also writes each row's scales, and the INT4 values of rows with a codeword not clean,
    from which those are computed again (a clean row's from its codewords), rather than the
    whole cache in float32 and a cast after. ``seq_len``: as ``launch_load`` takes it, one or
    a length per sequence."""
    stored = stored.contiguous()
    layout = StorageLayout(codec, head_dim)
    meta_layout = MetadataLayout(codec, groups, symmetric)
    lead = stored.shape[:-1]
    out = torch.empty(*lead, head_dim, dtype=dtype, device=stored.device)
    # The erasures, for interpolation: a flag per row, and the statuses of the flagged rows.
    status = stored.new_empty(*lead, layout.codewords_per_row) if interpolate else None
    row_flags = stored.new_empty(*lead) if interpolate else None
    # Erased scales: a flag per group, as the kernel's decode of the metadata finds them.
    group_flags = stored.new_empty(*lead, groups) if interpolate else None
    decoded = None
    if interpolate and dtype != torch.float32:
        decoded = (stored.new_empty(*lead, head_dim),
                   torch.empty(*lead, groups * (1 if symmetric else 2), dtype=torch.float32, device=stored.device))
    launch_load(
        stored, layout, encode_table, syndrome_table, out=out, status=status, meta=meta.contiguous(),
        meta_tables=(meta_encode_table,
                     meta_syndrome_table), meta_layout=meta_layout, counters=counters, seq_len=seq_len,
        decoded=decoded, row_flags=row_flags, group_flags=group_flags,
    )
    if interpolate:
        # Erasures per codeword, per group and per sequence, not per value: no mask of the cache's size.
        lengths = seq_len if seq_len is None or seq_len.dim() == 0 else seq_len.view(-1, *[1] * (stored.dim() - 3))  # [B] over [B, ...]
        out = interpolate_decoded_(out, status, layout, group_flags, lengths, decoded, row_flags, stored)
    return out
