"""SECDED(72,64): 16 INT4 values (64 data bits) and 8 check bits, 12.5% overhead, as server DRAM
protects its 64-bit words.

Hsiao's construction: every column of the parity-check matrix has odd weight (the 8 check
bits weight 1; the 64 data bits all 56 columns of weight 3 and the 8 rotations of
``0b00011111``, so each check bit covers 26 data bits: the least total weight). A single flip
gives the odd syndrome of its column and is corrected; two flips give a nonzero even syndrome
and are detected, without an overall parity bit; an odd syndrome that is no column (three or
more flips) is detected too.

Why this assignment of the columns to the data bits: it makes the syndrome a few word
operations on a GPU. The 64 columns fall into 8 orbits under rotation (7 of weight 3, one of
weight 5); data byte ``B`` takes one orbit, bit ``c`` of it the orbit's representative
``BYTE_OFFSETS[B]`` rotated by ``c``. The check bits are then the XOR over the offsets ``r``
of the data bytes whose representative holds ``r``, rotated by ``r`` and folded to a byte:
with the data as two 32-bit words, about 15 shifts, byte selections and XORs per 16 values
(``ops/codec_kernels.py``, ``_block_check``), where a parity per check bit takes 16 popcounts.
The representatives were searched for the cheapest such sum: all hold offset 0 (one XOR of
the two words), the first word's bytes are exactly those holding offset 1 (the word itself),
the highest offset is 5, and each other offset's bytes take one mask or byte permute. One
more condition ruled out cheaper ones: the XOR ``S`` of the representatives must not repeat
after a rotation by 4. Flipping bit ``c`` of every byte gives the syndrome ``S`` rotated by
``c``, and flipping the most significant bit of every value (bits 3 and 7 of every byte, the
``msb`` fault model at its worst) gives ``S`` rotated by 3 XOR ``S`` rotated by 7; with
``S = 0`` both are codewords, flips no check sees.
A codeword is 9 bytes, ``[..., 9]`` uint8: bytes 0-7 the 16 values two a byte, low nibble first
(the ``int4`` layout, so a clean codeword reads without decoding), byte 8 the check bits. A row of
128 values is 8 codewords, 72 bytes; in the cache (the storage layout ``"blocks"``,
:mod:`ecc_tensor.storage`) a row keeps the codewords' data bytes first, as an int4 row, then
their check bytes, so that a clean row reads as int4 with word-aligned loads. The table-driven
codes tabulate all ``2^k`` data words; this one cannot, so its ``tables`` are what its decoder needs instead: the
``encode_table`` slot holds the 64 data columns of ``H`` (int32) and the ``syndrome_table``
slot, for each of the 256 syndromes, the codeword bit a single flip there gives, or -1. The
Triton kernels compute the check bits from ``byte_offsets`` instead (``_block_check``).
"""

from __future__ import annotations

import torch

from .linear import STATUS_CLEAN, STATUS_CORRECTED, STATUS_DETECTED, CodecTables, static_tables

DATA_BITS = 64
CHECK_BITS = 8
VALUES = DATA_BITS // 4
BYTES = (DATA_BITS + CHECK_BITS) // 8


# Data byte B's orbit representative, a bit per offset: {0,1,2}, {0,1,3}, {0,1,4}, {0,1,2,3,4},
# {0,2,3}, {0,3,4}, {0,2,4}, {0,2,5} (the 7 rotation orbits of weight 3 and one of weight 5).
BYTE_OFFSETS = (0b00000111, 0b00001011, 0b00010011, 0b00011111, 0b00001101, 0b00011001, 0b00010101, 0b00100101)


def _rotate_byte(x: int, c: int) -> int:
    return ((x << c) | (x >> (CHECK_BITS - c))) & 0xFF


