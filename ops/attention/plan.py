"""Every launch decision, made once per call (``LaunchPlan``): which read path a storage takes,
the kernel's constants, the launch configurations and the splits."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ecc_tensor.codecs import get_codec
from ecc_tensor.metadata import MetadataLayout
from ecc_tensor.storage import StorageLayout

from ..byte_words import nibble_constants
from .channel_scales import channel_scale_words
from ..memo import aligned, memoized
from ..codec_kernels import (
    _cdiv,
    _pow2,
    block_offsets,
    parity_only_syndrome,
)


def _multiprocessors(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count
    return 4


# Fewest keys per split: a split's partial result (written, then read by the combine kernel)
# should stay small next to the codewords it reads. Short sequences go below it where that
# keeps at least two programs per multiprocessor. On the H200 (benchmarks/RESULTS.md, "The
# split plan at small batches"), 256 was 4-10% faster than 512 at batch 1 / 32k and batch 8 /
# 4k on every word path and no slower elsewhere; 128 and below were slower: a one-warp program
# over a few blocks spends its time in the queries' load and the partial's store.
MIN_SPLIT_KEYS = 256
MAX_SPLITS = 256  # per (sequence, KV head): the combine kernel reads every split's partial
# Fewest query rows of a tile (GQA x query tokens, rounded up to a power of two). A tile of 16
# rows for GQA's 4 computed 12 padding rows in every dot; at 4 rows, the H200 ran the default
# configurations 4-8% faster (Hamming(8,4) 229 -> 210 us, Golay 317 -> 296 us at batch 8 / 32k;
# int4 unchanged), bit-identical outputs (benchmarks/RESULTS.md, "Query tiles of GQA's rows").
MIN_BLOCK_M = 4


def _uncapped_programs(num_warps: int) -> int:
    """Programs of ``num_warps`` warps an sm_90 SM holds whatever their registers (255 a thread,
    allocated 256 at a time to a warp, of its 65,536): 8 one-warp programs."""
    return max(1, 65536 // (256 * 32 * num_warps))


def plan_splits(batch_heads: int, seq: int, block_n: int, device: torch.device, waves: int = 4) -> tuple[int, int]:
    """(keys per split, number of splits): about ``waves`` programs per multiprocessor, each
    with a whole number of ``block_n`` keys (key blocks; or, with keys per channel on the word
    paths, blocks of rows that share a row of channel scales, so that no split starts a block
    of scales part way) and at least ``MIN_SPLIT_KEYS`` keys, unless that would leave fewer
    than two programs per multiprocessor."""
    blocks = _cdiv(max(seq, 1), block_n)
    sms = _multiprocessors(device)
    want = max(1, _cdiv(waves * sms, batch_heads))
    fill = _cdiv(2 * sms, batch_heads)
    splits = max(1, min(blocks, MAX_SPLITS, max(min(want, seq // MIN_SPLIT_KEYS), fill)))
    split_len = _cdiv(blocks, splits) * block_n
    return split_len, _cdiv(max(seq, 1), split_len)


def plan_deferred(batch_heads: int, splits: int, device: torch.device, waves: int = 4) -> tuple[int, int]:
    """(splits per program, programs per (sequence, KV head)) of the deferred launch: about
    ``waves`` programs per multiprocessor, as many as run at once. Its programs mostly only
    read their flags, and where every block is dirty the work is the same either way."""
    programs = max(1, min(splits, _cdiv(waves * _multiprocessors(device), batch_heads)))
    program_splits = _cdiv(splits, programs)
    return program_splits, _cdiv(splits, program_splits)


# Fewest partial columns a combine program takes: its loads a warp wide.
MIN_COMBINE_COLS = 32


def combine_tiles(rows: int, cols: int, parts: int, device: torch.device) -> tuple[int, int, int]:
    """(programs per query row, columns a program, partials a chunk) of the combine kernel over
    ``rows`` query rows of ``cols`` partial columns (a power of two) and ``parts`` partials a
    row. A row's columns go to more programs while there are fewer programs than
    multiprocessors (small batches: batch 1 has GQA x KV heads rows, 32 for Llama-3-8B) and each
    keeps ``MIN_COMBINE_COLS``; a program reads its partials in chunks of at most 8192 values (64
    registers a thread), most calls in one."""
    chunks = 1
    while rows * chunks < _multiprocessors(device) and cols // (2 * chunks) >= MIN_COMBINE_COLS:
        chunks *= 2
    block_c = cols // chunks
    return chunks, block_c, min(_pow2(parts), max(16, 8192 // block_c))


# (block_n, num_warps, num_stages, programs per multiprocessor) per storage layout (a codec's
# ``layout``: int4 "nibbles", Hamming "bytes", Golay "lanes"), for the unit path:
# the fastest timed on an H100 (benchmarks/RESULTS.md, batch 8, 32k; Golay's main launch is
# the clean-blocks variant); interpolating variants: the configuration whose compiled kernel
# has no register spills (ptxas -v for sm_90a). The deferred launch takes its warps and
# stages from these, its block size from the main launch. SECDED(72,64)'s "blocks" serve only
# its deferred launch: at 4 warps and 2 stages it held 255 registers and spilled 1.3 KB a
# thread, at 8 warps and 1 stage 248 and none, and a call with sparse faults ran 2.0-2.6x
# faster (H100, batch 8 / 32k, BER 1e-6 and 1e-5: 1,546 -> 769 and 9,291 -> 3,602 us; clean
# calls 182 us either way; benchmarks/RESULTS.md, 2026-12-06). Hamming's was fastest at 4.
# Once that launch decoded its scales a row a thread (row_meta; 118 registers at 8 warps), 4
# warps and 1 stage were fastest: 4 / 8 / 16 warps 286 / 304 / 359 us at 1e-6, 688 / 802 /
# 1,057 at 1e-5 (H100, same shape and call).
_CONFIGS = {"nibbles": (128, 8, 2, 4), "bytes": (32, 4, 2, 4), "lanes": (32, 2, 1, 4), "blocks": (32, 4, 1, 4)}
# The deferred launch's own where it differs from the unit path's main launch: Golay's at 4 warps
# (H100, batch 8 / 32k, after row_meta: BER 1e-6 / 1e-5, 2 warps 701.0 / 2,161.0 us, 4 warps and
# 1 stage 616.2 / 1,949.9, 2 stages 691.6 / 2,171.3, one warp 1,302.3 / 5,580.3). Hamming's at 2
# warps and 1 stage since its blocks are decoded a word at a time (units._decode_block_words; H100,
# same shape, Hamming(8,4) / (7,4): 1e-5 844.5 / 800.0 -> 736.6 / 694.4 us, 1e-6 358.5 / 343.7 ->
# 362.9 / 348.8, clean calls unchanged; 2 warps and 2 stages 736.8 / 702.0 and 360.1 / 352.3, one
# warp 1,226.7 / 1,005.4; before it, 4 warps and 2 stages were the fastest: 463.0 / 1,406.1 at
# 1e-6 / 1e-5, against 8 warps 587.8 / 2,184.7).
_DEFERRED_CONFIGS = {"lanes": (32, 4, 1, 4), "bytes": (32, 2, 1, 4)}
# Over keys per channel Hamming's stays at 4 warps: at 2 its launch spills 692 bytes a thread for
# sm_90a (24 at 4), untimed.
_DEFERRED_CHANNEL_KEY_CONFIGS = {layout: config for layout, config in _DEFERRED_CONFIGS.items() if layout != "bytes"}


_INTERP_CONFIG = (32, 8, 2, 4)


# Word path (and lane, blocks paths): (block_n, num_warps, num_stages, programs per
# multiprocessor, register cap or 0), the fastest on kernel time in the sweeps of
# benchmarks/RESULTS.md (tools/sweep_attention.py). One warp per program: the softmax and the
# deferral flag then reduce within a warp, no program waits at a barrier for its other warps,
# and the operand orders keep the values in the threads that unpacked them; 16 programs per SM
# keep enough of them in flight. Each program should be resident at once, so the programs per
# SM follow the registers: 65,536 / (32 x registers) one-warp programs fit on an SM. int4's
# launch is capped at 128 registers (16 fit; no spills for sm_90a): its bfloat16 launch took
# 154 (13 fit) and ran 5% slower (H200, batch 8 / 32k, "Programs per SM and register caps").
# SECDED's too: its float16 launch took 132-134 (15 fit, a second wave of 68 programs); capped,
# no spills (bfloat16: 20 bytes), 176.2 / 181.2 -> 173.0 / 175.7 us in float16 ("SECDED's
# byte planes and register cap"). A cap buys programs an SM, so it applies only where the grid
# has more programs than the SMs hold at any register count (``_uncapped_programs``): where the
# split floor leaves fewer (batch 1 at 32k, short contexts) the cap only cost SECDED's launch the
# registers it schedules with (H100, batch 1 / 32k: 45.6 -> 41.6 us uncapped, 4k 20.6 / 21.0;
# int4 equal or faster: "Batch 1: warps per program, split floors and the register cap",
# 2026-12-06). Shared memory bounds them too (tools/kernel_resources.py
# prints both): the one-byte codes' three stages of K and V words take 19 KiB a program, so 11
# fit, and their 16 an SM run as 11 and a partial second wave, which timed within 1-2% of 8 and 12
# an SM (keys per channel, 2026-12-03). Golay's (247 registers, 8 fit) run two whole waves.
_PACKED_CONFIGS = {"nibbles": (32, 1, 3, 16, 128), "bytes": (32, 1, 3, 16, 0), "lanes": (32, 1, 3, 16, 0),
                   "blocks": (32, 1, 3, 16, 128)}
# Keys per channel: the one-byte codes' launches take 167-168 registers (12 fit), so 12
# programs per SM, not 16 and a tail of 4 (int4 114 -> 107 us before its cap, which fits 16
# again: 102 us). SECDED's takes 168 in float16, 226 in bfloat16; capped at 128 (spills:
# none and 36 bytes) 16 fit: 200.1 -> 194.8 and 193.1 -> 191.6 us in float16, 210.7 -> 202.5
# in bfloat16 (12 uncapped; 8: 221.4) ("SECDED's register cap over keys per channel").
# Golay's 244 (8 fit): 16 is two whole waves.
_CHANNEL_KEY_CONFIGS = {**_PACKED_CONFIGS, "bytes": (32, 1, 3, 12, 0)}
# Grouped scales (``grouped_word_path_applies``): the accumulator and the queries take a row per
# group and query row, and the launches 154-164 (int4) and 168-187 (Hamming) registers for
# sm_90a at four groups; int4's cap of 128 spilled 16-104 bytes a thread and took its launch with
# zero points from 163 to 318 us (H100, batch 8 / 32k, groups of 32). Uncapped, 12 programs fit.
_GROUPED_CONFIGS = {"nibbles": (32, 1, 3, 12, 0), "bytes": (32, 1, 3, 12, 0)}


def meta_constants(meta_layout: MetadataLayout, *meta: torch.Tensor) -> dict:
    """The metadata's code and layout constants. ``META_WORDS``: 32-bit words per row where
    the clean paths load the unprotected float32 words (int4; aligned rows), else 0;
    ``META_LANES``: the nibbles per row of Golay's lane layout (one scale group), else 0; that
    layout's rows must start on a 32-bit word (ValueError)."""
    return _meta_constants(meta_layout, aligned(*meta))


