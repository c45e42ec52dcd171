"""Golay's row layout: data nibbles in INT4 order, each codeword in one nibble lane of three words.

A Golay codeword protects three INT4 values. Stored as three little-endian bytes per codeword
(data nibbles, then parity nibbles), a row's data and parity interleave with a period of six
nibbles, which no 32-bit word operation follows: checking a codeword took ~20 instructions
and three table gathers. This layout instead gives each check to whole words:

- **Data region**: the row's ``D`` values in INT4 order, value ``v`` at nibble ``v`` (bytes
  ``v // 2``, low nibble first), ``M = ceil(D / 8)`` words. A clean row reads as an INT4 row.
- **Lane groups**: three data words ``(x, y, z)`` hold eight codewords, codeword ``l`` the
  values at nibble ``l`` of each (``8x + l, 8y + l, 8z + l``). Its parity sits at nibble ``l``
  of three parity words, parity nibble ``t`` (codeword bits ``12 + 4t .. 15 + 4t``) in word
  ``t``, each nibble's bits reversed. The syndromes of eight codewords are then shifts, masks
  and XORs of six words (``ops/lane_words.py: _lane_parity_words``), and the reversal makes
  the fewest distinct shifts (58 operations against 73 unreversed, for B of eq. 31).
- **Grouping**: the words of each chunk of four, ``(4a, 4a + 1, 4a + 2)``, are a group (and a
  last chunk of three words); the chunks' fourth words (and a last chunk of one or two words)
  are the *tails*, grouped three by three in order. The one or two tail words left over hold
  ``n`` values, ``K = ceil(n / 3)`` codewords, codeword ``c`` taking the left-over values
  ``c, c + K, c + 2K``; their parity is a stream of ``12 K`` bits, nibble ``K t + c``
  holding parity nibble ``t`` of codeword ``c``.
- **Parity region**, after the data: group ``a``'s parity word ``t`` is word ``4a + t``; the
  other parity words (of the last chunk's group, the tail groups, then the left-over stream)
  fill the holes ``4a + 3`` and then follow.

Codewords are numbered chunk groups first (``8a + l``), then the other groups, then the
left-over ones. At head_dim 128 a row is 16 data and 17 parity words, 136 bytes for 43
codewords and a word of padding, against 129 bytes as 3-byte codewords: rows of whole 8-byte
units are what lets the kernel copy them 8 bytes at a time. Padding values (beyond ``D``) are
zeros that are not stored; unused bits (nibbles past ``D`` in the last data word, the end of
the last parity word, the padding word) are written as zeros and never read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

from .device_tables import int64_table

PARITY_NIBBLES = 3  # Golay's 12 parity bits


def reverse_nibble(x: int) -> int:
    return int(f"{x:04b}"[::-1], 2)


@dataclass(frozen=True)
class LaneLayout:
    head_dim: int
    data_words: int
    chunks: int  # k: chunk groups, codewords 8a + l
    extra_groups: tuple[tuple[int, int, int], ...]  # data words of the other groups, in order
    leftover: tuple[int, ...]  # the tail words left over (0, 1 or 2)
    leftover_values: int  # n
    parity_words: int

    @property
    def leftover_codewords(self) -> int:
        return math.ceil(self.leftover_values / 3)

    @property
    def units(self) -> int:
        return 8 * (self.chunks + len(self.extra_groups)) + self.leftover_codewords

    @property
    def row_words(self) -> int:
        """Data and parity words, rounded up to an even count: rows of whole 8-byte units, which
        the kernel copies 8 bytes at a time (benchmarks/RESULTS.md: at head_dim 128, rows of 132
        bytes, copied 4 bytes at a time, took 571 us where rows of 136 bytes take 295 us)."""
        words = self.data_words + self.parity_words
        return words + words % 2

    def parity_slot(self, extra_word: int) -> int:
        """The parity-region word of the ``extra_word``-th parity word beyond the chunk groups'."""
        k = self.chunks
        return 4 * extra_word + 3 if extra_word < k else 4 * k + extra_word - k

    def unit(self, u: int) -> tuple[list[int], list[int]]:
        """Codeword ``u``: its three value indices (-1: padding, a zero not stored) and the row
        nibbles of its three parity nibbles (each holding ``reverse_nibble`` of the parity
        nibble)."""
        M, k, D = self.data_words, self.chunks, self.head_dim
        if u < 8 * k:
            a, lane = divmod(u, 8)
            values = [32 * a + 8 * i + lane for i in range(3)]
            parity = [8 * (M + 4 * a + t) + lane for t in range(3)]
        elif u < 8 * (k + len(self.extra_groups)):
            g, lane = divmod(u - 8 * k, 8)
            values = [8 * w + lane for w in self.extra_groups[g]]
            parity = [8 * (M + self.parity_slot(3 * g + t)) + lane for t in range(3)]
        else:
            c, K = u - 8 * (k + len(self.extra_groups)), self.leftover_codewords
            first = 3 * len(self.extra_groups)
            left = [8 * w + i for w in self.leftover for i in range(8)][: self.leftover_values]
            values = [left[c + i * K] if c + i * K < len(left) else -1 for i in range(3)]
            parity = [8 * (M + self.parity_slot(first + (K * t + c) // 8)) + (K * t + c) % 8 for t in range(3)]
        return [v if v < D else -1 for v in values], parity


def lane_layout(head_dim: int) -> LaneLayout:
    """The lane layout of rows of ``head_dim`` values. Under torch.compile ``head_dim`` may come
    as a symbolic size: the layout is a piecewise function of it, so it specializes on it."""
    return _lane_layout(int(head_dim))


@lru_cache(maxsize=None)
def _lane_layout(head_dim: int) -> LaneLayout:
    M = math.ceil(head_dim / 8)
    k, r = divmod(M, 4)
    groups = [(4 * k, 4 * k + 1, 4 * k + 2)] if r == 3 else []
    tails = [4 * a + 3 for a in range(k)] + ([4 * k + i for i in range(r)] if r in (1, 2) else [])
    n_tail_groups = len(tails) // 3
    groups += [tuple(tails[3 * b: 3 * b + 3]) for b in range(n_tail_groups)]
    leftover = tuple(tails[3 * n_tail_groups:])
    n = sum(min(8, head_dim - 8 * w) for w in leftover)
    extra = 3 * len(groups) + (math.ceil(12 * math.ceil(n / 3) / 32) if leftover else 0)
    parity_words = max(3 * k + extra, 4 * k - 1) if k else extra
    return LaneLayout(head_dim, M, k, tuple(groups), leftover, n, parity_words)


@lru_cache(maxsize=None)
def _maps(head_dim: int) -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]:
    """The codewords' value indices and parity nibbles, as Python data: the tensors come from
    :func:`~ecc_tensor.device_tables.int64_table` (kept per GPU, constants to a tracer)."""
    layout = lane_layout(head_dim)
    units = [layout.unit(u) for u in range(layout.units)]
    return tuple(tuple(v) for v, _ in units), tuple(tuple(p) for _, p in units)


def unit_values(head_dim: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``[units, 3]`` int64: the value index of each codeword's three data nibbles, -1 for padding."""
    return int64_table(_maps(int(head_dim))[0], device)


def unit_parity_nibbles(head_dim: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``[units, 3]`` int64: the row nibble holding each codeword's parity nibble ``t`` (reversed)."""
    return int64_table(_maps(int(head_dim))[1], device)


def _reversed_nibbles(device: torch.device | str) -> torch.Tensor:
    return int64_table(tuple(reverse_nibble(x) for x in range(16)), device)


def _nibbles(stored: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Nibbles ``index`` (``[units, 3]``) of each row of ``stored`` ``[..., row_bytes]``."""
    flat = index.clamp(min=0).flatten()
    byte = stored[..., flat // 2].to(torch.int64)
    return ((byte >> (4 * (flat % 2))) & 15).reshape(*stored.shape[:-1], *index.shape)


def store(codewords: torch.Tensor, values: torch.Tensor, head_dim: int) -> torch.Tensor:
    """``[..., units]`` codewords (int) and their ``[..., head_dim]`` values -> ``[..., row_bytes]``
    uint8 rows. The data region is the values' INT4 packing; each parity nibble goes to its
    place, reversed."""
    layout = lane_layout(head_dim)
    lead = values.shape[:-1]
    nibbles = torch.zeros(*lead, 8 * layout.row_words, dtype=torch.int64, device=values.device)
    nibbles[..., :head_dim] = values.to(torch.int64)
    shifts = 12 + 4 * torch.arange(PARITY_NIBBLES, device=values.device)
    parity = _reversed_nibbles(values.device)[(codewords.to(torch.int64).unsqueeze(-1) >> shifts) & 15]
    nibbles[..., unit_parity_nibbles(head_dim, values.device).flatten()] = parity.flatten(-2)
    pairs = nibbles.reshape(*lead, -1, 2)
    return (pairs[..., 0] | (pairs[..., 1] << 4)).to(torch.uint8)


def codewords(stored: torch.Tensor, head_dim: int) -> torch.Tensor:
    """``[..., row_bytes]`` rows -> ``[..., units]`` int32 codewords (padding data nibbles 0)."""
    device = stored.device
    value_index = unit_values(head_dim, device)
    data = torch.where(value_index >= 0, _nibbles(stored, value_index), 0)
    parity = _reversed_nibbles(device)[_nibbles(stored, unit_parity_nibbles(head_dim, device))]
    shifts = 4 * torch.arange(PARITY_NIBBLES, device=device)
    word = ((data << shifts).sum(-1)) | ((parity << shifts).sum(-1) << 12)
    return word.to(torch.int32)


@lru_cache(maxsize=None)
def _value_slots(head_dim: int) -> tuple[int, ...]:
    slots = [0] * head_dim
    for u, values in enumerate(_maps(head_dim)[0]):
        for i, v in enumerate(values):
            if v >= 0:
                slots[v] = 3 * u + i
    return tuple(slots)


def value_slots(head_dim: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``[head_dim]`` int64: where each value sits among the codewords' slots (``3 u + i``)."""
    return int64_table(_value_slots(int(head_dim)), device)


def value_units(head_dim: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``[head_dim]`` int64: the codeword holding each value."""
    return value_slots(head_dim, device) // 3
