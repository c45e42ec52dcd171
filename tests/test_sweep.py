"""The sweep CLI on a tiny model and a few windows: real numbers, resume, outputs, bad input."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
import pytest
import torch

from ecc_tensor.evaluation import sweep as S
from ecc_tensor.evaluation.models import ModelNotFound, load_model_and_tokenizer
from ecc_tensor.evaluation.windows import make_windows


def settings(tiny, out, **kw):
    base = dict(
        model=str(tiny / "model"), text=str(tiny / "text.txt"), output_dir=str(out), max_samples=3, window=48, stride=24,
        cache_modes=["fp16", "int4", "int4-hamming84-interp", "int12-golay"], ber_levels=[0.0, 1e-2], seeds=[1, 2],
    )
    base.update(kw)
    return S.SweepSettings(**base)


def strip_time(records):
    return [{k: v for k, v in r.items() if k != "wall_time_s"} for r in records]


def test_fp16_perplexity_equals_a_direct_computation_with_the_stock_model(tiny, tmp_path):
    """The fp16 oracle stores 16-bit K/V: in a bfloat16 model, exactly the model's own."""
    records = S.run_sweep(settings(tiny, tmp_path, cache_modes=["fp16"], ber_levels=[0.0], seeds=[1], dtype="bfloat16"), progress=False)
    model, tokenizer = load_model_and_tokenizer(str(tiny / "model"), dtype=torch.bfloat16)
    ids = tokenizer((tiny / "text.txt").read_text(), return_tensors="pt", add_special_tokens=False).input_ids[0]
    nll, n = 0.0, 0
    with torch.no_grad():
        for w in make_windows(ids.numel(), 48, 24, 3):
            chunk = ids[w.start : w.start + 48]
            logp = torch.log_softmax(model(chunk.unsqueeze(0)).logits[0, :-1].float(), -1)  # no cache at all
            targets = chunk[w.scored_from :]
            nll -= float(logp[w.scored_from - 1 :].gather(-1, targets.unsqueeze(-1)).sum())
            n += targets.numel()
    assert records[0]["perplexity"] == pytest.approx(math.exp(nll / n), rel=1e-6)
    assert records[0]["kl_divergence"] == 0.0 and records[0]["tokens"] == n


def test_outputs_and_the_shape_of_the_results(tiny, tmp_path):
    records = S.run_sweep(settings(tiny, tmp_path), progress=False)
    assert len(records) == 4 * 2 * 2
    by = {(r["mode"], r["ber"], r["seed"]): r for r in records}
    clean_int4 = by[("int4", 0.0, 1)]["perplexity"]
    # Codes add no error: every INT4 mode at BER 0 scores exactly like int4.
    for mode in ("int4-hamming84-interp", "int12-golay"):
        assert by[(mode, 0.0, 1)]["perplexity"] == clean_int4
    assert by[("int4-hamming84-interp", 1e-2, 1)]["detected"] > 0
    assert by[("int12-golay", 1e-2, 2)]["corrected"] > 0 and by[("int4", 1e-2, 2)]["injected"] > 0
    for name in ("results.json", "summary.csv", "tables.md", "trials.jsonl", "plots/perplexity.png", "plots/kl_divergence.png"):
        assert (tmp_path / name).exists(), name
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["environment"]["torch"] == torch.__version__ and len(results["trials"]) == 16
    tables = (tmp_path / "tables.md").read_text()
    assert "### Perplexity" in tables and "| int12-golay |" in tables and "±" in tables


def test_a_killed_sweep_resumes_and_equals_an_uninterrupted_one(tiny, tmp_path, monkeypatch):
    uninterrupted = S.run_sweep(settings(tiny, tmp_path / "a"), progress=False)

    real_run_trial, calls = S.run_trial, []

    def dying_run_trial(*args, **kwargs):
        if len(calls) == 5:
            raise KeyboardInterrupt  # the sweep is killed during its sixth trial
        calls.append(1)
        return real_run_trial(*args, **kwargs)

    monkeypatch.setattr(S, "run_trial", dying_run_trial)
    with pytest.raises(KeyboardInterrupt):
        S.run_sweep(settings(tiny, tmp_path / "b"), progress=False)
    written = S.load_finished(tmp_path / "b")
    assert len([r for r in written.values() if "reused_from_seed" not in r]) == 5
    with (tmp_path / "b" / S.TRIALS_FILE).open("a") as fh:
        fh.write('{"mode": "int4", "ber"')  # a torn line, as a kill mid-write leaves
    monkeypatch.setattr(S, "run_trial", real_run_trial)
    resumed_calls = []
    monkeypatch.setattr(S, "run_trial", lambda *a, **k: resumed_calls.append(1) or real_run_trial(*a, **k))
    resumed = S.run_sweep(settings(tiny, tmp_path / "b"), progress=False)
    # 16 trials, of which the 4 fault-free second seeds reuse the first: 12 real, 5 done before the kill
    assert len(resumed_calls) == 12 - 5
    assert strip_time(resumed) == strip_time(uninterrupted)