@memoized
def _meta_constants(meta_layout: MetadataLayout, aligned_tensors: bool) -> dict:
    storage = meta_layout.storage
    rows_aligned = storage.row_bytes % 4 == 0 and aligned_tensors
    if storage.lanes and not rows_aligned:
        # The kernel reads the lane layout as 32-bit words (the launcher copies a view that
        # starts off a word); as codewords in sequence it would decode other nibbles.
        raise ValueError("metadata in Golay's lane layout must start on a 32-bit word")
    lanes = storage.head_dim if storage.lanes else 0
    words = storage.row_bytes // 4 if rows_aligned and storage.nibbles else 0
    return dict(
        MK=storage.codec.k, MPO_SYN=parity_only_syndrome(storage.codec), MRB=storage.row_bytes, META_UNITS=storage.units,
        MUV=storage.unit_values,
        MUB=storage.unit_bytes, META_STATUS_COLS=meta_layout.codewords_per_row, META_WORDS=words, META_LANES=lanes, META_DIRTY=0,
    )


# K's channel scales not read by the main programs themselves (``coded_channel_scales_constants`` where they are).
_NO_CODED_CHANNEL_SCALES = dict(K_CODED_MRB=0, K_CODED_BASE=0)


def key_meta_constants(meta_layout: MetadataLayout, head_dim: int, channel_block: int, meta: dict, *k_meta: torch.Tensor) -> dict:
    """The kernel's K metadata constants (``K_*``): with keys quantized per channel
    (``channel_block`` > 0; ``meta_layout`` of ``head_dim`` groups), a row of ``head_dim``
    channel scales per ``channel_block`` rows, its codewords one after another; otherwise V's
    (``meta``: ``meta_constants``; ``meta_layout`` V's). ``K_META_WORDS``: as ``META_WORDS``,
    32-bit words per row where the word path loads the channel scales as float32 words (int4;
    aligned rows of ``k_meta``, none given: aligned), else 0."""
    if not channel_block:
        return dict(CHANNEL_KEYS=False, K_GROUPS=meta_layout.groups, K_GROUP=head_dim // meta_layout.groups,
                    K_META_UNITS=meta["META_UNITS"], K_MUV=meta["MUV"], K_MUB=meta["MUB"], K_MRB=meta["MRB"],
                    K_META_LANES=meta["META_LANES"], K_META_STATUS_COLS=meta["META_STATUS_COLS"], K_ROW_DIV=1,
                    K_META_WORDS=meta["META_WORDS"], K_META_DIRTY=0, **_NO_CODED_CHANNEL_SCALES)
    return _channel_key_meta_constants(meta_layout, channel_block, aligned(*k_meta))


