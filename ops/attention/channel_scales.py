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
from .clean_meta import _clean_channel_meta

# One row a program, one warp: the fastest of 1-8 rows and 1-8 warps at batch 8 / 32k on the
# H200 (benchmarks/RESULTS.md: 22.9 us for Hamming(8,4)'s 16,384 rows, 30.0 us at 4 rows and 4
# warps; 41.9 and 55.3 us with zero points).
ROWS_PER_PROGRAM = 1
NUM_WARPS = 1


def channel_scale_words(layout: MetadataLayout) -> int:
    """32-bit words per row of the pass's output for channel scales stored as ``layout``: its
    float32 words (the scales, then any zero points), then the row's syndrome flag."""
    return layout.words + 1


@triton.jit
def _channel_scales_kernel(km_ptr, out_ptr, menc_ptr, kv_lens_ptr, rows, head_rows, heads, MK: tl.constexpr, HAS_ZERO: tl.constexpr,
                           GROUPS: tl.constexpr, MUV: tl.constexpr, MUB: tl.constexpr, MRB: tl.constexpr, UNITS: tl.constexpr,
                           OUT_WORDS: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_UNITS: tl.constexpr, ROWS: tl.constexpr,
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
    row_ptr = km_ptr + row[:, None] * MRB
    cols = tl.arange(0, BLOCK_C)
    ok = row_ok[:, None] & (cols < GROUPS)[None, :]
    channel = tl.zeros([ROWS, 1], tl.int32) + tl.minimum(cols, GROUPS - 1)[None, :]  # padding columns: the last channel again
    units = tl.zeros([ROWS, 1], tl.int32) + tl.arange(0, BLOCK_UNITS)[None, :]
    units_ok = units < UNITS
    # The data bits as read; each codeword of a row checked once, in a tile of the rows' units
    # (the words' own check, DECODE in _clean_channel_meta, checks a unit once per word that
    # spans it: 2.7 times on average). Every unit of a row holds some scale's bits.
    scale, zero, _ = _clean_channel_meta(row_ptr, channel, menc_ptr, MK, False, HAS_ZERO, GROUPS, MUV, MUB, 0, 0)
    unit_words = _unit_word(row_ptr + units * MUB, units_ok, MUB)
    dirty = tl.reduce_or(tl.where(units_ok, _syndromes(unit_words, menc_ptr, units_ok, MK), 0), 1)
    out = out_ptr + row * OUT_WORDS
    tl.store(out[:, None] + cols[None, :], scale, mask=ok)
    if HAS_ZERO:
        tl.store(out[:, None] + GROUPS + cols[None, :], zero, mask=ok)
    tl.store(out.to(tl.pointer_type(tl.int32)) + (OUT_WORDS - 1), dirty, mask=row_ok)


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
    heads, head_rows = k_meta.shape[1:3]
    rows = k_meta.numel() // k_meta.shape[-1]
    words = channel_scale_words(layout)
    out = torch.empty(rows * words, dtype=torch.float32, device=k_meta.device) if out is None else out
    if rows:
        wrap_triton(_channel_scales_kernel)[(_cdiv(rows, ROWS_PER_PROGRAM),)](
            k_meta, out, meta_parity_table, k_meta if kv_lens is None else kv_lens, rows, head_rows, heads, MK=storage.codec.k,
            HAS_ZERO=not layout.symmetric, GROUPS=layout.groups, MUV=storage.unit_values, MUB=storage.unit_bytes, MRB=k_meta.shape[-1],
            UNITS=storage.units, OUT_WORDS=words, BLOCK_C=_pow2(layout.groups), BLOCK_UNITS=_pow2(storage.units), ROWS=ROWS_PER_PROGRAM,
            ROW_DIV=row_div if kv_lens is not None else 0, num_warps=NUM_WARPS,
        )
    return out.view(torch.uint8)  # the kernel addresses metadata rows in bytes