def _hsiao_columns() -> list[int]:
    """Data bit ``8 B + c``'s column: ``BYTE_OFFSETS[B]`` rotated left by ``c``."""
    return [_rotate_byte(BYTE_OFFSETS[b], c) for b in range(DATA_BITS // 8) for c in range(8)]


class SECDED72:
    """The (72, 64) Hsiao SECDED code over 16 INT4 values (see the module docstring)."""

    name = "secded72"
    n, k = DATA_BITS + CHECK_BITS, DATA_BITS
    values_per_codeword = VALUES
    bytes_per_codeword = BYTES
    correctable_weight = 1
    minimum_distance = 4
    layout = "blocks"  # ecc_tensor.storage: an int4 row, then a check byte per codeword; encoded to bytes here
    word_dtype = torch.uint8
    codeword_shape = (BYTES,)  # a codeword is 9 bytes
    decodes = True
    byte_offsets = BYTE_OFFSETS  # the column structure the kernels compute the check bits from (see the docstring)
    overall_parity_bit = None  # Hsiao's code has none: a double flip gives an even syndrome
    parity_only_syndrome = None

    def __init__(self) -> None:
        self.data_columns = torch.tensor(_hsiao_columns(), dtype=torch.int64)  # [64]: syndrome of a flip in data bit i
        # syndrome -> the codeword bit a single flip there gives (0-63 data, 64-71 check), or -1
        position = torch.full((1 << CHECK_BITS,), -1, dtype=torch.int64)
        position[self.data_columns] = torch.arange(DATA_BITS)
        position[1 << torch.arange(CHECK_BITS)] = DATA_BITS + torch.arange(CHECK_BITS)
        self.position_of_syndrome = position
        self._tables: dict[torch.device, CodecTables] = {}

    def tables(self, device: torch.device | str | None = None) -> CodecTables:
        """``(data columns int32 [64], bit of each syndrome int32 [256])`` on ``device``, in the
        two slots the ``ecc`` ops pass every codec's tables in."""
        device = torch.device("cpu") if device is None else torch.device(device)
        if device not in self._tables:
            self._tables[device] = static_tables(CodecTables(self.data_columns.to(device, torch.int32),
                                                             self.position_of_syndrome.to(device, torch.int32)))
        return self._tables[device]

    # -- public API -----------------------------------------------------------------------
    def encode(self, values: torch.Tensor, *, validate: bool = True, tables: CodecTables | None = None) -> torch.Tensor:
        """INT4 values ``[..., 16 m]`` (uint8 in [0, 15]) -> codewords ``[..., m, 9]`` uint8."""
        if validate:
            values = self._check_values(values)
        data = self._pack(values)
        columns = (tables or self.tables(values.device)).encode_table
        return torch.cat([data, self._check_byte(data, columns)[..., None]], dim=-1)

    def decode(self, codewords: torch.Tensor, *, validate: bool = True,
               tables: CodecTables | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Codewords ``[..., m, 9]`` -> ``(values uint8 [..., 16 m], status uint8 [..., m])``: 0
        clean, 1 corrected, 2 detected (the values as read: the code is systematic)."""
        if validate:
            self._check_codewords(codewords)
        tables = tables or self.tables(codewords.device)
        data, check = codewords[..., :8], codewords[..., 8]
        syndrome = (self._check_byte(data, tables.encode_table) ^ check).to(torch.int64)
        position = tables.syndrome_table.to(torch.int64)[syndrome]
        flip_data = (position >= 0) & (position < DATA_BITS)
        # the single flipped data bit, as a mask over the 8 data bytes
        bit = position.clamp(0, DATA_BITS - 1)
        byte_index = torch.arange(8, device=codewords.device)
        in_byte = torch.ones_like(bit)[..., None] << (bit % 8)[..., None]
        mask = torch.where((byte_index == (bit // 8)[..., None]) & flip_data[..., None], in_byte, 0)
        data = data ^ mask.to(torch.uint8)
        status = torch.where(syndrome == 0, STATUS_CLEAN, torch.where(position >= 0, STATUS_CORRECTED, STATUS_DETECTED))
        return self._unpack(data), status.to(torch.uint8)

    # -- internals ------------------------------------------------------------------------
    @staticmethod
    def _check_byte(data: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        """The 8 check bits of data bytes ``[..., 8]``: check bit j = parity of the data bits it
        covers (``columns``: data bit i's column of ``H``)."""
        shifts = torch.arange(8, device=data.device)
        bits = (data.to(torch.int64)[..., :, None] >> shifts) & 1  # [..., 8 bytes, 8 bits]
        bits = bits.reshape(*data.shape[:-1], DATA_BITS)
        cover = (columns.to(torch.int64)[:, None] >> shifts) & 1  # [64, 8]: data bit i is covered by check bit j
        # A float32 product counts at most 64 ones exactly; CUDA has no integer matmul.
        checks = (bits.float() @ cover.float()).to(torch.int64) & 1  # [..., 8]
        return (checks << torch.arange(CHECK_BITS, device=data.device)).sum(-1).to(torch.uint8)

    @staticmethod
    def _pack(values: torch.Tensor) -> torch.Tensor:
        pairs = values.reshape(*values.shape[:-1], -1, VALUES // 2, 2)
        return pairs[..., 0] | (pairs[..., 1] << 4)

    @staticmethod
    def _unpack(data: torch.Tensor) -> torch.Tensor:
        values = torch.stack([data & 0xF, data >> 4], dim=-1)
        return values.reshape(*data.shape[:-2], -1)

    def _check_values(self, values) -> torch.Tensor:
        if not isinstance(values, torch.Tensor) or values.dtype != torch.uint8:
            got = values.dtype if isinstance(values, torch.Tensor) else type(values).__name__
            raise ValueError(f"{self.name}.encode: values must be a torch.uint8 tensor of INT4 values in [0, 15], got {got}")
        if values.dim() == 0 or values.shape[-1] % VALUES:
            last = "a scalar" if values.dim() == 0 else f"last dimension {values.shape[-1]}"
            raise ValueError(f"{self.name}.encode: packs {VALUES} values per codeword, so the last dimension must be a "
                             f"multiple of {VALUES}; got {last} (pad it first)")
        if values.numel() and int(values.max()) > 15:
            raise ValueError(f"{self.name}.encode: values must lie in [0, 15], found {int(values.max())}")
        return values

    def _check_codewords(self, codewords) -> None:
        if not isinstance(codewords, torch.Tensor) or codewords.dtype != torch.uint8 or codewords.dim() == 0 \
                or codewords.shape[-1] != BYTES:
            got = f"{codewords.dtype} {tuple(codewords.shape)}" if isinstance(codewords, torch.Tensor) else type(codewords).__name__
            raise ValueError(f"{self.name}.decode: codewords must be a uint8 tensor [..., {BYTES}], got {got}")

    def __repr__(self) -> str:
        return f"SECDED72(n={self.n}, k={self.k}, t=1, Hsiao odd-weight columns)"


secded72 = SECDED72()  # the registry's instance: get_codec("secded72") is this object
