"""The key torch.compile's AOTAutograd cache gives this package's tensor subclasses as graph
inputs (``_stable_hash_for_caching``): torch asks traceable subclasses for one and, without it,
warns at each process's first compile and derives one from ``__tensor_flatten__`` itself."""

from __future__ import annotations

import hashlib
import pickle

import torch


def stable_hash_for_caching(tensor: torch.Tensor) -> str:
    """A digest of what a graph compiled over ``tensor`` depends on: its class, shape and
    ``requires_grad``, its attributes (codec, dtype, scheme, ...), and each inner tensor's
    metadata (shape, strides, dtype, device; not its values), in the form torch's FX graph cache
    keys plain tensors by. Equal across processes (blake2b of a pickle, no ``hash()``)."""
    from torch._inductor.codecache import extract_tensor_metadata_for_cache_key

    names, attributes = tensor.__tensor_flatten__()
    payload = (
        f"{type(tensor).__module__}.{type(tensor).__qualname__}",
        tuple(tensor.shape),
        tensor.requires_grad,
        sorted(attributes.items()),
        [(name, extract_tensor_metadata_for_cache_key(getattr(tensor, name))) for name in names],
    )
    return hashlib.blake2b(pickle.dumps(payload), digest_size=16).hexdigest()