@pytest.mark.parametrize("site", ["write", "both"])
def test_windows_scored_together_take_the_faults_they_take_one_at_a_time(tiny, tmp_path, site):
    """Batches of 2 over 5 windows (the last one alone): the counters equal the one-window
    run's exactly, since each window draws as the same sequence; the scores to rounding."""
    def run(batch_size):
        return S.run_sweep(settings(tiny, tmp_path / str(batch_size), max_samples=5, batch_size=batch_size, seeds=[3], fault_site=site,
                                    ber_levels=[1e-2], cache_modes=["int4", "int4-hamming84-interp", "fp8"]), progress=False)

    alone, together = run(1), run(2)
    for a, t in zip(alone, together, strict=True):
        numbers = [k for k in a if k not in ("wall_time_s", "perplexity", "kl_divergence", "top5_accuracy")]
        assert {k: a[k] for k in numbers} == {k: t[k] for k in numbers}
        assert a["injected"] > 0 and a["windows"] == 5
        for k in ("perplexity", "kl_divergence", "top5_accuracy"):
            assert t[k] == pytest.approx(a[k], rel=1e-5), k


def test_resuming_with_other_settings_is_refused(tiny, tmp_path):
    S.run_sweep(settings(tiny, tmp_path, cache_modes=["int4"], ber_levels=[0.0], seeds=[1]), progress=False)
    with pytest.raises(ValueError, match="other settings"):
        S.run_sweep(settings(tiny, tmp_path, cache_modes=["int4"], ber_levels=[0.0], seeds=[1], window=32, stride=16), progress=False)



def test_resuming_after_the_weights_or_the_text_changed_is_refused(tiny, tmp_path):
    """Retrained weights, or an edited text, at the same paths: the finished trials measured
    another model and must not be reused."""
    import shutil

    model, text = tmp_path / "model", tmp_path / "text.txt"
    shutil.copytree(tiny / "model", model)
    shutil.copy(tiny / "text.txt", text)
    grid = dict(cache_modes=["int4"], ber_levels=[0.0], seeds=[1], output_dir=str(tmp_path / "out"))
    first = dataclasses.replace(settings(tiny, tmp_path), model=str(model), text=str(text), **grid)
    S.run_sweep(first, progress=False)
    S.run_sweep(first, progress=False)  # unchanged: resumes
    text.write_text(text.read_text() + " one more sentence.")
    with pytest.raises(ValueError, match="text_sha256"):
        S.run_sweep(first, progress=False)
    shutil.copy(tiny / "text.txt", text)
    (model / "model.safetensors").write_bytes((model / "model.safetensors").read_bytes()[:-1] + b"\1")
    with pytest.raises(ValueError, match="model_sha256"):
        S.run_sweep(first, progress=False)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "ecc_tensor.sweep", *args], capture_output=True, text=True)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--cache-modes", "int8"], "unknown cache mode"),
        (["--ber-levels", "0", "1.5"], r"\[0, 1\]"),
        (["--model", "/nonexistent/model"], "does not exist"),
    ],
)
def test_bad_input_exits_non_zero_with_a_message(tiny, tmp_path, args, message):
    base = ["--model", str(tiny / "model"), "--text", str(tiny / "text.txt"), "--output-dir", str(tmp_path / "o"), "--quiet"]
    result = run_cli(*base, *args)
    assert result.returncode == 2 and __import__("re").search(message, result.stderr), result.stderr


def test_unwritable_output_dir_loses_nothing(tiny, tmp_path):
    S.run_sweep(settings(tiny, tmp_path / "kept", cache_modes=["int4"], ber_levels=[0.0], seeds=[1]), progress=False)
    before = (tmp_path / "kept" / S.TRIALS_FILE).read_text()
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    result = run_cli("--model", str(tiny / "model"), "--text", str(tiny / "text.txt"), "--output-dir", str(blocker / "out"), "--quiet")
    assert result.returncode == 2 and "not writable" in result.stderr
    assert (tmp_path / "kept" / S.TRIALS_FILE).read_text() == before


def test_an_unbuilt_reference_model_says_what_to_do(monkeypatch, tmp_path):
    from ecc_tensor.evaluation import models

    monkeypatch.setattr(models, "REFERENCE_DIR", tmp_path)
    with pytest.raises(ModelNotFound, match="--model PATH"):
        models.resolve_model_path("ref-gpt2")


