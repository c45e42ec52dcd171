"""Systematic binary linear block codes with table-driven syndrome decoding.

Every codec of this package is a systematic code ``c = d . G`` over GF(2) with
``G = [I_k | P]``. Codeword bit ``i`` (the integer's ``1 << i``) holds ``c_i``, so the ``k``
data bits sit in the low bits of the codeword and a clean codeword can be read without
decoding. The parity-check matrix is ``H = [P^T | I_{n-k}]`` and the syndrome of a received
word ``r = (d', p')`` is ``r . H^T = d' . P + p'``: the parity bits a fresh encode of the
received data would have, XOR the parity bits received. That identity is why decoding needs
only two tables, both derived from the matrices when the codec is built:

* ``encode_table``: the codeword of each of the ``2^k`` data words;
* ``syndrome_table``: for each of the ``2^(n-k)`` syndromes, the minimum-weight error
  pattern (coset leader) if its weight is within the code's correction radius, else ``-1``
  (the syndrome is detected but not correctable).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

import torch

STATUS_CLEAN = 0
STATUS_CORRECTED = 1
STATUS_DETECTED = 2
# Below the codec API: the error was the overall parity bit alone (the paper's H(8,4) table,
# "Ignore (Data valid)"). ``decode`` reports it as corrected; the storage layer and the ops
# keep it apart so that the counters can report it as the paper does.
STATUS_PARITY_ONLY = 3

_VALUE_BITS = 4  # every codec stores INT4 values
_VALUE_MAX = (1 << _VALUE_BITS) - 1


def gf2_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Matrix product over GF(2) of 0/1 integer matrices."""
    return (a.to(torch.int64) @ b.to(torch.int64)) % 2


def bits_to_int(bits: torch.Tensor) -> torch.Tensor:
    """Pack a ``[..., w]`` 0/1 tensor into integers, bit ``i`` of the result = ``bits[..., i]``."""
    weights = 1 << torch.arange(bits.shape[-1], dtype=torch.int64)
    return (bits.to(torch.int64) * weights).sum(-1)


def int_to_bits(words: torch.Tensor, width: int) -> torch.Tensor:
    """Unpack integers into a ``[..., width]`` 0/1 int64 tensor, bit ``i`` at index ``i``."""
    shifts = torch.arange(width, dtype=torch.int64, device=words.device)
    return (words.to(torch.int64).unsqueeze(-1) >> shifts) & 1


@dataclass(frozen=True)
class CodecTables:
    """The lookup tables of one codec on one device."""

    encode_table: torch.Tensor  # [2^k] int32: codeword of each data word
    syndrome_table: torch.Tensor  # [2^(n-k)] int32: coset leader, or -1 if uncorrectable


def static_tables(tables: CodecTables) -> CodecTables:
    """``tables``, made once per device and kept, marked static addresses for torch.compile: a
    CUDA graph reads them in place, where it would copy each into a placeholder of its own at
    every replay (and the ops, which key kept tables on them, would miss those: a table made in
    every recorded call)."""
    if not torch.compiler.is_compiling():
        for t in (tables.encode_table, tables.syndrome_table):
            torch._dynamo.mark_static_address(t)
    return tables


# How a cache row of a codec's codewords is laid out in bytes (ecc_tensor.storage): "nibbles"
# two values a byte, no code (int4); "bytes" one codeword a byte (codes of one value, n <= 8);
# "units" codewords of ceil(n / 8) bytes one after another; "lanes" Golay's lane layout of
# data words then parity words (ecc_tensor.lanes), which the fused attention checks by words;
# "blocks" codewords of whole bytes that the codec encodes to and decodes from bytes itself
# (SECDED(72,64): 72 bits fit no integer).
LAYOUTS = ("nibbles", "bytes", "units", "lanes", "blocks")


