"""Erasure interpolation (:func:`ecc_tensor.interp.interpolate_erasures`) as Triton kernels.

Each erased value becomes the mean of its nearest non-erased neighbours along the sequence
(same head, same channel), the one neighbour there at a boundary, or stays as read with none.
As tensor code that is two scans over the whole cache (``cummax``, ``cummin``, along a
non-contiguous dim) and two gathers, every value touched whether erased or not: 100 ms at
batch 8 / 32k on an H200 against 7 ms for the decode itself.

Here the sequence is cut into tiles of 32 rows. A first kernel reduces each tile's erasures
to a byte saying that it has none (nearly every tile) or, per column, its first and last kept
row. The second returns at once from a tile without
erasures (erasures are rare); in a tile with some, each erased value's neighbour is the
nearest kept row inside the tile, else the one the summaries of the tiles around it give
(walked tile by tile, for the columns that need it; usually one step). It writes the erased
values in place: their neighbours are never erased, so no program reads a value another one
writes. Erasures come as the decode leaves them (codeword statuses, group flags, lengths):
no mask of the cache's size is built on the way.

The walk reads summaries, not masks: an earlier version walked the tiles' masks in a loop with
a reduction over rows inside, which the H200's Triton 3.6 miscompiled (a thread holding two
columns read one reduced value and copied it to the other); Triton 3.9 compiled it correctly.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ecc_tensor import lanes
from ecc_tensor.codecs import STATUS_DETECTED
from ecc_tensor.storage import StorageLayout

from .compile_ahead import wrap_triton
from .float_casts import _cast_for, _mul_rn

_BLOCK_S = 32
_TILES_PER_SUMMARY = 8  # tiles one program of the summary kernel reduces: a tile alone is too little work


@triton.jit
def _erased_at(units_ptr, unit_cols, groups_ptr, flags_ptr, group_cols, lead, rows, length, inside, S, U, G, ERASED: tl.constexpr,
               HAS_GROUPS: tl.constexpr, HAS_ROW_FLAGS: tl.constexpr):
    """Which values of sequence ``lead``'s rows ``rows`` (``[R, 1]``) and the columns whose units
    and groups are ``unit_cols``/``group_cols`` (``[1, C]``) are erased: their unit's status is
    ``ERASED``, their row is at or past ``length`` (unwritten), or their row's group is
    flagged. Outside ``inside``: erased. With ``HAS_ROW_FLAGS``, a row's statuses are read only
    where its flag is set (the decode stored them only there)."""
    read = inside
    if HAS_ROW_FLAGS:  # bit 0: a codeword detected
        read = read & ((tl.load(flags_ptr + lead * S + rows, mask=inside, other=0) & 1) != 0)
    e = (tl.load(units_ptr + (lead * S + rows) * U + unit_cols, mask=read, other=ERASED + 1) == ERASED) | ~inside
    e = e | (rows >= length)
    if HAS_GROUPS:
        e = e | (tl.load(groups_ptr + (lead * S + rows) * G + group_cols, mask=inside, other=1) != 0)
    return e


@triton.jit
def _row_erasures(groups_ptr, flags_ptr, lead, rows, length, S, G, HAS_GROUPS: tl.constexpr, BLOCK_G: tl.constexpr):
    """Which of sequence ``lead``'s rows ``rows`` (``[R]``) may hold an erased value, from the
    decode's row flags (bit 0: a codeword detected), the group flags and the length: a row's
    worth of reads, not a value's, so that a clean tile costs a few loads. Rows past ``S``: no."""
    in_rows = rows < S
    e = ((tl.load(flags_ptr + lead * S + rows, mask=in_rows, other=0) & 1) != 0) | (rows >= length)
    if HAS_GROUPS:
        g = tl.arange(0, BLOCK_G)
        flagged = tl.load(groups_ptr + (lead * S + rows)[:, None] * G + g[None, :], mask=in_rows[:, None] & (g < G)[None, :], other=0)
        e = e | (tl.max(flagged.to(tl.int32), 1) != 0)
    return e & in_rows


