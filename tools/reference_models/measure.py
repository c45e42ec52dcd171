"""Measure a reference model's figures from its shipped fp16 weights and write its card.

    python tools/reference_models/measure.py ecc_tensor/evaluation/reference/ref-gpt2 --corpus build/corpus

Reads ``training.json`` (written by train.py) and writes ``figures.json`` and ``README.md``.
Perplexity follows the sweep's protocol: windows of 256 tokens, stride 128, float32 compute.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from ecc_tensor.evaluation.windows import text_perplexity

SLICE_WINDOWS = 40  # the test suite recomputes this slice on CPU


def tokens_of(tokenizer, path: Path) -> torch.Tensor:
    return torch.tensor(tokenizer(path.read_text(), add_special_tokens=False).input_ids, dtype=torch.long)


def unigram_perplexity(train: torch.Tensor, test: torch.Tensor, vocab: int) -> float:
    """Add-one smoothed unigram model of the training split, scored on ``test``."""
    counts = Counter(train.tolist())
    total = train.numel() + vocab
    nll = -sum(math.log((counts.get(t, 0) + 1) / total) for t in test.tolist())
    return math.exp(nll / test.numel())


def measure(model_dir: Path, corpus: Path) -> dict:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
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
    (model_dir / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    (model_dir / "README.md").write_text(model_card(model_dir.name, figures))
    return figures


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
    args = p.parse_args(argv)
    print(json.dumps(measure(args.model_dir, args.corpus), indent=2))


if __name__ == "__main__":
    main()
