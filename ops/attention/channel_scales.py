"""Keys quantized per channel on a path that reads words (the word path of Hamming(7,4) and
(8,4), Golay's lane path, SECDED(72,64)'s blocks path), their scales coded in Golay: a
pass before the main launch reads each row of channel scales once (those that cover some
sequence's written rows), into float32 words that the main launch loads one block ahead as it
loads int4's. On the blocks path each main program reads the rows its split covers itself
(``_channel_scale_rows``), before its loop, into the same words: one launch fewer, 2 us less
on SECDED's call at batch 8 / 32k on the H200, where the word and lane paths, whose main
programs hold more registers, got 4-9 us slower that way (``plan.channel_scales_in_main_applies``).
The same pass reads the rows of grouped scales (a row per token, ``plan.grouped_scales_pass_applies``)
of K and of V for the word path, more rows a program (``rows_per_program``).

Read in the main launch's loop, a coded row (342 Golay codewords for 128 scales) was checked
by table gathers at every block of rows it covers, once per split: the check's loads could not
be issued ahead (a second copy of the checker spilled), and it held the loop at 255 registers
(benchmarks/RESULTS.md). Here each row is read once per call, as it is stored: a row of
``OUT_WORDS`` words holds the scales' data bits as read, then the zero points' (asymmetric),
then a word that is non-zero where a codeword of the row has a non-zero syndrome. The main
launch defers every block of rows such a row covers to the deferred launch, which decodes,
counts and interpolates from the stored codewords, exactly as when the main launch checked
the row itself (``_clean_channel_meta`` computes both)."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ecc_tensor.metadata import MetadataLayout

from ..compile_ahead import wrap_triton
from ..codec_kernels import _cdiv, _pow2, _syndromes
from ..launch_options import _after_previous_launch, dependent_launches, kernel_and_options

# Two rows a program, one warp: the fastest of 1-8 rows and 1-4 warps at batch 8 / 32k on the
# H200 since the rows are read as words (benchmarks/RESULTS.md, "The channel-scales pass reads
# words": 15.2 us for 16,384 rows of 1,026 bytes, 17.4 at one row, 16.6 at four, 19-25 with more
# warps or rows; the byte loads before took 18.5 at one row, their best).
ROWS_PER_PROGRAM = 2
NUM_WARPS = 1
# Short rows (grouped scales, a row per token: 33 or 66 bytes for four groups) take more rows a
# program, about this many bytes: at two rows a program the pass over batch 8 / 32k's 2M rows
# of K and of V ran a million one-warp programs each, ~0.7 ms apiece (H100).
BYTES_PER_PROGRAM = 2048
MAX_ROWS_PER_PROGRAM = 128


def rows_per_program(row_bytes: int) -> int:
    """The pass's rows a program for rows of ``row_bytes`` bytes: ``ROWS_PER_PROGRAM`` for rows
    of channel scales (hundreds of bytes), up to ``MAX_ROWS_PER_PROGRAM`` for short ones."""
    return min(MAX_ROWS_PER_PROGRAM, max(ROWS_PER_PROGRAM, _pow2(_cdiv(BYTES_PER_PROGRAM, row_bytes))))
# Golay metadata (``ecc_tensor.metadata``): units of 3 bytes, a 24-bit codeword each with 12
# data bits (3 nibbles) in its low bits. Three float32 words are 24 nibbles: 8 whole units.
UNIT_BYTES = 3


def channel_scale_words(layout: MetadataLayout) -> int:
    """32-bit words per row of the pass's output for channel scales stored as ``layout``: its
    float32 words (the scales, then any zero points), then the row's syndrome flag."""
    return layout.words + 1


@triton.constexpr_function
def _group_tiles(data_words, split):
    """(head, tail) tiles of a row's groups of three float32 words (8 Golay units). ``split``:
    the largest power of two of them, then the rest rounded up to a power of two (0 if none);
    else one tile of them all, rounded up. In the pass, one tile of the row's 43 groups (128
    scales) rounded up to 64 left a third of the lanes idle; 32 + 16 leave a tenth (H200, batch
    8 / 32k: 25 against 28 us with zero points, 15.0 against 15.7 without). The main programs
    that read their own rows (once, before their loop) keep one tile: two doubled their loads,
    which Triton's coalescing pass takes quadratic time over."""
    groups = (int(data_words) + 2) // 3
    if not split:
        return 1 << (groups - 1).bit_length(), 0
    head = 1 << (groups.bit_length() - 1)
    rest = groups - head
    return head, (1 << (rest - 1).bit_length()) if rest else 0


