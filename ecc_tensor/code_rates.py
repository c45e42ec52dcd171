"""What each code does with a codeword under independent bit flips (BSC at rate ``p``), exactly.

A linear code's decoding outcome depends only on the error pattern, not on the data it hit:
the received word is ``c ^ e`` and its syndrome is ``e``'s. So decoding every pattern ``e`` of
the ``n`` codeword bits once, as a received word for the all-zero codeword, sorts all ``2^n``
patterns into outcomes: *clean* (no flip), *corrected* (data back as written; Hamming(8,4)'s
overall-parity-only flips included), *detected* (reported uncorrectable) and *silent* (data
changed, nothing reported). With ``N_w`` patterns of weight ``w`` in an outcome, its
probability is ``sum_w N_w p^w (1 - p)^(n - w)``. ``ecc-tensor codes`` prints the table.
"""

from __future__ import annotations

import functools

import torch

from .codecs import STATUS_DETECTED, get_codec

OUTCOMES = ("clean", "corrected", "detected", "silent")
_CHUNK = 1 << 20


@functools.lru_cache(maxsize=None)
def outcome_counts(codec_name: str) -> dict[str, tuple[int, ...]]:
    """For each outcome, the number of error patterns of each weight ``0..n``."""
    codec = get_codec(codec_name)
    n = codec.n
    totals = torch.zeros(n + 1, len(OUTCOMES), dtype=torch.int64)
    for start in range(0, 1 << n, _CHUNK):
        errors = torch.arange(start, min(start + _CHUNK, 1 << n), dtype=torch.int64)
        data, status = codec.decode_words(errors)
        weight = sum((errors >> i) & 1 for i in range(n))
        outcome = torch.where(
            errors == 0, 0, torch.where(status == STATUS_DETECTED, 2, torch.where(data != 0, 3, 1))
        )
        totals += torch.bincount(weight * len(OUTCOMES) + outcome, minlength=(n + 1) * len(OUTCOMES)).view(n + 1, -1)
    return {o: tuple(totals[:, i].tolist()) for i, o in enumerate(OUTCOMES)}


def outcome_probabilities(codec_name: str, ber: float) -> dict[str, float]:
    """Probability of each outcome for one codeword whose ``n`` bits flip independently at ``ber``."""
    if not 0.0 <= ber <= 1.0:
        raise ValueError(f"bit error rate must lie in [0, 1], got {ber}")
    n = get_codec(codec_name).n
    return {o: sum(count * ber**w * (1 - ber) ** (n - w) for w, count in enumerate(counts))
            for o, counts in outcome_counts(codec_name).items()}


def rate_table(bers, modes=("int4", "int4-hamming", "int4-hamming84", "int12-golay")) -> str:
    """Markdown: per mode its storage cost and, per BER, the detected and silent codewords per
    million stored values."""
    from .modes import get_mode

    header = ["mode", "code", "bits / value (values + scales, head_dim 128)"]
    header += [f"{what}, BER {ber:g}" for ber in bers for what in ("detected", "silent")]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * 3 + "---:|" * (2 * len(bers))]
    for name in modes:
        mode = get_mode(name)
        codec = get_codec(mode.codec)
        per_million = 1e6 / codec.values_per_codeword
        cells = [name, f"({codec.n},{codec.k})" if codec.decodes else "none",
                 f"{mode.stored_bits_per_value:g} + {mode.metadata_bits_per_value:g}"]
        for ber in bers:
            p = outcome_probabilities(mode.codec, ber)
            cells += [f"{p['detected'] * per_million:.3g}", f"{p['silent'] * per_million:.3g}"]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"
