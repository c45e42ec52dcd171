"""The two Triton kernels: the decode-attention kernel (one program per (sequence, KV head)
and split; its main loop reads a block by one of the read paths of ``ecc_tensor.ops.attention``)
and the kernel that combines the splits' partials."""

from __future__ import annotations

import triton
import triton.language as tl

from ..codec_kernels import (
    _count,
    _syndromes,
    _unit_value,
)
from ..float_casts import _cast_for
from ..launch_options import _after_previous_launch, _launch_dependents_late
from .blocks import _block_codewords, _block_slab
from .clean_meta import _clean_channel_meta, _clean_grouped_meta, _clean_rows_meta, _clean_value_meta
from .operands import _k_operand, _k_operand_order, _slot_tile, _unit_words, _v_operand_column, _v_operand_values, _word_values
from .softmax import (_channel_scaled_queries, _folded_scales_softmax, _grouped_scales_softmax, _online_softmax, _pow2_at_least, _pv,
                      _pv_float, _qk_float, _rescaled, _visible_scores)
from ..byte_words import _word_syndromes
from ..lane_words import _lane_row_syndromes
from .syndromes import _block_row_syndromes
from .row_meta import _row_meta, _row_meta_block, _rows_to_tile
from .status_counts import _status_fields, _sum_counts
from .units import _block_state, _decode_block, _decode_block_words, _kv_slot, _meta_block, _next_power_of_2
from .channel_scales import _channel_scale_rows
from .window import _window_partial

LOG2E = 1.4426950408889634