def channel_scale_buffer(k_meta: torch.Tensor, layout: MetadataLayout) -> torch.Tensor:
    """Uninitialized float32 words, ``channel_scale_words`` for each row of ``k_meta``, that
    ``_channel_scale_rows`` writes (the pass's output, or the main programs' own rows)."""
    return torch.empty(k_meta.numel() // k_meta.shape[-1] * channel_scale_words(layout), dtype=torch.float32, device=k_meta.device)


@triton.jit(do_not_specialize=["stride_lens"])  # as the attention kernel's: an expanded length (0) or lengths (1)
def _channel_scales_kernel(km_ptr, out_ptr, menc_ptr, kv_lens_ptr, stride_lens, rows, head_rows, heads,
                           MK: tl.constexpr, UNITS: tl.constexpr,
                           MRB: tl.constexpr, OUT_WORDS: tl.constexpr, ROWS: tl.constexpr,
                           ROW_DIV: tl.constexpr, BASE: tl.constexpr, GDC: tl.constexpr):
    _after_previous_launch(GDC)
    row = tl.program_id(0).to(tl.int64) * ROWS + tl.arange(0, ROWS)  # row offsets in 64 bits
    # Only the rows that hold some sequence's codeword rows (ROW_DIV > 0: kv_lens_ptr holds each
    # sequence's): a cache's storage may be far longer than what is written in it.
    row_ok = row < rows
    row = tl.minimum(row, rows - 1)  # rows past the end read the last one again, and store nothing
    if ROW_DIV:
        index = row.to(tl.int32)  # 32-bit division: a 64-bit one is a long subroutine
        row_ok &= (index % head_rows) * ROW_DIV < tl.load(kv_lens_ptr + index // head_rows // heads * stride_lens)
        if tl.max(row_ok.to(tl.int32), 0) == 0:
            return
    _channel_scale_rows(km_ptr, out_ptr, menc_ptr, row, row_ok, rows, MK, UNITS, MRB, OUT_WORDS, BASE, True)


@triton.jit
def _channel_scale_rows(km_ptr, out_ptr, menc_ptr, row, row_ok, rows, MK: tl.constexpr, UNITS: tl.constexpr, MRB: tl.constexpr,
                        OUT_WORDS: tl.constexpr, BASE: tl.constexpr, SPLIT: tl.constexpr):
    """Rows ``row`` (int64, of ``rows`` in all; stored where ``row_ok``) of coded channel scales
    at ``km_ptr`` (whose address is ``BASE`` bytes past a word) as ``OUT_WORDS`` words each at
    ``out_ptr``: the pass's programs, and the main launch's where each reads its own rows. The
    row's groups of three words in two tiles with ``SPLIT`` (``_group_tiles``)."""
    HEAD: tl.constexpr = _group_tiles(OUT_WORDS - 1, SPLIT)[0]
    TAIL: tl.constexpr = _group_tiles(OUT_WORDS - 1, SPLIT)[1]
    dirty = _channel_scale_groups(km_ptr, out_ptr, menc_ptr, row, row_ok, rows, tl.arange(0, HEAD), MK, UNITS, MRB, OUT_WORDS, BASE)
    if TAIL > 0:
        dirty |= _channel_scale_groups(km_ptr, out_ptr, menc_ptr, row, row_ok, rows, HEAD + tl.arange(0, TAIL), MK, UNITS, MRB,
                                       OUT_WORDS, BASE)
    out = out_ptr.to(tl.pointer_type(tl.int32)) + row * OUT_WORDS
    tl.store(out + (OUT_WORDS - 1), dirty, mask=row_ok)


@triton.jit
def _channel_scale_groups(km_ptr, out_ptr, menc_ptr, row, row_ok, rows, g, MK: tl.constexpr, UNITS: tl.constexpr, MRB: tl.constexpr,
                          OUT_WORDS: tl.constexpr, BASE: tl.constexpr):
    """Groups ``g`` of three words of rows ``row`` (as ``_channel_scale_rows``) -> each row's
    syndromes of their units, OR-ed (non-zero where one is dirty)."""
    # A row's words in groups of three, each group's 8 units (24 bytes) checked (syndromes by
    # table) and their data bits laid side by side into the group's words. The units are read
    # as 32-bit words, seven a group, and shifted into place: rows of 1026 or 2049 bytes start
    # anywhere in a word. Loaded byte by byte (24 loads a group, the lanes of a warp over 6 cache
    # lines) the pass took 7-9% longer on the H200: the loads were not most of its time.
    DATA_WORDS: tl.constexpr = OUT_WORDS - 1
    g_ok = row_ok[:, None] & (g < (DATA_WORDS + 2) // 3)[None, :]
    start = BASE + row * MRB  # the row's first byte from the word-aligned base
    shift = (start % 4).to(tl.uint32)[:, None] * 8
    word = (start // 4)[:, None] + 6 * g[None, :]  # the group's first word
    end_words = (BASE + rows * MRB + 3) // 4
    base = (km_ptr - BASE).to(tl.pointer_type(tl.uint32))
    w0 = tl.load(base + word, mask=g_ok & (word < end_words), other=0)
    w1 = tl.load(base + word + 1, mask=g_ok & (word + 1 < end_words), other=0)
    w2 = tl.load(base + word + 2, mask=g_ok & (word + 2 < end_words), other=0)
    w3 = tl.load(base + word + 3, mask=g_ok & (word + 3 < end_words), other=0)
    w4 = tl.load(base + word + 4, mask=g_ok & (word + 4 < end_words), other=0)
    w5 = tl.load(base + word + 5, mask=g_ok & (word + 5 < end_words), other=0)
    w6 = tl.load(base + word + 6, mask=g_ok & (word + 6 < end_words), other=0)
    # The row's bytes 4i..4i+3 of the group; (x << (31 - shift)) << 1 is 0 at shift 0, where a
    # shift by 32 would not be defined.
    b0 = (w0 >> shift) | ((w1 << (31 - shift)) << 1)
    b1 = (w1 >> shift) | ((w2 << (31 - shift)) << 1)
    b2 = (w2 >> shift) | ((w3 << (31 - shift)) << 1)
    b3 = (w3 >> shift) | ((w4 << (31 - shift)) << 1)
    b4 = (w4 >> shift) | ((w5 << (31 - shift)) << 1)
    b5 = (w5 >> shift) | ((w6 << (31 - shift)) << 1)
    # Four 3-byte units in three words; units past the row (the next row's bytes) read as 0,
    # whose syndrome is 0.
    first = (8 * g)[None, :]  # the group's first unit
    u0 = _unit_or_zero(b0 & 0xFFFFFF, first < UNITS)
    u1 = _unit_or_zero((b0 >> 24) | ((b1 & 0xFFFF) << 8), first + 1 < UNITS)
    u2 = _unit_or_zero((b1 >> 16) | ((b2 & 0xFF) << 16), first + 2 < UNITS)
    u3 = _unit_or_zero(b2 >> 8, first + 3 < UNITS)
    u4 = _unit_or_zero(b3 & 0xFFFFFF, first + 4 < UNITS)
    u5 = _unit_or_zero((b3 >> 24) | ((b4 & 0xFFFF) << 8), first + 5 < UNITS)
    u6 = _unit_or_zero((b4 >> 16) | ((b5 & 0xFF) << 16), first + 6 < UNITS)
    u7 = _unit_or_zero(b5 >> 8, first + 7 < UNITS)
    dirty = (_syndromes(u0, menc_ptr, None, MK) | _syndromes(u1, menc_ptr, None, MK) | _syndromes(u2, menc_ptr, None, MK)
             | _syndromes(u3, menc_ptr, None, MK) | _syndromes(u4, menc_ptr, None, MK) | _syndromes(u5, menc_ptr, None, MK)
             | _syndromes(u6, menc_ptr, None, MK) | _syndromes(u7, menc_ptr, None, MK))
    # 12 data bits a unit, the first unit lowest (nibble j of word w is value 8 w + j).
    d0, d1, d2, d3 = u0 & 0xFFF, u1 & 0xFFF, u2 & 0xFFF, u3 & 0xFFF
    d4, d5, d6, d7 = u4 & 0xFFF, u5 & 0xFFF, u6 & 0xFFF, u7 & 0xFFF
    o0 = d0 | (d1 << 12) | (d2 << 24)
    o1 = (d2 >> 8) | (d3 << 4) | (d4 << 16) | (d5 << 28)
    o2 = (d5 >> 4) | (d6 << 8) | (d7 << 20)
    out = out_ptr.to(tl.pointer_type(tl.int32)) + row * OUT_WORDS
    out_word = (3 * g)[None, :]
    tl.store(out[:, None] + out_word, o0, mask=g_ok & (out_word < DATA_WORDS))
    tl.store(out[:, None] + out_word + 1, o1, mask=g_ok & (out_word + 1 < DATA_WORDS))
    tl.store(out[:, None] + out_word + 2, o2, mask=g_ok & (out_word + 2 < DATA_WORDS))
    return tl.reduce_or(dirty, 1)


@triton.jit
def _unit_or_zero(unit, valid):
    """A unit's 24 bits as int32 where ``valid``, else 0."""
    return tl.where(valid, unit, 0).to(tl.int32)


def read_channel_scales(k_meta: torch.Tensor, meta_parity_table: torch.Tensor, layout: MetadataLayout,
                        kv_lens: torch.Tensor | None = None, row_div: int = 0, out: torch.Tensor | None = None,
                        dependent: bool = False) -> torch.Tensor:
    """The rows of ``k_meta`` ([batch, KV heads, rows, row bytes], contiguous: one row of
    channel scales each, stored as ``layout``, a group per channel; ``meta_parity_table``: its
    code's ``nibble_parity_table``) as float32 words, ``channel_scale_words`` per row, in a flat
    tensor of their bytes. With ``kv_lens`` (int64 ``[batch]``, each sequence's codeword rows)
    and ``row_div`` (rows of codewords a row of scales covers), only the rows of scales that
    cover some of those are read and written; the others are left as allocated (``out``: a
    float32 tensor of the words to write into, else a new one). ``dependent``: a programmatic
    dependent launch where the device has them (``launch_options.dependent_launches``), for a
    pass launched right after another launch of the same op."""
    storage = layout.storage
    if (storage.codec.k, storage.unit_values, storage.unit_bytes) != (12, 3, UNIT_BYTES):
        raise ValueError(f"read_channel_scales reads Golay-coded metadata (12 data bits in 3-byte units), got {layout.meta_codec_name}")
    heads, head_rows = k_meta.shape[1:3]
    rows = k_meta.numel() // k_meta.shape[-1]
    words = channel_scale_words(layout)
    out = channel_scale_buffer(k_meta, layout) if out is None else out
    if rows:
        gdc = dependent_launches(k_meta.device)
        kernel, options = kernel_and_options(_channel_scales_kernel, NUM_WARPS, dependent=dependent and gdc)
        per_program = rows_per_program(k_meta.shape[-1])
        lens, stride_lens = (k_meta, 0) if kv_lens is None else (kv_lens, kv_lens.stride(0))  # no lengths: a pointer never read
        wrap_triton(kernel)[(_cdiv(rows, per_program),)](
            k_meta, out, meta_parity_table, lens, stride_lens, rows, head_rows, heads, MK=storage.codec.k,
            UNITS=storage.units, MRB=k_meta.shape[-1], OUT_WORDS=words,
            ROWS=per_program, ROW_DIV=row_div if kv_lens is not None else 0, BASE=int(k_meta.storage_offset() % 4), GDC=gdc,
            **options,
        )
    return out.view(torch.uint8)  # the kernel addresses metadata rows in bytes
