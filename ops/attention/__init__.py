"""Fused decode attention over stored codewords: FlashDecoding with the ECC decode in registers.

One program takes one (sequence, KV head) pair and one split of the key axis. It holds the
queries of every query head of that KV head's group (grouped-query attention) and of every
query token (``LQ``, a few for speculative decoding) as the ``BLOCK_M`` rows of one tile, walks
its keys ``BLOCK_N`` at a time, computes ``Q K^T`` and ``P V`` on the tensor cores with an online
softmax, and a last kernel combines the splits by their log-sum-exp. No dense K/V ever
reaches memory.

The ways to read a block:

- The **word path** (``PACKED``: one-byte codes -- int4, Hamming(7,4), Hamming(8,4) -- with one
  scale per row, or groups of whole words (``plan.grouped_word_path_applies``), and rows of
  whole 32-bit words), the common case. A block is loaded as words
  of four codewords (eight int4 values). The Hamming syndromes of a K word and of the V word
  at the same place are computed together, both words' data nibbles packed into one word, one
  multiply per data bit covering eight codewords (``_word_syndromes``). A block whose
  syndromes are all zero, which is nearly every block, is attended directly from the words.
  Its nibbles become float16/bfloat16 with no int-to-float conversion (``_word_values``), in
  the column orders in which the dots' operands sit in registers (``_k_operand``,
  ``_v_operand_values``), so that no unpacked value crosses threads through shared memory.
  The per-row scale (and zero point) is folded into the scores and the softmax weights
  instead of into every value; grouped scales each into its group's rows of the queries, the
  weights and the accumulator (``softmax._grouped_scales_softmax``), coded ones read into
  float32 words by a pass first (``channel_scales.py``). A block with any non-zero syndrome
  is *deferred*; the deferred launch reads its words too and decodes them four codewords a
  word (``units._decode_block_words``).
- The **lane path** (``LANES``): Golay's lane layout (:mod:`ecc_tensor.lanes`) at head_dim 128,
  one scale per row. A row is 16 INT4 data words and 17 parity words; each parity word holds,
  nibble lane for nibble lane, the parity of the codewords in the same lane of three data
  words, so eight codewords are checked with word operations (``_lane_row_syndromes``). A
  clean block's data words are attended as the int4 word path attends its words; a block with
  any non-zero syndrome is deferred.
- The **blocks path** (``BLOCKS``): SECDED(72,64)'s rows (an int4 row, then a check byte per
  16 values) at power-of-two head_dims from 64, one scale per row. Four codewords' check bytes
  are computed at once against a check word (``_block_row_syndromes``): their data bytes
  transposed into byte planes, each rotated in place, byte by byte; a clean block's int4
  row is attended as the int4 word path attends its words, a dirty one deferred. The
  deferred launch decodes codeword by codeword (``_block_codewords``) and attends in float32
  in row order, interpolating detected codewords (``_block_slab``).
- The **unit path**, for the other layouts (Golay at other head_dims, grouped scales) and
  for deferred blocks. It reads storage *units* (:mod:`ecc_tensor.storage`): ``UNIT_VALUES``
  values per unit (1 for Hamming, 2 for int4, 3 for Golay: a codeword, wherever the lane
  layout puts its nibbles, ``_lane_words``), and treats value ``i`` of every unit (a *slot*)
  as a ``[BLOCK_N, BLOCK_U]`` tile of its own. ``Q K^T`` is the sum over slots
  of ``Q_i K_i^T``, and ``P V`` keeps one accumulator per slot, so Golay's 3-value codewords
  are never interleaved in registers. With one scale per row (``CLEAN_UNITS``), the main
  launch does as the word path: syndromes only (one small table per data nibble), scales
  folded into the dots, dirty blocks deferred. Otherwise (grouped scales) it decodes each unit
  as the reference does (in-register constants for the one-byte codes, table gathers for
  Golay) and dequantizes in float32.

Deferred blocks (dirty blocks of the clean-blocks-only main launches, and with ``INTERP`` the
grouped-scale unit path's blocks that hold an erased unit) are attended by a second launch
(``DEFERRED``). It decodes codeword by
codeword, counts, and replaces detected-uncorrectable values in the dequantized domain by the
mean of their nearest non-erased neighbours along the sequence, using the same arithmetic and
precedence as :func:`ecc_tensor.interp.interpolate_erasures`. It writes partials of its own,
which the combine kernel merges: the online softmax does not care about block order, and the
main loop stays free of the rare path's registers.

Precision: the word path's K/V are exact (INT4 values are exact in float16 and bfloat16; the
scale multiplies float32 scores). With bfloat16 queries the clean paths' dots take float16
operands: each query row divided by a power of two at least its largest value (exact), the
weights in [0, 1] (11 bits, as with float16 queries). The deferred launch and the unit path
split bfloat16 operands into two parts, so dequantized K/V keep ~16 bits there too. Either
way the output matches dequantize (float32) + float64 attention well within 1e-3. Keys
quantized per channel are the exception on the word path: their scales fold into the queries,
and q * s is rounded to float16 as dequantizing would round the keys.

Quantization schemes (``ecc_tensor.quant_scheme``): keys quantized per channel fold each
block's channel scales into the queries on the word, lane and blocks paths and read their
metadata as groups of a block of rows on the unit path (``ROW_DIV``: each row of channel scales
a block's rows share is decoded once, as one tile, not per row and value; coded scales are read
into float32 words before the main loop, by a pass of their own (word and lane paths) or by
each main program for its split (blocks path), ``channel_scales``; the blocks path's deferred launch takes
each key's channel scale, ``blocks._block_slab``); the full-precision window is attended by
one more program of the main launch per (sequence, KV head), into one more partial that the
combine kernel merges.

Modules: ``plan`` (``LaunchPlan``: the read path a storage takes, the kernel's constants, the
launch configurations and splits, decided once per call), ``launch`` (the launcher),
``kernel`` (the two kernels), ``window`` (the window's program), and the read paths' helpers:
``operands`` (values unpacked into the dots' operand orders), ``syndromes`` (whole-word
syndromes of the clean-blocks paths), ``clean_meta`` (their scales, and per-channel key
scales), ``channel_scales`` (coded per-channel key scales read into float32 words), ``units`` (the unit
path and the repair pass), ``blocks`` (the blocks path's deferred launch) and ``softmax``.
"""

from .launch import triton_decode_attention
from .plan import (
    LaunchPlan,
    blocks_path_applies,
    has_kernel,
    kernel_config,
    key_meta_constants,
    lanes_path_applies,
    launch_configs,
    packed_path_applies,
    parse_config,
    plan_deferred,
    plan_splits,
    storage_constants,
)

__all__ = [
    "LaunchPlan", "blocks_path_applies", "has_kernel", "kernel_config", "key_meta_constants", "lanes_path_applies", "launch_configs",
    "packed_path_applies", "parse_config", "plan_deferred", "plan_splits", "storage_constants", "triton_decode_attention",
]
