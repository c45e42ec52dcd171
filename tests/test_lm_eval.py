"""The ``hf-ecc`` lm-eval model: registration for the plain CLI, real numbers, the local task."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

pytest.importorskip("lm_eval")
pytest.importorskip("accelerate")

from lm_eval import simple_evaluate  # noqa: E402
from lm_eval.models.huggingface import HFLM  # noqa: E402
from lm_eval.tasks import TaskManager  # noqa: E402

from ecc_tensor.evaluation.lm_eval_tasks import PATH as TASKS_PATH  # noqa: E402
from ecc_tensor.integrations.lm_eval import ECCHFLM  # noqa: E402


def test_plain_lm_eval_finds_hf_ecc_through_the_installed_hook():
    code = "from lm_eval.api.registry import get_model; print(get_model('hf-ecc').__name__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ECCHFLM")


def evaluate(lm, tiny, pages=2):
    metadata = {"text_file": str(tiny / "text.txt"), "max_pages": pages}
    out = simple_evaluate(
        model=lm, tasks=["ecc_heldout"], task_manager=TaskManager(include_path=TASKS_PATH, include_defaults=False, metadata=metadata),
        metadata=metadata, bootstrap_iters=0,
    )
    return out["results"]["ecc_heldout"]


def model_args(tiny, **kw):
    return dict(pretrained=str(tiny / "model"), device="cpu", batch_size=1, max_length=96, **kw)


def test_fp16_mode_scores_exactly_like_plain_hf(tiny):
    """The fp16 oracle keeps 16-bit K/V: in a bfloat16 model, exactly the model's own."""
    plain = evaluate(HFLM(**model_args(tiny), dtype="bfloat16"), tiny)
    ours = evaluate(ECCHFLM(**model_args(tiny), dtype="bfloat16", cache_mode="fp16"), tiny)
    assert ours["word_perplexity,none"] == plain["word_perplexity,none"]
    assert math.isfinite(ours["byte_perplexity,none"]) and ours["byte_perplexity,none"] > 1


def test_codes_add_no_error_and_faults_are_counted(tiny):
    int4 = evaluate(ECCHFLM(**model_args(tiny), cache_mode="int4"), tiny)
    lm = ECCHFLM(**model_args(tiny), cache_mode="int12-golay")
    assert evaluate(lm, tiny)["word_perplexity,none"] == int4["word_perplexity,none"]
    assert lm.ecc_stats["read"] > 0 and lm.ecc_stats["corrected"] == 0
    faulty = ECCHFLM(**model_args(tiny), cache_mode="int4-hamming84-interp", ber=1e-2, seed=3, fault_model="bsc")
    evaluate(faulty, tiny)
    assert faulty.ecc_stats["injected"] > 0 and faulty.ecc_stats["corrected"] > 0 and faulty.ecc_stats["detected"] > 0


def test_bad_arguments_fail_before_loading(tiny):
    with pytest.raises(ValueError, match="unknown cache mode"):
        ECCHFLM(**model_args(tiny), cache_mode="int8")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ECCHFLM(**model_args(tiny), ber=2.0)


def test_generation_goes_through_the_cache(tiny):
    lm = ECCHFLM(**model_args(tiny), cache_mode="int4-hamming84")
    context = torch.tensor([[5, 6, 7, 8]])
    out = lm._model_generate(context, max_length=10, stop=["\n\n\n"], do_sample=False)
    assert out.shape[1] <= 10 and lm.ecc_stats["read"] > 0


def test_shipped_models_resolve_by_name_and_a_typo_gets_a_suggestion():
    lm = ECCHFLM(pretrained="ref-gpt2", device="cpu", batch_size=1, cache_mode="int4")
    assert lm.model.config.model_type == "gpt2"
    with pytest.raises(ValueError, match="did you mean 'ref-gpt2'"):
        ECCHFLM(pretrained="ref-gpt3", device="cpu", batch_size=1)
