"""The recent window's 16-bit words (:mod:`ecc_tensor.quant_scheme`), stored protected.

A cache with a residual window keeps its last tokens in the model's 16-bit dtype. Stored
bare, those words undid every code: one flipped exponent bit multiplies a value by up to
2^16, and at BER 1e-3 the sweep lost every window of every mode to them. So a mode with a code
stores its window as it stores its scales, in Golay(24,12) (:func:`~ecc_tensor.metadata.metadata_codec`),
whatever code protects the values; ``int4`` keeps the words bare. Each word's four nibbles, low
first, are INT4 values of a row of ``4 x head_dim`` nibbles in Golay's lane layout: the words
themselves as its data bytes, then its parity bytes (520 bytes for 128 words, 2.03x the words).
A Golay codeword corrects three flips and detects four; a word with a detected codeword is
*erased*: interpolated from the neighbouring tokens in ``-interp`` modes, used as read
otherwise. Where erased words are interpolated, a codeword is corrected only up to two flips
and erased from three, as the scales' are (the metadata tables of the ``-interp`` modes:
:data:`~ecc_tensor.metadata.INTERPOLATED_CORRECTION_RADIUS`). The window is a few hundred
tokens, so its bytes are small beside the cache's.

A read decodes the rows it reads (the ``ecc::decode`` op, then :meth:`WindowLayout.words`;
:meth:`WindowLayout.load` is the same in PyTorch); the cache keeps the decoded words in a
scratch buffer of the 16-bit dtype, which is what its views and the fused attention read,
rewritten from the codewords at every read.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import lanes
from .codecs import STATUS_DETECTED, CodecTables, get_codec
from .device_tables import int64_table
from .faults import FLOAT16_MSB
from .metadata import metadata_codec
from .storage import StorageLayout

NIBBLES_PER_WORD = 4  # a 16-bit word
_SHIFTS = tuple(4 * j for j in range(NIBBLES_PER_WORD))


def window_layout(codec_name: str, head_dim: int) -> WindowLayout | None:
    """The layout of a window beside values stored in ``codec_name``; None where the window
    stays bare 16-bit words (a codec that decodes nothing: ``int4``)."""
    return WindowLayout(metadata_codec(codec_name), head_dim) if get_codec(codec_name).decodes else None


@dataclass(frozen=True)
class WindowLayout:
    """How a window row of ``head_dim`` 16-bit words is stored: coded in ``code_name`` (the
    metadata code, whose tables every ``tables`` argument below holds)."""

    code_name: str
    head_dim: int

    def __post_init__(self) -> None:
        if isinstance(self.head_dim, bool) or not isinstance(self.head_dim, int) or self.head_dim < 1:
            raise ValueError(f"head_dim must be a positive int, got {self.head_dim!r}")
        storage = StorageLayout(self.code_name, NIBBLES_PER_WORD * self.head_dim)
        if not storage.lanes:  # the data bytes must be the words themselves (msb_bits)
            raise ValueError(f"the window's words are stored in a lane layout; {self.code_name} has none")
        object.__setattr__(self, "_storage", storage)
        # Python data, made into a tensor at each call: a constant to torch.compile's tracer.
        object.__setattr__(self, "_nibble_units", tuple(lanes.value_units(storage.head_dim).tolist()))

    @property
    def storage(self) -> StorageLayout:
        """The nibbles' layout."""
        return self._storage

    @property
    def row_bytes(self) -> int:
        return self._storage.row_bytes

    @property
    def exposed_bits_per_byte(self) -> int:
        return self._storage.exposed_bits_per_byte

    def msb_bits(self, device: torch.device | str | None = None) -> torch.Tensor:
        """``[row_bytes]`` int64: the bits of each stored byte that the ``msb`` fault model
        strikes: each word's top exponent bit (bit 14 of a float16 or bfloat16 word), as on
        bare words, in the coded row's data bytes (the words themselves)."""
        bits = [0] * self.row_bytes
        for i in range(self.head_dim):
            bits[2 * i + 1] = FLOAT16_MSB >> 8
        return int64_table(tuple(bits), device)

    def nibbles(self, words: torch.Tensor) -> torch.Tensor:
        """16-bit words ``[..., head_dim]`` (any 16-bit dtype) -> the row's nibbles, uint8
        ``[..., 4 head_dim]``, low nibble first: the INT4 values :attr:`storage` stores."""
        shifts = int64_table(_SHIFTS, words.device)
        bits = words.contiguous().view(torch.int16).to(torch.int64)
        return ((bits.unsqueeze(-1) >> shifts) & 15).to(torch.uint8).flatten(-2)

    def words(self, nibbles: torch.Tensor) -> torch.Tensor:
        """The row's nibbles ``[..., 4 head_dim]`` -> its words, int16 ``[..., head_dim]``."""
        grouped = nibbles.to(torch.int32).unflatten(-1, (self.head_dim, NIBBLES_PER_WORD))
        bits = (grouped << int64_table(_SHIFTS, nibbles.device).to(torch.int32)).sum(-1, dtype=torch.int32)
        # int32 -> int16 keeps the low 16 bits: the word's bit pattern.
        return torch.where(bits >= 1 << 15, bits - (1 << 16), bits).to(torch.int16)

    def erased_words(self, status: torch.Tensor) -> torch.Tensor:
        """The row's codeword statuses ``[..., codewords]`` -> bool ``[..., head_dim]``: the
        words with a nibble in a detected-uncorrectable codeword."""
        per_nibble = (status == STATUS_DETECTED)[..., int64_table(self._nibble_units, status.device)]
        return per_nibble.unflatten(-1, (self.head_dim, NIBBLES_PER_WORD)).any(-1)

    def store(self, words: torch.Tensor, tables: CodecTables) -> torch.Tensor:
        """16-bit words ``[..., head_dim]`` -> uint8 ``[..., row_bytes]`` (the PyTorch
        reference; the cache encodes with the ``ecc::encode`` op)."""
        return self._storage.store(self.nibbles(words), tables)

    def load(self, stored: torch.Tensor, tables: CodecTables) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Decode ``[..., row_bytes]``: ``(words int16 [..., head_dim], status uint8 [...,
        codewords], erased bool [..., head_dim])`` (the PyTorch reference; the cache decodes
        with the ``ecc::decode`` op)."""
        nibbles, status = self._storage.load(stored, tables)
        return self.words(nibbles), status, self.erased_words(status)
