"""The exact outcome rates of each code under BSC: counted by weight, checked against the
codes' guarantees and against Monte Carlo."""

from __future__ import annotations

import math

import pytest

from ecc_tensor.cli import main
from ecc_tensor.code_rates import (
    OUTCOMES,
    measured_rates,
    measured_unprotected,
    outcome_counts,
    outcome_probabilities,
    unprotected_silent,
)
from ecc_tensor.codecs import get_codec


@pytest.mark.parametrize("name, corrects, detects", [("int4", 0, 0), ("hamming74", 1, 0), ("hamming84", 1, 2), ("golay24", 3, 4)])
def test_counts_cover_every_pattern_and_keep_each_codes_guarantee(name, corrects, detects):
    n = get_codec(name).n
    counts = outcome_counts(name)
    for w in range(n + 1):
        assert sum(counts[o][w] for o in OUTCOMES) == math.comb(n, w)
    assert counts["clean"][0] == 1
    for w in range(1, corrects + 1):
        assert counts["corrected"][w] == math.comb(n, w)  # every pattern within the radius
    for w in range(corrects + 1, detects + 1):
        assert counts["detected"][w] == math.comb(n, w)  # every pattern up to d - 1 - t detected
    assert sum(outcome_probabilities(name, 0.013).values()) == pytest.approx(1.0)
    if name == "int4":
        assert outcome_probabilities(name, 0.01)["silent"] == pytest.approx(1 - 0.99**4)


@pytest.mark.parametrize("name", ["hamming74", "hamming84", "golay24"])
def test_monte_carlo_matches_the_exact_rates(name):
    ber, samples = 0.04, 200_000
    measured = measured_rates(name, ber, samples, seed=0)
    exact = outcome_probabilities(name, ber)
    for outcome, rate in measured.items():
        sd = math.sqrt(exact[outcome] * (1 - exact[outcome]) / samples)
        assert abs(rate - exact[outcome]) <= 5 * sd + 1e-9, (outcome, rate, exact[outcome])


def test_codes_command_prints_the_table(capsys):
    assert main(["codes", "--bers", "1e-3", "1e-2"]) == 0
    out = capsys.readouterr().out
    assert "| int4-hamming84 | (8,4) | 8 + 1 |" in out and "silent, BER 0.01" in out
    assert "| int4-secded72 | (72,64) | 4.5 + 1 |" in out
    assert "| fp8 | none | 8 + 0 | 0 | 7.97e+03 | 0 | 7.73e+04 |" in out  # 1 - (1 - p)^8 per word, nothing detected


def test_unprotected_words_against_monte_carlo():
    for bits, ber in ((8, 0.01), (16, 0.003)):
        exact = unprotected_silent(bits, ber)
        samples = 100_000
        measured = measured_unprotected(bits, ber, samples, seed=2)
        assert abs(measured - exact) <= 5 * math.sqrt(exact * (1 - exact) / samples), (bits, measured, exact)
    with pytest.raises(ValueError, match="bit error rate"):
        unprotected_silent(8, 1.5)


def test_codes_command_measures_next_to_the_exact_rates(capsys):
    assert main(["codes", "--bers", "1e-2", "--monte-carlo", "20000"]) == 0
    out = capsys.readouterr().out
    assert "silent, measured, BER 0.01" in out
    golay = next(line for line in out.splitlines() if line.startswith("| int12-golay"))
    assert len(golay.split("|")) == 3 + 4 + 2  # mode, code, cost, then exact and measured detected and silent


def test_secded72_counts_by_weight_and_against_monte_carlo():
    counts = outcome_counts("secded72")
    assert counts["corrected"][1] == 72 and counts["detected"][2] == 2556
    for w in range(5):
        assert sum(counts[o][w] for o in OUTCOMES) == math.comb(72, w)
    assert counts["clean"][3] == 0  # an odd syndrome is never zero
    ber, samples = 0.01, 100_000
    measured = measured_rates("secded72", ber, samples, seed=1)
    exact = outcome_probabilities("secded72", ber)
    sd = math.sqrt(0.05 / samples)
    for outcome in ("detected", "silent"):  # the weights past 4 may fall either way
        assert exact[outcome] - 5 * sd <= measured[outcome] <= exact[outcome] + exact["unresolved"] + 5 * sd
