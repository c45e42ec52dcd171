"""What each code does with a codeword under independent bit flips (BSC at rate ``p``), exactly.

A linear code's decoding outcome depends only on the error pattern, not on the data it hit:
the received word is ``c ^ e`` and its syndrome is ``e``'s. So decoding every pattern ``e`` of
the ``n`` codeword bits once, as a received word for the all-zero codeword, sorts all ``2^n``
patterns into outcomes: *clean* (no flip), *corrected* (data back as written; Hamming(8,4)'s
overall-parity-only flips included), *detected* (reported uncorrectable) and *silent* (data
changed, nothing reported). With ``N_w`` patterns of weight ``w`` in an outcome, its
probability is ``sum_w N_w p^w (1 - p)^(n - w)``. ``ecc-tensor codes`` prints the table.

SECDED(72,64) has ``2^72`` patterns: those of weight <= 4 are decoded (about a million), and the
probability of five or more flips is reported as ``unresolved``, an upper bound on what the
table's silent figure may miss.
"""

from __future__ import annotations

import functools
import math

import torch

from .codecs import STATUS_DETECTED, get_codec, int_to_bits

OUTCOMES = ("clean", "corrected", "detected", "silent")
_CHUNK = 1 << 18


WIDE_MAX_WEIGHT = 4  # codes too long to enumerate (SECDED(72,64)): patterns up to this weight
_ENUMERABLE_BITS = 24  # 2^24 patterns decode in seconds; longer codes are enumerated by weight


