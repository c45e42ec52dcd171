"""The shipped reference models and texts: offline loading, learned text, card figures, corpus rebuild."""

from __future__ import annotations

import hashlib
import math
import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

from ecc_tensor.evaluation.models import REFERENCE_DIR, REFERENCE_MODELS, load_model_and_tokenizer
from ecc_tensor.evaluation.windows import text_perplexity

TOOLS = Path(__file__).resolve().parents[1] / "tools" / "reference_models"
SLICE = 40


def corpus_sums() -> dict[str, str]:
    return {name: digest for digest, name in (line.split() for line in (TOOLS / "corpus.sha256").read_text().splitlines())}


@pytest.mark.parametrize("name", REFERENCE_MODELS)
def test_reference_loads_offline_scores_the_heldout_text_and_matches_its_card(name):
    model, tokenizer = load_model_and_tokenizer(name, "cpu", torch.float32)
    card = json.loads((REFERENCE_DIR / name / "figures.json").read_text())
    tokens = tokenizer((REFERENCE_DIR / "heldout.txt").read_text(), return_tensors="pt", add_special_tokens=False).input_ids[0]
    ppl = text_perplexity(model, tokens, max_windows=SLICE)
    # Same weights, same protocol, float32 on CPU: agreement to 0.1% (BLAS summation order aside).
    assert ppl == pytest.approx(card[f"test_perplexity_first_{SLICE}_windows"], rel=1e-3)
    # It learned the text: far below the unigram baseline (the cards show 76x and 43x).
    assert card["test_perplexity"] < card["unigram_test_perplexity"] / 10
    # Small enough to ship: the two models and the rest of the tree travel together to a lent
    # GPU machine, 64 MiB in all.
    weights = REFERENCE_DIR / name / "model.safetensors"
    assert weights.stat().st_size < 25e6
    assert f"{card['test_perplexity']}" in (REFERENCE_DIR / name / "README.md").read_text()


@pytest.mark.parametrize("name", REFERENCE_MODELS)
def test_reference_is_a_real_language_model_by_its_card_and_recomputed_induction(name):
    """The bar the reference models were trained to (the card's evidence.py figures), and the
    induction test recomputed here on CPU from the shipped weights."""
    _tools()
    from evidence import induction

    card = json.loads((REFERENCE_DIR / name / "figures.json").read_text())
    e = card["evidence"]
    assert e["ngram"]["ratio"] <= 0.7  # held-out perplexity against the Kneser-Ney 4-gram's
    assert e["context"]["perplexity"]["32"] >= 1.15 * e["context"]["perplexity"]["full"]
    assert e["context"]["window"] >= 1024 and card["context"] >= 1024
    model, tokenizer = load_model_and_tokenizer(name, "cpu", torch.float32)
    result = induction(model, len(tokenizer), length=e["induction"]["length"])
    assert result["drop_nats"] >= 3
    # Same weights, same sequences, float32: the card's figure (measured on the GPU) to 1%.
    assert result["drop_nats"] == pytest.approx(e["induction"]["drop_nats"], rel=1e-2)


def test_heldout_texts_are_the_corpus_test_splits():
    sums = corpus_sums()
    for shipped, split in (("heldout.txt", "test.txt"), ("ood_test.txt", "ood_test.txt")):
        assert hashlib.sha256((REFERENCE_DIR / shipped).read_bytes()).hexdigest() == sums[split]


@pytest.mark.skipif(not (shutil.which("apt-get") and shutil.which("dpkg-deb")), reason="needs Debian's apt-get and dpkg-deb")
def test_rebuilding_the_corpus_gives_the_recorded_checksums(tmp_path):
    sys.path.insert(0, str(TOOLS))
    import build_corpus

    first = ["--sources", "python-docs", "--debs", str(tmp_path / "debs")]
    assert build_corpus.main([*first, "--out", str(tmp_path / "a"), "--check", str(TOOLS / "corpus.sha256")]) == 0
    assert build_corpus.main([*first, "--out", str(tmp_path / "b"), "--check", str(tmp_path / "a" / "SHA256SUMS")]) == 0


def test_the_full_corpus_keeps_the_first_ones_test_and_ood_texts():
    """Old and new models compare on the same held-out text (the full corpus itself is rebuilt
    by `build_corpus.py --check corpus-full.sha256`: 140 MB of downloads, not in the suite)."""
    full = {name: digest for digest, name in (line.split() for line in (TOOLS / "corpus-full.sha256").read_text().splitlines())}
    first = corpus_sums()
    assert full["test.txt"] == first["test.txt"] and full["ood_test.txt"] == first["ood_test.txt"]
    assert set(full) == {"train.txt", "test.txt", "test_mix.txt", "ood_test.txt"}


def _tools():
    if str(TOOLS) not in sys.path:
        sys.path.insert(0, str(TOOLS))


