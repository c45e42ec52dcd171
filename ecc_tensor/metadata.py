"""The quantization metadata of a row (scales, zero points), stored protected.

A row of INT4 values is worthless without its scale: one flipped exponent bit multiplies the
whole row by ``2^k``. So every mode with a code stores its metadata in the strongest code the
library has, Golay(24,12), whatever code protects the values (:func:`metadata_codec`); the
unprotected ``int4`` keeps its float32 words as they are. A row's metadata *words* are its
float32 scales, one per group, followed by its float32 zero points (asymmetric quantization
only). Each word is split into its eight nibbles, low nibble first, and those nibbles are
stored as the INT4 values of a row of their own (:class:`~ecc_tensor.storage.StorageLayout`):
Golay's lane layout with one scale group (the float32 words themselves are its data words,
followed by parity words, so the fused attention checks them with word operations as it
checks the values), codewords one after another otherwise.

| values' codec                 | metadata code | bytes per row, one symmetric scale   | corrects, detects per codeword |
|--------------------------------|---------------|-------------------------------------:|--------------------------------|
| int4                           | none          | 4 (the float32 itself)               | nothing                        |
| hamming74, hamming84, golay24  | Golay(24,12)  | 16 (lanes: data word, 2 parity words) | three flips, detects four (*) |

Why not the values' own code, as a first version did: a Hamming(8,4) codeword with three
flips is miscorrected, silently. A float32 scale in eight such codewords is silently wrong
with probability about 8 C(8,3) p^3 = 4.5e-7 per read at BER p = 1e-3, and a decode reads
millions of scale words: on the reference models that is one silently wrong scale in every
~15 trials of the default sweep, each one a whole row of K or V off by a factor. A Golay
codeword is miscorrected only by five or more flips: 3 C(24,5) p^5 = 1.3e-10 per scale word
at 1e-3, 3,500 times less, for 8 more bytes a row (0.5 bits per value at head_dim 128, 1.0
at 64). ``ecc-tensor codes`` gives the exact rates.

The float32 words are kept exactly, so a fault-free read is bit-identical to an unprotected
one. A metadata word with a detected-uncorrectable codeword makes its group's values
unreliable: they count as erased (interpolated from the temporal neighbours in ``-interp``
modes, used as read otherwise).

(*) Where a detected row is interpolated, erasing it is cheaper than a silent error, so the
``-interp`` modes decode per-token scales at a smaller radius (:data:`INTERPOLATED_CORRECTION_RADIUS`,
2: their metadata syndrome table keeps only the coset leaders of up to two flips,
:func:`codec_tables`): Golay's distance of 8 then lets six flips or more through silently
instead of five, 3 C(24,6) p^6 = 4.0e-13 per scale word at 1e-3 instead of 1.3e-10, and three
to five flips erase the row. At BER 1e-2 on the default sweep that took ref-gpt2's silently
wrong scale words from one in three trials to none, and its catastrophic windows from 4% to
none. Keys' per-channel scales keep the full radius: erasing one erases a channel over a whole
block of tokens, and at 1e-2 that lost more windows than the silent scales it saved.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .codecs import CodecTables, get_codec
from .device_tables import int64_table
from .storage import StorageLayout

METADATA_CODEC = "golay24"
# Where detected words are interpolated (the ``-interp`` modes), a metadata codeword (a scale, a
# zero point, a window word: ecc_tensor.window_layout) is corrected only up to this many flips
# and detected beyond: Golay's distance 8 then lets six flips or more through silently, where
# correcting three lets five through, and a silently wrong scale or 16-bit word is what
# interpolation cannot catch.
INTERPOLATED_CORRECTION_RADIUS = 2

NIBBLES_PER_WORD = 8  # a float32 word
_SHIFTS = tuple(4 * j for j in range(NIBBLES_PER_WORD))


def metadata_codec(codec_name: str) -> str:
    """The code that stores the metadata of rows whose values ``codec_name`` stores:
    :data:`METADATA_CODEC` wherever the values have a code, nothing (``int4``) otherwise."""
    return METADATA_CODEC if get_codec(codec_name).decodes else codec_name


def codec_tables(codec_name: str, device: torch.device | str,
                 interpolate: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The device-resident tables the ``ecc`` ops take for values stored in ``codec_name``:
    its encode and syndrome tables, then those of the metadata code. ``interpolate``: for reads
    that interpolate what is detected (the ``-interp`` modes), the metadata code corrects up to
    :data:`INTERPOLATED_CORRECTION_RADIUS` flips and detects beyond."""
    meta_codec = get_codec(metadata_codec(codec_name))
    radius = min(INTERPOLATED_CORRECTION_RADIUS, meta_codec.correctable_weight) if interpolate else None
    values, meta = get_codec(codec_name).tables(device), meta_codec.tables(device, correction_radius=radius)
    return values.encode_table, values.syndrome_table, meta.encode_table, meta.syndrome_table


@dataclass(frozen=True)
class MetadataLayout:
    """How the metadata of one row (``groups`` scales, and as many zero points unless
    ``symmetric``) is stored for values stored in ``codec_name``: in
    :attr:`meta_codec_name`, whose tables every ``tables`` argument below holds."""

    codec_name: str
    groups: int = 1
    symmetric: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.groups, bool) or not isinstance(self.groups, (int, torch.SymInt)) or self.groups < 1:
            raise ValueError(f"groups must be a positive int, got {self.groups!r}")
        # Under torch.compile a group count read off a shape is symbolic: the layout specializes on it.
        object.__setattr__(self, "groups", int(self.groups))
        # Made once: the launchers read it many times a call.
        object.__setattr__(self, "_storage", StorageLayout(self.meta_codec_name, NIBBLES_PER_WORD * self.words,
                                                           sequential=self.groups > 1))

    @property
    def meta_codec_name(self) -> str:
        """The code the metadata is stored in (:func:`metadata_codec`)."""
        return metadata_codec(self.codec_name)

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
        return self._storage

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
        shifts = int64_table(_SHIFTS, bits.device)
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
        shifts = int64_table(_SHIFTS, nibbles.device)
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
