"""Hamming's one-byte codewords (:mod:`ecc_tensor.storage`'s ``bytes`` layout) as 32-bit words:
the syndromes of eight codewords, two words, in a few word operations, four codewords decoded a
word (``_word_decode``: flips and statuses by byte permutes from a table), and the constants that
fold a code's tables into them. The codec kernels check a tile's rows with it and decode a dirty
tile, as the attention kernel checks its blocks and its deferred launch decodes them."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ecc_tensor.codecs import CODEC_NAMES, get_codec

from .lane_words import _interleaved


def _build_nibble_constants(codec: str) -> dict:
    """The codec's tables folded into the kernel's in-register decoder constants (one-byte
    codes with 4 data bits); ``NIBBLE=False`` for the others."""
    code = get_codec(codec)
    if code.layout != "bytes":
        return dict(NIBBLE=False, PAR_LO=0, PAR_HI=0, FLIP_LO=0, FLIP_HI=0, DET=0, PBITS=1, C0=0, C1=0, C2=0, C3=0, PMASK=0)
    tables = code.tables(torch.device("cpu"))
    pbits = code.n - code.k
    parity = [(int(tables.encode_table[d]) >> 4) & ((1 << pbits) - 1) for d in range(16)]
    if any(parity[a ^ b] != parity[a] ^ parity[b] for a in range(16) for b in range(16)):
        raise ValueError(f"{codec}: the packed decoder needs a linear code")
    leaders = [int(x) for x in tables.syndrome_table]
    flips = [(x & 15) if x >= 0 else 0 for x in leaders] + [0] * (16 - len(leaders))
    as_int32 = lambda x: x - (1 << 32) if x >= 1 << 31 else x  # noqa: E731
    pack = lambda nibbles: as_int32(sum(v << (4 * i) for i, v in enumerate(nibbles)))  # noqa: E731
    return dict(
        NIBBLE=True, PAR_LO=pack(parity[:8]), PAR_HI=pack(parity[8:]), FLIP_LO=pack(flips[:8]), FLIP_HI=pack(flips[8:]),
        DET=sum(1 << s for s, x in enumerate(leaders) if x < 0), PBITS=pbits,
        # The packed decoder's syndromes: the parity nibble of each data bit, and where the
        # parity bits sit in each byte of a word.
        C0=parity[1], C1=parity[2], C2=parity[4], C3=parity[8], PMASK=(((1 << pbits) - 1) << 4) * 0x01010101,
    )


# Built at import: the launcher runs inside torch.compile's trace, where reading tensor
# values (the tables) would be data-dependent.
_NIBBLE_CONSTANTS = {name: _build_nibble_constants(name) for name in CODEC_NAMES}


def nibble_constants(codec: str) -> dict:
    """``_NIBBLE_CONSTANTS`` of ``codec``, built on first use for a codec registered at run time."""
    if codec not in _NIBBLE_CONSTANTS:
        _NIBBLE_CONSTANTS[codec] = _build_nibble_constants(codec)
    return _NIBBLE_CONSTANTS[codec]


@triton.jit
def _low_nibbles_from(a, b, PTX: tl.constexpr):
    """The low nibble of each byte from ``a``, the high nibble from ``b``: one LOP3 with
    ``PTX`` (CUDA), where the compiler makes two masks and an OR of them."""
    if PTX:
        return tl.inline_asm_elementwise("lop3.b32 $0, $1, $2, 0x0F0F0F0F, 0xE4;", "=r,r,r", [a, b],
                                         dtype=a.dtype, is_pure=True, pack=1)
    return (a & 0x0F0F0F0F) | (b & 0xF0F0F0F0)


@triton.jit
def _word_syndromes(x, y, C0: tl.constexpr, C1: tl.constexpr, C2: tl.constexpr, C3: tl.constexpr, PMASK: tl.constexpr,
                    PTX: tl.constexpr):
    """Two uint32 words of four one-byte Hamming codewords each -> a word whose eight nibbles
    are their syndromes (parity bits received ^ parity of the data received); the words are
    clean if and only if it is zero. The code is linear, so the parity of a data nibble is the
    XOR of ``C_i`` (the parity nibble of data bit ``i``) over its set bits. Both words' data
    nibbles are first packed into one word, so that each multiply places ``C_i`` in eight
    nibbles (those whose bit ``i`` is set) at once, without carries between them: ~18
    instructions for the two words, where one word at a time takes ~11 each."""
    data = _low_nibbles_from(x, y << 4, PTX)
    s = _low_nibbles_from(x >> 4, y, PTX)  # the parity nibbles, lane for lane
    s ^= (data & 0x11111111) * C0
    s ^= ((data >> 1) & 0x11111111) * C1
    s ^= ((data >> 2) & 0x11111111) * C2
    s ^= ((data >> 3) & 0x11111111) * C3
    return s & (PMASK | (PMASK >> 4))  # Hamming(7,4): bit 7 of a byte is no codeword bit


@triton.jit
def _byte_codeword_words(values, C0: tl.constexpr, C1: tl.constexpr, C2: tl.constexpr, C3: tl.constexpr):
    """A block of rows' 4-bit values in row order ``[N, 4W]`` -> their one-byte codewords as
    ``[N, W]`` int32 words (value ``4j + b`` in byte ``b`` of word ``j``): data nibble, then its
    parity nibble, the XOR of ``C_i`` over the data's set bits, one multiply per data bit for
    four codewords (each ``C_i`` below 16, so no carry crosses a byte)."""
    N: tl.constexpr = values.shape[0]
    W: tl.constexpr = values.shape[1] // 4
    even, odd = tl.split(tl.reshape(values, [N, W, 2, 2]))
    lo, hi = tl.split(even | (odd << 8))
    data = lo | (hi << 16)
    return data | (_byte_parity(data, C0, C1, C2, C3) << 4)


@triton.jit
def _byte_parity(data, C0: tl.constexpr, C1: tl.constexpr, C2: tl.constexpr, C3: tl.constexpr):
    """Words of four data nibbles, one in the low half of each byte -> each one's parity nibble in
    the same byte: the XOR of ``C_i`` over its set bits, one multiply per data bit for the four
    (each ``C_i`` below 16, so no carry crosses a byte)."""
    parity = (data & 0x01010101) * C0
    parity ^= ((data >> 1) & 0x01010101) * C1
    parity ^= ((data >> 2) & 0x01010101) * C2
    parity ^= ((data >> 3) & 0x01010101) * C3
    return parity


@triton.jit
def _word_bytes(words):
    """``[N, W]`` words -> their bytes ``[N, 4W]`` in row order (byte ``b`` of word ``j`` at
    column ``4j + b``), as int32."""
    words = words.to(tl.int32, bitcast=True)
    return _interleaved(words & 0xFF, (words >> 8) & 0xFF, (words >> 16) & 0xFF, (words >> 24) & 0xFF)


@triton.constexpr_function
def _decode_table_words(FLIP_LO, FLIP_HI, DET, PO_SYN):
    """The one-byte codes' decode by syndrome (0-15) as four words of byte entries, syndrome
    ``s`` in byte ``s % 4`` of word ``s // 4``: the data flips of its coset leader in the low
    nibble, the status above (0 clean, 1 corrected, 2 detected, 3 parity-only, as
    ``codec_kernels._status``). Built from the nibble constants (``_build_nibble_constants``)."""
    flips = int(FLIP_LO) & 0xFFFFFFFF | (int(FLIP_HI) & 0xFFFFFFFF) << 32
    entries = []
    for s in range(16):
        status = 0 if s == 0 else 2 if (int(DET) >> s) & 1 else 3 if s == int(PO_SYN) else 1
        entries.append((flips >> (4 * s)) & 15 | status << 4)
    return tuple(sum(entries[4 * j + i] << (8 * i) for i in range(4)) for j in range(4))


@triton.constexpr_function
def _table_lookup_ptx(t0, t1, t2, t3, select):
    """PTX for ``_table_lookup``: a PRMT per half of the table, each selector nibble picking one
    of its eight bytes, and one LOP3 taking the high half's byte where ``$2`` (``select``) is
    0xFF."""
    halves = (f"mov.b32 a, {hex(t0)}; mov.b32 b, {hex(t1)}; prmt.b32 lo, a, b, $1; ")
    if not select:
        return "{ .reg .b32 a, b, lo; " + halves + "mov.b32 $0, lo; }"
    halves += f"mov.b32 a, {hex(t2)}; mov.b32 b, {hex(t3)}; prmt.b32 hi, a, b, $1; "
    return "{ .reg .b32 a, b, lo, hi; " + halves + "lop3.b32 $0, lo, hi, $2, 0xD8; }"


@triton.jit
def _byte_of(t_lo: tl.constexpr, t_hi: tl.constexpr, k):
    """Byte ``k`` (0-7) of the 64-bit ``t_hi:t_lo``, for the interpreter's ``_table_lookup``."""
    word = tl.where(k < 4, t_lo, t_hi)
    return (word >> (8 * (k & 3))) & 0xFF