# The lengths' stride is not specialized on: a cache's one length expanded over the batch (0) and
# a tensor of lengths (1) run the same compiled kernel.
@triton.jit(do_not_specialize=["stride_lens"])
def _decode_attention_kernel(
    q_ptr, k_ptr, km_ptr, v_ptr, vm_ptr, enc_ptr, syn_ptr, menc_ptr, msyn_ptr,
    seq_lens_ptr,  # each sequence's length (the causal alignment of the queries)
    kv_lens_ptr,  # each sequence's rows stored as codewords (its length, less a full-precision window)
    stride_lens,  # both lengths' element stride: 0 where one length is expanded over the batch
    mask_ptr, counters_ptr, o_part_ptr, ml_part_ptr, defer_ptr,
    ks_ptr,  # with K_CODED_MRB: the rows of float32 words each main program reads its coded channel scales into
    qk_scale,  # softmax scale * log2(e)
    split_len,  # keys per split, a multiple of BLOCK_N
    splits,  # splits per (sequence, KV head) of the main launch; a run-time value, so a growing cache does not recompile
    stride_qb, stride_qh, stride_qm, stride_qd, stride_mb, stride_mh, stride_mq, stride_ms,
    S,  # keys per sequence in storage (max length)
    k_meta_rows,  # K metadata rows per (sequence, KV head): S, or with keys quantized per channel S / K_ROW_DIV
    program_splits,  # consecutive splits one program attends: 1 in the main launch
    kw_ptr, vw_ptr, o_window_ptr, ml_window_ptr,  # the full-precision window (WINDOW) and its partials
    W,  # the window's rows
    HKV: tl.constexpr, GQA: tl.constexpr, LQ: tl.constexpr, D: tl.constexpr, K: tl.constexpr,
    ROW_BYTES: tl.constexpr, UNITS: tl.constexpr, UNIT_VALUES: tl.constexpr, UNIT_BYTES: tl.constexpr, LANES_D: tl.constexpr,
    GROUPS: tl.constexpr, GROUP: tl.constexpr, DECODE: tl.constexpr, HAS_ZERO: tl.constexpr, INTERP: tl.constexpr, DEFER: tl.constexpr,
    DEFERRED: tl.constexpr, COUNT_DEFERRED: tl.constexpr,
    HAS_MASK: tl.constexpr, MASK_ROWS: tl.constexpr, CAUSAL: tl.constexpr, DOT_PRECISION: tl.constexpr, EMULATE_BF16: tl.constexpr,
    PTX: tl.constexpr,  # inline PTX where it saves instructions (CUDA; the interpreter runs Triton ops)
    SPLIT_P: tl.constexpr, NIBBLE: tl.constexpr, PAR_LO: tl.constexpr, PAR_HI: tl.constexpr, FLIP_LO: tl.constexpr, FLIP_HI: tl.constexpr,
    DET: tl.constexpr, PBITS: tl.constexpr, C0: tl.constexpr, C1: tl.constexpr, C2: tl.constexpr, C3: tl.constexpr,
    PMASK: tl.constexpr, PO_SYN: tl.constexpr, MK: tl.constexpr, MPO_SYN: tl.constexpr,
    # The metadata (ecc_tensor.metadata): row bytes, units of MUV values and MUB bytes, codewords
    # counted per row; META_WORDS: 32-bit words per row where the clean paths load words.
    MRB: tl.constexpr, META_UNITS: tl.constexpr, MUV: tl.constexpr, MUB: tl.constexpr, META_STATUS_COLS: tl.constexpr,
    META_WORDS: tl.constexpr, META_LANES: tl.constexpr,
    META_DIRTY: tl.constexpr,  # > 0: V's grouped scales as channel_scales.py read them, each row's dirty flag at this word
    PACKED: tl.constexpr, CLEAN_UNITS: tl.constexpr, SLOT_BITS: tl.constexpr, WORDS: tl.constexpr, BLOCK_W: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_U: tl.constexpr, PART_COLS: tl.constexpr,
    LANES: tl.constexpr,  # the lane path: Golay's lane layout at head_dim 128, clean blocks as words
    BLOCKS: tl.constexpr,  # SECDED(72,64)'s blocks layout (codec_kernels.block_offsets; 0 otherwise): clean blocks as words
    # Keys quantized per channel (CHANNEL_KEYS): one K metadata row of K_GROUPS = D channel
    # scales per K_ROW_DIV rows, in units of K_MUV values and K_MUB bytes; otherwise the K_*
    # constants are V's. The word path folds a block's channel scales into the queries.
    CHANNEL_KEYS: tl.constexpr, K_GROUPS: tl.constexpr, K_GROUP: tl.constexpr, K_META_UNITS: tl.constexpr, K_MUV: tl.constexpr,
    K_MUB: tl.constexpr, K_MRB: tl.constexpr, K_META_LANES: tl.constexpr, K_META_STATUS_COLS: tl.constexpr, K_ROW_DIV: tl.constexpr,
    K_META_WORDS: tl.constexpr,
    K_META_DIRTY: tl.constexpr,  # > 0: K's channel (or grouped) scales as channel_scales.py read them, each row's dirty flag at this word
    # > 0: the main launch's programs read their coded channel scales first (rows of K_CODED_MRB
    # bytes, the first K_CODED_BASE bytes past a word)
    # into ks_ptr's rows of float32 words, which the loop then reads (channel_scales.py).
    K_CODED_MRB: tl.constexpr, K_CODED_BASE: tl.constexpr,
    # The main launch's program ``splits`` of each (sequence, KV head) attends the full-precision
    # window (window.py) into its partials, as the combine kernel lays them out.
    WINDOW: tl.constexpr, WINDOW_BLOCK_D: tl.constexpr, WINDOW_UNIT_VALUES: tl.constexpr, WINDOW_BLOCK_U: tl.constexpr,
    GDC: tl.constexpr,  # launches may be dependent (launch_options.dependent_launches)
    SCALE_ROWS: tl.constexpr,  # keys per channel on the word paths: rows of channel scales an outer step (1 or 2)
):
    _after_previous_launch(GDC)
    bh = tl.program_id(0)
    program = tl.program_id(1)
    if WINDOW:
        if program == splits:
            _window_partial(bh, q_ptr, kw_ptr, vw_ptr, seq_lens_ptr, kv_lens_ptr, stride_lens, mask_ptr, o_window_ptr, ml_window_ptr,
                            qk_scale, stride_qb, stride_qh, stride_qm, stride_qd, stride_mb, stride_mh, stride_mq, stride_ms, W,
                            HKV, GQA, LQ, D, BLOCK_M, WINDOW_BLOCK_D, 16, HAS_MASK, MASK_ROWS, CAUSAL, DOT_PRECISION, EMULATE_BF16,
                            SPLIT_P, WINDOW_UNIT_VALUES, WINDOW_BLOCK_U, PART_COLS)
            return
    b = bh // HKV
    # The codeword rows: read, counted, interpolation neighbours; a length past the storage reads
    # every stored row and no further, as the reference does.
    seq_len = tl.minimum(tl.load(kv_lens_ptr + b * stride_lens).to(tl.int32), S)
    total_len = tl.load(seq_lens_ptr + b * stride_lens).to(tl.int32)
    start = program * program_splits * split_len
    end = tl.minimum(start + program_splits * split_len, seq_len)

    m = tl.arange(0, BLOCK_M)
    defer_base = bh.to(tl.int64) * splits * (split_len // BLOCK_N) + start // BLOCK_N  # this program's first flag
    if DEFERRED:
        # Most programs of the deferred launch find nothing to do: read all their flags at
        # once (not one dependent load per block) and, if none is set, write an empty partial
        # and stop before the queries are loaded. Each takes several splits
        # (``plan_deferred``): a launch of one program per split took 20 us to find nothing
        # (H100, batch 8, 32k), its programs running a few per SM.
        n_blocks = tl.cdiv(end - start, BLOCK_N)
        flag_ids = tl.arange(0, 128)
        pending = 0
        for f0 in range(0, n_blocks, 128):
            flags = tl.load(defer_ptr + defer_base + f0 + flag_ids, mask=f0 + flag_ids < n_blocks, other=0)
            pending += tl.sum(flags.to(tl.int32), axis=0)
        if pending == 0:
            empty = bh.to(tl.int64) * (2 * splits) + splits + program
            tl.store(ml_part_ptr + (empty * BLOCK_M + m) * 2, tl.full([BLOCK_M], float("-inf"), tl.float32))
            tl.store(ml_part_ptr + (empty * BLOCK_M + m) * 2 + 1, tl.zeros([BLOCK_M], tl.float32))
            return
    m_ok = m < GQA * LQ
    head = (bh % HKV) * GQA + m // LQ
    qi = m % LQ
    # Unit tiles: unit u holds values u * UNIT_VALUES + slot. The packed path (and the repair
    # pass of the one-byte codes, whose unit is one value) sees values in row order instead.
    u = tl.arange(0, BLOCK_U)
    u_ok = u < UNITS
    w = tl.arange(0, BLOCK_W)
    w_ok = w < WORDS

    # The queries, one [BLOCK_M, BLOCK_U] tile per slot (value u * UNIT_VALUES + slot).
    q_row = q_ptr + b.to(tl.int64) * stride_qb + head[:, None] * stride_qh + qi[:, None] * stride_qm
    q_col = _unit_value(u, 0, UNIT_VALUES, LANES_D)
    col0_ok = u_ok & (q_col < D)
    # The word paths' tiles hold values, in row order until permuted below (the one-byte codes'
    # deferred launch too: their unit is one value).
    VALUE_TILES: tl.constexpr = PACKED or ((LANES or BLOCKS) and not DEFERRED)
    if VALUE_TILES or BLOCKS:  # the blocks layout's deferred launch attends values in row order too
        q_col = u
        col0_ok = u < D
    q0 = tl.load(q_row + q_col[None, :] * stride_qd, mask=m_ok[:, None] & col0_ok[None, :], other=0.0)
    if VALUE_TILES and not DEFERRED:  # the deferred launch attends values in row order
        q0 = _k_operand_order(q0, SLOT_BITS)
    if EMULATE_BF16:  # Triton's interpreter cannot multiply bfloat16 tiles: float32 dots of bf16 values
        dtype: tl.constexpr = tl.float32
    else:
        dtype: tl.constexpr = q0.dtype
    q0 = q0.to(dtype)
    q1 = q0
    q2 = q0
    q_col1 = _unit_value(u, 1, UNIT_VALUES, LANES_D)
    q_col2 = _unit_value(u, 2, UNIT_VALUES, LANES_D)
    col1_ok = u_ok & (q_col1 < D)
    col2_ok = u_ok & (q_col2 < D)
    if UNIT_VALUES > 1 and not (VALUE_TILES or BLOCKS):
        q1 = tl.load(q_row + q_col1[None, :] * stride_qd, mask=m_ok[:, None] & col1_ok[None, :], other=0.0).to(dtype)
    if UNIT_VALUES > 2 and not (VALUE_TILES or BLOCKS):
        q2 = tl.load(q_row + q_col2[None, :] * stride_qd, mask=m_ok[:, None] & col2_ok[None, :], other=0.0).to(dtype)
    CHUNKED: tl.constexpr = CHANNEL_KEYS and VALUE_TILES and not DEFERRED
    # bfloat16 queries where the scales fold into the dots (the main launch of the clean paths):
    # the dots take float16 operands, as the FP8 kernel's do. The INT4 values are exact in
    # either; the weights p * s / v_unit in [0, 1] keep 11 bits in one float16 dot, where
    # bfloat16 took two dots for 16 (SPLIT_P); the queries are divided by a power of two at
    # least their row's largest |q| (q_unit: exact, no float16 overflow whatever they hold),
    # rounded to float16, 8x finer than bfloat16, and the scores multiplied back by it. Over
    # keys per channel (CHUNKED) the queries take each block's channel scales first (below).
    HALF_OPERANDS: tl.constexpr = (EMULATE_BF16 or dtype == tl.bfloat16) and (VALUE_TILES or CLEAN_UNITS) and not DEFERRED
    OP_DTYPE: tl.constexpr = tl.float16 if HALF_OPERANDS else dtype
    PV_SPLIT: tl.constexpr = SPLIT_P and not HALF_OPERANDS
    q_unit = tl.full([BLOCK_M], 1.0, tl.float32)
    if HALF_OPERANDS and not CHUNKED:
        top = tl.max(tl.abs(q0.to(tl.float32)), axis=1)
        if UNIT_VALUES > 1 and not (VALUE_TILES or BLOCKS):
            top = tl.maximum(top, tl.max(tl.abs(q1.to(tl.float32)), axis=1))
        if UNIT_VALUES > 2 and not (VALUE_TILES or BLOCKS):
            top = tl.maximum(top, tl.max(tl.abs(q2.to(tl.float32)), axis=1))
        q_unit = _pow2_at_least(top)
        q0 = (q0.to(tl.float32) / q_unit[:, None]).to(tl.float16)
        q1 = (q1.to(tl.float32) / q_unit[:, None]).to(tl.float16)
        q2 = (q2.to(tl.float32) / q_unit[:, None]).to(tl.float16)
    # The zero-point term where scales fold into the dots: of the queries as the dots take them.
    q_sum = tl.sum(q0.to(tl.float32), axis=1)
    if UNIT_VALUES > 1 and not VALUE_TILES:
        q_sum += tl.sum(q1.to(tl.float32), axis=1)
    if UNIT_VALUES > 2 and not VALUE_TILES:
        q_sum += tl.sum(q2.to(tl.float32), axis=1)
    q_sum = q_sum * q_unit
    # Grouped scales on the word path (GROUPED): the queries as GT * BLOCK_M rows, row g * BLOCK_M
    # + m query row m over group g's columns (zero elsewhere), so that one dot gives every
    # group's products and the accumulator a row per group and query row, each column's own
    # group kept at the end (_grouped_scales_softmax). At GQA's 4 query rows the MMAs pad to 8
    # anyway: four groups take twice the MMAs of one scale a row, not four times.
    GROUPED: tl.constexpr = PACKED and GROUPS > 1 and not DEFERRED
    GT: tl.constexpr = _next_power_of_2(GROUPS) if GROUPED else 1  # groups in the tiles (padding ones past GROUPS)
    g_ids = tl.arange(0, GT)
    q_groups = q0
    q_group_sums = tl.zeros([GT, BLOCK_M], tl.float32)
    if GROUPED:
        tl.static_assert(not CHANNEL_KEYS)
        k_group = tl.max(_k_operand_order(tl.zeros([BLOCK_M, BLOCK_U], tl.int32) + u[None, :], SLOT_BITS), axis=0) // GROUP
        q_by_group = tl.where(k_group[None, None, :] == g_ids[:, None, None], q0[None, :, :], 0.0)
        q_groups = tl.reshape(q_by_group, [GT * BLOCK_M, BLOCK_U])
        q_group_sums = tl.sum(q_by_group.to(tl.float32), axis=2) * q_unit[None, :]

    store_off = bh.to(tl.int64) * S  # first row of this (sequence, KV head) in storage
    k_base = k_ptr + store_off * ROW_BYTES
    v_base = v_ptr + store_off * ROW_BYTES
    k_words = k_base.to(tl.pointer_type(tl.uint32))
    v_words = v_base.to(tl.pointer_type(tl.uint32))
    if K_CODED_MRB:
        # The rows of channel scales this split's keys read, each checked once, into rows of
        # float32 words and dirty flags (channel_scales.py) that the loop below reads one block
        # ahead as int4's. Splits start on a block of scales (LaunchPlan), so most rows are
        # read by one program; where two read one, both write the same words. Only on the blocks
        # path, where it beat a launch of its own (plan.channel_scales_in_main_applies).
        if end > start:
            end_row = (end + K_ROW_DIV - 1) // K_ROW_DIV
            for r0 in range(start // K_ROW_DIV, end_row, 2):
                r = r0 + tl.arange(0, 2)
                _channel_scale_rows(km_ptr, ks_ptr, menc_ptr, bh.to(tl.int64) * k_meta_rows + tl.minimum(r, end_row - 1), r < end_row,
                                    tl.num_programs(0) * k_meta_rows, MK, K_META_UNITS, K_CODED_MRB, K_META_WORDS,
                                    K_CODED_BASE, False)
        tl.debug_barrier()  # the words this program's threads wrote, visible to all of them
        km_base = ks_ptr + bh.to(tl.int64) * k_meta_rows * K_MRB
    else:
        km_base = km_ptr + bh.to(tl.int64) * k_meta_rows * K_MRB
    vm_base = vm_ptr + store_off * MRB

    # This program's partial: the main launch's splits, then the deferred launch's programs. Until
    # it is written, after the loop, the launches that decode one scale a row in row order use 6
    # BLOCK_N floats of it as scratch for the rows' decoded metadata (row_meta._rows_to_tile).
    part = bh.to(tl.int64) * (2 * splits) + DEFERRED * splits + program
    block_scratch = o_part_ptr + part * BLOCK_M * PART_COLS
    if BLOCKS and DEFERRED:
        tl.static_assert(6 * BLOCK_N <= BLOCK_M * PART_COLS)
    # The unit path's blocks, one scale a row for K and V: their metadata decoded once a row
    # (row_meta), where the scratch holds it.
    ROW_META: tl.constexpr = DECODE and GROUPS == 1 and K_GROUPS == 1 and K_ROW_DIV == 1 and 6 * BLOCK_N <= BLOCK_M * PART_COLS
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc0 = tl.zeros([GT * BLOCK_M, BLOCK_U], tl.float32)  # GROUPED: a row per group and query row
    acc1 = tl.zeros([BLOCK_M, BLOCK_U], tl.float32)
    acc2 = tl.zeros([BLOCK_M, BLOCK_U], tl.float32)
    # Where the scales fold into the dots (PACKED, CLEAN_UNITS), the accumulators are kept in
    # units of v_unit (the largest V scale so far), so that the float16 weights
    # p * scale / v_unit stay in [0, 1] whatever the scales are.
    v_unit = tl.zeros([], tl.float32)
    # The word path's deferred blocks (one-byte codes in word-aligned rows): decoded four
    # codewords a word, their statuses counted a word at a time (_decode_block_words).
    WORD_DECODE: tl.constexpr = PACKED and DECODE and DEFERRED
    COUNT_COLS: tl.constexpr = BLOCK_W if WORD_DECODE else BLOCK_U
    # Their repair pass's neighbour search reads rows as words too (units._neighbour_rows).
    SEARCH_W: tl.constexpr = BLOCK_W if WORD_DECODE else 0
    n_corrected = tl.zeros([COUNT_COLS], tl.int32)  # per unit (or word) position, summed over the split's rows
    n_parity_only = tl.zeros([COUNT_COLS], tl.int32)
    n_detected = tl.zeros([COUNT_COLS], tl.int32)
    n_meta_corrected = tl.zeros([], tl.int32)  # metadata codewords, over the split's rows
    n_meta_parity_only = tl.zeros([], tl.int32)
    n_meta_detected = tl.zeros([], tl.int32)
    last_visible = total_len - LQ + qi  # causal: the last key each query row may see
    K_AHEAD: tl.constexpr = not DECODE or K_META_DIRTY > 0  # channel scales read as plain words: one block ahead
    # Rows of channel scales an outer step (below; the launch configuration's scale_rows): with
    # two, the key loop, software-pipelined a few blocks deep, restarts half as often, and each
    # key block picks its row's scaled queries. Only where the scales are read a block ahead.
    tl.static_assert(SCALE_ROWS == 1 or SCALE_ROWS == 2)
    CHUNK_ROWS: tl.constexpr = SCALE_ROWS if CHUNKED and K_AHEAD else 1
    if CHUNKED:
        # The channel of each column of q0 (operand order); the queries scaled by a block of
        # rows' channel scales (q_s), with sum_c q_c s_c z_c (zero points), are set per block.
        k_cols = tl.max(_k_operand_order(tl.zeros([BLOCK_M, BLOCK_U], tl.int32) + u[None, :], SLOT_BITS), axis=0)
        k_chan = tl.minimum(k_cols, D - 1)  # the channel scale each column reads (padding columns: the last, then zeroed)
        q_s = q0.to(OP_DTYPE)  # the loop's type
        k_sum = tl.zeros([BLOCK_M], tl.float32)
        k_dirty = tl.zeros([], tl.int32)
        if K_AHEAD:
            # Plain words (int4's scales, or coded ones as channel_scales.py read them) are read
            # one block ahead, so that the load is in flight while the previous block is attended
            # (8 us at batch 8 / 32k on the H200). Coded scales checked here are not: their
            # syndromes, computed at the load, would wait for it anyway, and a second copy of
            # the checker took ptxas from 372 to 632 bytes of spills.
            next_scale, next_zero, next_dirty = _clean_channel_meta(km_base + (start // K_ROW_DIV) * K_MRB, k_chan, menc_ptr, MK,
                                                                    DECODE, HAS_ZERO, K_GROUPS, K_MUV, K_MUB, K_META_WORDS,
                                                                    K_META_DIRTY)
            if CHUNK_ROWS == 2:
                next_row = tl.minimum(start // K_ROW_DIV + 1, k_meta_rows - 1)
                next_scale2, next_zero2, next_dirty2 = _clean_channel_meta(km_base + next_row * K_MRB, k_chan, menc_ptr, MK, DECODE,
                                                                           HAS_ZERO, K_GROUPS, K_MUV, K_MUB, K_META_WORDS, K_META_DIRTY)

    # The main launch attends every block but those it defers (DEFER): the packed path defers
    # every block with a non-zero syndrome, the unit path (with INTERP) those holding an
    # erased unit. A second launch (DEFERRED) attends just those, codeword by codeword, with
    # the neighbour search and interpolation (INTERP), into partials of its own that the
    # combine kernel merges: the online softmax does not care about block order, and the main
    # loop stays free of the rare path's registers.
    count_units: tl.constexpr = DECODE and (COUNT_DEFERRED if DEFERRED else not (PACKED or LANES or CLEAN_UNITS or BLOCKS))
    written = end > start  # in the deferred launch, too: a program with no flag set returned above
    # Keys quantized per channel on the word path (CHUNKED): an outer loop over the blocks of
    # rows that share one row of channel scales, so that the scaled queries are invariant in
    # the inner loop over key blocks. Carried through one loop and changed where a block of
    # scales began, they took a conversion to the dot's operand layout every block and ~90
    # registers more, and the path ran 1.5x the per-token one (H200, benchmarks/RESULTS.md).
    # Every other path runs the outer loop once.
    c0 = start
    while c0 < end:
        c_end = end
        if CHUNKED:
            c_mid = tl.minimum((c0 // K_ROW_DIV + 1) * K_ROW_DIV, end)  # where the step's second row of scales begins
            c_end = tl.minimum((c0 // K_ROW_DIV + CHUNK_ROWS) * K_ROW_DIV, end)
            if K_AHEAD:
                c_scale, c_zero, c_dirty = next_scale, next_zero, next_dirty
                next_row = tl.minimum(c0 // K_ROW_DIV + CHUNK_ROWS, k_meta_rows - 1)
                if CHUNK_ROWS == 2:
                    c_scale2, c_zero2, c_dirty2 = next_scale2, next_zero2, next_dirty2
                    next_row2 = tl.minimum(next_row + 1, k_meta_rows - 1)
                    next_scale2, next_zero2, next_dirty2 = _clean_channel_meta(
                        km_base + next_row2 * K_MRB, k_chan, menc_ptr, MK, DECODE, HAS_ZERO, K_GROUPS, K_MUV, K_MUB, K_META_WORDS,
                        K_META_DIRTY)
                next_scale, next_zero, next_dirty = _clean_channel_meta(km_base + next_row * K_MRB, k_chan, menc_ptr, MK, DECODE,
                                                                        HAS_ZERO, K_GROUPS, K_MUV, K_MUB, K_META_WORDS, K_META_DIRTY)
            else:
                c_scale, c_zero, c_dirty = _clean_channel_meta(km_base + (c0 // K_ROW_DIV) * K_MRB, k_chan, menc_ptr, MK, DECODE,
                                                               HAS_ZERO, K_GROUPS, K_MUV, K_MUB, K_META_WORDS, K_META_DIRTY)
            q_s, q_unit, k_sum, k_dirty = _channel_scaled_queries(q0, k_cols, c_scale, c_zero, c_dirty, D, HALF_OPERANDS, dtype)
            if CHUNK_ROWS == 2:
                q_s2, q_unit2, k_sum2, k_dirty2 = _channel_scaled_queries(q0, k_cols, c_scale2, c_zero2, c_dirty2, D, HALF_OPERANDS,
                                                                          dtype)
        for n0 in range(c0, c_end, BLOCK_N):
            active = True
            if DEFERRED:
                active = tl.load(defer_ptr + defer_base + (n0 - start) // BLOCK_N) != 0
            if active:
                rows = n0 + tl.arange(0, BLOCK_N)
                row_ok = rows < end
                if VALUE_TILES and not DEFERRED:
                    # Words of four codewords (or eight int4 values), clean blocks only: a block
                    # with any non-zero syndrome is left to the deferred launch. With LANES, the
                    # data words of Golay's lane layout, which read as an int4 row.
                    # Rows past the split's end are read, from the storage's rows (clamped to its
                    # last), rather than masked: a mask costs instructions on every word, while
                    # those rows' scores are masked anyway.
                    # Offsets within one (sequence, head) slab fit in 32 bits.
                    row_words = tl.minimum(rows, S - 1) * (ROW_BYTES // 4)
                    word_offs = row_words[:, None] + w[None, :]
                    if BLOCK_W == WORDS:
                        kw = tl.load(k_words + word_offs)
                        vw = tl.load(v_words + word_offs)
                    else:
                        kw = tl.load(k_words + word_offs, mask=w_ok[None, :], other=0)
                        vw = tl.load(v_words + word_offs, mask=w_ok[None, :], other=0)
                    # The rows' scales (and zero points), their codewords' syndromes checked as the
                    # values' are: a dirty one defers the block too.
                    q_term = q_sum
                    q_op = q0
                    s_unit = q_unit  # the scores' factor with float16 operands (HALF_OPERANDS)
                    if GROUPED:
                        meta_rows = tl.minimum(rows, S - 1)
                        meta_groups = tl.minimum(g_ids, GROUPS - 1)  # padding groups (GT > GROUPS) read the last
                        k_scale, k_zero, k_meta_dirty = _clean_grouped_meta(
                            km_base, meta_rows, meta_groups, menc_ptr, MK, DECODE, HAS_ZERO, K_GROUPS, K_META_WORDS, K_META_DIRTY, K_MUV,
                            K_MUB, K_MRB)
                        v_scale, v_zero, v_meta_dirty = _clean_grouped_meta(
                            vm_base, meta_rows, meta_groups, menc_ptr, MK, DECODE, HAS_ZERO, GROUPS, META_WORDS, META_DIRTY, MUV, MUB, MRB)
                        # Rows past the sequence: the pass did not write their words (not read as dirty).
                        meta_dirty = tl.where(row_ok[:, None], k_meta_dirty | v_meta_dirty, 0)
                    elif CHANNEL_KEYS:
                        v_scale, v_zero, meta_dirty = _clean_value_meta(
                            vm_base, tl.minimum(rows, S - 1), menc_ptr, MK, DECODE, HAS_ZERO, META_WORDS, META_LANES, META_UNITS, MUV,
                            MUB, MRB)
                        # The scales are in the queries: the rows' K scale is 1, and their zero-point
                        # term sum_c q_c s_c z_c (k_zero 1 times q_term).
                        k_scale = tl.full([BLOCK_N], 1.0, tl.float32)
                        k_zero = k_scale
                        q_op = q_s
                        q_term = k_sum
                        block_dirty = k_dirty
                        if CHUNK_ROWS == 2:  # the block's row of scales: the step's first or second
                            second = n0 >= c_mid
                            q_op = tl.where(second, q_s2, q_s)
                            s_unit = tl.where(second, q_unit2, q_unit)
                            q_term = tl.where(second, k_sum2, k_sum)
                            block_dirty = tl.where(second, k_dirty2, k_dirty)
                        meta_dirty = meta_dirty | block_dirty
                    else:
                        k_scale, k_zero, v_scale, v_zero, meta_dirty = _clean_rows_meta(
                            km_base, vm_base, tl.minimum(rows, S - 1), menc_ptr, MK, DECODE, HAS_ZERO, META_WORDS, META_LANES, META_UNITS,
                            MUV, MUB, MRB)
                    deferred = 0
                    if LANES:
                        # The parity words: 16 after the data, and the row's last. As on the
                        # one-byte codes' path, rows past the split's end count unmasked.
                        dirty = _lane_row_syndromes(kw, tl.load(k_words + word_offs + WORDS), tl.load(k_words + row_words + 2 * WORDS))
                        dirty |= _lane_row_syndromes(vw, tl.load(v_words + word_offs + WORDS), tl.load(v_words + row_words + 2 * WORDS))
                        dirty = dirty.to(tl.int32, bitcast=True) | meta_dirty
                        deferred = (tl.reduce_or(dirty, None) != 0).to(tl.int32)
                        tl.store(defer_ptr + defer_base + (n0 - start) // BLOCK_N, deferred.to(tl.uint8))
                    elif BLOCKS:
                        # The check bytes: WORDS / 8 words after the data. As above, rows past the
                        # split's end count unmasked.
                        check_offs = row_words[:, None] + WORDS + tl.arange(0, WORDS // 8)[None, :]
                        dirty = _block_row_syndromes(kw, tl.load(k_words + check_offs), BLOCKS, PTX)
                        dirty |= _block_row_syndromes(vw, tl.load(v_words + check_offs), BLOCKS, PTX)
                        dirty = tl.reduce_or(dirty.to(tl.int32, bitcast=True), None) | tl.reduce_or(meta_dirty, None)
                        deferred = (dirty != 0).to(tl.int32)
                        tl.store(defer_ptr + defer_base + (n0 - start) // BLOCK_N, deferred.to(tl.uint8))
                    elif DECODE:
                        # Each K word's syndromes with those of the V word at the same place, then
                        # one reduction (each thread's words first, then the warp). The rows past
                        # the split's end count too, unmasked: a non-zero syndrome there only
                        # defers the block (the deferred launch masks them), and they are rare
                        # (the last block of a sequence; a split ends on a block).
                        dirty = tl.reduce_or(_word_syndromes(kw, vw, C0, C1, C2, C3, PMASK, PTX), None)
                        dirty = dirty.to(tl.int32, bitcast=True) | tl.reduce_or(meta_dirty, None)
                        deferred = (dirty != 0).to(tl.int32)
                        tl.store(defer_ptr + defer_base + (n0 - start) // BLOCK_N, deferred.to(tl.uint8))
                    offset: tl.constexpr = 0.0 if HAS_ZERO else 8.0
                    # Scores as (K q^T)^T: K is the dot's first operand, whose registers the unpacking
                    # writes in place, where as the second operand the queries would be (read from
                    # shared memory, then moved into each mma's operand registers: ~100 moves per
                    # block). The weights then cross to the PV dot through shared memory (1 KiB).
                    # Keys per channel: the queries scaled by the block's channel scales, in float16
                    # with bfloat16 queries (HALF_OPERANDS), the scores rescaled by q_unit after.
                    k_op = _k_operand(_word_values(kw, SLOT_BITS, offset, OP_DTYPE, PTX), BLOCK_U)
                    if GROUPED:
                        q_op = q_groups
                    s = tl.trans(tl.dot(k_op, tl.trans(q_op), input_precision=DOT_PRECISION))
                    if GROUPED:
                        pw, rescale, v_unit, m_i, l_i, zero_term = _grouped_scales_softmax(
                            s, rows, row_ok, q_group_sums, q_unit, k_scale, k_zero, v_scale, v_zero, qk_scale, v_unit, m_i, l_i,
                            m_ok, head, qi, last_visible, deferred, mask_ptr, b, stride_mb, stride_mh, stride_mq, stride_ms,
                            HAS_ZERO, HAS_MASK, MASK_ROWS, CAUSAL)
                    else:
                        if HALF_OPERANDS:
                            s = s * s_unit[:, None]
                        pw, rescale, v_unit, m_i, l_i, zero_term = _folded_scales_softmax(
                            s, rows, row_ok, q_term, k_scale, k_zero, v_scale, v_zero, qk_scale, v_unit, m_i, l_i,
                            m_ok, head, qi, last_visible, deferred, mask_ptr, b, stride_mb, stride_mh, stride_mq, stride_ms,
                            HAS_ZERO, HAS_MASK, MASK_ROWS, CAUSAL)
                    # Golay's lanes keep the product untransposed: transposed, its main launch took
                    # 168 registers instead of 247 yet ran 1.15x slower on the H200. (The V operand
                    # is unpacked after the rescale, as written: unpacked before it, int4's launch
                    # over per-channel keys took 255 registers instead of 168 with bfloat16.)
                    acc0 = _pv(_rescaled(acc0, rescale), pw, _v_operand_values(vw, SLOT_BITS, offset, OP_DTYPE, PTX), OP_DTYPE, PV_SPLIT,
                               DOT_PRECISION, not LANES) - zero_term
                elif CLEAN_UNITS and not DEFERRED:
                    # Unit layouts with one scale per row (Golay; one-byte codes in rows that are not
                    # whole words): clean blocks only, as the word path, with the scales folded into
                    # the dots. The syndromes are the only decoding here; a block with any non-zero
                    # one is left to the deferred launch. As on the word path, rows past the split's
                    # end are checked unmasked: a non-zero syndrome there only defers the block.
                    kd = _unit_words(k_base, rows, u, S, ROW_BYTES, UNITS, UNIT_BYTES, LANES_D)
                    vd = _unit_words(v_base, rows, u, S, ROW_BYTES, UNITS, UNIT_BYTES, LANES_D)
                    syndromes = _syndromes(kd, enc_ptr, None, K) | _syndromes(vd, enc_ptr, None, K)
                    k_scale, k_zero, v_scale, v_zero, meta_dirty = _clean_rows_meta(
                        km_base, vm_base, tl.minimum(rows, S - 1), menc_ptr, MK, DECODE, HAS_ZERO, META_WORDS, META_LANES, META_UNITS, MUV,
                        MUB, MRB)
                    dirty = tl.reduce_or(syndromes, None) | tl.reduce_or(meta_dirty, None)
                    deferred = (dirty != 0).to(tl.int32)
                    tl.store(defer_ptr + defer_base + (n0 - start) // BLOCK_N, deferred.to(tl.uint8))
                    offset: tl.constexpr = 0.0 if HAS_ZERO else 8.0
                    s = tl.dot(q0, tl.trans(_slot_tile(kd, 0, offset, OP_DTYPE, PTX)), input_precision=DOT_PRECISION)
                    if UNIT_VALUES > 1:
                        s = tl.dot(q1, tl.trans(_slot_tile(kd, 1, offset, OP_DTYPE, PTX)), s, input_precision=DOT_PRECISION)
                    if UNIT_VALUES > 2:
                        s = tl.dot(q2, tl.trans(_slot_tile(kd, 2, offset, OP_DTYPE, PTX)), s, input_precision=DOT_PRECISION)
                    if HALF_OPERANDS:
                        s = s * q_unit[:, None]
                    pw, rescale, v_unit, m_i, l_i, zero_term = _folded_scales_softmax(
                        s, rows, row_ok, q_sum, k_scale, k_zero, v_scale, v_zero, qk_scale, v_unit, m_i, l_i,
                        m_ok, head, qi, last_visible, deferred, mask_ptr, b, stride_mb, stride_mh, stride_mq, stride_ms,
                        HAS_ZERO, HAS_MASK, MASK_ROWS, CAUSAL)
                    acc0 = _pv(_rescaled(acc0, rescale), pw, _slot_tile(vd, 0, offset, OP_DTYPE, PTX), OP_DTYPE, PV_SPLIT,
                               DOT_PRECISION) - zero_term
                    if UNIT_VALUES > 1:
                        acc1 = _pv(_rescaled(acc1, rescale), pw, _slot_tile(vd, 1, offset, OP_DTYPE, PTX), OP_DTYPE, PV_SPLIT,
                                   DOT_PRECISION) - zero_term
                    if UNIT_VALUES > 2:
                        acc2 = _pv(_rescaled(acc2, rescale), pw, _slot_tile(vd, 2, offset, OP_DTYPE, PTX), OP_DTYPE, PV_SPLIT,
                                   DOT_PRECISION) - zero_term
                elif BLOCKS:
                    # The blocks layout's deferred blocks: each codeword decoded as the reference (its
                    # syndrome, one flipped bit corrected), dequantized in float32 in row order, with
                    # INTERP the erased codewords interpolated.
                    c = tl.arange(0, UNITS)
                    c_ok = row_ok[:, None] & (c < UNITS)[None, :]
                    cw_rows = rows[:, None] + c[None, :] * 0
                    k_lo, k_hi, k_status = _block_codewords(k_base, cw_rows, c_ok, c[None, :], syn_ptr, ROW_BYTES, WORDS * 4, BLOCKS)
                    v_lo, v_hi, v_status = _block_codewords(v_base, cw_rows, c_ok, c[None, :], syn_ptr, ROW_BYTES, WORDS * 4, BLOCKS)
                    # The K metadata as stored (the main launch read the channel-scales pass's words).
                    vm = _row_meta(vm_base, rows, row_ok, menc_ptr, msyn_ptr, MK, MPO_SYN, HAS_ZERO, META_UNITS, MUV, MUB, MRB, META_LANES)
                    vm_corr, vm_po, vm_det = vm[0], vm[1], vm[2]
                    if K_GROUPS == 1:
                        km = _row_meta(km_base, rows, row_ok, menc_ptr, msyn_ptr, MK, MPO_SYN, HAS_ZERO, K_META_UNITS, K_MUV, K_MUB, K_MRB,
                                       K_META_LANES)
                        km_corr, km_po, km_det = km[0], km[1], km[2]
                        km_rows, k_scale, k_offset = _rows_to_tile(km, block_scratch, HAS_ZERO)
                        k_scales = (k_scale, k_offset)
                    else:  # keys per channel: K_GROUPS channels, a row of their scales per K_ROW_DIV rows
                        km_corr, km_po, km_det, km_rows, _, _ = _meta_block(km_base, rows, row_ok, menc_ptr, msyn_ptr, MK, MPO_SYN, DECODE,
                                                                         K_META_UNITS, K_MUV, K_MUB, K_MRB, K_META_LANES, K_ROW_DIV)
                        k_scales = None
                    vm_rows, v_scale, v_offset = _rows_to_tile(vm, block_scratch + 3 * BLOCK_N, HAS_ZERO)
                    kx = _block_slab(k_base, km_base, rows, row_ok, c[None, :], k_lo, k_hi, k_status, km_rows, seq_len, syn_ptr, menc_ptr,
                                     msyn_ptr, INTERP, ROW_BYTES, WORDS * 4, BLOCKS, HAS_ZERO, MK, MPO_SYN, K_META_UNITS, K_MUV, K_MUB,
                                     K_MRB, K_META_LANES, D, k_scales, K_GROUPS, K_ROW_DIV)
                    s = _qk_float(q0, kx, tl.zeros([BLOCK_M, BLOCK_N], tl.float32), dtype, SPLIT_P, DOT_PRECISION)
                    s = (s * qk_scale).to(tl.float32)
                    s = _visible_scores(s, rows, row_ok, m_ok, head, qi, last_visible, 0, mask_ptr, b,
                                        stride_mb, stride_mh, stride_mq, stride_ms, HAS_MASK, MASK_ROWS, CAUSAL)
                    p, alpha, m_i, l_i = _online_softmax(s, m_i, l_i)
                    vx = _block_slab(v_base, vm_base, rows, row_ok, c[None, :], v_lo, v_hi, v_status, vm_rows, seq_len, syn_ptr, menc_ptr,
                                     msyn_ptr, INTERP, ROW_BYTES, WORDS * 4, BLOCKS, HAS_ZERO, MK, MPO_SYN, META_UNITS, MUV, MUB, MRB,
                                     META_LANES, D, (v_scale, v_offset))
                    acc0 = _pv_float(acc0 * alpha[:, None], p, vx, dtype, SPLIT_P, DOT_PRECISION)
                    if count_units:  # per codeword, gathered in the first unit position
                        first = u == 0
                        row_counts = tl.sum(_status_fields(k_status) + _status_fields(v_status), 1)
                        corrected, _, detected = _sum_counts(row_counts, 2 * BLOCK_N * UNITS)
                        n_corrected += tl.where(first, corrected, 0)
                        n_detected += tl.where(first, detected, 0)
                        n_meta_corrected += km_corr + vm_corr
                        n_meta_parity_only += km_po + vm_po
                        n_meta_detected += km_det + vm_det
                elif DEFERRED and INTERP and not CHANNEL_KEYS and UNIT_VALUES > 1:
                    # The repair pass over keys per token: K and V take the same steps with the same
                    # constants, so they run as a loop of two, one copy of the decode, the metadata
                    # decode and the neighbour search in the kernel where unrolled there were two
                    # (compile time: Triton's coalescing pass is quadratic in a kernel's loads; for
                    # Golay's, 157 -> 82 loads, 35 -> 13 s for sm_90a). K's iteration ends in the
                    # block's weights, V's in the accumulators. The loop costs the pass time where
                    # every block is repaired (H100, batch 8 / 32k: 5.8 -> 6.8 ms; clean calls
                    # unchanged). Not at one value a unit (the Hamming codes): there ptxas holds the
                    # loop in 128 registers and spills 4.4 KB a thread, where the unrolled launch
                    # spills 0.7 KB, and the pass ran 4.8x slower (benchmarks/RESULTS.md).
                    tl.static_assert(K_GROUPS == GROUPS and K_META_UNITS == META_UNITS and K_MRB == MRB and K_ROW_DIV == 1)
                    p = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)
                    alpha = tl.zeros([BLOCK_M], tl.float32)
                    for kv in range(2):
                        is_k = kv == 0
                        base = tl.where(is_k, k_base, v_base)
                        meta = tl.where(is_k, km_base, vm_base)
                        data, status = _decode_block(base, rows, row_ok, u, u_ok, enc_ptr, syn_ptr, ROW_BYTES, UNIT_BYTES, LANES_D, K,
                                                     DECODE, NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS, PO_SYN)
                        if ROW_META:
                            m_block, m_scales = _row_meta_block(meta, rows, row_ok, menc_ptr, msyn_ptr, block_scratch, MK, MPO_SYN,
                                                                HAS_ZERO, META_UNITS, MUV, MUB, MRB, META_LANES)
                        else:
                            m_block = _meta_block(meta, rows, row_ok, menc_ptr, msyn_ptr, MK, MPO_SYN, DECODE, META_UNITS, MUV, MUB, MRB,
                                                  META_LANES, 1, GROUPS)
                            m_scales = None
                        m_corr, m_po, m_det, _, _, _ = m_block
                        block = _block_state(
                            base, meta, rows, row_ok, u, u_ok, status, m_block, seq_len, enc_ptr, syn_ptr, menc_ptr, msyn_ptr, True,
                            ROW_BYTES, UNIT_BYTES, UNIT_VALUES, LANES_D, D, K, DECODE, GROUPS, GROUP, HAS_ZERO, META_UNITS, MUV, MUB,
                            MRB, META_LANES, NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS, PO_SYN, MK, MPO_SYN, m_scales)
                        # Each slot's values, dequantized and repaired: K's into the scores, V's into
                        # the accumulators.
                        x0 = tl.zeros([BLOCK_N, BLOCK_U], tl.float32)
                        x1 = x0
                        x2 = x0
                        for slot in tl.static_range(UNIT_VALUES):
                            slot_ok = tl.where(slot == 0, col0_ok, tl.where(slot == 1, col1_ok, col2_ok))
                            x = _kv_slot(data, block, rows, row_ok, u, slot_ok, seq_len, base, meta, enc_ptr, syn_ptr, menc_ptr,
                                         msyn_ptr, slot, True, ROW_BYTES, UNIT_BYTES, UNIT_VALUES, LANES_D, D, K, DECODE, GROUPS,
                                         GROUP, HAS_ZERO, META_UNITS, MUV, MUB, MRB, META_LANES, NIBBLE, PAR_LO, PAR_HI, FLIP_LO,
                                         FLIP_HI, DET, PBITS, PO_SYN, MK, MPO_SYN)
                            if slot == 0:
                                x0 = x
                            elif slot == 1:
                                x1 = x
                            else:
                                x2 = x
                        if is_k:
                            s = _qk_float(q0, x0, tl.zeros([BLOCK_M, BLOCK_N], tl.float32), dtype, SPLIT_P, DOT_PRECISION)
                            if UNIT_VALUES > 1:
                                s = _qk_float(q1, x1, s, dtype, SPLIT_P, DOT_PRECISION)
                            if UNIT_VALUES > 2:
                                s = _qk_float(q2, x2, s, dtype, SPLIT_P, DOT_PRECISION)
                            s = (s * qk_scale).to(tl.float32)
                            s = _visible_scores(s, rows, row_ok, m_ok, head, qi, last_visible, 0, mask_ptr, b,
                                                stride_mb, stride_mh, stride_mq, stride_ms, HAS_MASK, MASK_ROWS, CAUSAL)
                            p, alpha, m_i, l_i = _online_softmax(s, m_i, l_i)
                        else:
                            acc0 = _pv_float(acc0 * alpha[:, None], p, x0, dtype, SPLIT_P, DOT_PRECISION)
                            if UNIT_VALUES > 1:
                                acc1 = _pv_float(acc1 * alpha[:, None], p, x1, dtype, SPLIT_P, DOT_PRECISION)
                            if UNIT_VALUES > 2:
                                acc2 = _pv_float(acc2 * alpha[:, None], p, x2, dtype, SPLIT_P, DOT_PRECISION)
                        if count_units:
                            corrected, parity_only, detected = _sum_counts(_status_fields(status), BLOCK_N)
                            n_corrected += corrected
                            n_parity_only += parity_only
                            n_detected += detected
                            n_meta_corrected += m_corr
                            n_meta_parity_only += m_po
                            n_meta_detected += m_det
                else:
                    repair: tl.constexpr = DEFERRED and INTERP
                    # Decode the block's units (K and V) and their rows' metadata once, then each
                    # slot's values, their scales decoded from the metadata, erasures interpolated in
                    # the repair pass.
                    if WORD_DECODE:
                        k_data, k_status, k_fields, k_any = _decode_block_words(k_base, rows, row_ok, ROW_BYTES, BLOCK_W, C0, C1, C2, C3,
                                                                                PBITS, FLIP_LO, FLIP_HI, DET, PO_SYN, PTX)
                        v_data, v_status, v_fields, v_any = _decode_block_words(v_base, rows, row_ok, ROW_BYTES, BLOCK_W, C0, C1, C2, C3,
                                                                                PBITS, FLIP_LO, FLIP_HI, DET, PO_SYN, PTX)
                    else:
                        k_any = None  # _block_state reduces the erased tile itself
                        v_any = None
                        k_data, k_status = _decode_block(k_base, rows, row_ok, u, u_ok, enc_ptr, syn_ptr, ROW_BYTES, UNIT_BYTES, LANES_D,
                                                         K, DECODE, NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS, PO_SYN)
                        v_data, v_status = _decode_block(v_base, rows, row_ok, u, u_ok, enc_ptr, syn_ptr, ROW_BYTES, UNIT_BYTES, LANES_D,
                                                         K, DECODE, NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS, PO_SYN)
                    if ROW_META:
                        # K's rows handed to the tile before V's are decoded (both first: 4-6x the spills).
                        km_block, k_scales = _row_meta_block(km_base, rows, row_ok, menc_ptr, msyn_ptr, block_scratch, MK, MPO_SYN,
                                                             HAS_ZERO, K_META_UNITS, K_MUV, K_MUB, K_MRB, K_META_LANES)
                        vm_block, v_scales = _row_meta_block(vm_base, rows, row_ok, menc_ptr, msyn_ptr, block_scratch + 3 * BLOCK_N, MK,
                                                             MPO_SYN, HAS_ZERO, META_UNITS, MUV, MUB, MRB, META_LANES)
                    else:
                        km_block = _meta_block(km_base, rows, row_ok, menc_ptr, msyn_ptr, MK, MPO_SYN, DECODE, K_META_UNITS, K_MUV, K_MUB,
                                               K_MRB, K_META_LANES, K_ROW_DIV, K_GROUPS)
                        vm_block = _meta_block(vm_base, rows, row_ok, menc_ptr, msyn_ptr, MK, MPO_SYN, DECODE, META_UNITS, MUV, MUB, MRB,
                                               META_LANES, 1, GROUPS)
                        k_scales = None
                        v_scales = None
                    km_corr, km_po, km_det, km_rows, _, _ = km_block
                    vm_corr, vm_po, vm_det, vm_rows, _, _ = vm_block
                    k_block = _block_state(
                        k_base, km_base, rows, row_ok, u, u_ok, k_status, km_block, seq_len, enc_ptr, syn_ptr, menc_ptr, msyn_ptr, repair,
                        ROW_BYTES, UNIT_BYTES,
                        UNIT_VALUES, LANES_D, D, K, DECODE, K_GROUPS, K_GROUP, HAS_ZERO, K_META_UNITS, K_MUV, K_MUB, K_MRB, K_META_LANES,
                        NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS, PO_SYN, MK, MPO_SYN, k_scales, SEARCH_W, PTX, k_any)
                    # Each slot's keys into the scores. In the repair pass over Golay's keys with a
                    # scale per value (per channel, or in groups) each slot's neighbour search and
                    # decode is large, so the slots run as a loop: one copy in the kernel, not three
                    # (per channel, 249 loads and 89 s to compile for sm_90a, against 533 loads and
                    # 421 s unrolled: benchmarks/RESULTS.md). Elsewhere they are unrolled, the slot a
                    # constant the helpers specialize on.
                    SLOT_LOOP: tl.constexpr = repair and K_GROUPS > 1 and UNIT_VALUES > 1
                    s = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)
                    for unrolled in tl.static_range(1 if SLOT_LOOP else UNIT_VALUES):
                        for looped in range(UNIT_VALUES if SLOT_LOOP else 1):
                            slot = looped if SLOT_LOOP else unrolled
                            q_slot = tl.where(slot == 0, q0, tl.where(slot == 1, q1, q2))
                            slot_ok = tl.where(slot == 0, col0_ok, tl.where(slot == 1, col1_ok, col2_ok))
                            kx = _kv_slot(k_data, k_block, rows, row_ok, u, slot_ok, seq_len, k_base, km_base, enc_ptr, syn_ptr, menc_ptr,
                                          msyn_ptr, slot, repair, ROW_BYTES, UNIT_BYTES, UNIT_VALUES, LANES_D, D, K, DECODE, K_GROUPS,
                                          K_GROUP, HAS_ZERO, K_META_UNITS, K_MUV, K_MUB, K_MRB, K_META_LANES, NIBBLE, PAR_LO, PAR_HI,
                                          FLIP_LO, FLIP_HI, DET, PBITS, PO_SYN, MK, MPO_SYN, K_ROW_DIV, SEARCH_W, PTX)
                            s = _qk_float(q_slot, kx, s, dtype, SPLIT_P, DOT_PRECISION)
                    s = (s * qk_scale).to(tl.float32)

                    deferred = 0
                    if DEFER and not DEFERRED:
                        # A block holding an erased K or V unit, or a row whose scale holds a detected
                        # codeword, is left to the deferred launch.
                        deferred = tl.maximum(tl.max(((k_status == 2) | (v_status == 2)).to(tl.int32)),
                                              tl.max((km_rows | vm_rows).to(tl.int32)))
                        tl.store(defer_ptr + defer_base + (n0 - start) // BLOCK_N, deferred.to(tl.uint8))
                    s = _visible_scores(s, rows, row_ok, m_ok, head, qi, last_visible, deferred, mask_ptr, b,
                                        stride_mb, stride_mh, stride_mq, stride_ms, HAS_MASK, MASK_ROWS, CAUSAL)
                    p, alpha, m_i, l_i = _online_softmax(s, m_i, l_i)

                    # V: the weighted sums, one accumulator per slot.
                    v_block = _block_state(
                        v_base, vm_base, rows, row_ok, u, u_ok, v_status, vm_block, seq_len, enc_ptr, syn_ptr, menc_ptr, msyn_ptr, repair,
                        ROW_BYTES, UNIT_BYTES,
                        UNIT_VALUES, LANES_D, D, K, DECODE, GROUPS, GROUP, HAS_ZERO, META_UNITS, MUV, MUB, MRB, META_LANES,
                        NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS, PO_SYN, MK, MPO_SYN, v_scales, SEARCH_W, PTX, v_any)
                    vx = _kv_slot(v_data, v_block, rows, row_ok, u, col0_ok, seq_len, v_base, vm_base, enc_ptr,
                                  syn_ptr, menc_ptr, msyn_ptr, 0, repair, ROW_BYTES, UNIT_BYTES, UNIT_VALUES, LANES_D, D, K, DECODE, GROUPS,
                                  GROUP, HAS_ZERO,
                                  META_UNITS, MUV, MUB, MRB, META_LANES, NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET, PBITS, PO_SYN, MK,
                                  MPO_SYN, 1, SEARCH_W, PTX)
                    acc0 = _pv_float(acc0 * alpha[:, None], p, vx, dtype, SPLIT_P, DOT_PRECISION)
                    if UNIT_VALUES > 1:
                        vx = _kv_slot(v_data, v_block, rows, row_ok, u, col1_ok, seq_len, v_base, vm_base, enc_ptr,
                                      syn_ptr, menc_ptr, msyn_ptr, 1, repair, ROW_BYTES, UNIT_BYTES, UNIT_VALUES, LANES_D, D, K, DECODE,
                                      GROUPS, GROUP,
                                      HAS_ZERO, META_UNITS, MUV, MUB, MRB, META_LANES, NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET,
                                      PBITS, PO_SYN, MK, MPO_SYN)
                        acc1 = _pv_float(acc1 * alpha[:, None], p, vx, dtype, SPLIT_P, DOT_PRECISION)
                    if UNIT_VALUES > 2:
                        vx = _kv_slot(v_data, v_block, rows, row_ok, u, col2_ok, seq_len, v_base, vm_base, enc_ptr,
                                      syn_ptr, menc_ptr, msyn_ptr, 2, repair, ROW_BYTES, UNIT_BYTES, UNIT_VALUES, LANES_D, D, K, DECODE,
                                      GROUPS, GROUP,
                                      HAS_ZERO, META_UNITS, MUV, MUB, MRB, META_LANES, NIBBLE, PAR_LO, PAR_HI, FLIP_LO, FLIP_HI, DET,
                                      PBITS, PO_SYN, MK, MPO_SYN)
                        acc2 = _pv_float(acc2 * alpha[:, None], p, vx, dtype, SPLIT_P, DOT_PRECISION)

                    if count_units:
                        # Reduced over the block's rows right away: a [BLOCK_N, BLOCK_U] accumulator would
                        # hold a tile's worth of registers through the whole loop.
                        # Three counts in one reduction (_status_fields).
                        if WORD_DECODE:  # four codewords a word: [BLOCK_W] counts
                            corrected, parity_only, detected = _sum_counts(k_fields + v_fields, 8 * BLOCK_N)
                        else:
                            packed = _status_fields(k_status) + _status_fields(v_status)
                            corrected, parity_only, detected = _sum_counts(packed, 2 * BLOCK_N)
                        n_corrected += corrected
                        n_parity_only += parity_only
                        n_detected += detected
                        n_meta_corrected += km_corr + vm_corr
                        n_meta_parity_only += km_po + vm_po
                        n_meta_detected += km_det + vm_det
        c0 = c_end

    if GROUPED:  # each value column from its group's rows
        v_group = _v_operand_column(u, BLOCK_U) // GROUP
        acc0 = tl.sum(tl.where(v_group[None, None, :] == g_ids[:, None, None], tl.reshape(acc0, [GT, BLOCK_M, BLOCK_U]), 0.0), axis=0)
    if (PACKED or LANES or CLEAN_UNITS or BLOCKS) and not DEFERRED:
        acc0 = acc0 * v_unit
        acc1 = acc1 * v_unit
        acc2 = acc2 * v_unit

    # Partial results (``part``): acc of slot i at columns [i * BLOCK_U, (i + 1) * BLOCK_U).
    o_col = u
    if VALUE_TILES and not DEFERRED:
        o_col = _v_operand_column(u, BLOCK_U)
    o_row = o_part_ptr + (part * BLOCK_M + m[:, None]) * PART_COLS
    _launch_dependents_late(GDC)
    # Accumulators are written for the real query rows only (GQA * LQ of the BLOCK_M the dots
    # pad to), and not at all by a program that saw no key (m = -inf): the combine kernel
    # reads neither. The mask has the tile's full shape, as the interpreter wants.
    store_acc = (m[:, None] + u[None, :] * 0) < tl.where(written, GQA * LQ, 0)
    if LANES_D and not VALUE_TILES:
        # Golay's lane layout: every launch writes its partials in value order, the order of
        # the lane path's accumulator, so the unit path scatters its slots to their values.
        tl.store(o_row + q_col[None, :], acc0, mask=store_acc & col0_ok[None, :])
        tl.store(o_row + q_col1[None, :], acc1, mask=store_acc & col1_ok[None, :])
        tl.store(o_row + q_col2[None, :], acc2, mask=store_acc & col2_ok[None, :])
    else:
        tl.store(o_row + o_col[None, :], acc0, mask=store_acc)
        if UNIT_VALUES > 1 and not (VALUE_TILES or BLOCKS):
            tl.store(o_row + BLOCK_U + o_col[None, :], acc1, mask=store_acc)
        if UNIT_VALUES > 2 and not (VALUE_TILES or BLOCKS):
            tl.store(o_row + 2 * BLOCK_U + o_col[None, :], acc2, mask=store_acc)
    tl.store(ml_part_ptr + (part * BLOCK_M + m) * 2, m_i)
    tl.store(ml_part_ptr + (part * BLOCK_M + m) * 2 + 1, l_i)
    if not DEFERRED and program == 0:
        # The codewords read: every key of the sequence, K and V, counted once per (sequence,
        # KV head) rather than once per split (thousands of atomics on one address).
        n_rows = tl.minimum(tl.maximum(seq_len, 0), S).to(tl.int64)
        _count(counters_ptr + 0, 2 * n_rows * (UNITS if DECODE else D))
        if CHANNEL_KEYS:
            k_meta_read = (n_rows + K_ROW_DIV - 1) // K_ROW_DIV * K_META_STATUS_COLS
        else:
            k_meta_read = n_rows * META_STATUS_COLS
        _count(counters_ptr + 6, n_rows * META_STATUS_COLS + k_meta_read)
    if count_units:
        if written:  # programs past their sequence's end have nothing to add to the one address
            # ecc_tensor.counters: corrected, parity-only, detected of the values (1-3) and of
            # the metadata (7-9). Relaxed (the counters are read after the kernel: no ordering,
            # no fences) and none where the count is 0, as almost always.
            _count(counters_ptr + 1, tl.sum(n_corrected.to(tl.int64), axis=0))
            _count(counters_ptr + 2, tl.sum(n_parity_only.to(tl.int64), axis=0))
            _count(counters_ptr + 3, tl.sum(n_detected.to(tl.int64), axis=0))
            _count(counters_ptr + 7, n_meta_corrected.to(tl.int64))
            _count(counters_ptr + 8, n_meta_parity_only.to(tl.int64))
            _count(counters_ptr + 9, n_meta_detected.to(tl.int64))


@triton.jit
def _combine_splits_kernel(
    o_part_ptr, ml_part_ptr, o_window_ptr, ml_window_ptr, out_ptr, stride_ob, stride_oh, stride_om, stride_od,
    splits,  # the main launch's splits per (sequence, KV head)
    parts,  # partials per query row: the main launch's splits, then the deferred launch's programs
    HKV: tl.constexpr, GQA: tl.constexpr, LQ: tl.constexpr, D: tl.constexpr, UNITS: tl.constexpr,
    UNIT_VALUES: tl.constexpr, SLOTS: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_U: tl.constexpr,
    BLOCK_S: tl.constexpr, PART_COLS: tl.constexpr,
    HAS_WINDOW: tl.constexpr,  # one more partial per query row, the full-precision window's (window.py)
    BLOCK_C: tl.constexpr,  # partial columns a program (of SLOTS * BLOCK_U; program_id(2) picks which)
    GDC: tl.constexpr,  # launched dependent on the launch that wrote the partials (launch_options.dependent_launches)
):
    """out = sum_s exp(m_s - M) acc_s / sum_s exp(m_s - M) l_s over the ``parts`` partials of
    one query row (the main launch's splits, then the deferred launch's, if it ran, then the
    window's, ``HAS_WINDOW``), in
    chunks of ``BLOCK_S`` partials with an online rescaling, so that hundreds of splits fit in
    registers and each chunk costs one round of loads (most calls have one chunk); partials
    that saw no key (m = -inf) count for nothing, and rows that saw no key at all are written
    as zeros. A program combines ``BLOCK_C`` of the row's columns: a row's columns over several
    programs keep the SMs busy where there are few rows (small batches)."""
    _after_previous_launch(GDC)
    bh = tl.program_id(0)
    m = tl.program_id(1)
    sp = tl.arange(0, BLOCK_S)
    c = tl.program_id(2) * BLOCK_C + tl.arange(0, BLOCK_C)
    slot = c // BLOCK_U
    u = c % BLOCK_U
    col = u * UNIT_VALUES + slot
    col_ok = (slot < UNIT_VALUES) & (u < UNITS) & (col < D)
    first = bh.to(tl.int64) * (2 * splits)
    m_run = tl.full([], float("-inf"), tl.float32)
    num = tl.zeros([BLOCK_C], tl.float32)
    den = tl.zeros([], tl.float32)
    for s0 in range(0, parts, BLOCK_S):
        part = first + s0 + sp
        seen = s0 + sp < parts
        m_s = tl.load(ml_part_ptr + (part * BLOCK_M + m) * 2, mask=seen, other=float("-inf"))
        l_s = tl.load(ml_part_ptr + (part * BLOCK_M + m) * 2 + 1, mask=seen, other=0.0)
        # Read whatever a partial that saw no key holds (it was never written) and drop it
        # below, rather than wait for m before loading.
        acc = tl.load(o_part_ptr + (part[:, None] * BLOCK_M + m) * PART_COLS + c[None, :],
                      mask=seen[:, None] & col_ok[None, :], other=0.0)
        seen = seen & (m_s != float("-inf"))  # a NaN partial (a NaN score) is kept: the output is NaN, as SDPA's
        m_new = tl.maximum(m_run, tl.max(m_s, axis=0))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        rescale = tl.exp2(m_run - m_safe)  # 0 while m_run = -inf (num, den are 0 then)
        w = tl.where(seen, tl.exp2(m_s - m_safe), 0.0)
        num = num * rescale + tl.sum(tl.where(seen[:, None], acc, 0.0) * w[:, None], axis=0)
        den = den * rescale + tl.sum(l_s * w, axis=0)
        m_run = m_new
    if HAS_WINDOW:
        part = bh.to(tl.int64) * BLOCK_M + m
        m_w = tl.load(ml_window_ptr + part * 2)
        l_w = tl.load(ml_window_ptr + part * 2 + 1)
        seen = m_w != float("-inf")
        acc = tl.load(o_window_ptr + part * PART_COLS + c, mask=col_ok, other=0.0)  # unwritten where m_w = -inf: dropped below
        acc = tl.where(seen, acc, 0.0)
        m_new = tl.maximum(m_run, m_w)
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        w = tl.where(seen, tl.exp2(m_w - m_safe), 0.0)
        rescale = tl.exp2(m_run - m_safe)
        num = num * rescale + acc * w
        den = den * rescale + l_w * w
    out = tl.where(den == 0, 0.0, num / tl.where(den == 0, 1.0, den))  # no key seen: zeros; NaN stays NaN
    b = bh // HKV
    head = (bh % HKV) * GQA + m // LQ
    qi = m % LQ
    ptrs = out_ptr + b.to(tl.int64) * stride_ob + head * stride_oh + qi * stride_om + col * stride_od
    tl.store(ptrs, _cast_for(out, out_ptr), mask=col_ok)