@memoized
def _channel_key_meta_constants(meta_layout: MetadataLayout, channel_block: int, aligned_tensors: bool) -> dict:
    storage = meta_layout.storage
    rows_aligned = storage.row_bytes % 4 == 0 and aligned_tensors
    return dict(CHANNEL_KEYS=True, K_GROUPS=meta_layout.groups, K_GROUP=1, K_META_UNITS=storage.units, K_MUV=storage.unit_values,
                K_MUB=storage.unit_bytes, K_MRB=storage.row_bytes, K_META_LANES=0, K_META_STATUS_COLS=meta_layout.codewords_per_row,
                K_ROW_DIV=channel_block, K_META_WORDS=storage.row_bytes // 4 if rows_aligned and storage.nibbles else 0, K_META_DIRTY=0,
                **_NO_CODED_CHANNEL_SCALES)


def channel_scales_pass_applies(storage: dict, channel_block: int) -> bool:
    """Whether the keys' coded channel scales are read into rows of float32 words before the
    main launch's loop (``channel_scales.py``): keys quantized per channel (``channel_block`` > 0)
    on a path that reads words (word, lane or blocks path) of a code that decodes. By a pass of
    its own, except on the blocks path, whose main programs each read their own rows first
    (``channel_scales_in_main_applies``). ``storage``: ``storage_constants``."""
    return bool(channel_block and reads_words(storage) and storage["DECODE"]) and not channel_scales_in_main_applies(storage, channel_block)


