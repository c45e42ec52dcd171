"""The key torch.compile's AOTAutograd cache gives ``ECCInt4Tensor`` and ``FP8KVTensor`` graph
inputs (``ecc_tensor.cache_key``): what a compiled graph depends on (class, shape, attributes,
each inner tensor's shape, strides, dtype, device), never the stored values, and the key torch's
cache pickler takes for them."""

from __future__ import annotations

import re
import warnings

import pytest
import torch

from ecc_tensor import ECCInt4Tensor
from ecc_tensor.fp8 import head_scale, to_e4m3
from ecc_tensor.fp8_tensor import FP8KVTensor


def ecc(seed=0, shape=(2, 4, 9, 12), codec="hamming84", dtype=torch.float32, interpolate=False, **options):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(dtype)
    t = ECCInt4Tensor.from_float(x, codec, **options)
    t.interpolate = interpolate
    return t


def fp8(seed=0, shape=(2, 2, 24, 16)):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    return FP8KVTensor(to_e4m3(x, head_scale(x)), head_scale(x), x.shape, torch.float32)


def key(t):
    return t._stable_hash_for_caching()


def test_the_key_is_the_metadata_not_the_values():
    assert re.fullmatch(r"[0-9a-f]{32}", key(ecc()))
    assert key(ecc(seed=0)) == key(ecc(seed=1))  # other values, same graph
    assert key(fp8(seed=0)) == key(fp8(seed=1))
    base = key(ecc())
    variants = [ecc(codec="golay24"), ecc(codec="int4"), ecc(shape=(2, 4, 10, 12)), ecc(interpolate=True), ecc(symmetric=False),
                ecc(group_size=4), ecc(dtype=torch.float16)]
    assert len({key(t) for t in variants} | {base}) == len(variants) + 1
    channel = ecc(dtype=torch.float16, axis="channel", channel_block=4)
    assert key(channel) == key(ecc(seed=1, dtype=torch.float16, axis="channel", channel_block=4)) != key(ecc(dtype=torch.float16))
    assert key(fp8()) != key(fp8(shape=(2, 2, 24, 32))) and key(fp8()) != base


def test_torchs_cache_pickler_takes_the_key_and_warns_of_nothing():
    from torch._functorch._aot_autograd.autograd_cache import AOTAutogradCachePickler

    if not hasattr(AOTAutogradCachePickler, "_reduce_tensor_subclass"):  # torch before the subclass key hook
        pytest.skip("this torch's AOTAutograd cache does not ask tensor subclasses for a key")
    pickler = AOTAutogradCachePickler(torch.fx.GraphModule(torch.nn.Module(), torch.fx.Graph()))
    for t in (ecc(), fp8()):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # torch's warning for a subclass without a key would raise
            reduced = pickler._reduce_tensor_subclass(t)
        assert reduced[1] == (key(t),)
