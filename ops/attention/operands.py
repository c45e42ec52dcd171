"""INT4 values unpacked from words straight into the float16/bfloat16 operand orders of the
dots (no int-to-float conversion, no value crossing threads through shared memory)."""

from __future__ import annotations

import triton
import triton.language as tl

from ..codec_kernels import (
    _lane_words,
    _unit_word,
)


@triton.jit
def _word_column(c, SLOT_BITS: tl.constexpr):
    """The value (position in the row) at column ``c`` of ``_word_values``' tiles. Each word's
    values come in pairs ``(j, j + P/2)`` (``P`` values per word): the pair that
    ``(word >> shift) & 0x000F000F`` isolates, which thus becomes one float16x2 register with
    one mask and no shuffles."""
    P: tl.constexpr = 32 // SLOT_BITS
    return (c // P) * P + (c % P) // 2 + (c % 2) * (P // 2)


@triton.jit
def _from_biased(x, OFFSET: tl.constexpr, dtype: tl.constexpr):
    """int32 lanes holding ``v`` in their low 16 bits, with the exponent bias of ``dtype`` above
    it for 16-bit floats -> ``v - OFFSET`` in ``dtype``. No int-to-float conversion: ``v`` sits
    in the mantissa of a float whose exponent makes its last place 1 (1024 in float16, 128 in
    bfloat16, 2^23 in float32), and one exact subtraction removes that bias and the offset."""
    if dtype == tl.float32:
        return (x | 0x4B000000).to(tl.float32, bitcast=True) - (8388608.0 + OFFSET)
    elif dtype == tl.float16:
        return x.to(tl.int16).to(dtype, bitcast=True) - (1024.0 + OFFSET)
    else:
        return x.to(tl.int16).to(dtype, bitcast=True) - (128.0 + OFFSET)


@triton.constexpr_function
def _exponent_bias(dtype):
    """``dtype``'s exponent bias in both 16-bit halves of a word (``_from_biased``)."""
    return {tl.float16: 0x64006400, tl.bfloat16: 0x43004300}.get(dtype, 0)


@triton.constexpr_function
def _mask_bias_ptx(dst, src, bias):
    """PTX: ``dst = src & 0x000F000F | bias`` in one LOP3. As Triton ops the two constants take
    two instructions (a LOP3 has one immediate), and a bias passed in a register instead
    disturbs Triton's layouts."""
    return f"lop3.b32 {dst}, {src}, 0x000F000F, {hex(bias)}, 0xEA;"


@triton.jit
def _pairs(words, k: tl.constexpr, SLOT_BITS: tl.constexpr, dtype: tl.constexpr, PTX: tl.constexpr):
    """Values ``k`` and ``k + P/2`` of each word, 16 bits apart, each under ``dtype``'s
    exponent bias (``_from_biased``): one shift and, with ``PTX`` (CUDA), one LOP3
    (``_mask_bias_ptx``)."""
    BIAS: tl.constexpr = _exponent_bias(dtype)
    x = words >> (SLOT_BITS * k)
    if PTX:
        return tl.inline_asm_elementwise(_mask_bias_ptx("$0", "$1", BIAS), "=r,r", [x], dtype=words.dtype, is_pure=True, pack=1)
    return (x & 0x000F000F) | BIAS


@triton.jit
def _word_values(words, SLOT_BITS: tl.constexpr, OFFSET: tl.constexpr, dtype: tl.constexpr, PTX: tl.constexpr):
    """``[N, W]`` uint32 words holding ``P = 32 // SLOT_BITS`` INT4 values each (value ``j`` in
    bits ``[SLOT_BITS * j, SLOT_BITS * j + 4)``) -> ``[N, W * P]`` values ``v - OFFSET`` in
    ``dtype``, column ``c`` holding value ``_word_column(c)``: a word's pairs (``_pairs``), their
    16-bit halves side by side in a thread's registers."""
    t0 = _pairs(words, 0, SLOT_BITS, dtype, PTX)
    t1 = _pairs(words, 1, SLOT_BITS, dtype, PTX)
    if SLOT_BITS == 8:  # Hamming: one codeword per byte, data in its low nibble
        lo = tl.join(t0 & 0xFFFF, t1 & 0xFFFF)
        hi = tl.join(t0 >> 16, t1 >> 16)
    else:  # int4: eight nibbles per word, low nibble first
        t2 = _pairs(words, 2, SLOT_BITS, dtype, PTX)
        t3 = _pairs(words, 3, SLOT_BITS, dtype, PTX)
        lo = tl.join(tl.join(t0 & 0xFFFF, t2 & 0xFFFF), tl.join(t1 & 0xFFFF, t3 & 0xFFFF))
        hi = tl.join(tl.join(t0 >> 16, t2 >> 16), tl.join(t1 >> 16, t3 >> 16))
    x = tl.reshape(tl.join(lo, hi), [words.shape[0], words.shape[1] * (32 // SLOT_BITS)])
    return _from_biased(x, OFFSET, dtype)


@triton.jit
def _k_operand(values, BLOCK_U: tl.constexpr):
    """``_word_values`` tile of K (``[N, BLOCK_U]``) -> its columns in K operand order (the
    reduced axis): lane ``t`` holds the ``BLOCK_U / 4`` values of words ``t * W/4 ..``, at
    columns ``16 c + 4 t + i``."""
    N: tl.constexpr = values.shape[0]
    x = tl.reshape(values, [N, 4, BLOCK_U // 16, 4])  # (t, c, i) at column t * BLOCK_U / 4 + 4 c + i
    return tl.reshape(tl.permute(x, [0, 2, 1, 3]), [N, BLOCK_U])


@triton.jit
def _k_operand_order(x, SLOT_BITS: tl.constexpr):
    """``[M, BLOCK_U]`` tile in row order (the queries) -> its columns in the order of
    ``_k_operand(_word_values(..))``. Permuted in registers after a contiguous load: a load
    along permuted columns is not contiguous, and Triton then lays the tile out column-major."""
    M: tl.constexpr = x.shape[0]
    U: tl.constexpr = x.shape[1]
    P: tl.constexpr = 32 // SLOT_BITS
    x = tl.reshape(tl.permute(tl.reshape(x, [M, U // P, 2, P // 2]), [0, 1, 3, 2]), [M, U])  # _word_column
    return _k_operand(x, U)


@triton.constexpr_function
def _key_value_ptx(byte, nibbles, bias):
    """PTX for ``_key_values``: one PRMT gathers byte ``byte`` of key a (``$n``) and of key b
    into the two 16-bit halves, one LOP3 per nibble masks it under the bias."""
    sel = hex(byte | byte << 4 | (4 + byte) << 8 | (4 + byte) << 12)
    n = int(nibbles)
    body = f"prmt.b32 t, ${n}, ${n + 1}, {sel}; " + _mask_bias_ptx("$0", "t", bias)
    if n == 2:
        body += " shr.b32 t, t, 4; " + _mask_bias_ptx("$1", "t", bias)
    return "{ .reg .b32 t; " + body + " }"


@triton.jit
def _key_value(wa, wb, shift: tl.constexpr, BIAS: tl.constexpr):
    """The nibble at bit ``shift`` of keys a and b, in the low and the high 16 bits, under
    ``BIAS`` (the Triton-op spelling of ``_key_value_ptx``)."""
    return ((wa >> shift) & 0xF) | (((wb >> shift) & 0xF) << 16) | BIAS


@triton.jit
def _key_values(wa, wb, byte: tl.constexpr, dtype: tl.constexpr, PTX: tl.constexpr):
    """One-byte codes: the value in byte ``byte`` of the words of two keys ``a``, ``b`` ->
    registers holding (a, b) of that value under ``dtype``'s exponent bias."""
    BIAS: tl.constexpr = _exponent_bias(dtype)
    if PTX:
        return tl.inline_asm_elementwise(_key_value_ptx(byte, 1, BIAS), "=r,r,r", [wa, wb],
                                         dtype=wa.dtype, is_pure=True, pack=1)
    return _key_value(wa, wb, 8 * byte, BIAS)


@triton.jit
def _key_nibbles(wa, wb, byte: tl.constexpr, dtype: tl.constexpr, PTX: tl.constexpr):
    """int4: ``_key_values`` of the low and of the high nibble of byte ``byte``."""
    BIAS: tl.constexpr = _exponent_bias(dtype)
    if PTX:
        return tl.inline_asm_elementwise(_key_value_ptx(byte, 2, BIAS), "=r,=r,r,r", [wa, wb],
                                         dtype=(wa.dtype, wa.dtype), is_pure=True, pack=1)
    return _key_value(wa, wb, 8 * byte, BIAS), _key_value(wa, wb, 8 * byte + 4, BIAS)


@triton.jit
def _v_operand_values(words, SLOT_BITS: tl.constexpr, OFFSET: tl.constexpr, dtype: tl.constexpr, PTX: tl.constexpr):
    """``[N, W]`` words of V -> ``[N, W * P]`` values in V operand order, the keys being the
    reduced axis: each float16x2 register pairs keys ``2r, 2r + 1`` (one value of two words, the
    way the softmax weights pair them, ``_key_values``), and column ``n`` holds value
    ``_v_operand_column(n)``: lane ``g`` the values of words ``g * W/8 ..``, at columns
    ``g + 8 i``."""
    N: tl.constexpr = words.shape[0]
    W: tl.constexpr = words.shape[1]
    P: tl.constexpr = 32 // SLOT_BITS
    wa, wb = tl.split(tl.permute(tl.reshape(words, [N // 2, 2, W]), [0, 2, 1]))
    # Joined as [.., high, k] (value k + high * P/2), so that the flattened order is the value's
    # position in its word.
    if SLOT_BITS == 8:
        r0 = _key_values(wa, wb, 0, dtype, PTX)
        r1 = _key_values(wa, wb, 1, dtype, PTX)
        r2 = _key_values(wa, wb, 2, dtype, PTX)
        r3 = _key_values(wa, wb, 3, dtype, PTX)
        y = tl.join(tl.join(r0, r2), tl.join(r1, r3))
    else:
        r0, r1 = _key_nibbles(wa, wb, 0, dtype, PTX)
        r2, r3 = _key_nibbles(wa, wb, 1, dtype, PTX)
        r4, r5 = _key_nibbles(wa, wb, 2, dtype, PTX)
        r6, r7 = _key_nibbles(wa, wb, 3, dtype, PTX)
        y = tl.join(tl.join(tl.join(r0, r4), tl.join(r2, r6)), tl.join(tl.join(r1, r5), tl.join(r3, r7)))
    x = tl.join(y & 0xFFFF, (y >> 16) & 0xFFFF)  # [N/2, W, ..., 2]: keys 2r, 2r + 1
    x = tl.permute(tl.reshape(x, [N // 2, W * P, 2]), [0, 2, 1])
    x = tl.permute(tl.reshape(x, [N, 8, W * P // 8]), [0, 2, 1])
    return _from_biased(tl.reshape(x, [N, W * P]), OFFSET, dtype)


@triton.jit
def _v_operand_column(n, BLOCK_U: tl.constexpr):
    """The value at column ``n`` of ``_v_operand_values`` (and of the accumulator it feeds)."""
    return (n % 8) * (BLOCK_U // 8) + n // 8


@triton.jit
def _slot_tile(data, SLOT: tl.constexpr, OFFSET: tl.constexpr, dtype: tl.constexpr, PTX: tl.constexpr):
    """Value ``SLOT`` of each unit's data word, ``v - OFFSET`` in ``dtype``, by the exponent
    bias (``_from_biased``)."""
    return _from_biased(_pairs((data >> (4 * SLOT)) & 15, 0, 16, dtype, PTX), OFFSET, dtype)


@triton.jit
def _unit_words(base, rows, u, S, ROW_BYTES: tl.constexpr, UNITS: tl.constexpr, UNIT_BYTES: tl.constexpr, LANES_D: tl.constexpr):
    """``[N, U]`` little-endian unit words of one (sequence, head) slab, unmasked: rows past the
    end read the slab's last row (their scores are masked, their syndromes cleared), units past
    a row's end its last unit (a real codeword; the queries there are zero, the outputs there
    are not read). Offsets within one slab fit in 32 bits."""
    rows = tl.minimum(rows, S - 1)
    u = tl.minimum(u, UNITS - 1)
    if LANES_D:
        return _lane_words(base + (rows * ROW_BYTES)[:, None], u[None, :], None, LANES_D)
    return _unit_word(base + (rows * ROW_BYTES)[:, None] + (u * UNIT_BYTES)[None, :], None, UNIT_BYTES)
