"""The ``fp8`` mode (E4M3 words, per-head scale from the first write): the reference
simulation, the cache, faults on 8-bit words."""

from __future__ import annotations

import math

import torch

from ecc_tensor import counters as C
from ecc_tensor.faults import FaultModel
from ecc_tensor.fp8 import E4M3_MAX, E4M3_MSB, head_scale, to_e4m3
from ecc_tensor.integrations.hf import ECCCache
from ecc_tensor.modes import get_mode
from ecc_tensor.simulate import roundtrip

torch.manual_seed(0)
X = torch.randn(2, 3, 40, 32) * torch.tensor([0.1, 1.0, 30.0]).view(1, 3, 1, 1)  # heads of very different ranges


def test_fp8_reads_back_within_e4m3_precision_of_each_heads_range():
    out, counters = roundtrip(X, "fp8")
    scale = head_scale(X)
    # 3 mantissa bits: half an ulp is 2^-4 of the value; below the normal range, 2^-10 of the scale
    assert ((out - X).abs() <= X.abs() * 2**-4 + scale * 2**-10).all()
    assert (X / scale).abs().amax() == E4M3_MAX  # each head's largest value maps to E4M3's largest
    c = C.counters_to_dict(counters)
    assert c["read"] == X.numel() and c["injected"] == c["silent"] == 0
    assert get_mode("fp8").stored_bits_per_value == 8 and get_mode("fp8").metadata_bits_per_value == 0


def test_faults_strike_8_bit_words_at_the_rate():
    x = torch.randn(4, 8, 256, 64)
    ber = 1e-3
    _, counters = roundtrip(x, "fp8", FaultModel("bsc", ber, seed=3))
    bits = x.numel() * 8
    mean, sd = bits * ber, math.sqrt(bits * ber * (1 - ber))
    assert abs(C.counters_to_dict(counters)["injected"] - mean) < 5 * sd


def test_msb_faults_flip_the_top_exponent_bit_only():
    words = to_e4m3(X, head_scale(X)).view(torch.int8)
    struck, n = FaultModel("msb", 0.5, seed=1).apply(words, 8, eligible=torch.tensor(E4M3_MSB))
    changed = (struck ^ words) != 0
    assert n > 0 and ((struck ^ words)[changed] == E4M3_MSB).all()


def test_the_cache_stores_what_the_simulation_does_and_saturates_later_tokens(tiny):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny / "model")  # 2 KV heads of 16
    cache = ECCCache(config, 2, 64, mode="fp8")
    prompt = torch.randn(2, 2, 10, 16) * 3
    keys, _ = cache.layers[0].update(prompt, prompt)
    want, _ = roundtrip(prompt, "fp8")
    assert torch.equal(keys[:, :, :10], want)
    # a later token far outside the prompt's range: clamped to the first write's scale, not NaN
    big = torch.full((2, 2, 1, 16), 1e4)
    keys, _ = cache.layers[0].update(big, big)
    assert torch.equal(keys[:, :, 10], (E4M3_MAX * head_scale(prompt)).expand(2, 2, 1, 16)[:, :, 0])
    cache.reset()  # a new sequence sets new scales
    keys, _ = cache.layers[0].update(prompt / 100, prompt / 100)
    assert torch.equal(keys[:, :, :10], roundtrip(prompt / 100, "fp8")[0])


def test_faulted_fp8_cache_counts_every_flip_it_reads_as_silent(tiny):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny / "model")
    cache = ECCCache(config, 1, 64, mode="fp8", fault=FaultModel("bsc", 1e-2, seed=0))
    x = torch.randn(1, 2, 30, 16)
    cache.layers[0].update(x, x)
    stats = cache.stats()
    assert stats["injected"] > 0 and stats["silent"] > 0 and stats["corrected"] == stats["detected"] == 0