def channel_scales_in_main_applies(storage: dict, channel_block: int) -> bool:
    """Whether each main program reads the rows of coded channel scales its split covers into
    float32 words itself, before its loop, instead of a pass of its own: on the blocks path
    (SECDED(72,64)). On the H200 (batch 8 / 32k, float16, keys per channel with the window)
    that took SECDED's call from 190.3-190.7 to 188.1-188.6 us, and made Golay's lane path
    (331 -> 340 us) and Hamming(8,4)'s word path (214 -> 223 us) slower, whose main programs
    hold more registers: those keep the pass (benchmarks/RESULTS.md, 2026-12-05)."""
    return bool(channel_block and storage["BLOCKS"] and storage["DECODE"])


def grouped_scales_pass_applies(storage: dict) -> bool:
    """Whether a pass reads the coded metadata rows of K and V into float32 words before the
    main launch (``channel_scales.read_channel_scales``, a row of scales per row): the word path
    over grouped scales (``grouped_word_path_applies``) of a code that decodes. Their Golay
    codewords lie one after another, a scale's nibbles across codeword boundaries; checked by
    table in the main loop they would cost it more than the values' own checks."""
    return bool(storage["PACKED"] and storage["GROUPS"] > 1 and storage["DECODE"])


def grouped_scales_constants(meta_layout: MetadataLayout) -> dict:
    """The main launch's metadata constants where it reads the grouped scales pass's rows of
    float32 words (``grouped_scales_pass_applies``): K's as ``channel_scales_constants``, V's
    the same (the words, then the row's dirty flag)."""
    k = channel_scales_constants(meta_layout)
    return dict(k, MRB=k["K_MRB"], META_WORDS=k["K_META_WORDS"], META_DIRTY=k["K_META_DIRTY"])


def channel_scales_constants(k_meta_layout: MetadataLayout) -> dict:
    """The main launch's ``K_*`` constants that change where it reads the pass's rows of
    float32 words (``channel_scales.channel_scale_words``) instead of the coded rows of
    ``k_meta_layout``."""
    words = channel_scale_words(k_meta_layout)
    return dict(K_MRB=4 * words, K_META_WORDS=words, K_META_DIRTY=words - 1)


