"""A new code is one codec object and one registration (and a cache mode one more): nothing else names it.

A (5,4) single-parity code (detects one flip, corrects none), registered at run time, goes
through the storage layout, the Triton kernels (bit for bit with the reference), the fused
attention, the tensor subclass, the cache and the sweep, which know it only by its layout ("bytes")."""

from __future__ import annotations

import pytest
import torch

import ecc_tensor.codecs as codecs
from ecc_tensor.codecs import STATUS_DETECTED, LinearBlockCode, get_codec, register_codec
from ecc_tensor.metadata import metadata_codec
from ecc_tensor.ops import byte_words, codec_kernels
from ecc_tensor.storage import StorageLayout

NAME = "parity5"


@pytest.fixture(scope="module")
def parity5():
    code = register_codec(LinearBlockCode(NAME, [[1], [1], [1], [1]], correctable_weight=0, word_dtype=torch.uint8))
    yield code
    codecs._CODECS.pop(NAME)
    byte_words._NIBBLE_CONSTANTS.pop(NAME, None)


def test_registration_is_checked():
    with pytest.raises(ValueError, match="registered already"):
        register_codec(get_codec("hamming84"))
    with pytest.raises(ValueError, match="layout 'lanes' does not fit"):
        LinearBlockCode("bad", [[1], [1], [1], [1]], correctable_weight=0, word_dtype=torch.uint8, layout="lanes")


def test_storage_knows_it_by_its_layout(parity5):
    assert parity5.layout == "bytes" and parity5.decodes
    layout = StorageLayout(NAME, 12)
    values = torch.randint(0, 16, (3, 12), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    stored = layout.store(values)
    assert stored.shape == (3, 12) and layout.exposed_bits_per_byte == 5
    got, status = layout.load(stored)
    assert torch.equal(got, values) and not status.any()
    flipped = stored.clone()
    flipped[1, 4] ^= 1 << 2
    _, status = layout.load(flipped)
    assert status[1, 4] == STATUS_DETECTED and int((status != 0).sum()) == 1


def test_kernels_match_the_reference(parity5, kernel_device):
    from test_kernels import reference_store

    x = torch.randn(5, 2, 12, generator=torch.Generator().manual_seed(1))
    t = parity5.tables(kernel_device)
    meta_encode_table = get_codec(metadata_codec(NAME)).tables(kernel_device).encode_table
    got = codec_kernels.triton_quantize_encode(x.to(kernel_device), t.encode_table, meta_encode_table, NAME, None, True)
    for a, b in zip(got, reference_store(x, NAME)):
        assert torch.equal(a.cpu(), b)


def test_fused_attention_matches_the_reference(parity5, kernel_device):
    from test_attention import TOLERANCE, fused, make_cache, reference, relative_error

    k, v = make_cache(NAME, 2, 2, 70, 16, flip_rate=0.05, seed=1)
    query = torch.randn(2, 4, 1, 16, generator=torch.Generator().manual_seed(2))
    seq_lens = torch.tensor([70, 33])
    for interpolate in (False, True):
        out, counters = fused(query, k, v, NAME, 16, interpolate, seq_lens, kernel_device)
        ref, ref_counters = reference(query, k, v, NAME, 16, interpolate, seq_lens)
        assert relative_error(out, ref) < TOLERANCE and torch.equal(counters, ref_counters)
        assert counters[3] > 0  # detected codewords


def test_tensor_subclass(parity5):
    from ecc_tensor import ECCInt4Tensor

    x = torch.randn(1, 2, 8, 16)
    t = ECCInt4Tensor.from_float(x, codec=NAME)
    assert (t.dequantize() - x).abs().max() <= x.abs().amax(-1, keepdim=True).max() / 7


@pytest.fixture(scope="module")
def parity5_mode(parity5):
    from ecc_tensor import modes

    mode = modes.register_mode(modes.CacheMode("int4-parity5", NAME, interpolate=True, description="toy: one parity bit"))
    yield mode
    modes.MODES.pop(mode.name)


def test_the_cache_and_the_sweep_run_it(parity5_mode, tiny, tmp_path):
    from test_sweep import settings

    from ecc_tensor.evaluation import sweep as S
    from ecc_tensor.faults import FaultModel
    from ecc_tensor.integrations.hf import ECCCache, cache_argument
    from ecc_tensor.evaluation.models import load_model_and_tokenizer

    model, _ = load_model_and_tokenizer(str(tiny / "model"))
    cache = ECCCache(model.config, 1, 40, mode=parity5_mode.name, fault=FaultModel("bsc", 1e-2, seed=1))
    with torch.no_grad():
        model(torch.randint(0, 50, (1, 40)), **cache_argument(model, cache), use_cache=True)
    stats = cache.stats()
    assert stats["detected"] > 0 and stats["corrected"] == 0 and stats["injected"] > 0
    records = S.run_sweep(settings(tiny, tmp_path, cache_modes=["int4", parity5_mode.name], ber_levels=[0.0, 1e-2], seeds=[1]),
                          progress=False)
    by_mode = {(r["mode"], r["ber"]): r for r in records}
    assert by_mode[(parity5_mode.name, 0.0)]["perplexity"] == by_mode[("int4", 0.0)]["perplexity"]
    assert by_mode[(parity5_mode.name, 1e-2)]["detected"] > 0


@pytest.mark.parametrize("device", ["cpu", "meta"])
@pytest.mark.parametrize("name", ["int4", "hamming84", "golay24", "secded72"])
def test_device_tables_are_static_addresses_for_torch_compile(name, device):
    """A codec's tables made for a device are kept, so they are marked static addresses where
    they are made (a cache needs not mark them): CUDA graphs then read them in place instead of
    copying them at every replay."""
    tables = get_codec(name).tables(device)
    assert all(getattr(t, "_dynamo_static_input_type", None) for t in (tables.encode_table, tables.syndrome_table))

