"""How one row of ``head_dim`` INT4 values is laid out in stored bytes, per codec.

Everything a cache stores is uint8, and faults strike those bytes:

| codec     | storage unit                         | bytes per row   | exposed bits per byte |
|-----------|--------------------------------------|-----------------|-----------------------|
| int4      | one byte = two values (low nibble first) | ceil(D / 2)  | 8                     |
| hamming74 | one byte = one codeword (bit 7 unused)   | D            | 7                     |
| hamming84 | one byte = one codeword                  | D            | 8                     |
| golay24   | lanes: INT4 data words, then parity words (:mod:`ecc_tensor.lanes`) | 4 words | 8 |
| secded72  | blocks: the values two a byte (an int4 row), then a check byte per 16 values | 9 ceil(D / 16) | 8 |

so Hamming(8,4) costs exactly 8 bits per value and Golay a little more (136 bytes for 128
values: 128 values need 43 codewords, and its rows are whole 8-byte units, which the fused
attention kernel copies 8 bytes at a time). SECDED(72,64), like Golay's lanes, keeps a row's
data as an int4 row (64 bytes for 128 values) with the check bytes after it (8 bytes), so a
clean row reads as int4 and every load stays word-aligned. A row's values
are padded with zeros up to a whole number of units; Golay's padding is not stored.

``sequential=True`` lays every codec's units one after another, Golay's as 3-byte
little-endian codewords: the layout of the protected scales (:mod:`ecc_tensor.metadata`),
whose rows are a few nibbles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from . import lanes
from .codecs import STATUS_DETECTED, CodecTables, LinearBlockCode, get_codec
from .device_tables import int64_table


@dataclass(frozen=True)
class _Sizes:
    """A layout's sizes, derived from its codec and head_dim (``StorageLayout``'s properties)."""

    kind: str
    unit_values: int
    unit_bytes: int
    units: int
    row_bytes: int


# (codec name, head_dim, sequential) -> its _Sizes, derived once: the launchers build layouts
# per call and read their sizes dozens of times (benchmarks/RESULTS.md, "The launcher's Python").
# A plain dict, which torch.compile traces (a symbolic head_dim is derived anew).
_SIZES: dict[tuple[str, int, bool], _Sizes] = {}


def _derive_sizes(codec: LinearBlockCode, head_dim: int, sequential: bool) -> _Sizes:
    kind = "units" if codec.layout == "lanes" and sequential else codec.layout
    if kind == "lanes":
        lane = lanes.lane_layout(head_dim)
        return _Sizes(kind, codec.values_per_codeword, 0, lane.units, 4 * lane.row_words)
    unit_values = 2 if kind == "nibbles" else codec.values_per_codeword
    unit_bytes = 1 if kind == "nibbles" else math.ceil(codec.n / 8)
    units = (head_dim + unit_values - 1) // unit_values  # integer division: a symbolic head_dim stays an integer expression
    return _Sizes(kind, unit_values, unit_bytes, units, units * unit_bytes)


@dataclass(frozen=True)
class StorageLayout:
    codec_name: str
    head_dim: int
    sequential: bool = False  # units one after another, even for Golay (no lanes)

    def __post_init__(self) -> None:
        codec = get_codec(self.codec_name)  # validates the name
        if self.head_dim < 1:
            raise ValueError(f"head_dim must be >= 1, got {self.head_dim}")
        key = (self.codec_name, self.head_dim, self.sequential)
        known = isinstance(self.head_dim, int)
        sizes = _SIZES.get(key) if known else None
        if sizes is None:
            sizes = _derive_sizes(codec, self.head_dim, self.sequential)
            if known:
                _SIZES[key] = sizes
        object.__setattr__(self, "_sizes", sizes)

    @property
    def codec(self) -> LinearBlockCode:
        return get_codec(self.codec_name)

    @property
    def kind(self) -> str:
        """The codec's layout (:data:`ecc_tensor.codecs.linear.LAYOUTS`); ``"units"`` for a lane
        code stored ``sequential``."""
        return self._sizes.kind

    @property
    def nibbles(self) -> bool:
        """Two values a byte, no code (int4)."""
        return self._sizes.kind == "nibbles"

    @property
    def unit_values(self) -> int:
        """INT4 values per storage unit."""
        return self._sizes.unit_values

    @property
    def blocks(self) -> bool:
        """Codewords the codec encodes to bytes and decodes from bytes itself (SECDED(72,64))."""
        return self._sizes.kind == "blocks"

    @property
    def lanes(self) -> bool:
        """Golay's lane layout (:mod:`ecc_tensor.lanes`) rather than one unit after another."""
        return self._sizes.kind == "lanes"

    @property
    def unit_bytes(self) -> int:
        """Bytes per unit, units one after another; 0 for the lane layout."""
        return self._sizes.unit_bytes

    @property
    def units(self) -> int:
        return self._sizes.units

    @property
    def row_bytes(self) -> int:
        return self._sizes.row_bytes

    @property
    def codewords_per_row(self) -> int:
        """Codewords decoded per row; for int4, one per value (nothing to decode)."""
        return self.head_dim if self.nibbles else self.units

    @property
    def exposed_bits_per_byte(self) -> int:
        return min(8, self.codec.n) if self.unit_bytes == 1 and not self.nibbles else 8

    def value_msb_bits(self, device: torch.device | str | None = None) -> torch.Tensor:
        """``[row_bytes]`` int64: the bits of each stored byte that hold a value's most
        significant bit (data bit 3 of a value; never a parity bit or a padding value), where
        the ``msb`` fault model strikes."""
        bits = [0] * self.row_bytes
        if self.lanes or self.nibbles or self.blocks:  # values in INT4 order, two a byte
            for v in range(self.head_dim):
                bits[v // 2] |= 0x8 << (4 * (v % 2))
        else:  # a unit's data nibbles in its low bits, value i at bit 4i
            for v in range(self.head_dim):
                u, i = divmod(v, self.unit_values)
                bit = u * self.unit_bytes * 8 + 4 * i + 3
                bits[bit // 8] |= 1 << (bit % 8)
        return int64_table(tuple(bits), device)

    def store(self, values: torch.Tensor, tables: CodecTables | None = None) -> torch.Tensor:
        """``[..., head_dim]`` uint8 INT4 values -> ``[..., row_bytes]`` uint8 storage."""
        if self.lanes:
            index = lanes.unit_values(self.head_dim, values.device)
            slots = torch.where(index >= 0, values[..., index.clamp(min=0)], 0)
            words = self.codec.encode(slots.flatten(-2), validate=False, tables=tables)
            return lanes.store(words, values, self.head_dim)
        # Zeros and a copy, not F.pad: a symbolic head_dim then gives the padded width as one
        # product (a pad's width minus head_dim plus head_dim held up torch.compile's shape checks).
        padded = values.new_zeros(*values.shape[:-1], self.units * self.unit_values)
        padded[..., :self.head_dim] = values
        if self.nibbles:
            pairs = padded.reshape(*padded.shape[:-1], -1, 2)
            return pairs[..., 0] | (pairs[..., 1] << 4)
        if self.blocks:  # every codeword's data bytes (an int4 row), then every codeword's check bytes
            words = self.codec.encode(padded, validate=False, tables=tables)
            data_bytes = self.codec.k // 8
            return torch.cat([words[..., :data_bytes].flatten(-2), words[..., data_bytes:].flatten(-2)], -1)
        words = self.codec.encode(padded, validate=False, tables=tables).to(torch.int64)
        if self.unit_bytes == 1:
            return words.to(torch.uint8)
        shifts = torch.arange(self.unit_bytes, device=words.device) * 8
        return ((words.unsqueeze(-1) >> shifts) & 0xFF).to(torch.uint8).flatten(-2)

    def codewords(self, stored: torch.Tensor) -> torch.Tensor:
        """``[..., row_bytes]`` storage -> ``[..., codewords_per_row]`` codewords (codec word dtype)."""
        if self.nibbles:
            low, high = stored & 0xF, stored >> 4
            return torch.stack([low, high], -1).flatten(-2)[..., : self.head_dim]
        if self.lanes:
            return lanes.codewords(stored, self.head_dim)
        if self.unit_bytes == 1:
            return stored
        if self.blocks:  # [..., units, unit_bytes]: the codec's own codeword form
            split = self.units * (self.codec.k // 8)
            data = stored[..., :split].reshape(*stored.shape[:-1], self.units, -1)
            check = stored[..., split:].reshape(*stored.shape[:-1], self.units, -1)
            return torch.cat([data, check], -1)
        shifts = torch.arange(self.unit_bytes, device=stored.device) * 8
        units = stored.reshape(*stored.shape[:-1], self.units, self.unit_bytes).to(torch.int64)
        return (units << shifts).sum(-1).to(self.codec.word_dtype)

    def load(self, stored: torch.Tensor, tables: CodecTables | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode storage: ``(values uint8 [..., head_dim], status uint8 [..., codewords_per_row])``,
        the status as :meth:`LinearBlockCode.decode_words` gives it (parity-only apart)."""
        if self.blocks:
            values, status = self.codec.decode(self.codewords(stored), validate=False, tables=tables)
            return values[..., : self.head_dim], status
        data, status = self.codec.decode_words(self.codewords(stored), tables)
        values = self.codec.unpack_values(data)
        if self.lanes:  # slot order -> value order
            return values[..., lanes.value_slots(self.head_dim, values.device)], status
        return values[..., : self.head_dim], status

    def erased_values(self, status: torch.Tensor, written_rows: torch.Tensor | None = None) -> torch.Tensor:
        """Per-value bool mask, ``[..., head_dim]``, of values interpolation must not trust:
        those of detected-uncorrectable codewords and, given ``written_rows`` (bool
        broadcastable to ``[..., seq, 1]``), every value of a row not written yet."""
        if self.lanes:
            per_value = (status == STATUS_DETECTED)[..., lanes.value_units(self.head_dim, status.device)]
        else:
            per_value = (status == STATUS_DETECTED).repeat_interleave(self.codec.values_per_codeword, dim=-1)
            per_value = per_value[..., : self.head_dim]
        return per_value if written_rows is None else per_value | ~written_rows


def written_rows(stored: torch.Tensor, seq_len: torch.Tensor | None) -> torch.Tensor | None:
    """``[seq, 1]`` bool: which rows along dim -2 of ``stored`` hold written tokens."""
    if seq_len is None:
        return None
    return (torch.arange(stored.shape[-2], device=stored.device) < seq_len).unsqueeze(-1)
