"""The quantization metadata of a row (scales, zero points), stored protected by the row's codec.

A row of INT4 values is worthless without its scale: one flipped exponent bit multiplies the
whole row by ``2^k``. So the metadata is stored in the same codec as the values. A row's
metadata *words* are its float32 scales, one per group, followed by its float32 zero points
(asymmetric quantization only). Each word is split into its eight nibbles, low nibble first,
and those nibbles are stored as the INT4 values of a row of their own
(:class:`~ecc_tensor.storage.StorageLayout`): Golay's lane layout with one scale group (the
float32 words themselves are its data words, followed by parity words, so the fused attention
checks them with word operations as it checks the values), codewords one after another
otherwise.

| codec     | bytes per row, one symmetric scale | corrects / detects                        |
|-----------|-----------------------------------:|-------------------------------------------|
| int4      | 4 (the float32 itself)             | nothing                                   |
| hamming74 | 8                                  | one flip per nibble; two are miscorrected |
| hamming84 | 8                                  | one flip per nibble, detects two          |
| golay24   | 16 (3 codewords in lanes: data word, 2 parity words, 1 padding) | three flips per codeword, detects four |

With one scale per row of 128 values that is 0.5 extra bits per value for Hamming (1.0 for
Golay, whose 9 bytes of codewords take 16 in word-aligned lanes), against 8 bits for the values.
The float32 words are kept exactly, so a fault-free read is bit-identical to an unprotected one.
A metadata word with a detected-uncorrectable codeword makes its group's values unreliable:
they count as erased (interpolated from the temporal neighbours in ``-interp`` modes, used as
read otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .codecs import CodecTables
from .storage import StorageLayout

NIBBLES_PER_WORD = 8  # a float32 word
_SHIFTS = tuple(4 * j for j in range(NIBBLES_PER_WORD))


@dataclass(frozen=True)
class MetadataLayout:
    """How the metadata of one row (``groups`` scales, and as many zero points unless
    ``symmetric``) is stored in ``codec_name``."""

    codec_name: str
    groups: int = 1
    symmetric: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.groups, bool) or not isinstance(self.groups, (int, torch.SymInt)) or self.groups < 1:
            raise ValueError(f"groups must be a positive int, got {self.groups!r}")
        # Under torch.compile a group count read off a shape is symbolic: the layout specializes on it.
        object.__setattr__(self, "groups", int(self.groups))

    @property
    def words(self) -> int:
        """float32 words per row: the scales, then the zero points."""
        return self.groups * (1 if self.symmetric else 2)

    @property
    def storage(self) -> StorageLayout:
        """The nibbles' layout: Golay's lane layout for one scale group (a row of 8 or 16
        nibbles: the float32 words themselves as data words, then parity words, which the fused
        attention checks with word operations as it checks the values), codewords one after
        another otherwise."""
        return StorageLayout(self.codec_name, NIBBLES_PER_WORD * self.words, sequential=self.groups > 1)

    @property
    def row_bytes(self) -> int:
        return self.storage.row_bytes

    @property
    def codewords_per_row(self) -> int:
        return self.storage.codewords_per_row

    @property
    def exposed_bits_per_byte(self) -> int:
        return self.storage.exposed_bits_per_byte

    def store(self, scale: torch.Tensor, zero: torch.Tensor | None = None, tables: CodecTables | None = None) -> torch.Tensor:
        """float32 ``scale`` (and ``zero``) ``[..., groups]`` -> uint8 ``[..., row_bytes]``."""
        return self.storage.store(self.nibbles(scale, zero), tables)

    def nibbles(self, scale: torch.Tensor, zero: torch.Tensor | None = None) -> torch.Tensor:
        """float32 ``scale`` (and ``zero``) ``[..., groups]`` -> the row's nibbles, uint8
        ``[..., 8 * words]``: the INT4 values :attr:`storage` stores."""
        if (zero is None) != self.symmetric:
            raise ValueError("zero points are stored exactly when the quantization is asymmetric")
        words = scale if zero is None else torch.cat([scale, zero], dim=-1)
        bits = words.to(torch.float32).contiguous().view(torch.int32).to(torch.int64)
        shifts = torch.tensor(_SHIFTS, dtype=torch.int64, device=bits.device)
        return ((bits.unsqueeze(-1) >> shifts) & 15).to(torch.uint8).flatten(-2)

    def load(self, meta: torch.Tensor, tables: CodecTables | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Decode ``[..., row_bytes]``: ``(words f32 [..., words], status uint8
        [..., codewords_per_row], erased bool [..., words])``; ``erased`` marks the words with a
        detected-uncorrectable codeword (:meth:`split` and :meth:`group_flags` take them apart)."""
        nibbles, status = self.storage.load(meta, tables)
        return self.words_from_nibbles(nibbles), status, self.erased_words(status)

    def erased_words(self, status: torch.Tensor) -> torch.Tensor:
        """``[..., codewords_per_row]`` statuses -> ``[..., words]`` bool: a codeword holding a
        nibble of the word is detected-uncorrectable."""
        per_nibble = self.storage.erased_values(status)
        return per_nibble.reshape(*status.shape[:-1], self.words, NIBBLES_PER_WORD).any(-1)

    def split(self, words: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``[..., words]`` -> (scale ``[..., groups]``, zero ``[..., groups]`` or None)."""
        return (words, None) if self.symmetric else (words[..., : self.groups], words[..., self.groups :])

    def group_flags(self, per_word: torch.Tensor) -> torch.Tensor:
        """``[..., words]`` bool -> ``[..., groups]``: a group's scale or zero point is flagged."""
        scale, zero = self.split(per_word)
        return scale if zero is None else scale | zero

    def words_from_nibbles(self, nibbles: torch.Tensor) -> torch.Tensor:
        """``[..., 8 * words]`` nibbles -> ``[..., words]`` float32."""
        grouped = nibbles.to(torch.int64).reshape(*nibbles.shape[:-1], self.words, NIBBLES_PER_WORD)
        shifts = torch.tensor(_SHIFTS, dtype=torch.int64, device=nibbles.device)
        bits = (grouped << shifts).sum(-1)
        # int64 -> int32 keeps the low 32 bits: the float's bit pattern.
        return torch.where(bits >= 1 << 31, bits - (1 << 32), bits).to(torch.int32).view(torch.float32)

    def silent(self, read: torch.Tensor, written: torch.Tensor, tables: CodecTables | None = None,
               rows: torch.Tensor | None = None) -> torch.Tensor:
        """Silent metadata corruptions: words of ``read`` that decode to other bits than those of
        ``written`` (both ``[..., row_bytes]``) with no detected codeword; only rows where
        ``rows`` (bool, broadcastable to ``[..., 1]``) holds count."""
        got, _, erased = self.load(read, tables)
        want, _, _ = self.load(written, tables)
        wrong = (got.view(torch.int32) != want.view(torch.int32)) & ~erased
        if rows is not None:
            wrong = wrong & rows
        return wrong.sum(dtype=torch.int64)


def value_groups(erased_groups: torch.Tensor, head_dim: int) -> torch.Tensor:
    """``[..., groups]`` per-group flags -> ``[..., head_dim]`` per-value flags."""
    groups = erased_groups.shape[-1]
    return erased_groups.repeat_interleave(head_dim // groups, dim=-1)
