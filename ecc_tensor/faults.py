"""Seeded bit-flip fault models applied to stored words.

``FaultModel(kind, ber, seed, site="write", burst_len=8, targets="all")`` and
``flipped, n_flipped = fm.apply(words, bits_per_word)``. Only the low ``bits_per_word`` bits
of each word are exposed (the stored bits: all n codeword bits for an ECC mode, 16 for the
16-bit modes). Which stored words a cache exposes is ``targets``: ``"all"`` (default) every
byte it keeps for a row (codewords, the scales and zero points, padding), ``"values"`` the
value bytes only (the paper's assumption, kept to reproduce its tables).

Randomness is counter-based (Philox4x32-10, :mod:`ecc_tensor.philox`): the random number
deciding stored bit ``b`` of the word at flat address ``a`` during event ``step`` is a pure
function of ``(seed, a, b // 4, step)``. So the same seed gives the same flips, whatever the
device and however the writes are chunked (``offset`` gives the address of a slice's first
word), and a GPU kernel can reproduce the reference exactly. A store's metadata bytes have
addresses of their own, from :data:`METADATA_ADDRESS` on, and a cache's full-precision
recent window (:mod:`ecc_tensor.quant_scheme`) from :data:`WINDOW_ADDRESS` on, so that
exposing them leaves the flips of the value bytes as they were.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .philox import MASK32, philox4x32, probability_threshold

from .names import FAULT_KIND_ALIASES as _KIND_ALIASES
from .names import FAULT_KINDS, FAULT_SITES, FAULT_TARGETS  # noqa: F401  (re-exported)
# Where a store's metadata bytes start in its address space (its value bytes start at 0).
METADATA_ADDRESS = 1 << 39
# Where its full-precision window's 16-bit words start (addressed by token position, as the values).
WINDOW_ADDRESS = 1 << 38
# msb: the flips bsc would spread over an unprotected INT4 value's four bits, all on its MSB.
MSB_RATE_FACTOR = 4
FLOAT16_MSB = 1 << 14  # msb's bit of a float16 or bfloat16 word: the top exponent bit

_LANES_PER_DRAW = 4  # one Philox call yields four uint32, one per stored bit
_PAGE_STREAM = 0x8000_0000  # Philox counter word c2 for page selection, apart from bit lanes


@dataclass
class FaultModel:
    """A seeded bit-flip model.

    Attributes:
        kind: ``bsc`` (alias ``random``): every exposed bit flips independently with
            probability ``ber``. ``burst``: runs of ``burst_len`` adjacent bits of the stored
            bit stream (word after word, low bit first) flip together; a run starts at each
            bit with probability ``1 - (1 - ber) ** (1 / burst_len)``, so every bit is covered
            with probability ``ber`` (overlapping runs merge). ``msb``: only the most
            significant bit of every stored value can flip (of an INT4 value, data bit 3,
            wherever its codeword stores it; of a 16-bit float, the top exponent bit), each
            with probability ``min(1, 4 * ber)``: the flips ``bsc`` would spread over an
            unprotected INT4 value's four bits, all on the one that moves it by 8 levels, the
            same in every mode. Callers say which bits those are (``apply``'s ``eligible``);
            for bare words the top ``msb_bits`` exposed bits are.
            ``page``: words are grouped in pages of ``page_words``; a fraction
            ``page_fraction`` of pages is faulty and their bits flip with probability
            ``min(1, ber / page_fraction)``, the same expected flips as ``bsc``.
        ber: bit error rate in [0, 1].
        seed: any non-negative integer below 2**63.
        site: where faults strike: ``write`` (stored, persistent), ``read`` (transient, a new
            draw per read) or ``both``. ``apply`` itself is site-agnostic; caches consult
            :attr:`at_write` / :attr:`at_read`.
        targets: which stored bytes of a cache faults strike: ``all`` (codewords, scales,
            zero points, padding) or ``values`` (the value bytes only, the paper's model).
            ``apply`` itself strikes whatever words it is given; caches consult
            :attr:`strikes_metadata`.
    """

    kind: str = "bsc"
    ber: float = 0.0
    seed: int = 0
    site: str = "write"
    burst_len: int = 8
    msb_bits: int = 1
    page_words: int = 4096
    page_fraction: float = 1.0 / 16
    targets: str = "all"
    _step: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        kind = _KIND_ALIASES.get(self.kind, self.kind)
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault model {self.kind!r}; choose one of {', '.join(FAULT_KINDS + tuple(_KIND_ALIASES))}")
        self.kind = kind
        if self.site not in FAULT_SITES:
            raise ValueError(f"unknown fault site {self.site!r}; choose one of {', '.join(FAULT_SITES)}")
        if self.targets not in FAULT_TARGETS:
            raise ValueError(f"unknown fault targets {self.targets!r}; choose one of {', '.join(FAULT_TARGETS)}")
        ber = float(self.ber)
        if not (0.0 <= ber <= 1.0):  # also rejects NaN
            raise ValueError(f"bit error rate must lie in [0, 1], got {self.ber!r}")
        self.ber = ber
        # int64 range: the seed travels through torch.library op schemas as an int.
        if not isinstance(self.seed, int) or not (0 <= self.seed < 1 << 63):
            raise ValueError(f"seed must be an integer in [0, 2**63), got {self.seed!r}")
        if self.burst_len < 1:
            raise ValueError(f"burst_len must be >= 1, got {self.burst_len}")
        if self.msb_bits < 1:
            raise ValueError(f"msb_bits must be >= 1, got {self.msb_bits}")
        if self.page_words < 1:
            raise ValueError(f"page_words must be >= 1, got {self.page_words}")
        if not (0.0 < self.page_fraction <= 1.0):
            raise ValueError(f"page_fraction must lie in (0, 1], got {self.page_fraction}")

    @property
    def at_write(self) -> bool:
        return self.site in ("write", "both")

    @property
    def at_read(self) -> bool:
        return self.site in ("read", "both")

    @property
    def strikes_metadata(self) -> bool:
        return self.targets == "all"

    def next_step(self) -> int:
        """The automatic event counter's current value, advancing it."""
        step = self._step
        self._step += 1
        return step

    def reset(self) -> None:
        """Restart the automatic event counter, so the next ``apply`` calls repeat the first ones."""
        self._step = 0

    def apply(
        self,
        words: torch.Tensor,
        bits_per_word: int,
        *,
        offset: int = 0,
        step: int | None = None,
        eligible: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Flip bits of ``words``; returns ``(flipped words, number of flipped bits as int64)``.

        Args:
            words: integer tensor of stored words (any shape; flattened in row-major order).
            bits_per_word: how many low bits of each word are stored bits.
            offset: flat address of ``words``' first element in the whole store.
            step: which write/read event this is; ``None`` takes the model's own counter and
                advances it, so successive calls draw fresh faults.
            eligible: for ``msb``, the bits of each word that hold a value's most significant
                bit (integer tensor broadcastable to ``words``, e.g. ``[row_bytes]``); None:
                the top ``msb_bits`` exposed bits. Other kinds ignore it.
        """
        if not isinstance(words, torch.Tensor) or words.dtype.is_floating_point or words.dtype in (torch.bool, torch.complex64):
            got = words.dtype if isinstance(words, torch.Tensor) else type(words).__name__
            raise ValueError(f"fault injection needs an integer tensor of stored words, got {got} (view floats as ints first)")
        width = torch.iinfo(words.dtype).bits
        if not (1 <= bits_per_word <= width):
            raise ValueError(f"bits_per_word must lie in [1, {width}] for {words.dtype}, got {bits_per_word}")
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        if step is None:
            step = self.next_step()
        if self.ber == 0.0 or words.numel() == 0:
            return words.clone(), torch.zeros((), dtype=torch.int64, device=words.device)

        if eligible is not None and self.kind == "msb":
            eligible = eligible.to(device=words.device, dtype=torch.int64).expand(words.shape).reshape(-1)
        flips = self.flip_mask(words.numel(), bits_per_word, offset=offset, step=step, device=words.device, eligible=eligible)
        lane_values = 1 << torch.arange(bits_per_word, dtype=torch.int64, device=words.device)
        xor = (flips.to(torch.int64) * lane_values).sum(-1).reshape(words.shape)
        flipped = (words.to(torch.int64) ^ xor).to(words.dtype)
        return flipped, flips.sum(dtype=torch.int64)

    def bit_probability(self, bits_per_word: int) -> float:
        """Flip probability of one eligible bit (a bit of a faulty page, for ``page``)."""
        if self.kind == "msb":
            return min(1.0, self.ber * MSB_RATE_FACTOR)
        if self.kind == "page":
            return min(1.0, self.ber / self.page_fraction)
        return self.ber

    def eligible_bits(self, bits_per_word: int) -> int:
        """How many of a word's top exposed bits can flip (all but for ``msb`` on bare words)."""
        return min(self.msb_bits, bits_per_word) if self.kind == "msb" else bits_per_word

    def flip_mask(
        self, n_words: int, bits: int, *, offset: int, step: int, device=None, eligible: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``[n_words, bits]`` bool: which stored bits of the words at ``offset..`` flip;
        ``eligible`` (``msb``): ``[n_words]`` bit masks of the bits that may."""
        if self.kind == "burst":
            return self._burst_mask(n_words, bits, offset, step, device)
        hit = self._uniform_bits(n_words, bits, offset, step, device) < probability_threshold(self.bit_probability(bits))
        if self.kind == "msb":
            lanes = torch.arange(bits, device=device)
            if eligible is None:  # bare words: each a value, its top bits
                return hit & (lanes >= bits - self.eligible_bits(bits))
            return hit & (((eligible.unsqueeze(-1) >> lanes) & 1) != 0)
        if self.kind == "page":
            addresses = offset + torch.arange(n_words, dtype=torch.int64, device=device)
            pages = addresses // self.page_words
            draw = philox4x32(pages & MASK32, pages >> 32, _PAGE_STREAM, step, self.seed)[0]
            faulty_page = draw < probability_threshold(self.page_fraction)
            return hit & faulty_page.unsqueeze(-1)
        return hit

    def _burst_mask(self, n_words: int, bits: int, offset: int, step: int, device) -> torch.Tensor:
        length = self.burst_len
        start_p = 1.0 - (1.0 - self.ber) ** (1.0 / length) if self.ber < 1.0 else 1.0
        # Runs that start in earlier words can reach into this slice: draw their starts too.
        lead_words = min(offset, math.ceil((length - 1) / bits))
        starts = self._uniform_bits(n_words + lead_words, bits, offset - lead_words, step, device)
        starts = (starts < probability_threshold(start_p)).reshape(-1).to(torch.int32)
        # Bit b is covered if a run starts within the previous `length` positions.
        running = torch.cumsum(starts, 0)
        before = torch.cat([running.new_zeros(length),
                            running[:-length]]) if running.numel() > length else running.new_zeros(running.numel())
        covered = (running - before[: running.numel()]) > 0
        return covered[lead_words * bits :].reshape(n_words, bits)

    def _uniform_bits(self, n_words: int, bits: int, offset: int, step: int, device) -> torch.Tensor:
        """``[n_words, bits]`` uint32 (in int64): the draw for each stored bit."""
        addresses = offset + torch.arange(n_words, dtype=torch.int64, device=device)
        lo, hi = addresses & MASK32, addresses >> 32
        groups = [
            torch.stack(philox4x32(lo, hi, g, step, self.seed), dim=-1)
            for g in range(math.ceil(bits / _LANES_PER_DRAW))
        ]
        return torch.cat(groups, dim=-1)[:, :bits]