def _counts_by_weight(codec) -> dict[str, tuple[int, ...]]:
    """Every pattern of weight <= WIDE_MAX_WEIGHT of a code whose codewords are byte blocks."""
    import itertools

    n = codec.n
    totals = torch.zeros(WIDE_MAX_WEIGHT + 1, len(OUTCOMES), dtype=torch.int64)
    totals[0, 0] = 1
    for w in range(1, WIDE_MAX_WEIGHT + 1):
        positions = torch.tensor(list(itertools.combinations(range(n), w)), dtype=torch.int64)
        bits = torch.zeros(positions.shape[0], n, dtype=torch.uint8).scatter_(1, positions, 1)
        patterns = (bits.view(-1, n // 8, 8).to(torch.int64) << torch.arange(8)).sum(-1).to(torch.uint8)
        values, status = codec.decode(patterns[:, None])
        outcome = torch.where(status[:, 0] == STATUS_DETECTED, 2, torch.where((values != 0).any(-1), 3, 1))
        totals[w] = torch.bincount(outcome, minlength=len(OUTCOMES))
    return {o: tuple(totals[:, i].tolist()) for i, o in enumerate(OUTCOMES)}


@functools.lru_cache(maxsize=None)
def outcome_counts(codec_name: str) -> dict[str, tuple[int, ...]]:
    """For each outcome, the number of error patterns of each weight ``0..n`` (``0..4`` for a
    code longer than 24 bits, SECDED(72,64))."""
    codec = get_codec(codec_name)
    if codec.n > _ENUMERABLE_BITS:
        return _counts_by_weight(codec)
    n = codec.n
    totals = torch.zeros(n + 1, len(OUTCOMES), dtype=torch.int64)
    for start in range(0, 1 << n, _CHUNK):
        errors = torch.arange(start, min(start + _CHUNK, 1 << n), dtype=torch.int64)
        data, status = codec.decode_words(errors)
        weight = int_to_bits(errors, n).sum(-1)
        outcome = torch.where(
            errors == 0, 0, torch.where(status == STATUS_DETECTED, 2, torch.where(data != 0, 3, 1))
        )
        totals += torch.bincount(weight * len(OUTCOMES) + outcome, minlength=(n + 1) * len(OUTCOMES)).view(n + 1, -1)
    return {o: tuple(totals[:, i].tolist()) for i, o in enumerate(OUTCOMES)}


def outcome_probabilities(codec_name: str, ber: float) -> dict[str, float]:
    """Probability of each outcome for one codeword whose ``n`` bits flip independently at
    ``ber``, and ``unresolved``: that of the weights not enumerated (0 but for codes of more than 24 bits)."""
    if not 0.0 <= ber <= 1.0:
        raise ValueError(f"bit error rate must lie in [0, 1], got {ber}")
    n = get_codec(codec_name).n
    out = {o: sum(count * ber**w * (1 - ber) ** (n - w) for w, count in enumerate(counts))
           for o, counts in outcome_counts(codec_name).items()}
    enumerated = len(outcome_counts(codec_name)["clean"]) - 1  # the highest weight decoded
    out["unresolved"] = sum(math.comb(n, w) * ber**w * (1 - ber) ** (n - w) for w in range(enumerated + 1, n + 1))
    return out


def measured_rates(codec_name: str, ber: float, samples: int, seed: int = 0) -> dict[str, float]:
    """Monte Carlo: the fractions of ``samples`` codewords of random data that decode as
    detected and as silent (data changed, nothing reported) after independent flips of their
    ``n`` bits at ``ber`` (:class:`~ecc_tensor.faults.FaultModel` ``bsc``, seeded)."""
    from .faults import FaultModel

    codec = get_codec(codec_name)
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    g = torch.Generator().manual_seed(seed)
    values = torch.randint(0, 16, (samples, codec.values_per_codeword), dtype=torch.uint8, generator=g)
    words = codec.encode(values)
    bits = 8 if codec.codeword_shape else codec.n  # byte blocks, or one integer of n bits
    received, _ = FaultModel("bsc", ber, seed=seed + 1).apply(words, bits)
    decoded, status = codec.decode(received)
    status = status.reshape(samples)
    changed = (decoded != values).any(-1)
    return {"detected": (status == STATUS_DETECTED).float().mean().item(),
            "silent": ((status != STATUS_DETECTED) & changed).float().mean().item()}


def unprotected_silent(bits: int, ber: float) -> float:
    """Probability that an unprotected word of ``bits`` bits (an ``fp8`` mode's E4M3 word, a
    16-bit one) reads back changed, nothing detected: one or more of its bits flipped."""
    if not 0.0 <= ber <= 1.0:
        raise ValueError(f"bit error rate must lie in [0, 1], got {ber}")
    return 1.0 - (1.0 - ber) ** bits


def measured_unprotected(bits: int, ber: float, samples: int, seed: int = 0) -> float:
    """Monte Carlo: the fraction of ``samples`` random words of ``bits`` bits (8 or 16) that
    seeded ``bsc`` flips at ``ber`` change."""
    from .faults import FaultModel

    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    g = torch.Generator().manual_seed(seed)
    dtype = torch.uint8 if bits == 8 else torch.int16
    words = torch.randint(0, 256 if bits == 8 else 2**15, (samples,), dtype=dtype, generator=g)
    received, _ = FaultModel("bsc", ber, seed=seed + 1).apply(words, bits)
    return (received != words).float().mean().item()


def rate_table(bers, modes=("fp8", "int4", "int4-hamming", "int4-hamming84", "int12-golay", "int4-secded72"),
               monte_carlo: int = 0) -> str:
    """Markdown: per mode its storage cost and, per BER, the detected and silent codewords (an
    unprotected mode's words, ``fp8``: every flip silent) per million stored values (``<=``:
    an upper bound, with the flips of the weights not enumerated counted as silent); with
    ``monte_carlo`` codewords per cell, what a seeded Monte Carlo measures next to each
    (``measured_rates``, ``measured_unprotected``)."""
    from .modes import get_mode

    header = ["mode", "code", "bits / value (values + scales, head_dim 128)"]
    kinds = ("detected", "silent") + (("detected, measured", "silent, measured") if monte_carlo else ())
    header += [f"{what}, BER {ber:g}" for ber in bers for what in kinds]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * 3 + "---:|" * (len(kinds) * len(bers))]
    for name in modes:
        mode = get_mode(name)
        cost = f"{mode.stored_bits_per_value:g} + {mode.metadata_bits_per_value:g}"
        if mode.codec is None:  # unprotected words (fp8): every flip reads back silently
            cells = [name, "none", cost]
            for ber in bers:
                cells += ["0", f"{unprotected_silent(mode.word_bits, ber) * 1e6:.3g}"]
                if monte_carlo:
                    cells += ["0", f"{measured_unprotected(mode.word_bits, ber, monte_carlo) * 1e6:.3g}"]
            rows.append("| " + " | ".join(cells) + " |")
            continue
        codec_name = mode.codec
        codec = get_codec(codec_name)
        per_million = 1e6 / codec.values_per_codeword
        cells = [name, f"({codec.n},{codec.k})" if codec.decodes else "none", cost]
        for ber in bers:
            p = outcome_probabilities(codec_name, ber)
            bound = "<= " if p["unresolved"] > 0 else ""
            cells += [f"{p['detected'] * per_million:.3g}", f"{bound}{(p['silent'] + p['unresolved']) * per_million:.3g}"]
            if monte_carlo:
                m = measured_rates(codec_name, ber, monte_carlo)
                cells += [f"{m['detected'] * per_million:.3g}", f"{m['silent'] * per_million:.3g}"]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"