@triton.jit
def _unit_columns(unit_map_ptr, cols, in_cols, VALUES_PER_UNIT: tl.constexpr, UNIT_MAP: tl.constexpr):
    """The unit (codeword) holding each column's value: a table's entry, or ``cols // VALUES_PER_UNIT``."""
    if UNIT_MAP:
        return tl.load(unit_map_ptr + cols, mask=in_cols, other=0)
    return cols // VALUES_PER_UNIT


@triton.jit
def _sequence_length(lengths_ptr, lead, S, HAS_LENGTHS: tl.constexpr):
    if HAS_LENGTHS:
        return tl.minimum(tl.load(lengths_ptr + lead), S).to(tl.int32)
    return S


@triton.jit
def _tile_kept_bounds_kernel(units_ptr, unit_map_ptr, groups_ptr, lengths_ptr, flags_ptr, first_ptr, last_ptr, whole_ptr, S, TILES, U, G,
                             D: tl.constexpr, GROUP: tl.constexpr, ERASED: tl.constexpr,
                             HAS_GROUPS: tl.constexpr, HAS_ROW_FLAGS: tl.constexpr, HAS_LENGTHS: tl.constexpr,
                             VALUES_PER_UNIT: tl.constexpr,
                             UNIT_MAP: tl.constexpr, TILES_PER_PROGRAM: tl.constexpr, BLOCK_S: tl.constexpr,
                             BLOCK_D: tl.constexpr, BLOCK_G: tl.constexpr):
    """Per tile, whether every value is kept (``whole_ptr``, uint8), and, only for a tile
    where one is not, per column: the first kept row (``S`` where none) and the last (-1 where
    none). A clean cache's tiles are all whole: a byte a tile written, not 8 a column; with
    ``HAS_ROW_FLAGS``, a program whose rows hold no erasure (``_row_erasures``) reads no
    value's status."""
    programs = tl.cdiv(TILES, TILES_PER_PROGRAM)  # per sequence (``_flat_grid``)
    lead = (tl.program_id(0) // programs).to(tl.int64)
    tile0 = (tl.program_id(0) % programs) * TILES_PER_PROGRAM
    rows = tile0 * BLOCK_S + tl.arange(0, TILES_PER_PROGRAM * BLOCK_S)
    tiles = tile0 + tl.arange(0, TILES_PER_PROGRAM)
    length = _sequence_length(lengths_ptr, lead, S, HAS_LENGTHS)
    if HAS_ROW_FLAGS:
        some = tl.max(_row_erasures(groups_ptr, flags_ptr, lead, rows, length, S, G, HAS_GROUPS, BLOCK_G).to(tl.int32))
        if (some == 0) & ((tile0 + TILES_PER_PROGRAM) * BLOCK_S <= S):  # every tile whole
            tl.store(whole_ptr + lead * TILES + tiles, tl.full([TILES_PER_PROGRAM], 1, tl.uint8), mask=tiles < TILES)
            return
    cols = tl.arange(0, BLOCK_D)
    in_cols = cols < D
    inside = (rows < S)[:, None] & in_cols[None, :]
    unit_cols = _unit_columns(unit_map_ptr, cols, in_cols, VALUES_PER_UNIT, UNIT_MAP)[None, :]
    erased = _erased_at(units_ptr, unit_cols, groups_ptr, flags_ptr, (cols // GROUP)[None, :], lead, rows[:, None], length, inside,
                        S, U, G, ERASED, HAS_GROUPS, HAS_ROW_FLAGS)
    row_index = tl.reshape(rows[:, None] + tl.zeros([TILES_PER_PROGRAM * BLOCK_S, BLOCK_D], tl.int32),
                           [TILES_PER_PROGRAM, BLOCK_S, BLOCK_D])
    kept = tl.reshape(inside & ~erased, [TILES_PER_PROGRAM, BLOCK_S, BLOCK_D])
    summary = (lead * TILES + tiles[:, None]) * D + cols[None, :]
    whole = tl.min(tl.min(tl.where(in_cols[None, None, :], kept, True).to(tl.int32), 2), 1)  # [TILES_PER_PROGRAM]
    tl.store(whole_ptr + lead * TILES + tiles, whole.to(tl.uint8), mask=tiles < TILES)
    stored = (tiles < TILES)[:, None] & in_cols[None, :] & (whole == 0)[:, None]
    tl.store(first_ptr + summary, tl.min(tl.where(kept, row_index, S), 1), mask=stored)
    tl.store(last_ptr + summary, tl.max(tl.where(kept, row_index, -1), 1), mask=stored)


@triton.jit
def _nearest_in_tile(units_ptr, unit_cols, groups_ptr, flags_ptr, group_cols, lead, length, row_index, todo, first, last, S, U, G,
                     ERASED: tl.constexpr, HAS_GROUPS: tl.constexpr, HAS_ROW_FLAGS: tl.constexpr, STEP: tl.constexpr,
                     BLOCK_S: tl.constexpr):
    """Per erased value, the nearest kept row in this tile's rows ``[first, last)`` going
    ``STEP`` (-1: back, 1: ahead), -1 where there is none. Re-reading the mask row by row
    rather than scanning it: Triton's reverse scan is unreliable (triton-lang/triton#4362)."""
    found_row = tl.full(row_index.shape, -1, tl.int32)
    searching = todo
    k = 1
    while (tl.max(searching.to(tl.int32)) > 0) & (k < BLOCK_S):
        candidate = row_index + STEP * k
        inside = searching & (candidate >= first) & (candidate < last)
        e = _erased_at(units_ptr, unit_cols, groups_ptr, flags_ptr, group_cols, lead, candidate, length, inside, S, U, G, ERASED,
                       HAS_GROUPS, HAS_ROW_FLAGS)
        found = inside & ~e
        found_row = tl.where(found, candidate, found_row)
        searching = inside & ~found
        k += 1
    return found_row


@triton.jit
def _tile_is_whole(whole_ptr, lead, TILES, j, BLOCK_D: tl.constexpr):
    """``[BLOCK_D]`` bool: whether tile ``j`` keeps every value (the summary kernel's flag), as a
    block: Triton's interpreter rejects a mask that combines a scalar."""
    return (tl.zeros([BLOCK_D], tl.int32) + tl.load(whole_ptr + lead * TILES + j)) != 0


@triton.jit
def _dequantized_at(decoded_ptr, dq_ptr, stored_ptr, flags_ptr, flat_rows, cols, group_cols, mask, G, D: tl.constexpr,
                    HAS_ZERO: tl.constexpr, HAS_ROW_FLAGS: tl.constexpr, ROW_BYTES: tl.constexpr, SLOT_BITS: tl.constexpr,
                    PTX: tl.constexpr):
    """The float32 values the decode computed at ``flat_rows`` (int64 ``[R, C]``, rows of the
    flattened ``[lead * S, D]``), from the INT4 values and scales it kept
    (``launch_load``'s ``decoded``): the same arithmetic, so the same bits. With
    ``HAS_ROW_FLAGS``, the values were kept only in rows with a codeword not clean (flag bit 1);
    every codeword of another row is clean, so its values are the data bits as stored, value
    ``c`` at bit ``c * SLOT_BITS`` of the row. The product is rounded on its own (``_mul_rn``):
    the caller adds two of them."""
    if HAS_ROW_FLAGS:
        kept = (tl.load(flags_ptr + flat_rows, mask=mask, other=0) & 2) != 0
        bit = cols * SLOT_BITS
        raw = tl.load(stored_ptr + flat_rows * ROW_BYTES + bit // 8, mask=mask & ~kept, other=0)
        v = tl.where(kept, tl.load(decoded_ptr + flat_rows * D + cols, mask=mask & kept, other=0), (raw >> (bit % 8)) & 15)
        v = v.to(tl.float32)
    else:
        v = tl.load(decoded_ptr + flat_rows * D + cols, mask=mask, other=0).to(tl.float32)
    dq_row = dq_ptr + flat_rows * (G * (1 + HAS_ZERO))
    s = tl.load(dq_row + group_cols, mask=mask, other=0.0)
    if HAS_ZERO:
        offset = tl.load(dq_row + G + group_cols, mask=mask, other=0.0)
    else:
        offset = 8.0
    return _mul_rn(v - offset, s, PTX)


# A sequence of one row specialized S to the constant 1, and the H200's Triton 3.6 then failed
# in its coalescing pass ("PassManager::run failed"; Triton 3.9 compiles it).
@triton.jit(do_not_specialize=["S"])
def _interpolate_kernel(x_ptr, units_ptr, unit_map_ptr, groups_ptr, lengths_ptr, flags_ptr, first_ptr, last_ptr, whole_ptr, decoded_ptr,
                        dq_ptr, stored_ptr, S, TILES, U, G, D: tl.constexpr, ROW_BYTES: tl.constexpr, SLOT_BITS: tl.constexpr,
                        GROUP: tl.constexpr, ERASED: tl.constexpr,
                        HAS_GROUPS: tl.constexpr, HAS_ROW_FLAGS: tl.constexpr, HAS_LENGTHS: tl.constexpr, VALUES_PER_UNIT: tl.constexpr,
                        UNIT_MAP: tl.constexpr, FROM_DECODED: tl.constexpr, HAS_ZERO: tl.constexpr, PTX: tl.constexpr,
                        BLOCK_S: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_G: tl.constexpr):
    """Fills the erased values of ``x`` (float32) in place; with ``FROM_DECODED``, ``x`` is the
    decode's output in its dtype, and the neighbours' float32 values are computed again from the
    INT4 values and scales the decode kept (with ``HAS_ROW_FLAGS``, the values of rows it did
    not keep from the codewords' data bits, ``stored_ptr``), so the mean is of the values the
    decode computed before its cast, as in float32, and only the erased values are written."""
    lead, tile = (tl.program_id(0) // TILES).to(tl.int64), tl.program_id(0) % TILES  # ``_flat_grid``
    rows = tile * BLOCK_S + tl.arange(0, BLOCK_S)
    length = _sequence_length(lengths_ptr, lead, S, HAS_LENGTHS)
    if HAS_ROW_FLAGS:  # a tile whose rows hold no erasure (nearly all) reads no value's status
        if tl.max(_row_erasures(groups_ptr, flags_ptr, lead, rows, length, S, G, HAS_GROUPS, BLOCK_G).to(tl.int32)) == 0:
            return
    cols = tl.arange(0, BLOCK_D)
    in_cols = cols < D
    inside = (rows < S)[:, None] & in_cols[None, :]
    unit_cols = _unit_columns(unit_map_ptr, cols, in_cols, VALUES_PER_UNIT, UNIT_MAP)[None, :]
    group_cols = (cols // GROUP)[None, :]
    erased = _erased_at(units_ptr, unit_cols, groups_ptr, flags_ptr, group_cols, lead, rows[:, None], length, inside, S, U, G, ERASED,
                        HAS_GROUPS, HAS_ROW_FLAGS)
    todo = erased & inside
    if tl.max(todo.to(tl.int32)) > 0:
        row_index = rows[:, None] + tl.zeros([BLOCK_S, BLOCK_D], tl.int32)
        first, last = tile * BLOCK_S, tl.minimum(tile * BLOCK_S + BLOCK_S, S)
        prev = _nearest_in_tile(units_ptr, unit_cols, groups_ptr, flags_ptr, group_cols, lead, length, row_index, todo, first, last, S,
                                U, G, ERASED, HAS_GROUPS, HAS_ROW_FLAGS, -1, BLOCK_S)
        nxt = _nearest_in_tile(units_ptr, unit_cols, groups_ptr, flags_ptr, group_cols, lead, length, row_index, todo, first, last, S,
                               U, G, ERASED, HAS_GROUPS, HAS_ROW_FLAGS, 1, BLOCK_S)
        # Beyond the tile: the last kept row of the nearest earlier tile that has one, the first of
        # the nearest later one, walking only for columns that need it (usually one step).
        need = tl.max((todo & (prev < 0)).to(tl.int32), 0) > 0
        before = tl.full([BLOCK_D], -1, tl.int32)
        # Rows at or past the length are never neighbours: the walks skip the tiles that hold only
        # such rows, so a preallocated cache's unwritten tail costs each of its tiles a bounded walk.
        j = tl.minimum(tile - 1, (length - 1) // BLOCK_S)
        while (tl.max((need & (before < 0)).to(tl.int32)) > 0) & (j >= 0):
            whole = _tile_is_whole(whole_ptr, lead, TILES, j, BLOCK_D)  # its last row kept in every column
            latest = tl.load(last_ptr + (lead * TILES + j) * D + cols, mask=in_cols & ~whole, other=-1)
            before = tl.where(before < 0, tl.where(whole, j * BLOCK_S + BLOCK_S - 1, latest), before)
            j -= 1
        need = tl.max((todo & (nxt < 0)).to(tl.int32), 0) > 0
        after = tl.full([BLOCK_D], -1, tl.int32)
        j = tile + 1
        while (tl.max((need & (after < 0)).to(tl.int32)) > 0) & (j * BLOCK_S < length):
            whole = _tile_is_whole(whole_ptr, lead, TILES, j, BLOCK_D)  # its first row kept in every column
            earliest = tl.where(whole, j * BLOCK_S, tl.load(first_ptr + (lead * TILES + j) * D + cols, mask=in_cols & ~whole, other=S))
            after = tl.where((after < 0) & (earliest < S), earliest, after)
            j += 1
        prev = tl.where(prev < 0, before[None, :], prev)
        nxt = tl.where(nxt < 0, after[None, :], nxt)
        has_prev, has_next = prev >= 0, nxt >= 0
        base = lead * S * D
        offsets = base + rows[:, None].to(tl.int64) * D + cols[None, :]
        if FROM_DECODED:
            # A value with no neighbour stays as the decode wrote it: not written again.
            previous = _dequantized_at(decoded_ptr, dq_ptr, stored_ptr, flags_ptr, lead * S + prev.to(tl.int64), cols[None, :], group_cols,
                                       todo & has_prev, G, D, HAS_ZERO, HAS_ROW_FLAGS, ROW_BYTES, SLOT_BITS, PTX)
            following = _dequantized_at(decoded_ptr, dq_ptr, stored_ptr, flags_ptr, lead * S + nxt.to(tl.int64), cols[None, :],
                                        group_cols, todo & has_next, G, D, HAS_ZERO, HAS_ROW_FLAGS, ROW_BYTES, SLOT_BITS, PTX)
            filled = tl.where(has_prev & has_next, (previous + following) * 0.5, tl.where(has_prev, previous, following))
            tl.store(x_ptr + offsets, _cast_for(filled, x_ptr), mask=todo & (has_prev | has_next))
        else:
            previous = tl.load(x_ptr + base + prev.to(tl.int64) * D + cols[None, :], mask=todo & has_prev, other=0.0)
            following = tl.load(x_ptr + base + nxt.to(tl.int64) * D + cols[None, :], mask=todo & has_next, other=0.0)
            read = tl.load(x_ptr + offsets, mask=todo, other=0.0)
            filled = tl.where(has_prev & has_next, (previous + following) * 0.5,
                              tl.where(has_prev, previous, tl.where(has_next, following, read)))
            tl.store(x_ptr + offsets, filled, mask=todo)


def _flat_grid(lead: int, per_lead: int) -> tuple[int]:
    """One grid axis of ``lead * per_lead`` programs, the kernel splitting its id: CUDA caps the
    second and third axes at 65,535, which a sequence of 2M rows (65,536 tiles of 32) reaches."""
    if lead * per_lead >= 2**31:
        raise ValueError(f"{lead} sequences of {per_lead} programs exceed CUDA's grid ({lead * per_lead} >= 2^31)")
    return (lead * per_lead,)


def interpolate_unit_erasures_(
    x: torch.Tensor,
    unit_status: torch.Tensor,
    erased_status: int,
    values_per_unit: int = 1,
    unit_of_value: torch.Tensor | None = None,
    group_erased: torch.Tensor | None = None,
    lengths: torch.Tensor | None = None,
    decoded: tuple[torch.Tensor, torch.Tensor] | None = None,
    row_flags: torch.Tensor | None = None,
    stored: torch.Tensor | None = None,
    slot_bits: int = 4,
) -> torch.Tensor:
    """:func:`ecc_tensor.interp.interpolate_erasures` along dim -2 of a contiguous float32
    CUDA tensor ``x`` ``[..., S, D]``, in place, with the erasures given per unit rather than
    per value, so that no mask of ``x``'s size is built. With ``decoded``, the INT4 values
    (uint8 ``[..., S, D]``) and the scales (float32 ``[..., S, G]``, then ``G`` zero points
    where it has ``2 G`` columns) ``x`` was dequantized from, ``x`` may be float16 or bfloat16:
    the neighbours are dequantized again in float32, their mean taken and cast as PyTorch
    casts, the values of ``interpolate_erasures`` over the float32 dequantization, cast.
    Value ``(r, c)`` is erased where

    - ``unit_status[..., r, u] == erased_status`` for its unit ``u`` (``c // values_per_unit``,
      or ``unit_of_value[c]``; ``unit_status`` ``[..., S, U]`` uint8);
    - ``group_erased[..., r, g]`` holds for its group ``g = c // (D / G)`` (``group_erased``
      bool ``[..., S, G]``, ``G`` dividing ``D``: a detected scale or zero point);
    - ``r >= lengths[...]`` (an int tensor broadcastable to ``[...]``): an unwritten row.

    ``row_flags`` (uint8 ``[..., S]``), where given, says which rows hold a unit with
    ``erased_status`` (bit 0): ``unit_status`` is read only in those rows (the decode stores it
    only there). With ``decoded`` it also says which rows hold a unit that is not clean (bit 1):
    ``decoded``'s values are read only there, and elsewhere from ``stored`` (uint8 ``[..., S,
    row_bytes]``, the codewords), whose clean rows hold value ``c`` at bits ``c * slot_bits``
    to ``c * slot_bits + 3``."""
    dtypes = (torch.float32, torch.float16, torch.bfloat16) if decoded is not None else (torch.float32,)
    if x.dtype not in dtypes or not x.is_contiguous() or x.dim() < 2:
        raise ValueError(f"the interpolation kernels take a contiguous tensor [..., S, D] of {dtypes}, got {x.dtype} {tuple(x.shape)}")
    if x.numel() == 0:
        return x
    seq, dim = x.shape[-2:]
    lead_shape = x.shape[:-2]
    lead = x.numel() // (seq * dim)
    if unit_status.dtype != torch.uint8 or unit_status.shape[:-1] != x.shape[:-1]:
        raise ValueError(f"unit_status must be uint8 {tuple(x.shape[:-1])} + [units], got {unit_status.dtype} {tuple(unit_status.shape)}")
    if unit_of_value is None and unit_status.shape[-1] * values_per_unit < dim:
        raise ValueError(f"{unit_status.shape[-1]} units of {values_per_unit} values do not cover {dim} columns")
    groups = 1 if group_erased is None else group_erased.shape[-1]
    if group_erased is not None and (dim % groups or group_erased.shape[:-1] != x.shape[:-1]):
        raise ValueError(f"group_erased must be {tuple(x.shape[:-1])} + [groups dividing {dim}], got {tuple(group_erased.shape)}")
    if decoded is not None:
        values, scales = decoded
        if values.dtype != torch.uint8 or values.shape != x.shape:
            raise ValueError(f"decoded values must be uint8 {tuple(x.shape)}, got {values.dtype} {tuple(values.shape)}")
        if scales.dtype != torch.float32 or scales.shape[:-1] != x.shape[:-1] or scales.shape[-1] not in (groups, 2 * groups):
            raise ValueError(f"decoded scales must be float32 {tuple(x.shape[:-1])} + [{groups} or {2 * groups}], "
                             f"got {scales.dtype} {tuple(scales.shape)}")
        decoded = (values.contiguous(), scales.contiguous())
    if row_flags is not None and (row_flags.dtype != torch.uint8 or row_flags.shape != x.shape[:-1]):
        raise ValueError(f"row_flags must be uint8 {tuple(x.shape[:-1])}, got {row_flags.dtype} {tuple(row_flags.shape)}")
    reads_stored = decoded is not None and row_flags is not None
    if reads_stored and (stored is None or stored.dtype != torch.uint8 or stored.shape[:-1] != x.shape[:-1]
                         or stored.shape[-1] * 8 < dim * slot_bits or slot_bits not in (4, 8)):
        raise ValueError(f"with decoded values and row flags, stored must be the uint8 codewords {tuple(x.shape[:-1])} + [row bytes] "
                         f"holding {dim} values {slot_bits} bits apart (4 or 8), got "
                         f"{None if stored is None else (stored.dtype, tuple(stored.shape))}")
    unit_status = unit_status.contiguous()
    group_flags = unit_status if group_erased is None else group_erased.to(torch.uint8).contiguous()
    unit_map = unit_status if unit_of_value is None else unit_of_value.to(device=x.device, dtype=torch.int32).contiguous()
    per_sequence = unit_status if lengths is None else lengths.to(device=x.device, dtype=torch.int64).expand(lead_shape).contiguous()
    tiles = triton.cdiv(seq, _BLOCK_S)
    first = torch.empty(lead, tiles, dim, dtype=torch.int32, device=x.device)
    last = torch.empty_like(first)
    whole = torch.empty(lead, tiles, dtype=torch.uint8, device=x.device)
    shape = dict(D=dim, GROUP=dim // groups, ERASED=erased_status, HAS_GROUPS=group_erased is not None,
                 HAS_ROW_FLAGS=row_flags is not None, HAS_LENGTHS=lengths is not None, VALUES_PER_UNIT=values_per_unit,
                 UNIT_MAP=unit_of_value is not None,
                 BLOCK_S=_BLOCK_S, BLOCK_D=triton.next_power_of_2(dim), BLOCK_G=triton.next_power_of_2(groups))
    flags = unit_status if row_flags is None else row_flags.contiguous()
    erasures = (unit_status, unit_map, group_flags, per_sequence, flags, first, last, whole, seq, tiles, unit_status.shape[-1], groups)
    wrap_triton(_tile_kept_bounds_kernel)[_flat_grid(lead, triton.cdiv(tiles, _TILES_PER_SUMMARY))](
        *erasures, TILES_PER_PROGRAM=_TILES_PER_SUMMARY, **shape)
    kept = decoded if decoded is not None else (x, x)  # not read without FROM_DECODED
    codewords = stored.contiguous() if reads_stored else x  # not read without both
    wrap_triton(_interpolate_kernel)[_flat_grid(lead, tiles)](
        x, *erasures[:8], *kept, codewords, *erasures[8:], ROW_BYTES=codewords.shape[-1] if reads_stored else 0,
        SLOT_BITS=slot_bits, FROM_DECODED=decoded is not None,
        HAS_ZERO=decoded is not None and decoded[1].shape[-1] == 2 * groups,
        PTX=x.device.type == "cuda" and torch.version.hip is None, **shape)
    return x


def interpolate_erasures_(x: torch.Tensor, erased: torch.Tensor) -> torch.Tensor:
    """:func:`ecc_tensor.interp.interpolate_erasures` along dim -2 of a contiguous float32
    CUDA tensor ``x`` ``[..., S, D]``, in place; ``erased`` bool, broadcastable to ``x``."""
    mask = erased.expand(x.shape).to(torch.uint8).contiguous()  # not .view: inductor cannot view bool as uint8
    return interpolate_unit_erasures_(x, mask, 1)


def interpolate_decoded_(
    x: torch.Tensor,
    status: torch.Tensor,
    layout: StorageLayout,
    group_erased: torch.Tensor | None = None,
    lengths: torch.Tensor | None = None,
    decoded: tuple[torch.Tensor, torch.Tensor] | None = None,
    row_flags: torch.Tensor | None = None,
    stored: torch.Tensor | None = None,
) -> torch.Tensor:
    """:func:`ecc_tensor.interp.interpolate_decoded` on CUDA (registered by :mod:`ecc_tensor.ops`):
    ``x`` float32 is filled in place when contiguous, else a contiguous copy of it; with
    ``decoded`` (:func:`interpolate_unit_erasures_`), ``x`` is the decode's float16 or
    bfloat16 output; ``row_flags``: which rows hold a detected codeword (only their statuses are
    read) and, with ``decoded``, which hold one not clean (only their decoded values are read;
    the others' come from ``stored``, the codewords of ``layout``)."""
    units = lanes.value_units(layout.head_dim, x.device) if layout.lanes else None
    # A clean row's data bits: values two a byte (int4, Golay's lanes, SECDED's blocks), or one
    # Hamming codeword a byte, its data in the low nibble.
    slot_bits = 8 if layout.unit_values == 1 and not layout.nibbles else 4
    if stored is not None and layout.unit_values > 1 and not (layout.nibbles or layout.lanes or layout.blocks):
        raise ValueError(f"{layout.codec_name}'s units one after another do not hold a row's values in INT4 order")
    return interpolate_unit_erasures_(x.contiguous(), status, STATUS_DETECTED, layout.codec.values_per_codeword, units,
                                      group_erased, lengths, decoded, row_flags, stored, slot_bits)
