"""Measure a reference model's figures from its shipped fp16 weights and write its card.

    python tools/reference_models/measure.py ecc_tensor/evaluation/reference/ref-gpt2 --corpus build/corpus

Reads ``training.json`` (written by train.py) and writes ``figures.json`` and ``README.md``.
Perplexity follows the sweep's protocol: windows of 256 tokens, stride 128, float32 compute.
With ``--evidence`` (the default for a corpus with a ``manifest.json``, the full corpus) the
card also carries ``evidence.py``'s figures: the Kneser-Ney 4-gram baseline, induction,
context use, attention sinks and outlier channels.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from ecc_tensor.evaluation.windows import text_perplexity

sys.path.insert(0, str(Path(__file__).parent))

SLICE_WINDOWS = 40  # the test suite recomputes this slice on CPU


def tokens_of(tokenizer, path: Path) -> torch.Tensor:
    from tokens import cached_tokens

    return cached_tokens(tokenizer, path)


def unigram_perplexity(train: torch.Tensor, test: torch.Tensor, vocab: int) -> float:
    """Add-one smoothed unigram model of the training split, scored on ``test``."""
    counts = Counter(train.tolist())
    total = train.numel() + vocab
    nll = -sum(math.log((counts.get(t, 0) + 1) / total) for t in test.tolist())
    return math.exp(nll / test.numel())


def measure(model_dir: Path, corpus: Path, with_evidence: bool | None = None, device: str = "cpu") -> dict:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device).eval()
    train, test, ood = (tokens_of(tokenizer, corpus / f) for f in ("train.txt", "test.txt", "ood_test.txt"))
    training = json.loads((model_dir / "training.json").read_text())
    figures = {
        "architecture": type(model).__name__,
        **training,
        "test_perplexity": round(text_perplexity(model, test), 3),
        f"test_perplexity_first_{SLICE_WINDOWS}_windows": round(text_perplexity(model, test, max_windows=SLICE_WINDOWS), 4),
        "ood_test_perplexity": round(text_perplexity(model, ood), 3),
        "unigram_test_perplexity": round(unigram_perplexity(train, test, len(tokenizer)), 3),
        "unigram_ood_test_perplexity": round(unigram_perplexity(train, ood, len(tokenizer)), 3),
        "vocab_size": len(tokenizer),
        "eval_protocol": "sliding windows of 256 tokens, stride 128, float32 compute on the shipped fp16 weights",
    }
    if (corpus / "test_mix.txt").exists():
        figures["test_mix_perplexity"] = round(text_perplexity(model, tokens_of(tokenizer, corpus / "test_mix.txt")), 3)
    if with_evidence is None:
        with_evidence = (corpus / "manifest.json").exists()
    if with_evidence:
        from evidence import evidence

        figures["evidence"] = evidence(model_dir, corpus, device=device)
        figures["corpus"] = json.loads((corpus / "manifest.json").read_text())
    (model_dir / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    (model_dir / "README.md").write_text(model_card(model_dir.name,
                                                    figures) if "corpus" not in figures else full_card(model_dir.name, figures))
    return figures


def full_card(name: str, f: dict) -> str:
    """The card of a model trained on the full corpus (build_corpus.py's default)."""
    e, sources = f["evidence"], f["corpus"]["sources"]
    rows = "\n".join(f"| {n} | `{s['package']}` {s['version']} | {s['kind']} | {s['train_documents']:,} | {s['train_chars'] / 1e6:.1f} |"
                     for n, s in sources.items())
    ctx = e["context"]["perplexity"]
    layers = "\n".join(f"| {r['layer']} | {r['sink_attention']:.3f} | {r['key_outlier_ratio']:.1f} | {r['value_outlier_ratio']:.1f} |"
                       for r in e["layers"])
    shape = f"{f['layers']} layers, d_model {f['d_model']}, {f['heads']} query heads, {f['kv_heads']} KV heads, context {f['context']}"
    return f"""# {name}: a {f['parameters'] / 1e6:.1f}M-parameter {f['architecture']} trained on documentation and source code

A reference model for `ecc_tensor`'s evaluations, made here because no model hub is reachable
({shape}).

- **Data**: the full reference corpus (`tools/reference_models/build_corpus.py`, checksums in
  `tools/reference_models/corpus-full.sha256`), {f['train_split_tokens']:,} training tokens; 1
  document in 20 held out. Held-out texts: the Python docs' held-out pages (`../heldout.txt`,
  the same text the first reference models were scored on) and the other sources' held-out
  documents (`test_mix.txt`); out of domain: the Debian Reference (`../ood_test.txt`).

| source | package | kind | documents | MB of text |
|---|---|---|---:|---:|
{rows}

- **Tokenizer**: byte-level BPE, vocabulary {f['vocab_size']}, trained on the training split.
- **Training**: {f['steps']:,} steps x {f['batch']} sequences x {f['seq']} tokens = {f['train_tokens_seen']:,} tokens;
  AdamW lr {f['lr']}, warmup {f['warmup']}, cosine decay to a tenth, seed {f['seed']}, bf16 autocast; final training
  loss {f['final_train_loss']}; {f['train_seconds']} s on {f['device']}.
- **Command**: `{f['command']}`
- **Rebuild**: build the corpus and tokenizer (`CONTRIBUTING.md`), then on a host with one or two
  GPUs `bash tools/device/train_reference.sh`, which runs this command for both reference
  models (one per GPU) and measures them (`measure.py --device cuda`).

| text | perplexity | unigram baseline |
|---|---:|---:|
| Python docs, held out | {f['test_perplexity']} | {f['unigram_test_perplexity']} |
| other sources, held out | {f.get('test_mix_perplexity', '')} | |
| Debian Reference (out of domain) | {f['ood_test_perplexity']} | {f['unigram_ood_test_perplexity']} |

Perplexity: {f['eval_protocol']}. `tests/test_reference_models.py` recomputes the first
{SLICE_WINDOWS} windows of the Python docs text (card: {f[f'test_perplexity_first_{SLICE_WINDOWS}_windows']}).

## Evidence that it is a language model (`tools/reference_models/evidence.py`)

- **Against a Kneser-Ney 4-gram** fitted on the same {e['ngram']['train_tokens']:,} training tokens, on the
  Python docs text: model {e['ngram']['model_perplexity']:.2f}, 4-gram {e['ngram']['kneser_ney_perplexity']:.2f}
  (ratio {e['ngram']['ratio']:.3f}).
- **Induction**: a random sequence of {e['induction']['length']} tokens repeated once: loss
  {e['induction']['first_copy_loss']:.2f} nats/token on the first copy, {e['induction']['second_copy_loss']:.2f} on the
  second (a drop of {e['induction']['drop_nats']:.2f}).
- **Context use** (windows of {e['context']['window']}, positions with at least {e['context']['min_context']} tokens of
  context): perplexity with attention limited to the last 16 / 32 / 64 / 256 tokens
  {ctx['16']:.2f} / {ctx['32']:.2f} / {ctx['64']:.2f} / {ctx['256']:.2f}, full context {ctx['full']:.2f}
  (32 tokens: {ctx['32'] / ctx['full']:.3f}x full).

| layer | attention on position 0 | K outlier channel ratio | V outlier channel ratio |
|---:|---:|---:|---:|
{layers}
"""


def model_card(name: str, f: dict) -> str:
    return f"""# {name}: a small {f['architecture']} trained on the Python 3.11 documentation

A reference model for `ecc_tensor`'s evaluations, made here because no model hub is reachable:
a real, trained `{f['architecture']}` that exercises the real transformers code paths of its
family. It is small and knows one domain; it is not a general language model, and its
context is {512} positions.

- **Data**: the Python 3.11 documentation from Debian's `python3.11-doc` (HTML -> text by
  `tools/reference_models/build_corpus.py`, deterministic, checksums in
  `tools/reference_models/corpus.sha256`); 1 page in 20 is held out as the test text
  (`../heldout.txt`) and never trained on. Out-of-domain test: the Debian Reference
  (`debian-reference-en`, `../ood_test.txt`).
- **Tokenizer**: byte-level BPE, vocabulary {f['vocab_size']}, trained on the training split
  (`tools/reference_models/train_tokenizer.py`).
- **Size**: {f['parameters']:,} parameters, fp16 safetensors.
- **Training**: {f['steps']} steps x {f['batch']} sequences x {f['seq']} tokens = {f['steps'] * f['batch'] * f['seq']:,} tokens{_total(f)}
  (the training split has {f['train_split_tokens']:,}); AdamW lr {f['lr']}, warmup {f['warmup']}, cosine decay, seed
  {f['seed']}; final training loss {f['final_train_loss']}; {f['train_seconds']} s on {f['device']}.
- **Command**: `{f['command']}`{_earlier_phase(f)}

| text | perplexity | unigram baseline |
|---|---:|---:|
| held-out test (in domain) | {f['test_perplexity']} | {f['unigram_test_perplexity']} |
| Debian Reference (out of domain) | {f['ood_test_perplexity']} | {f['unigram_ood_test_perplexity']} |

Perplexity: {f['eval_protocol']}. Measured by `tools/reference_models/measure.py` on the
shipped weights; `tests/test_reference_models.py` recomputes the first {SLICE_WINDOWS} test windows
(card: {f[f'test_perplexity_first_{SLICE_WINDOWS}_windows']}).
"""


def _total(f: dict) -> str:
    return f", {f['train_tokens_seen']:,} with the first phase" if f.get("continued_from") else ""


def _earlier_phase(f: dict) -> str:
    p = f.get("continued_from")
    if not p:
        return ""
    return (
        f"\n- **First phase** (this run continued it): {p['steps']} steps x {p['batch']} x {p['seq']} tokens, "
        f"lr {p['lr']}, {p['train_seconds']} s on {p['device']}: `{p['command']}`"
    )


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path)
    p.add_argument("--corpus", type=Path, default=Path("build/corpus"))
    p.add_argument("--evidence", action=argparse.BooleanOptionalAction, default=None,
                   help="add evidence.py's figures (default: for a full corpus, one with manifest.json)")
    p.add_argument("--device", default="cpu", help="where the model runs (float32 either way; the test suite checks a slice on CPU)")
    args = p.parse_args(argv)
    print(json.dumps(measure(args.model_dir, args.corpus, args.evidence, args.device), indent=2))


if __name__ == "__main__":
    main()