def test_extractors_keep_the_main_content_and_drop_navigation(tmp_path):
    _tools()
    import gzip

    from extract import html_to_text, read_text, source_code

    page = ("<html><head><title>t</title></head><body><div class='navheader'>Prev <div>Up</div> Next</div>"
            "<main><h1>Title</h1><p>Body &amp; more</p><div><p>inner</p></div></main><p>footer</p></body></html>")
    assert html_to_text(page, ("main", None, None)) == "Title\n\nBody & more\n\ninner\n"
    skipped = html_to_text(page, skip_marker=("div", "class", ("navheader",)))
    assert "Prev" not in skipped and "Up" not in skipped and "Body & more" in skipped and "footer" in skipped
    (tmp_path / "a.txt.gz").write_bytes(gzip.compress("caf\u00e9\n".encode()))
    assert read_text(tmp_path / "a.txt.gz") == "caf\u00e9\n"
    (tmp_path / "a.go").write_text("func f() {  \n\treturn\t\n}\n\n")
    assert source_code(tmp_path / "a.go") == "func f() {\n\treturn\n}\n"


@pytest.mark.skipif(not shutil.which("pod2text"), reason="needs pod2text")
def test_pod_becomes_text(tmp_path):
    _tools()
    from extract import pod_to_text

    (tmp_path / "x.pod").write_text("=head1 NAME\n\nperlx - an example\n\n=head1 DESCRIPTION\n\nSome B<bold> text.\n\n=cut\n")
    text = pod_to_text(tmp_path / "x.pod")
    assert "NAME" in text and "perlx - an example" in text and "Some bold text." in text


def test_training_resumes_to_the_same_weights(tmp_path):
    """A run stopped at step 3 and continued equals an uninterrupted one, weights bit for bit."""
    _tools()
    import train as trainer
    from safetensors.torch import load_file
    from train_tokenizer import train_tokenizer

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "train.txt").write_text((REFERENCE_DIR / "heldout.txt").read_text()[:60_000])
    train_tokenizer(corpus / "train.txt", 300).save_pretrained(tmp_path / "tok")
    common = ["--arch", "llama", "--corpus", str(corpus), "--tokenizer", str(tmp_path / "tok"), "--layers", "2", "--d-model", "32",
              "--heads", "4", "--kv-heads", "2", "--context", "32", "--batch", "2", "--steps", "6", "--warmup", "2", "--device", "cpu",
              "--no-measure", "--shard-mb", "1"]
    assert trainer.main([*common, "--out", str(tmp_path / "a")]) == 0
    assert trainer.main([*common, "--out", str(tmp_path / "b"), "--stop-after", "3"]) == trainer.RESUME_EXIT
    assert trainer.main([*common, "--out", str(tmp_path / "b")]) == 0
    a, b = (load_file(next((tmp_path / d).glob("*.safetensors"))) for d in ("a", "b"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    training = json.loads((tmp_path / "b" / "training.json").read_text())
    assert training["train_tokens_seen"] == 6 * 2 * 32 and training["kv_heads"] == 2


def test_kneser_ney_is_a_distribution_and_beats_a_unigram_on_repetitive_text():
    _tools()
    import numpy as np
    from evidence import KneserNey

    rng = np.random.default_rng(0)
    vocab = 12
    train = np.tile(rng.integers(0, vocab, 40), 30)  # a phrase repeated: higher orders know it
    train[rng.integers(0, train.size, 200)] = rng.integers(0, vocab, 200)  # with noise
    kn = KneserNey(train, vocab)
    for history in ([1, 2, 3], [train[5], train[6], train[7]], [11, 11, 11]):
        probs = np.exp(np.array([kn.log_probs(np.array([*history, w]))[0] for w in range(vocab)]))
        assert probs.sum() == pytest.approx(1.0, abs=1e-9) and (probs > 0).all()
    test = np.tile(train[:40], 3)
    assert math.exp(-kn.log_probs(test).mean()) < 2.0 < vocab


def test_evidence_measures_induction_and_context_on_a_tiny_model():
    _tools()
    from evidence import context_use, induction, structure
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)).eval()
    tokens = torch.randint(0, 50, (400,))
    ppl = context_use(model, tokens, window=64, min_context=16, limits=(4, 16), max_windows=3)
    assert set(ppl) == {"4", "16", "full"} and all(math.isfinite(v) for v in ppl.values())
    # limited to 64 >= the window, attention is full: the same numbers
    assert context_use(model, tokens, 64, 16, limits=(64,), max_windows=3)["64"] == pytest.approx(ppl["full"], rel=1e-5)
    result = induction(model, 50, length=32, sequences=2)
    assert math.isfinite(result["drop_nats"])
    layers = structure(model, tokens, window=64, windows=2)
    assert len(layers) == 2 and all(0 <= row["sink_attention"] <= 1 and row["key_outlier_ratio"] >= 1 for row in layers)
