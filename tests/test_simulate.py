"""The reference write/read simulation, the modes table and the demo CLI."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from ecc_tensor import counters as C
from ecc_tensor.cli import main
from ecc_tensor.faults import FaultModel
from ecc_tensor.modes import MODE_NAMES, get_mode
from ecc_tensor.simulate import roundtrip

X = torch.randn(2, 64, 30, generator=torch.Generator().manual_seed(0))


def test_modes_table():
    assert MODE_NAMES == (
        "fp16", "fp16-unprotected", "int4", "int4-hamming", "int4-hamming84", "int4-hamming84-interp", "int12-golay", "fp8",
        "int4-secded72", "int4-secded72-interp",
    )
    assert [get_mode(m).stored_bits_per_value for m in MODE_NAMES] == [16, 16, 4, 8, 8, 8, 8.5, 8, 4.5, 4.5]
    with pytest.raises(ValueError, match="unknown cache mode"):
        get_mode("int8")


def test_fault_free_modes_agree():
    """Codes add no error of their own: every INT4 mode reads back the same at BER 0."""
    int4, _ = roundtrip(X, "int4")
    for mode in [m for m in MODE_NAMES if get_mode(m).quantized][1:]:
        out, counters = roundtrip(X, mode, FaultModel("bsc", 0.0))
        assert torch.equal(out, int4), mode
        assert C.counters_to_dict(counters)["corrected"] == 0
    fp16, _ = roundtrip(X, "fp16")
    assert torch.equal(fp16, X.half().float())


def test_counters_match_an_independent_count():
    from ecc_tensor.codecs import get_codec
    from ecc_tensor.quant import quantize_int4

    fault = FaultModel("bsc", 2e-2, seed=5, targets="values")
    _, counters = roundtrip(X, "int4-hamming84", fault)
    # Redo the same write with the same draw (step 0) and count statuses directly.
    codec = get_codec("hamming84")
    stored = codec.encode(quantize_int4(X).q)
    corrupted, n = FaultModel("bsc", 2e-2, seed=5).apply(stored, 8)
    _, status = codec.decode_words(corrupted)
    c = C.counters_to_dict(counters)
    assert c["read"] == stored.numel() and c["injected"] == int(n)
    assert c["corrected"] == int((status == 1).sum()) and c["detected"] == int((status == 2).sum())
    assert c["parity_only"] == int((status == 3).sum()) > 0  # the overall parity bit alone: not "corrected"
    assert c["detected"] > 0


def test_protection_ordering_at_high_ber():
    int4_clean, _ = roundtrip(X, "int4")
    errors = {}
    for mode in ("int4", "int4-hamming84", "int4-hamming84-interp", "int12-golay"):
        out, _ = roundtrip(X, mode, FaultModel("bsc", 1e-2, seed=1, targets="values"))
        errors[mode] = float((out - int4_clean).abs().mean())
    assert errors["int4"] > 5 * errors["int4-hamming84"]
    assert errors["int4-hamming84-interp"] <= errors["int4-hamming84"]
    # Faults in the scales too: unprotected INT4 reads inf or NaN; the codes keep it finite.
    whole = {mode: roundtrip(X, mode, FaultModel("bsc", 1e-2, seed=1))[0] for mode in ("int4", "int4-hamming84-interp", "int12-golay")}
    assert not whole["int4"].isfinite().all()
    assert whole["int4-hamming84-interp"].isfinite().all() and whole["int12-golay"].isfinite().all()


def test_golay_pads_a_head_dim_not_divisible_by_3():
    x = torch.randn(3, 10, 8)
    out, counters = roundtrip(x, "int12-golay")
    assert torch.equal(out, roundtrip(x, "int4")[0])
    assert C.counters_to_dict(counters)["read"] == 3 * 10 * 3  # ceil(8 / 3) codewords per row


def test_read_site_faults_count():
    _, counters = roundtrip(X, "int4", FaultModel("bsc", 0.05, seed=2, site="both"))
    c = C.counters_to_dict(counters)
    assert c["injected"] > 0 and c["silent"] > 0


def test_demo_cli_prints_counters(capsys):
    assert main(["demo", "--seq", "32", "--heads", "2", "--head-dim", "12", "--ber", "0.01"]) == 0
    out = capsys.readouterr().out
    for mode in MODE_NAMES:
        assert mode in out
    assert "corrected" in out


def test_cli_rejects_bad_ber():
    result = subprocess.run(
        [sys.executable, "-m", "ecc_tensor", "demo", "--ber", "2"], capture_output=True, text=True
    )
    assert result.returncode == 2 and "[0, 1]" in result.stderr