def coded_channel_scales_constants(k_meta_layout: MetadataLayout, base: int) -> dict:
    """As ``channel_scales_constants``, where each main program first reads its own coded rows
    of ``k_meta_layout`` (their first byte ``base`` bytes past a 32-bit word) into those rows
    of float32 words (``LaunchPlan.channel_scales_in_main``)."""
    return dict(channel_scales_constants(k_meta_layout), K_CODED_MRB=k_meta_layout.storage.row_bytes, K_CODED_BASE=base)


# The most scale groups a row the word path folds into its dots: each group takes BLOCK_M query
# rows of the scores' dot and of the accumulator (``grouped_word_path_applies``).
MAX_WORD_PATH_GROUPS = 8


def grouped_word_path_applies(codec: str, head_dim: int, groups: int, channel_keys: bool = False) -> bool:
    """Whether the word path folds ``groups`` scale groups a row (more than one) into its dots:
    every word of a row within one group (the group a multiple of a word's 8 int4 values or 4
    one-byte codewords), at most ``MAX_WORD_PATH_GROUPS`` groups, keys per token (keys per
    channel with grouped values take the unit path)."""
    per_word = 8 if get_codec(codec).layout == "nibbles" else 4
    return (1 < groups <= MAX_WORD_PATH_GROUPS and head_dim % groups == 0 and (head_dim // groups) % per_word == 0
            and not channel_keys)


def packed_path_applies(codec: str, row_bytes: int, groups: int, *stored: torch.Tensor, head_dim: int = 0,
                        channel_keys: bool = False) -> bool:
    """Whether the kernel's main pass reads whole 32-bit words (four Hamming codewords, eight
    int4 values) with the dequantization folded into the dots: one-byte codes, one scale per
    row or groups the words fit (``grouped_word_path_applies``), rows of whole aligned words.
    Other layouts take the per-unit path."""
    return (
        get_codec(codec).layout in ("nibbles", "bytes") and row_bytes % 4 == 0
        and (groups == 1 or grouped_word_path_applies(codec, head_dim, groups, channel_keys))
        and aligned(*stored)
    )


def lanes_path_applies(layout: StorageLayout, groups: int, *stored: torch.Tensor) -> bool:
    """Whether the main launch takes the lane path: Golay's lane layout at head_dim 128 (the
    structure ``_lane_row_syndromes`` checks), one scale per row, aligned storage. Its data
    words are then attended as the int4 word path attends its words."""
    return (
        layout.lanes and layout.head_dim == 128 and groups == 1
        and aligned(*stored)
    )


def blocks_path_applies(layout: StorageLayout, groups: int, *stored: torch.Tensor) -> bool:
    """Whether the main launch takes the blocks path: SECDED(72,64)'s blocks layout at a
    power-of-two head_dim of at least 64 (the check bytes whole words after the data words),
    one scale per row, aligned storage. Its data words are attended as the int4 word path
    attends its words, after a check of every codeword's syndrome (``_block_row_syndromes``)."""
    d = layout.head_dim
    return (
        layout.blocks and d >= 64 and d & (d - 1) == 0 and groups == 1
        and aligned(*stored)
    )


def clean_units_path_applies(codec: str, groups: int, packed: bool, channel_keys: bool = False) -> bool:
    """Whether the main launch takes the unit path's clean-blocks-only variant: codes that
    decode (Golay; one-byte codes whose storage is not word-aligned), one scale per row (of K
    and V: keys quantized per channel take the general unit path). Like the packed path it
    computes only syndromes, folds the scales into the dots and defers every block with a
    non-zero syndrome to the second launch."""
    return get_codec(codec).decodes and groups == 1 and not packed and not channel_keys


def path_constants(codec: str, groups: int, packed: bool, lanes: bool = False, blocks: int = 0, channel_keys: bool = False) -> dict:
    """The kernel's path switches: the word path (PACKED), the lane path (LANES), the blocks
    path (BLOCKS: ``block_offsets``, or 0), the unit path's clean-blocks-only variant
    (CLEAN_UNITS), and whether the deferred launch counts the corrections (it then sees every
    block with a non-zero syndrome)."""
    clean_units = clean_units_path_applies(codec, groups, packed, channel_keys) and not (lanes or blocks)
    return dict(PACKED=packed, LANES=lanes, BLOCKS=blocks, CLEAN_UNITS=clean_units,
                COUNT_DEFERRED=bool(packed or lanes or blocks or clean_units))


def parse_config(config: str) -> dict:
    """``"block_n,num_warps,num_stages[,waves[,maxnreg[,scale_rows]]]"`` -> ``kernel_config``'s
    dict (waves 4, maxnreg 0 and scale_rows 1 when left out). ``scale_rows``: over keys per
    channel on the word paths, the rows of channel scales an outer step of the main loop (1 or
    2; ``_decode_attention_kernel``'s ``SCALE_ROWS``)."""
    try:
        numbers = [int(x) for x in config.split(",")]
    except ValueError:
        numbers = []
    if not 3 <= len(numbers) <= 6 or min(numbers) < 0 or min(numbers[:3]) < 1 or numbers[5:] not in ([], [1], [2]):
        raise ValueError(f"attention config must be 'block_n,num_warps,num_stages[,waves[,maxnreg[,scale_rows]]]' of positive "
                         f"integers (scale_rows 1 or 2), got {config!r}")
    block_n, warps, stages, *rest = numbers
    waves, maxnreg, scale_rows = (rest + [4, 0, 1][len(rest):])[:3]
    return dict(block_n=block_n, num_warps=warps, num_stages=stages, waves=waves, maxnreg=maxnreg, scale_rows=scale_rows)


def kernel_config(codec: str, interpolate: bool, packed: bool = False, config: str | None = None, channel_keys: bool = False,
                  grouped: bool = False, deferred: bool = False) -> dict:
    """Block size, launch parameters and programs per multiprocessor (``waves``); ``packed``:
    the main launch reads words (``reads_words``), ``channel_keys``: over keys quantized per
    channel, ``grouped``: over grouped scales, ``deferred``: the deferred launch. ``config``
    (``parse_config``'s string) overrides them, for tuning runs such as the sweeps in
    benchmarks/RESULTS.md; ``maxnreg`` caps the main launch's registers per thread, 0 leaves them
    to the compiler."""
    if config:
        return parse_config(config)
    layout = get_codec(codec).layout
    if packed:
        configs = _CHANNEL_KEY_CONFIGS if channel_keys else _GROUPED_CONFIGS if grouped else _PACKED_CONFIGS
        block_n, warps, stages, waves, maxnreg = configs[layout]
    else:
        deferred_configs = _DEFERRED_CHANNEL_KEY_CONFIGS if channel_keys else _DEFERRED_CONFIGS
        unit_config = deferred_configs.get(layout, _CONFIGS[layout]) if deferred else _CONFIGS[layout]
        (block_n, warps, stages, waves), maxnreg = _INTERP_CONFIG if interpolate else unit_config, 0
    return dict(block_n=block_n, num_warps=warps, num_stages=stages, waves=waves, maxnreg=maxnreg, scale_rows=1)


def tile_sizes(layout: StorageLayout, packed: bool, lanes: bool = False, blocks: bool = False) -> dict:
    """The value-tile width ``BLOCK_U``, the word-tile width ``BLOCK_W`` and the bits between
    values in a word (``SLOT_BITS``). The word path's tiles hold every value of a row (in the
    operand orders); the unit path's hold one slot of every unit."""
    if lanes or blocks:  # the data words: an int4 row
        return dict(BLOCK_U=layout.head_dim, BLOCK_W=layout.head_dim // 8, SLOT_BITS=4)
    slot_bits = 4 if layout.nibbles else 8
    if packed:
        # At least 8 words: the operand orders give each of 4 (K) or 8 (V) lanes whole words.
        block_w = max(8, _pow2(layout.row_bytes // 4))
        return dict(BLOCK_U=block_w * (32 // slot_bits), BLOCK_W=block_w, SLOT_BITS=slot_bits)
    return dict(BLOCK_U=max(16, _pow2(layout.units)), BLOCK_W=_pow2(layout.row_bytes // 4), SLOT_BITS=slot_bits)


def deferred_block_u(layout: StorageLayout, block_u: int) -> int:
    """The deferred launch's value-tile width: over Golay's lane layout it walks codewords
    with the unit path's tiles, not the lane path's values; elsewhere the main launch's."""
    return max(16, _pow2(layout.units)) if layout.lanes else block_u


def partials_layout(layout: StorageLayout, packed: bool, block_u: int) -> tuple[bool, int, int]:
    """(whether partials are in value order, the combine kernel's tile width, floats per
    partial row). Value order on the word path and, in every launch, for Golay's lane layout,
    whose lane path accumulates values, and for the blocks layout, whose deferred launch
    attends values in row order; slot after slot (``3 * BLOCK_U``) otherwise."""
    value_order = packed or layout.lanes or layout.blocks
    combine_u = _pow2(layout.head_dim) if value_order else block_u
    return value_order, combine_u, max(3 * block_u, combine_u)


def launch_configs(codec: str, interpolate: bool, packed: bool, groups: int = 1, config: str | None = None,
                   channel_keys: bool = False) -> tuple[dict, dict | None]:
    """The main launch's configuration, and the deferred launch's (None when nothing can be
    deferred): its warps and stages are the unit path's, its block size the main launch's,
    since the deferral flags are per main-launch block. ``config`` overrides both
    (``kernel_config``)."""
    return _launch_configs(codec, interpolate, packed, groups, config, channel_keys)


@memoized
def _launch_configs(codec: str, interpolate: bool, packed: bool, groups: int, config: str | None, channel_keys: bool
                    ) -> tuple[dict, dict | None]:
    decode = get_codec(codec).decodes
    interp = interpolate and decode
    clean = packed or clean_units_path_applies(codec, groups, packed, channel_keys)  # main launch: clean blocks only
    main = kernel_config(codec, interp and not clean, packed, config, channel_keys, grouped=packed and groups > 1)
    if not (decode and (clean or interp)):
        return main, None
    return main, dict(kernel_config(codec, interp, config=config, channel_keys=channel_keys, deferred=True), block_n=main["block_n"])


def channel_blocks_fit_word_paths(channel_block: int) -> bool:
    """Whether keys per channel over blocks of ``channel_block`` rows (0: per token) can be read
    by the paths that fold a block's channel scales into the queries (word, lane, blocks): their
    key blocks (32 rows) must not straddle two rows of channel scales."""
    return channel_block % _PACKED_CONFIGS["bytes"][0] == 0


def has_kernel(codec: str, head_dim: int = 128, groups: int = 1, *stored: torch.Tensor, channel_block: int = 0) -> bool:
    """Whether the fused attention reads ``codec``'s storage of this shape: every layout but
    SECDED(72,64)'s ``"blocks"`` outside ``blocks_path_applies`` (other head_dims, grouped
    scales, keys per channel over blocks of rows not a multiple of the word path's 32), which
    ``ecc::decode_attention`` decodes with the codec kernels and attends with the reference."""
    layout = StorageLayout(codec, head_dim)
    return not layout.blocks or (blocks_path_applies(layout, groups, *stored) and channel_blocks_fit_word_paths(channel_block))


def storage_constants(codec: str, head_dim: int, groups: int, *stored: torch.Tensor, channel_block: int = 0) -> dict:
    """The kernel's constants that follow from the storage: its layout, the read path (word,
    lane, blocks or unit path: ``path_constants``) and the tiles, shared by the launcher and
    ``tools/kernel_resources.py``. ``stored``: the K/V storage, whose alignment the word
    paths need (none given: aligned). With keys quantized per channel over blocks of
    ``channel_block`` rows, the word, lane and blocks paths fold each block's scales into the
    queries (their key blocks of 32 rows must not straddle two: ``channel_block`` a multiple
    of 32); otherwise the general unit path reads them."""
    return _storage_constants(codec, head_dim, groups, aligned(*stored), channel_block)


@memoized
def _storage_constants(codec: str, head_dim: int, groups: int, aligned_storage: bool, channel_block: int) -> dict:
    layout = StorageLayout(codec, head_dim)
    channel_keys = channel_block > 0
    chunks = channel_blocks_fit_word_paths(channel_block)
    packed = (aligned_storage and packed_path_applies(codec, layout.row_bytes, groups, head_dim=head_dim, channel_keys=channel_keys)
              and chunks)
    lanes = aligned_storage and lanes_path_applies(layout, groups) and chunks
    blocks = aligned_storage and blocks_path_applies(layout, groups) and chunks
    tiles = tile_sizes(layout, packed, lanes, blocks)
    return dict(
        D=head_dim, K=layout.codec.k, ROW_BYTES=layout.row_bytes, UNITS=layout.units, UNIT_VALUES=layout.unit_values,
        UNIT_BYTES=layout.unit_bytes, LANES_D=head_dim if layout.lanes else 0, GROUPS=groups, GROUP=head_dim // groups,
        DECODE=layout.codec.decodes, PO_SYN=parity_only_syndrome(layout.codec), **nibble_constants(codec),
        **path_constants(codec, groups, packed, lanes, block_offsets(layout) if blocks else 0, channel_keys),
        WORDS=tiles["BLOCK_W"] if lanes or blocks else layout.row_bytes // 4, **tiles,
    )


def reads_words(storage: dict) -> bool:
    """Whether the main launch attends clean blocks as words (the word, lane or blocks path
    of ``storage_constants``), leaving every other block to the deferred launch."""
    return bool(storage["PACKED"] or storage["LANES"] or storage["BLOCKS"])


@dataclass(frozen=True)
class LaunchPlan:
    """Every launch decision of one ``ecc::decode_attention`` call, made once (``make``) and
    read by the launcher, ``tools/kernel_resources.py`` and the tests: the storage's
    constants (``storage_constants``), the main and deferred launches' configurations
    (``launch_configs``; ``deferred`` None when nothing can be deferred), the query tile,
    the splits (``plan_splits``, ``plan_deferred``), the partials' layout
    (``partials_layout``) and whether a pass reads coded channel scales first
    (``channel_scales_pass_applies``) or the main programs do (``channel_scales_in_main_applies``),
    and whether a pass reads grouped scales first (``grouped_scales_pass_applies``)."""

    storage: dict
    main: dict
    deferred: dict | None
    block_m: int
    split_len: int
    splits: int
    program_splits: int  # consecutive splits one deferred program attends
    deferred_programs: int  # deferred programs per (sequence, KV head); 0 without a deferred launch
    value_order: bool
    combine_u: int
    part_cols: int
    channel_scales_pass: bool = False
    channel_scales_in_main: bool = False
    grouped_scales_pass: bool = False

    @property
    def combine_unit_values(self) -> int:
        """Values a unit of the partials' layout (``partials_layout``): value ``d`` at column
        ``(d % combine_unit_values) * combine_u + d // combine_unit_values``; 1 in value order."""
        return 1 if self.value_order else self.storage["UNIT_VALUES"]

    @classmethod
    def make(cls, codec: str, head_dim: int, groups: int, interpolate: bool, *, batch: int, q_heads: int, kv_heads: int, lq: int,
             seq: int, device: torch.device, stored: tuple[torch.Tensor, ...] = (), config: str | None = None,
             channel_block: int = 0) -> LaunchPlan:
        layout = StorageLayout(codec, head_dim)
        storage = storage_constants(codec, head_dim, groups, *stored, channel_block=channel_block)
        main, deferred = launch_configs(codec, interpolate, reads_words(storage), groups, config, channel_keys=channel_block > 0)
        if reads_words(storage) and channel_block % main["block_n"]:
            raise ValueError(f"attention config block_n {main['block_n']} must divide the keys' channel_block {channel_block}")
        value_order, combine_u, part_cols = partials_layout(layout, storage["PACKED"], storage["BLOCK_U"])
        split_len, splits = plan_splits(batch * kv_heads, seq, main["block_n"], device, main["waves"])
        if reads_words(storage) and channel_block > main["block_n"]:
            # Keys per channel on the word paths: a split that began part way into a block of
            # rows sharing channel scales would set up one more such block. Splits of whole
            # blocks, unless that costs more than a quarter of the programs (large blocks over
            # short or few sequences).
            aligned = plan_splits(batch * kv_heads, seq, channel_block, device, main["waves"])
            if 4 * aligned[1] >= 3 * splits:
                split_len, splits = aligned
        if main["maxnreg"] and not config and batch * kv_heads * splits <= _uncapped_programs(main["num_warps"]) * _multiprocessors(device):
            main = {**main, "maxnreg": 0}  # every program resident uncapped: the cap buys nothing (_PACKED_CONFIGS)
        program_splits, deferred_programs = plan_deferred(batch * kv_heads, splits, device, deferred["waves"]) if deferred else (1, 0)
        return cls(storage, main, deferred, max(MIN_BLOCK_M, _pow2((q_heads // kv_heads) * lq)), split_len, splits, program_splits,
                   deferred_programs, value_order, combine_u, part_cols, channel_scales_pass_applies(storage, channel_block),
                   channel_scales_in_main_applies(storage, channel_block), grouped_scales_pass_applies(storage))
