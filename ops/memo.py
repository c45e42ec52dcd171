"""Launch constants computed once per distinct argument.

A decoding step calls each launcher once per layer (and per K and V), and rebuilding the
kernels' constants from the layouts' properties (each a codec lookup) took a third to a half
of a launcher's Python (benchmarks/RESULTS.md, "The launcher's Python"). ``memoized`` keeps
them per argument tuple (layouts are frozen dataclasses, alignment a boolean) and hands out
copies of the dicts, so a caller that changes one changes nothing later."""

from __future__ import annotations

import functools


def _copy(value):
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, tuple):
        return tuple(map(_copy, value))
    return value


def memoized(fn):
    """``fn`` remembered per argument tuple (at most 1024), its dicts (also inside tuples)
    copied out; an unhashable argument (a symbolic size while tracing) is computed anew."""
    cached = functools.lru_cache(maxsize=1024)(fn)

    @functools.wraps(fn)
    def call(*args):
        try:
            return _copy(cached(*args))
        except TypeError:
            return fn(*args)

    call.cache_clear = cached.cache_clear
    return call


def aligned(*tensors) -> bool:
    """Whether every tensor starts on a 32-bit word (allocations themselves are aligned)."""
    return bool(all(t.storage_offset() % 4 == 0 for t in tensors))


def lane_meta_aligned(meta_layout, meta):
    """``meta``, or a copy of it that starts on a 32-bit word where ``meta_layout`` stores it in
    Golay's lane layout: the kernels read those rows as words (``_meta_unit``). Read codeword by
    codeword instead, the fused attention decoded other nibbles and returned wrong values with no
    fault counted; on the GPU the word loads of a view off a word would be misaligned."""
    return meta.clone() if meta_layout.storage.lanes and not aligned(meta) else meta