class LinearBlockCode:
    """A systematic ``(n, k)`` binary code storing ``values_per_codeword`` INT4 values.

    Args:
        name: the registry name (``get_codec(name)``).
        parity: the ``k x (n-k)`` matrix ``P`` of ``G = [I_k | P]``, rows indexed by data bit.
        correctable_weight: ``t``; every error pattern of weight ``<= t`` is corrected, every
            other syndrome is reported as detected-uncorrectable.
        word_dtype: the integer dtype of one codeword.
        overall_parity_bit: the codeword bit holding the overall parity, for extended codes
            (SECDED); an error in that bit alone leaves the data valid and is told apart as
            :data:`STATUS_PARITY_ONLY` by :meth:`decode_words`.
    """

    def __init__(
        self,
        name: str,
        parity: Sequence[Sequence[int]],
        correctable_weight: int,
        word_dtype: torch.dtype,
        overall_parity_bit: int | None = None,
        layout: str | None = None,
    ) -> None:
        p = torch.tensor(parity, dtype=torch.int64).reshape(len(parity), -1)
        k, r = p.shape
        if k % _VALUE_BITS:
            raise ValueError(f"k={k} is not a whole number of INT4 values")
        self.name = name
        self.k = k
        self.n = k + r
        self.values_per_codeword = k // _VALUE_BITS
        self.correctable_weight = correctable_weight
        self.word_dtype = word_dtype
        if overall_parity_bit is not None and not (self.k <= overall_parity_bit < self.n):
            raise ValueError(f"overall_parity_bit {overall_parity_bit} is not a parity bit of an ({self.n}, {self.k}) code")
        self.overall_parity_bit = overall_parity_bit
        self.layout = layout or self._default_layout()
        if self.layout not in LAYOUTS or not self._layout_fits(self.layout):
            raise ValueError(f"layout {self.layout!r} does not fit an ({self.n}, {self.k}) code; choose one of {LAYOUTS}")
        self.generator = torch.cat([torch.eye(k, dtype=torch.int64), p], dim=1)
        self.parity_check = torch.cat([p.T, torch.eye(r, dtype=torch.int64)], dim=1)
        self._tables: dict[torch.device | tuple[torch.device, int], CodecTables] = {}
        self._cpu_tables = static_tables(self._build_tables())

    # -- how the cache stores it ----------------------------------------------------------
    def _default_layout(self) -> str:
        if self.n == self.k == _VALUE_BITS:
            return "nibbles"
        return "bytes" if self.k == _VALUE_BITS and self.n <= 8 else "units"

    def _layout_fits(self, layout: str) -> bool:
        if layout == "nibbles":
            return self.n == self.k == _VALUE_BITS
        if layout == "bytes":
            return self.k == _VALUE_BITS and self.k < self.n <= 8
        if layout == "lanes":
            return self.k == 12 and self.n == 24  # ecc_tensor.lanes: 3 values, 12 parity bits a codeword
        if layout == "blocks":
            return False  # a table-driven code's codeword is one integer
        return self.n > self.k

    codeword_shape: tuple[int, ...] = ()  # a codeword is one integer of word_dtype

    @property
    def decodes(self) -> bool:
        """Whether reads decode (there are parity bits); False for the unprotected int4."""
        return self.n > self.k

    # -- tables ---------------------------------------------------------------------------
    def _build_tables(self) -> CodecTables:
        data_bits = int_to_bits(torch.arange(1 << self.k), self.k)
        encode_table = bits_to_int(gf2_matmul(data_bits, self.generator))

        r = self.n - self.k
        syndrome_table = torch.full((1 << r,), -1, dtype=torch.int64)
        for weight in range(self.correctable_weight + 1):
            patterns = [sum(1 << i for i in pos) for pos in itertools.combinations(range(self.n), weight)]
            patterns_t = torch.tensor(patterns, dtype=torch.int64)
            syndromes = bits_to_int(gf2_matmul(int_to_bits(patterns_t, self.n), self.parity_check.T))
            taken = syndrome_table[syndromes] >= 0
            # Coset leaders of weight <= t are unique exactly when the minimum distance is
            # at least 2t + 1; a clash means the parity matrix does not define such a code.
            if taken.any() or syndromes.unique().numel() != syndromes.numel():
                raise ValueError(f"{self.name}: error patterns of weight {weight} share a syndrome")
            syndrome_table[syndromes] = patterns_t
        # int32 (codewords have at most 24 bits): what the GPU kernels gather from.
        return CodecTables(encode_table.to(torch.int32), syndrome_table.to(torch.int32))

    def tables(self, device: torch.device | str | None = None, correction_radius: int | None = None) -> CodecTables:
        """The codec's tables on ``device``, built once per device and cached. With
        ``correction_radius`` below :attr:`correctable_weight`, the syndrome table decodes only
        error patterns of at most that many flips and marks the others detected (bounded-distance
        decoding: a code of distance ``d`` then detects up to ``d - 1 - radius`` flips)."""
        device = torch.device("cpu") if device is None else torch.device(device)
        if correction_radius is not None and not 0 <= correction_radius <= self.correctable_weight:
            raise ValueError(f"{self.name} corrects up to {self.correctable_weight} flips; correction_radius "
                             f"{correction_radius} is out of range")
        if correction_radius is not None and correction_radius < self.correctable_weight:
            key = (device, correction_radius)
            if key not in self._tables:
                full = self.tables(device)
                leaders = full.syndrome_table.to(torch.int64)
                weight = sum((leaders >> b) & 1 for b in range(self.n))
                bounded = torch.where((leaders >= 0) & (weight > correction_radius), -1, leaders).to(full.syndrome_table.dtype)
                self._tables[key] = static_tables(CodecTables(full.encode_table, bounded))
            return self._tables[key]
        if device.type == "cpu":
            return self._cpu_tables
        if device not in self._tables:
            self._tables[device] = static_tables(CodecTables(
                *(t.to(device) for t in (self._cpu_tables.encode_table, self._cpu_tables.syndrome_table))
            ))
        return self._tables[device]

    # -- public API -----------------------------------------------------------------------
    def encode(
        self,
        values: torch.Tensor | int | Sequence[int],
        *,
        validate: bool = True,
        tables: CodecTables | None = None,
    ) -> torch.Tensor:
        """Encode INT4 values ``[..., m]`` (uint8 in [0, 15]) into codewords ``[..., m / values_per_codeword]``."""
        values = self._as_values(values) if validate else values
        return self.encode_words(self.pack_values(values), tables)

    def decode(
        self, codewords: torch.Tensor, *, validate: bool = True, tables: CodecTables | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode codewords into ``(values uint8 [..., m], status uint8 [...])``.

        Status per codeword: 0 clean, 1 corrected, 2 detected-uncorrectable. A detected
        codeword's values are its data bits as read (the code is systematic). An error in the
        overall parity bit alone is reported as corrected here (:meth:`decode_words` tells it
        apart).
        """
        if validate:
            self._check_codewords(codewords)
        data, status = self.decode_words(codewords, tables)
        status = torch.where(status == STATUS_PARITY_ONLY, STATUS_CORRECTED, status).to(torch.uint8)
        return self.unpack_values(data), status

    # -- word-level primitives (no validation; used by the ops) ---------------------------
    def encode_words(self, data: torch.Tensor, tables: CodecTables | None = None) -> torch.Tensor:
        """Data words (``k``-bit integers) -> codewords of ``word_dtype``.

        ``tables`` (default: this codec's, on the data's device) may be passed in by callers
        that hold them as tensors of their own, e.g. under ``torch.compile``.
        """
        table = (tables or self.tables(data.device)).encode_table
        return table[data.to(torch.int64)].to(self.word_dtype)

    def decode_words(
        self, codewords: torch.Tensor, tables: CodecTables | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Codewords -> (corrected data words as int64, status uint8): 0 clean, 1 corrected,
        2 detected, 3 (:data:`STATUS_PARITY_ONLY`) the overall parity bit alone flipped."""
        tables = tables or self.tables(codewords.device)
        received = codewords.to(torch.int64)
        data_mask = (1 << self.k) - 1
        syndrome = (tables.encode_table[received & data_mask].to(torch.int64) ^ received) >> self.k
        leader = tables.syndrome_table[syndrome].to(torch.int64)
        correctable = leader >= 0
        corrected = STATUS_CORRECTED
        if self.overall_parity_bit is not None:
            corrected = torch.where(leader == 1 << self.overall_parity_bit, STATUS_PARITY_ONLY, STATUS_CORRECTED)
        status = torch.where(
            syndrome == 0,
            STATUS_CLEAN,
            torch.where(correctable, corrected, STATUS_DETECTED),
        ).to(torch.uint8)
        corrected = torch.where(correctable, received ^ leader, received)
        return corrected & data_mask, status

    def syndrome(self, codewords: torch.Tensor) -> torch.Tensor:
        """``r . H^T`` as an integer (bit ``j`` = syndrome bit ``j``), computed from ``H`` itself."""
        bits = int_to_bits(codewords, self.n)
        return bits_to_int(gf2_matmul(bits, self.parity_check.T.to(bits.device)))

    def pack_values(self, values: torch.Tensor) -> torch.Tensor:
        """``[..., m]`` INT4 values -> ``[..., m / vpc]`` int64 data words, value ``i`` at bits ``4i``."""
        vpc = self.values_per_codeword
        if vpc == 1:
            return values.to(torch.int64)
        grouped = values.to(torch.int64).reshape(*values.shape[:-1], -1, vpc)
        shifts = torch.arange(vpc, device=values.device, dtype=torch.int64) * _VALUE_BITS
        return (grouped << shifts).sum(-1)

    def unpack_values(self, data: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`pack_values`; returns uint8 values."""
        vpc = self.values_per_codeword
        if vpc == 1:
            return data.to(torch.uint8)
        shifts = torch.arange(vpc, device=data.device, dtype=torch.int64) * _VALUE_BITS
        values = (data.unsqueeze(-1) >> shifts) & _VALUE_MAX
        return values.reshape(*data.shape[:-1], -1).to(torch.uint8)

    # -- validation -----------------------------------------------------------------------
    def _as_values(self, values) -> torch.Tensor:
        if not isinstance(values, torch.Tensor):
            values = torch.as_tensor(values)
            if values.dtype.is_floating_point or values.dtype == torch.bool:
                raise ValueError(f"{self.name}.encode: values must be integers in [0, 15], got {values.dtype}")
            if values.numel() and (values.min() < 0 or values.max() > _VALUE_MAX):
                raise ValueError(f"{self.name}.encode: values must lie in [0, 15]")
            values = values.to(torch.uint8)
        if values.dtype != torch.uint8:
            raise ValueError(
                f"{self.name}.encode: values must be a torch.uint8 tensor of INT4 values in [0, 15], "
                f"got dtype {values.dtype} (convert with .to(torch.uint8) after checking the range)"
            )
        if values.numel() and int(values.max()) > _VALUE_MAX:
            raise ValueError(
                f"{self.name}.encode: values must lie in [0, 15], found {int(values.max())}"
            )
        vpc = self.values_per_codeword
        if vpc > 1 and (values.dim() == 0 or values.shape[-1] % vpc):
            last = "a scalar" if values.dim() == 0 else f"last dimension {values.shape[-1]}"
            raise ValueError(
                f"{self.name}.encode: packs {vpc} values per codeword, so the last dimension must be "
                f"a multiple of {vpc}; got {last} (pad it first)"
            )
        return values

    def _check_codewords(self, codewords: torch.Tensor) -> None:
        if not isinstance(codewords, torch.Tensor) or codewords.dtype != self.word_dtype:
            got = codewords.dtype if isinstance(codewords, torch.Tensor) else type(codewords).__name__
            raise ValueError(f"{self.name}.decode: codewords must be a {self.word_dtype} tensor, got {got}")
        if self.n < torch.iinfo(self.word_dtype).bits and codewords.numel():
            wide = codewords.to(torch.int64)
            if bool(((wide < 0) | (wide >> self.n != 0)).any()):
                raise ValueError(
                    f"{self.name}.decode: codewords have bits set above bit {self.n - 1}; "
                    f"were they produced by another codec?"
                )

    @property
    def parity_only_syndrome(self) -> int | None:
        """The syndrome of an error in the overall parity bit alone (None without one)."""
        if self.overall_parity_bit is None:
            return None
        return 1 << (self.overall_parity_bit - self.k)

    @property
    def minimum_distance(self) -> int:
        """Minimum Hamming weight of a nonzero codeword, by enumeration of all 2^k codewords."""
        nonzero = self._cpu_tables.encode_table[1:].to(torch.int64)
        return int(int_to_bits(nonzero, self.n).sum(-1).min())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, n={self.n}, k={self.k}, t={self.correctable_weight})"
