"""Keys quantized per channel on a path that reads words (the word path of Hamming(7,4) and
(8,4), Golay's lane path, SECDED(72,64)'s blocks path), their scales coded in Golay: a
pass before the main launch reads each row of channel scales once (those that cover some
sequence's written rows), into float32 words that the main launch loads one block ahead as it
loads int4's.

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
from torch.library import wrap_triton

from ecc_tensor.metadata import MetadataLayout

from ..codec_kernels import _cdiv, _pow2, _syndromes, _unit_word

# One row a program, one warp: the fastest of 1-8 rows and 1-8 warps at batch 8 / 32k on the
# H200 (benchmarks/RESULTS.md: 22.9 us for Hamming(8,4)'s 16,384 rows, 30.0 us at 4 rows and 4
# warps; 41.9 and 55.3 us with zero points), when the kernel read each scale's bytes apart from
# the units it checked.
ROWS_PER_PROGRAM = 1
NUM_WARPS = 1
# Golay metadata (``ecc_tensor.metadata``): units of 3 bytes, a 24-bit codeword each with 12
# data bits (3 nibbles) in its low bits. Three float32 words are 24 nibbles: 8 whole units.
UNIT_BYTES = 3


def channel_scale_words(layout: MetadataLayout) -> int:
    """32-bit words per row of the pass's output for channel scales stored as ``layout``: its
    float32 words (the scales, then any zero points), then the row's syndrome flag."""
    return layout.words + 1