def test_cli_subcommand(tiny, tmp_path):
    from ecc_tensor.cli import main

    assert main(["sweep", "--model", str(tiny / "model"), "--text", str(tiny / "text.txt"), "--output-dir", str(tmp_path),
                 "--cache-modes", "int4", "--ber-levels", "0", "--seeds", "1", "--max-samples", "1", "--window", "32", "--stride",
                 "16", "--quiet"]) == 0
    assert (tmp_path / "results.json").exists()


def test_generation_reliability_on_the_tiny_model(tiny, tmp_path):
    from ecc_tensor.evaluation import reliability as R

    model, tokenizer = load_model_and_tokenizer(str(tiny / "model"))
    prompts = R.default_prompts((tiny / "text.txt").read_text(), count=3, words=6)
    rows = R.generation_reliability(
        model, tokenizer, prompts, ["int4", "int12-golay"], ["bsc"], [1e-3, 5e-2], ["write"], new_tokens=12, progress=False
    )
    by = {(r.mode, r.ber): r for r in rows}
    assert by[("int12-golay", 1e-3)].exact_match == 1.0 and by[("int12-golay", 1e-3)].mean_char_drift == 0
    assert by[("int4", 5e-2)].exact_match < 1.0 and by[("int4", 5e-2)].mean_char_drift > 0
    table = R.write(rows, tmp_path, "generation", ["mode", "fault_model", "ber", "site", "exact_match", "mean_char_drift"])
    assert "int12-golay" in table and (tmp_path / "generation.json").exists()


def test_generation_takes_a_quantization_scheme(tiny):
    """A residual window as long as the whole generation keeps every token in 16-bit words: the
    int4 output is then the fp16 oracle's."""
    from ecc_tensor.evaluation import reliability as R
    from ecc_tensor.quant_scheme import QuantScheme

    model, tokenizer = load_model_and_tokenizer(str(tiny / "model"))
    prompt = R.default_prompts((tiny / "text.txt").read_text(), count=1, words=6)[0]
    oracle = R.generate(model, tokenizer, prompt, "fp16", None, 12)
    windowed = R.generate(model, tokenizer, prompt, "int4", None, 12, QuantScheme("channel", "token", 64, 4))
    assert windowed == oracle


def test_levenshtein():
    from ecc_tensor.evaluation.reliability import levenshtein

    assert levenshtein("kitten", "sitting") == 3 and levenshtein("", "abc") == 3 and levenshtein("same", "same") == 0


def test_needle_prompt_and_run(tiny):
    from ecc_tensor.evaluation import reliability as R

    model, tokenizer = load_model_and_tokenizer(str(tiny / "model"))
    filler = (tiny / "text.txt").read_text()[:5000]
    prompt = R.needle_prompt(tokenizer, filler, 120)
    assert prompt.index("var_a = 50") < prompt.index("var_b = 25")
    rows = R.needle(model, tokenizer, filler, ["int4"], [0.0], [120], seeds=(0,), progress=False)
    assert {r.task for r in rows} == {"retrieval", "reasoning"} and all(0 <= r.accuracy <= 1 for r in rows)
    with pytest.raises(ValueError, match="positions"):
        R.needle(model, tokenizer, filler, ["int4"], [0.0], [4096], progress=False)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--device", "gpu"], "unknown device"),
        (["--window", "512", "--stride", "256"], "exceeds the model's 256 positions"),
        (["--seeds", "-1"], r"seed must be an integer in \[0, 2\*\*63\)"),
        (["--group-size", "0"], "positive divisor"),
        (["--batch-size", "0"], "--batch-size must be >= 1"),
        (["--group-size", "7"], "does not divide the model's head_dim 16"),
        (["--model", "ref-gpt3"], "did you mean 'ref-gpt2'"),
    ],
)
def test_every_mistake_is_one_line_before_any_work_and_writes_nothing(tiny, tmp_path, args, message):
    out = tmp_path / "never"
    base = ["--model", str(tiny / "model"), "--text", str(tiny / "text.txt"), "--output-dir", str(out), "--quiet"]
    result = run_cli(*base, *args)
    assert result.returncode == 2 and __import__("re").search(message, result.stderr), result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