@triton.jit
def _table_lookup(syndromes, TABLE: tl.constexpr, HIGH: tl.constexpr, PTX: tl.constexpr):
    """``syndromes``: uint32 words of four byte syndromes (0-15; below 8 unless ``HIGH``) ->
    each byte's entry of ``TABLE`` (``_decode_table_words``). On CUDA two PRMTs look up four
    bytes each (PTX's byte permute over a pair of table words, the selector a nibble a byte);
    the interpreter takes each byte apart."""
    low3 = syndromes & 0x07070707
    if PTX:
        # The selector: byte syndromes' low three bits as the four nibbles PRMT reads.
        sel = tl.inline_asm_elementwise("prmt.b32 $0, $1, $1, 0x20;", "=r,r", [low3 | (low3 >> 4)], dtype=tl.uint32,
                                        is_pure=True, pack=1)
        asm: tl.constexpr = _table_lookup_ptx(TABLE[0], TABLE[1], TABLE[2], TABLE[3], HIGH)
        if HIGH:
            high = ((syndromes >> 3) & 0x01010101) * 0xFF
            return tl.inline_asm_elementwise(asm, "=r,r,r", [sel, high], dtype=tl.uint32, is_pure=True, pack=1)
        return tl.inline_asm_elementwise(asm, "=r,r", [sel], dtype=tl.uint32, is_pure=True, pack=1)
    entries = tl.zeros(syndromes.shape, tl.uint32)
    for i in tl.static_range(4):
        s = (syndromes >> (8 * i)) & 15
        entry = tl.where(s < 8, _byte_of(TABLE[0], TABLE[1], s & 7), _byte_of(TABLE[2], TABLE[3], s & 7))
        entries |= entry.to(tl.uint32) << (8 * i)
    return entries


@triton.jit
def _word_decode(words, C0: tl.constexpr, C1: tl.constexpr, C2: tl.constexpr, C3: tl.constexpr, PBITS: tl.constexpr,
                 FLIP_LO: tl.constexpr, FLIP_HI: tl.constexpr, DET: tl.constexpr, PO_SYN: tl.constexpr, PTX: tl.constexpr):
    """uint32 words of four one-byte Hamming codewords -> (the corrected data nibble of each, a
    byte each; each codeword's status, a byte each), as ``units._decode_units`` decodes one
    codeword: the syndromes by a multiply per data bit for four codewords (``_word_syndromes``),
    then the flips and statuses of all four looked up at once (``_table_lookup``). About 30
    word operations for four codewords where ``_decode_units`` takes about 27 for one."""
    data = words & 0x0F0F0F0F
    syndromes = ((words >> 4) & (((1 << PBITS) - 1) * 0x01010101)) ^ _byte_parity(data, C0, C1, C2, C3)
    entries = _table_lookup(syndromes, _decode_table_words(FLIP_LO, FLIP_HI, DET, PO_SYN), PBITS > 3, PTX)
    return data ^ (entries & 0x0F0F0F0F), (entries >> 4) & 0x03030303