@triton.jit
def _channel_scales_kernel(km_ptr, out_ptr, menc_ptr, kv_lens_ptr, rows, head_rows, heads, MK: tl.constexpr, UNITS: tl.constexpr,
                           MUB: tl.constexpr, MRB: tl.constexpr, OUT_WORDS: tl.constexpr, BLOCK_G: tl.constexpr, ROWS: tl.constexpr,
                           ROW_DIV: tl.constexpr):
    row = tl.program_id(0).to(tl.int64) * ROWS + tl.arange(0, ROWS)  # row offsets in 64 bits
    # Only the rows that hold some sequence's codeword rows (ROW_DIV > 0: kv_lens_ptr holds each
    # sequence's): a cache's storage may be far longer than what is written in it.
    row_ok = row < rows
    row = tl.minimum(row, rows - 1)  # rows past the end read the last one again, and store nothing
    if ROW_DIV:
        index = row.to(tl.int32)  # 32-bit division: a 64-bit one is a long subroutine
        row_ok &= (index % head_rows) * ROW_DIV < tl.load(kv_lens_ptr + index // head_rows // heads)
        if tl.max(row_ok.to(tl.int32), 0) == 0:
            return
    # A row's words in groups of three, each group's 8 units loaded once: checked (syndromes by
    # table) and their data bits laid side by side into the group's words. Reading each
    # scale's bytes apart from the units checked cost 2.4x the instructions.
    DATA_WORDS: tl.constexpr = OUT_WORDS - 1
    g = tl.arange(0, BLOCK_G)
    g_ok = row_ok[:, None] & (g < (DATA_WORDS + 2) // 3)[None, :]
    first = (8 * g)[None, :]  # the group's first unit
    base = km_ptr + row[:, None] * MRB + MUB * first
    u0 = _unit_word(base, g_ok & (first < UNITS), MUB)
    u1 = _unit_word(base + MUB, g_ok & (first + 1 < UNITS), MUB)
    u2 = _unit_word(base + 2 * MUB, g_ok & (first + 2 < UNITS), MUB)
    u3 = _unit_word(base + 3 * MUB, g_ok & (first + 3 < UNITS), MUB)
    u4 = _unit_word(base + 4 * MUB, g_ok & (first + 4 < UNITS), MUB)
    u5 = _unit_word(base + 5 * MUB, g_ok & (first + 5 < UNITS), MUB)
    u6 = _unit_word(base + 6 * MUB, g_ok & (first + 6 < UNITS), MUB)
    u7 = _unit_word(base + 7 * MUB, g_ok & (first + 7 < UNITS), MUB)
    # Units past the row read as 0, whose syndrome is 0.
    dirty = (_syndromes(u0, menc_ptr, None, MK) | _syndromes(u1, menc_ptr, None, MK) | _syndromes(u2, menc_ptr, None, MK)
             | _syndromes(u3, menc_ptr, None, MK) | _syndromes(u4, menc_ptr, None, MK) | _syndromes(u5, menc_ptr, None, MK)
             | _syndromes(u6, menc_ptr, None, MK) | _syndromes(u7, menc_ptr, None, MK))
    # 12 data bits a unit, the first unit lowest (nibble j of word w is value 8 w + j).
    d0, d1, d2, d3 = u0 & 0xFFF, u1 & 0xFFF, u2 & 0xFFF, u3 & 0xFFF
    d4, d5, d6, d7 = u4 & 0xFFF, u5 & 0xFFF, u6 & 0xFFF, u7 & 0xFFF
    w0 = d0 | (d1 << 12) | (d2 << 24)
    w1 = (d2 >> 8) | (d3 << 4) | (d4 << 16) | (d5 << 28)
    w2 = (d5 >> 4) | (d6 << 8) | (d7 << 20)
    out = out_ptr.to(tl.pointer_type(tl.int32)) + row * OUT_WORDS
    word = (3 * g)[None, :]
    tl.store(out[:, None] + word, w0, mask=g_ok & (word < DATA_WORDS))
    tl.store(out[:, None] + word + 1, w1, mask=g_ok & (word + 1 < DATA_WORDS))
    tl.store(out[:, None] + word + 2, w2, mask=g_ok & (word + 2 < DATA_WORDS))
    tl.store(out + (OUT_WORDS - 1), tl.reduce_or(dirty, 1), mask=row_ok)


def read_channel_scales(k_meta: torch.Tensor, meta_parity_table: torch.Tensor, layout: MetadataLayout,
                        kv_lens: torch.Tensor | None = None, row_div: int = 0, out: torch.Tensor | None = None) -> torch.Tensor:
    """The rows of ``k_meta`` ([batch, KV heads, rows, row bytes], contiguous: one row of
    channel scales each, stored as ``layout``, a group per channel; ``meta_parity_table``: its
    code's ``nibble_parity_table``) as float32 words, ``channel_scale_words`` per row, in a flat
    tensor of their bytes. With ``kv_lens`` (int64 ``[batch]``, each sequence's codeword rows)
    and ``row_div`` (rows of codewords a row of scales covers), only the rows of scales that
    cover some of those are read and written; the others are left as allocated (``out``: a
    float32 tensor of the words to write into, else a new one)."""
    storage = layout.storage
    if (storage.codec.k, storage.unit_values, storage.unit_bytes) != (12, 3, UNIT_BYTES):
        raise ValueError(f"read_channel_scales reads Golay-coded metadata (12 data bits in 3-byte units), got {layout.meta_codec_name}")
    heads, head_rows = k_meta.shape[1:3]
    rows = k_meta.numel() // k_meta.shape[-1]
    words = channel_scale_words(layout)
    out = torch.empty(rows * words, dtype=torch.float32, device=k_meta.device) if out is None else out
    if rows:
        wrap_triton(_channel_scales_kernel)[(_cdiv(rows, ROWS_PER_PROGRAM),)](
            k_meta, out, meta_parity_table, k_meta if kv_lens is None else kv_lens, rows, head_rows, heads, MK=storage.codec.k,
            UNITS=storage.units, MUB=UNIT_BYTES, MRB=k_meta.shape[-1], OUT_WORDS=words, BLOCK_G=_pow2(_cdiv(layout.words, 3)),
            ROWS=ROWS_PER_PROGRAM, ROW_DIV=row_div if kv_lens is not None else 0, num_warps=NUM_WARPS,
        )
    return out.view(torch.uint8)  # the kernel addresses metadata rows in bytes
