"""Evidence that a reference model is a real language model, for its card.

    python tools/reference_models/evidence.py MODEL_DIR --corpus build/corpus-full [--json OUT]

* **n-gram baseline**: held-out perplexity against an interpolated Kneser-Ney 4-gram model
  fitted on the same training tokens (the model's tokenizer), on the same positions.
* **induction**: random token sequences repeated once; the second copy's loss against the
  first's (a model that copies from its context predicts the second copy).
* **context use**: perplexity with attention limited to the last 16 / 32 / 64 / 256 tokens
  against full context (windows of ``--window`` tokens, positions with at least ``--min-context``
  tokens of context).
* **structure that makes one cache entry matter**: per layer, the attention mass on the first
  position (attention sinks), and the K and V outlier channels (the largest channel's mean |x|
  over the median channel's).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ORDER = 4


class KneserNey:
    """Interpolated Kneser-Ney n-gram model (Chen & Goodman), discounts by Ney's estimate per
    order, over token ids packed into int64 keys."""

    def __init__(self, tokens: np.ndarray, vocab: int, order: int = ORDER):
        self.vocab, self.order = vocab, order
        self.bits = max(1, int(math.ceil(math.log2(vocab))))
        if self.bits * order > 62:
            raise ValueError(f"a vocabulary of {vocab} does not fit {order}-grams in int64 keys")
        tokens = np.asarray(tokens, dtype=np.int64)
        self.tables = {}
        types_above = None
        for k in range(order, 0, -1):
            keys = self._keys(tokens, k)
            if k == order:
                uniq, counts = np.unique(keys, return_counts=True)
            else:  # continuation counts: distinct left extensions of each k-gram
                uniq, counts = np.unique(types_above & ((1 << (self.bits * k)) - 1), return_counts=True)
            types_above = uniq if k == order else np.unique(keys)
            n1, n2 = np.sum(counts == 1), np.sum(counts == 2)
            discount = n1 / (n1 + 2 * n2) if n1 + n2 else 0.5
            prefixes = uniq >> self.bits
            starts = np.flatnonzero(np.r_[True, prefixes[1:] != prefixes[:-1]])
            self.tables[k] = {
                "keys": uniq, "counts": counts.astype(np.float64), "discount": discount,
                "prefixes": prefixes[starts], "totals": np.add.reduceat(counts, starts).astype(np.float64),
                "types": np.diff(np.r_[starts, uniq.size]).astype(np.float64),
            }

    def _keys(self, tokens: np.ndarray, k: int) -> np.ndarray:
        n = tokens.size - k + 1
        key = np.zeros(max(n, 0), dtype=np.int64)
        for j in range(k):
            key = (key << self.bits) | tokens[j : j + n]
        return key

    @staticmethod
    def _lookup(sorted_keys, values, queries):
        at = np.clip(np.searchsorted(sorted_keys, queries), 0, max(sorted_keys.size - 1, 0))
        found = sorted_keys[at] == queries if sorted_keys.size else np.zeros(queries.shape, bool)
        return np.where(found, values[at] if values.size else 0.0, 0.0)

    def log_probs(self, tokens: np.ndarray) -> np.ndarray:
        """Natural-log probability of ``tokens[i]`` for every ``i >= order - 1``."""
        tokens = np.asarray(tokens, dtype=np.int64)
        n = tokens.size - self.order + 1
        words = tokens[self.order - 1 :]
        t1 = self.tables[1]
        total1 = t1["counts"].sum()
        p = np.maximum(self._lookup(t1["keys"], t1["counts"], words) - t1["discount"], 0) / total1
        p += t1["discount"] * t1["keys"].size / total1 / self.vocab
        for k in range(2, self.order + 1):
            t = self.tables[k]
            grams = self._keys(tokens[self.order - k :], k)[:n]
            history = grams >> self.bits
            total = self._lookup(t["prefixes"], t["totals"], history)
            types = self._lookup(t["prefixes"], t["types"], history)
            count = self._lookup(t["keys"], t["counts"], grams)
            seen = total > 0
            safe = np.where(seen, total, 1.0)
            p = np.where(seen, np.maximum(count - t["discount"], 0) / safe + t["discount"] * types / safe * p, p)
        return np.log(p)


def _window_nll(model, ids: torch.Tensor, limit: int | None) -> torch.Tensor:
    """Per-position NLL of ``ids`` ``[B, T]`` (position t predicts t+1) with attention limited
    to the last ``limit`` tokens (None: full causal)."""
    t = ids.shape[1]
    mask = None
    if limit is not None:
        i = torch.arange(t)
        allowed = (i[None, :] <= i[:, None]) & (i[:, None] - i[None, :] < limit)
        mask = torch.zeros(t, t).masked_fill(~allowed, float("-inf"))[None, None].expand(ids.shape[0], 1, t, t)
        mask = mask.to(model.device)
    ids = ids.to(model.device)
    with torch.no_grad():
        logits = model(ids, attention_mask=mask).logits.float()
    return torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:], reduction="none")


def context_use(model, tokens: torch.Tensor, window: int, min_context: int, limits=(16, 32, 64, 256), max_windows=16,
                batch: int = 4) -> dict:
    """Perplexity over positions with >= ``min_context`` tokens of context, per attention limit."""
    windows = [tokens[s : s + window] for s in range(0, tokens.numel() - window + 1, window)][:max_windows]
    if not windows:
        raise ValueError(f"the text has fewer than {window} tokens")
    out = {}
    for limit in (*limits, None):
        nll = []
        for i in range(0, len(windows), batch):
            nll.append(_window_nll(model, torch.stack(windows[i : i + batch]), limit)[:, min_context - 1 :].reshape(-1))
        out["full" if limit is None else str(limit)] = math.exp(torch.cat(nll).mean().item())
    return out


def induction(model, vocab: int, length: int = 256, sequences: int = 8, seed: int = 0, skip: int = 10) -> dict:
    """Mean loss on each copy of a random sequence repeated once (the first ``skip`` tokens of
    each copy left out)."""
    g = torch.Generator().manual_seed(seed)
    random = torch.randint(1, vocab, (sequences, length), generator=g)
    nll = _window_nll(model, torch.cat([random, random], dim=1), None)
    first = nll[:, skip : length - 1].mean().item()
    second = nll[:, length - 1 + skip :].mean().item()
    return {"first_copy_loss": first, "second_copy_loss": second, "drop_nats": first - second, "length": length}


def structure(model, tokens: torch.Tensor, window: int, windows: int = 4) -> list[dict]:
    """Per layer: mean attention on position 0 (queries past the first 16), and the K/V
    outlier ratio (largest channel's mean |x| over the median channel's)."""
    ids = torch.stack([tokens[s : s + window] for s in range(0, windows * window, window)]).to(model.device)
    attn_impl = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            out = model(ids, output_attentions=True, use_cache=True)
    finally:
        model.set_attn_implementation(attn_impl)
    layers = []
    for i, attn in enumerate(out.attentions):
        cache_layer = out.past_key_values.layers[i]
        row = {"layer": i, "sink_attention": attn[:, :, 16:, 0].mean().item()}
        for name, x in (("key", cache_layer.keys), ("value", cache_layer.values)):
            per_channel = x.float().abs().mean(dim=(0, 2))  # [heads, head_dim]
            ratio = per_channel.max(-1).values / per_channel.median(-1).values.clamp_min(1e-12)
            row[f"{name}_outlier_ratio"] = ratio.max().item()
        layers.append(row)
    return layers


def model_perplexity_on(model, tokens: torch.Tensor, window: int, order: int = ORDER) -> float:
    """The model's perplexity on the positions the n-gram model scores (``i >= order - 1``),
    in windows of ``window`` tokens overlapping by half (every position keeps context)."""
    nll = torch.zeros(tokens.numel())
    scored = torch.zeros(tokens.numel(), dtype=torch.bool)
    stride = window // 2
    for start in range(0, max(1, tokens.numel() - 1), stride):
        ids = tokens[start : start + window]
        if ids.numel() < 2:
            break
        losses = _window_nll(model, ids[None], None)[0]
        first = 0 if start == 0 else window - stride - 1  # positions already scored with less context
        positions = torch.arange(start + 1, start + ids.numel())
        nll[positions[first:]] = losses[first:].cpu()
        scored[positions[first:]] = True
        if start + window >= tokens.numel():
            break
    keep = scored.clone()
    keep[: order - 1] = False
    return math.exp(nll[keep].mean().item())


def evidence(model_dir: Path, corpus: Path, window: int = 1024, min_context: int = 256, max_train_tokens: int | None = None,
             context_windows: int = 16, device: str = "cpu") -> dict:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device).eval()
    window = min(window, model.config.max_position_embeddings)
    from tokens import cached_tokens

    train = cached_tokens(tokenizer, corpus / "train.txt")
    test = cached_tokens(tokenizer, corpus / "test.txt")
    if max_train_tokens:
        train = train[:max_train_tokens]
    kn = KneserNey(train.numpy(), len(tokenizer))
    kn_ppl = math.exp(-kn.log_probs(test.numpy()).mean())
    model_ppl = model_perplexity_on(model, test, window)
    min_context = min(min_context, window // 2)  # at least half of each window is scored
    return {
        "ngram": {"order": ORDER, "train_tokens": int(train.numel()), "test_tokens": int(test.numel()),
                  "kneser_ney_perplexity": kn_ppl, "model_perplexity": model_ppl, "ratio": model_ppl / kn_ppl},
        "induction": induction(model, len(tokenizer), length=min(256, window // 2)),
        "context": {"window": window, "min_context": min_context,
                    "perplexity": context_use(model, test, window, min_context, max_windows=context_windows)},
        "layers": structure(model, test, min(window, 512)),
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path)
    p.add_argument("--corpus", type=Path, default=Path("build/corpus-full"))
    p.add_argument("--window", type=int, default=1024)
    p.add_argument("--min-context", type=int, default=256)
    p.add_argument("--context-windows", type=int, default=16)
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--device", default="cpu", help="where the model runs (float32 either way)")
    args = p.parse_args(argv)
    figures = evidence(args.model_dir, args.corpus, args.window, args.min_context, context_windows=args.context_windows,
                       device=args.device)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