def test_a_text_that_is_not_utf8_is_named(tiny, tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 ".encode("latin-1") * 50)
    result = run_cli("--model", str(tiny / "model"), "--text", str(bad), "--output-dir", str(tmp_path / "o"), "--quiet")
    assert result.returncode == 2 and "latin1.txt is not UTF-8" in result.stderr and not (tmp_path / "o").exists()


def test_cuda_without_a_gpu_is_a_message(tiny, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = run_cli("--model", str(tiny / "model"), "--device", "cuda", "--output-dir", str(tmp_path / "o"), "--quiet")
    assert result.returncode == 2 and "no CUDA GPU" in result.stderr


def test_a_failed_run_blocks_no_later_one(tiny, tmp_path, monkeypatch):
    """A run that fails after the checks (here: loading the model) records no settings, so the
    corrected rerun into the same directory is not refused as 'other settings'; and the model
    named by another path to the same directory is the same sweep."""
    from ecc_tensor.evaluation import models

    def broken(*args, **kwargs):
        raise models.ModelNotFound("could not load it")

    monkeypatch.setattr(models, "load_model_and_tokenizer", broken)
    with pytest.raises(ValueError, match="could not load"):
        S.run_sweep(settings(tiny, tmp_path, cache_modes=["int4"], ber_levels=[0.0], seeds=[1], window=32, stride=16), progress=False)
    assert not (tmp_path / S.SETTINGS_FILE).exists()
    monkeypatch.undo()
    S.run_sweep(settings(tiny, tmp_path, cache_modes=["int4"], ber_levels=[0.0], seeds=[1]), progress=False)
    other_name = str(tiny / "model" / ".." / "model")
    S.run_sweep(settings(tiny, tmp_path, model=other_name, cache_modes=["int4"], ber_levels=[0.0], seeds=[1]), progress=False)


def test_a_smaller_grid_rerun_reports_every_trial_of_the_directory(tiny, tmp_path):
    S.run_sweep(settings(tiny, tmp_path, cache_modes=["int4", "int12-golay"], ber_levels=[0.0, 1e-2], seeds=[1]), progress=False)
    S.run_sweep(settings(tiny, tmp_path, cache_modes=["int4"], ber_levels=[0.0], seeds=[1]), progress=False)
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results["trials"]) == 4
    assert "int12-golay" in (tmp_path / "tables.md").read_text()


def test_needle_defaults_fit_the_model():
    from types import SimpleNamespace

    from ecc_tensor.evaluation.reliability import default_contexts

    assert default_contexts(SimpleNamespace(max_position_embeddings=512)) == [128, 256, 448]
    assert default_contexts(SimpleNamespace(n_positions=1024)) == [256, 512, 960]
    assert default_contexts(SimpleNamespace(max_position_embeddings=131072)) == [2048, 4096, 8192]


@pytest.mark.parametrize("args,message", [(["generation", "--prompts", "0"], "--prompts: must be >= 1"),
                                          (["needle", "--seed", "-3"], "--seed: must lie in"),
                                          (["needle", "--contexts", "0"], "--contexts: must be >= 1")])
def test_reliability_commands_check_their_arguments(args, message):
    result = subprocess.run([sys.executable, "-m", "ecc_tensor", *args], capture_output=True, text=True)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_several_models_each_get_a_directory_and_a_typo_in_any_stops_all(tiny, tmp_path):
    import shutil

    other = tmp_path / "other-model"
    shutil.copytree(tiny / "model", other)
    out = tmp_path / "out"
    grid = ["--text", str(tiny / "text.txt"), "--cache-modes", "int4", "--ber-levels", "0", "--seeds", "1", "--window", "32",
            "--stride", "16", "--max-samples", "1", "--output-dir", str(out), "--quiet"]
    bad = run_cli("--model", str(tiny / "model"), "ref-gpt3", *grid)
    assert bad.returncode == 2 and "did you mean 'ref-gpt2'" in bad.stderr and not out.exists()
    good = run_cli("--model", str(tiny / "model"), str(other), *grid)
    assert good.returncode == 0, good.stderr
    for name in ("model", "other-model"):
        assert len(json.loads((out / name / "results.json").read_text())["trials"]) == 1
    assert S.DEFAULT_MODELS == ("ref-gpt2", "ref-llama")


def test_the_command_line_parses_without_importing_torch():
    """--help and every usage error answer before the heavy imports (torch, transformers)."""
    code = ("import sys; from ecc_tensor.cli import build_parser; p = build_parser(); "
            "p.parse_args(['sweep', '--ber-levels', '1e-3']); p.parse_args(['demo']); "
            "heavy = [m for m in ('torch', 'transformers', 'torchao') if m in sys.modules]; print(heavy); assert not heavy")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    usage = subprocess.run([sys.executable, "-m", "ecc_tensor", "sweep", "--ber-levels", "abc"], capture_output=True, text=True)
    assert usage.returncode == 2 and "invalid float value: 'abc'" in usage.stderr
