"""Sliding-window scoring of a text through an ECC cache (the paper's section 6 protocol).

Windows of ``window`` tokens start every ``stride`` tokens; the first window scores all of
its predictions, every later one only its last ``stride`` (the tokens no earlier window
scored), so each token of the text is scored once with up to ``window - stride`` tokens of
context. Every window is a fresh sequence in the cache (``reset``), and the model reads its
keys and values back through the stored codewords, prefill included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# A window whose loss is non-finite, or whose perplexity exceeds this many times the clean
# fp16 perplexity of the same window, counts as a catastrophic failure.
CATASTROPHIC_FACTOR = 10.0


@dataclass(frozen=True)
class Window:
    start: int
    scored_from: int  # index within the window of the first scored prediction target


def make_windows(n_tokens: int, window: int, stride: int, max_samples: int | None = None) -> list[Window]:
    if window < 2 or not (1 <= stride <= window):
        raise ValueError(f"need window >= 2 and 1 <= stride <= window, got window={window}, stride={stride}")
    if n_tokens < window:
        raise ValueError(f"the text has {n_tokens} tokens, fewer than one window of {window}")
    windows = [Window(0, 1)]
    start = stride
    while start + window <= n_tokens:
        windows.append(Window(start, window - stride))
        start += stride
    return windows[:max_samples] if max_samples else windows


@dataclass
class WindowScore:
    nll_sum: float
    tokens: int
    top5_hits: int
    kl_sum: float
    finite: bool

    @property
    def perplexity(self) -> float:
        return math.exp(self.nll_sum / self.tokens) if self.finite else math.inf


@torch.no_grad()
def window_logprobs(model, ids: torch.Tensor, cache) -> torch.Tensor:
    """float32 log-probabilities ``[window - 1, vocab]`` predicting tokens 1.. of ``ids`` (1-D)."""
    if cache is not None:
        cache.reset()
    from ..integrations.hf import cache_argument

    out = model(ids.unsqueeze(0), **cache_argument(model, cache), use_cache=cache is not None)
    return F.log_softmax(out.logits[0, :-1].float(), dim=-1)


@torch.no_grad()
def windows_logprobs(model, ids: torch.Tensor, cache, first_sequence: int) -> torch.Tensor:
    """float32 log-probabilities ``[rows, window - 1, vocab]`` for a batch of windows ``ids``
    ``[rows, window]`` scored at once through ``cache`` (created with ``rows_as_sequences``):
    row ``b`` takes the faults it would take scored alone as sequence ``first_sequence + b``."""
    cache.reset(first_sequence)
    from ..integrations.hf import cache_argument

    out = model(ids, **cache_argument(model, cache), use_cache=True)
    return F.log_softmax(out.logits[:, :-1].float(), dim=-1)


def batches(n: int, size: int) -> list[range]:
    """``range(n)`` in consecutive pieces of ``size`` (the last may be shorter)."""
    return [range(i, min(i + size, n)) for i in range(0, n, size)]


def score(logprobs: torch.Tensor, ids: torch.Tensor, scored_from: int, clean_logprobs: torch.Tensor | None) -> WindowScore:
    """Metrics over the targets ``ids[scored_from:]`` (clean_logprobs: the same rows, fp16 run)."""
    rows = logprobs[scored_from - 1 :]
    targets = ids[scored_from:]
    finite = bool(torch.isfinite(rows).all())
    nll = -rows.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    top5 = rows.topk(5, dim=-1).indices.eq(targets.unsqueeze(-1)).any(-1)
    kl = 0.0
    if clean_logprobs is not None:
        # KL(clean || faulty) per token, in nats
        kl = float(F.kl_div(rows, clean_logprobs, log_target=True, reduction="sum")) if finite else math.inf
    return WindowScore(float(nll.sum()) if finite else math.inf, int(targets.numel()), int(top5.sum()), kl, finite)


@torch.no_grad()
def text_perplexity(model, tokens: torch.Tensor, window: int = 256, stride: int = 128, max_windows: int | None = None, cache=None) -> float:
    """Perplexity of ``tokens`` (1-D) under the windows protocol above (through ``cache`` if given)."""
    nll, n = 0.0, 0
    for w in make_windows(tokens.numel(), window, stride, max_windows):
        ids = tokens[w.start : w.start + window].to(model.device)
        s = score(window_logprobs(model, ids, cache), ids, w.scored_from, None)
        nll += s.nll_sum
        n += s.tokens
    return math.exp(nll / n)
