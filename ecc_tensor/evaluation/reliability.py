"""Reliability benchmarks after the vLLM fault-injection guide, on the ECC cache.

* **generation**: greedy generation of ``new_tokens`` tokens for a fixed prompt set; each
  faulted run (fault model x rate x site, per cache mode) is compared with the same mode's
  fault-free (golden) run: exact-match accuracy and mean character drift (Levenshtein
  distance between the generated texts).
* **needle** ("math needle"): filler text of ``context`` tokens with ``var_a = 50`` at 20%
  and ``var_b = 25`` at 80% of the context; a retrieval question ("What is var_a?") and a
  reasoning question ("What is var_a * var_b?"), greedy answers checked for 50 and 1250.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..faults import FaultModel

NEEDLES = ((0.2, "var_a = 50"), (0.8, "var_b = 25"))
QUESTIONS = (("retrieval", "What is var_a? Answer: var_a =", "50"), ("reasoning", "What is var_a * var_b? Answer:", "1250"))


def levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def default_prompts(text: str, count: int = 8, words: int = 12) -> list[str]:
    """The first ``words`` words of ``count`` evenly spaced paragraphs of ``text``."""
    paragraphs = [p for p in text.split("\n\n") if len(p.split()) >= words]
    step = max(1, len(paragraphs) // count)
    return [" ".join(p.split()[:words]) for p in paragraphs[::step][:count]]


@torch.no_grad()
def generate(model, tokenizer, prompt: str, mode: str, fault: FaultModel | None, new_tokens: int, scheme=None) -> str:
    """Greedy continuation of ``prompt`` through an ECCCache of ``mode`` (``scheme``: an
    ``ecc_tensor.quant_scheme.QuantScheme``, default the paper's per-token one)."""
    from ..integrations.hf import ECCCache, cache_argument

    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids.to(model.device)
    options = {} if scheme is None else dataclasses.asdict(scheme)  # its fields are ECCCache's keywords
    cache = ECCCache(model.config, 1, ids.shape[1] + new_tokens, mode=mode, fault=fault, **options)
    out = model.generate(
        ids, attention_mask=torch.ones_like(ids), **cache_argument(model, cache), max_new_tokens=new_tokens,
        min_new_tokens=new_tokens, do_sample=False, pad_token_id=tokenizer.eos_token_id,
    )
    return tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


@dataclass
class GenerationRow:
    mode: str
    fault_model: str
    ber: float
    site: str
    exact_match: float
    mean_char_drift: float


def generation_reliability(
    model, tokenizer, prompts: list[str], modes, fault_models, bers, sites, *, new_tokens: int = 50, seed: int = 0, progress=True,
    targets: str = "all", scheme=None,
) -> list[GenerationRow]:
    from tqdm.auto import tqdm

    if not prompts:
        raise ValueError("no prompts: pass at least one (--prompts >= 1)")
    rows = []
    grid = list(itertools.product(modes, fault_models, bers, sites))
    # One bar over every generation (golden runs included), so its ETA is the whole run's.
    bar = tqdm(total=len(prompts) * (len(modes) + len(grid)), desc="generation", unit="gen", disable=not progress)

    def run(prompt, mode, fault):
        out = generate(model, tokenizer, prompt, mode, fault, new_tokens, scheme)
        bar.update()
        return out

    golden = {mode: [run(p, mode, None) for p in prompts] for mode in modes}
    for mode, kind, ber, site in grid:
        outputs = [run(p, mode, FaultModel(kind, ber, seed + i, site=site, targets=targets)) for i, p in enumerate(prompts)]
        exact = sum(o == g for o, g in zip(outputs, golden[mode])) / len(prompts)
        drift = sum(levenshtein(o, g) for o, g in zip(outputs, golden[mode])) / len(prompts)
        rows.append(GenerationRow(mode, kind, ber, site, exact, drift))
    bar.close()
    return rows


def needle_prompt(tokenizer, filler: str, context: int) -> str:
    """Filler text cut to about ``context`` tokens with the two needles inserted at 20%/80%."""
    filler_ids = tokenizer(filler, add_special_tokens=False).input_ids
    while len(filler_ids) < context:
        filler_ids = filler_ids + filler_ids
    pieces, previous = [], 0
    for fraction, needle in NEEDLES:
        cut = int(context * fraction)
        pieces.append(tokenizer.decode(filler_ids[previous:cut]))
        pieces.append(f"\n{needle}\n")
        previous = cut
    pieces.append(tokenizer.decode(filler_ids[previous:context]))
    return "".join(pieces) + "\n"


@dataclass
class NeedleRow:
    mode: str
    ber: float
    context: int
    task: str
    accuracy: float


def needle(model, tokenizer, filler: str, modes, bers, contexts, *, fault_model="bsc", site="write", seeds=(0, 1, 2), progress=True,
           targets: str = "all", scheme=None) -> list[NeedleRow]:
    from tqdm.auto import tqdm

    limit = model_positions(model.config)
    too_long = [c for c in contexts if limit is not None and c + 16 > limit]
    if too_long:
        raise ValueError(f"contexts {too_long} exceed the model's {limit} positions; choose shorter --contexts or a longer-context model")
    rows = []
    for mode, ber, context in tqdm(list(itertools.product(modes, bers, contexts)), desc="needle", disable=not progress):
        prompt = needle_prompt(tokenizer, filler, context)
        for task, question, answer in QUESTIONS:
            hits = 0
            for seed in seeds:
                fault = FaultModel(fault_model, ber, seed, site=site, targets=targets) if ber > 0 else None
                hits += answer in generate(model, tokenizer, prompt + question, mode, fault, 6, scheme).split("\n")[0]
            rows.append(NeedleRow(mode, ber, context, task, hits / len(seeds)))
    return rows


def model_positions(config) -> int | None:
    return getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)


def default_contexts(config) -> list[int]:
    """Needle contexts that fit the model: a quarter, half and nearly all of its positions
    (room left for the question and the answer), or 2k / 4k / 8k tokens for long-context models."""
    limit = model_positions(config)
    if limit is None or limit >= 8192 + 64:
        return [2048, 4096, 8192]
    return sorted({limit // 4, limit // 2, limit - 64})


def to_markdown(rows, columns) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        d = r.__dict__
        lines.append("| " + " | ".join(f"{d[c]:g}" if isinstance(d[c], float) else str(d[c]) for c in columns) + " |")
    return "\n".join(lines)


def write(rows, out: Path, name: str, columns) -> str:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps([r.__dict__ for r in rows], indent=2))
    table = to_markdown(rows, columns)
    (out / f"{name}.md").write_text(table + "\n")
    return table
