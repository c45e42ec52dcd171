"""Per-channel keys and the full-precision recent window (ecc_tensor.quant_scheme) through
the quantizer, the reference read and ECCCache."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch._dynamo.testing import CompileCounterWithBackend
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import LlamaConfig

from ecc_tensor import counters as C
from ecc_tensor.attention import dequantize_channel_cache
from ecc_tensor.codecs import get_codec
from ecc_tensor.counters import new_counters
from ecc_tensor.faults import FaultModel
from ecc_tensor.integrations.hf import ECCCache
from ecc_tensor.metadata import MetadataLayout, codec_tables
from ecc_tensor.quant import dequantize_int4, dequantize_int4_channels, quantize_int4, quantize_int4_channels
from ecc_tensor.quant_scheme import QuantScheme
from ecc_tensor.storage import StorageLayout

HEAD_DIM = 16
CONFIG = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                     num_key_value_heads=1, head_dim=HEAD_DIM, max_position_embeddings=128)


@settings(max_examples=60, deadline=None)
@given(tokens=st.integers(1, 9), dim=st.integers(1, 12), symmetric=st.booleans(), outlier=st.floats(1.0, 1e3),
       seed=st.integers(0, 2**31 - 1))
def test_per_channel_quantization_keeps_every_value_within_half_its_channels_step(tokens, dim, symmetric, outlier, seed):
    x = torch.randn(2, tokens, dim, generator=torch.Generator().manual_seed(seed))
    x[..., 0] *= outlier  # an outlier channel sets its own step only
    q, scale, zero = quantize_int4_channels(x, symmetric)
    assert q.shape == x.shape and scale.shape == (2, dim) and (zero is None) == symmetric
    assert int(q.max()) <= 15
    error = (dequantize_int4_channels(q, scale, zero) - x).abs()
    assert bool((error <= scale.unsqueeze(-2) * (0.5 + 1e-5) + 1e-6).all())
    if dim >= 4 and outlier > 100 and tokens >= 4:
        # The point of the axis: the other channels keep their resolution.
        per_token = (dequantize_int4(*quantize_int4(x, None, symmetric)) - x).abs()[..., 1:]
        assert float(error[..., 1:].mean()) < float(per_token.mean())


def test_per_channel_dequantize_rejects_a_mismatched_scale():
    q, scale, _ = quantize_int4_channels(torch.randn(4, 8))
    with pytest.raises(ValueError, match="scale shape"):
        dequantize_int4_channels(q, scale[:4])
    with pytest.raises(ValueError, match="block of tokens"):
        quantize_int4_channels(torch.randn(8))


@pytest.mark.parametrize(("scheme", "written", "rows"), [
    (QuantScheme(), 5, 5),
    (QuantScheme(residual_length=4), 3, 0),  # shorter than the window
    (QuantScheme(residual_length=4), 4, 0),  # exactly the window
    (QuantScheme(residual_length=4), 5, 1),  # one past it
    (QuantScheme(key_quant="channel", channel_block=4), 7, 4),
    (QuantScheme(key_quant="channel", channel_block=4), 8, 8),
    (QuantScheme(key_quant="channel", channel_block=4, residual_length=2), 9, 4),
    (QuantScheme(key_quant="channel", channel_block=4, residual_length=2), 10, 8),
])
def test_quantized_rows(scheme, written, rows):
    assert scheme.quantized_rows(0, written) == rows
    assert int(scheme.quantized_rows(0, torch.tensor(written))) == rows
    # Values leave the window with the keys (one boundary: attention reads each token from one place).
    assert scheme.quantized_rows(1, written) == rows
    if scheme.key_quant == "token":
        assert rows == max(written - scheme.residual_length, 0)
    assert written - rows <= scheme.window_rows(0) == scheme.window_rows(1)


@pytest.mark.parametrize("bad", [dict(key_quant="row"), dict(value_quant="channel"), dict(residual_length=-1),
                                 dict(channel_block=0), dict(residual_length=True)])
def test_a_bad_scheme_is_refused(bad):
    with pytest.raises(ValueError):
        QuantScheme(**bad)
    with pytest.raises(ValueError):
        ECCCache(CONFIG, 1, 32, mode="int4", **bad)


def _states(length, seed=0, dtype=torch.float16):
    g = torch.Generator().manual_seed(seed)
    k = torch.randn(1, 1, length, HEAD_DIM, generator=g)
    k[..., 3] *= 30  # an outlier key channel
    return k.to(dtype), torch.randn(1, 1, length, HEAD_DIM, generator=g).to(dtype)


def expected_read(x, scheme, kv, symmetric=True):
    """What a cache under ``scheme`` returns for ``x`` written: codeword rows dequantized, the
    window's rows as they were written."""
    rows = scheme.quantized_rows(kv, x.shape[-2])
    out = x.clone()
    if rows and scheme.axis(kv) == "channel":
        blocks = x[:, :, :rows].float().unflatten(-2, (-1, scheme.channel_block))
        out[:, :, :rows] = dequantize_int4_channels(*quantize_int4_channels(blocks, symmetric)).flatten(-3, -2).to(x.dtype)
    elif rows:
        out[:, :, :rows] = dequantize_int4(*quantize_int4(x[:, :, :rows], None, symmetric)).to(x.dtype)
    return out


@pytest.mark.parametrize("mode", ["int4", "int4-hamming84-interp", "int12-golay", "int4-secded72"])
@pytest.mark.parametrize("scheme", [QuantScheme(residual_length=4), QuantScheme(key_quant="channel", channel_block=4),
                                    QuantScheme(key_quant="channel", channel_block=4, residual_length=3)], ids=str)
@pytest.mark.parametrize("length", [3, 4, 5, 11, 12, 13])
def test_the_cache_returns_the_window_as_written_and_the_rest_quantized_on_its_axis(mode, scheme, length):
    k, v = _states(length)
    cache = ECCCache(CONFIG, 1, 32, mode=mode, key_quant=scheme.key_quant, residual_length=scheme.residual_length,
                     channel_block=scheme.channel_block)
    got_k, got_v = cache.update(k, v, 0)
    torch.testing.assert_close(got_k[:, :, :length], expected_read(k, scheme, 0), rtol=0, atol=0)
    torch.testing.assert_close(got_v[:, :, :length], expected_read(v, scheme, 1), rtol=0, atol=0)
    stats = cache.stats()
    assert stats["window"]["read"] == (2 * length - scheme.quantized_rows(0, length) - scheme.quantized_rows(1, length)) * HEAD_DIM
    assert stats["read"] == (scheme.quantized_rows(0, length) + scheme.quantized_rows(1, length)) * (
        StorageLayout(cache.mode.codec, HEAD_DIM).codewords_per_row)


@pytest.mark.parametrize("scheme", [QuantScheme(residual_length=4), QuantScheme(key_quant="channel", channel_block=4, residual_length=3)],
                         ids=str)
@pytest.mark.parametrize("chunks", [[1] * 13, [5, 1, 7], [2, 9, 2]])
def test_writing_in_chunks_stores_what_one_write_stores(scheme, chunks):
    k, v = _states(sum(chunks), seed=1)
    caches = [ECCCache(CONFIG, 1, 32, mode="int4-hamming84", key_quant=scheme.key_quant,
                       residual_length=scheme.residual_length, channel_block=scheme.channel_block) for _ in range(2)]
    whole = caches[0].update(k, v, 0)
    first = 0
    for n in chunks:
        pieces = caches[1].update(k[:, :, first : first + n], v[:, :, first : first + n], 0)
        first += n
    for a, b in zip(whole, pieces):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    one, chunked = caches[0].layers[0], caches[1].layers[0]
    for name in ("_k", "_v"):
        assert torch.equal(getattr(one, name).stored, getattr(chunked, name).stored)
        assert torch.equal(getattr(one, name).meta, getattr(chunked, name).meta)


def test_a_detected_channel_scale_erases_its_channel_for_the_whole_block():
    codec, block, dim = "hamming84", 4, 8
    t = codec_tables(codec, "cpu")
    meta_layout = MetadataLayout(codec, dim)
    x = torch.randn(1, 1, 2 * block, dim)
    q, scale, zero = quantize_int4_channels(x.unflatten(-2, (2, block)))
    stored = torch.ops.ecc.encode(q.flatten(-3, -2), t[0], t[1], codec)
    meta = meta_layout.store(scale, zero, get_codec("golay24").tables("cpu"))
    values, status = torch.ops.ecc.decode(stored, t[0], t[1], codec, dim)
    clean = dequantize_channel_cache(values, status, meta, get_codec("golay24").tables("cpu"), codec, True, True, new_counters(),
                                     torch.float32)
    # Four flips in the first Golay codeword of block 0's metadata (channel 0's scale): detected.
    corrupted = meta.clone()
    corrupted[0, 0, 0, 0] ^= 0x0F
    counters = new_counters()
    got = dequantize_channel_cache(values, status, corrupted, get_codec("golay24").tables("cpu"), codec, True, True, counters,
                                   torch.float32)
    assert int(counters[C.META_DETECTED]) >= 1
    # Channel 0 of block 0 is interpolated from its one neighbour outside the block; the rest is as clean.
    torch.testing.assert_close(got[..., :block, 0], clean[..., block : block + 1, 0].expand(1, 1, block))
    torch.testing.assert_close(got[..., 1:], clean[..., 1:])
    torch.testing.assert_close(got[..., block:, :], clean[..., block:, :])


def test_bare_window_words_take_faults_and_are_counted_apart():
    """int4 (no code) keeps its window's words bare: struck, they read back silently wrong."""
    k, v = _states(20, seed=2)
    cache = ECCCache(CONFIG, 1, 32, mode="int4", residual_length=8, fault=FaultModel("bsc", 1e-2, seed=3), track_silent=True)
    got_k, got_v = cache.update(k, v, 0)
    window = cache.stats()["window"]
    assert window["read"] == 2 * 8 * HEAD_DIM
    assert window["injected"] > 0 and 0 < window["silent"] <= window["read"]
    assert window["corrected"] == window["detected"] == 0
    assert not torch.equal(torch.cat([got_k, got_v], 2)[:, :, 12:20], torch.cat([k, v], 2)[:, :, 12:20])
    # Values only (the paper's fault targets): the window is not struck.
    cache = ECCCache(CONFIG, 1, 32, mode="int4-hamming84", residual_length=8, fault=FaultModel("bsc", 1e-2, seed=3, targets="values"))
    cache.update(k, v, 0)
    assert cache.stats()["window"]["injected"] == 0


@pytest.mark.parametrize("site", ["write", "read"])
@pytest.mark.parametrize("scheme", [dict(residual_length=8), dict(key_quant="channel", channel_block=4, residual_length=3)], ids=str)
def test_a_coded_modes_window_is_stored_in_golay_and_corrected_on_read(site, scheme):
    """A mode with a code keeps its window's words in Golay(24,12): at BER 1e-2 (flips in
    most rows) the cache reads back exactly what a fault-free one does, the window's words as
    written, each correction counted; what leaves the window is what was written."""
    k, v = _states(20, seed=2)
    struck = ECCCache(CONFIG, 1, 32, mode="int12-golay", fault=FaultModel("bsc", 1e-2, seed=3, site=site), track_silent=True,
                      **scheme)
    clean = ECCCache(CONFIG, 1, 32, mode="int12-golay", **scheme)
    for first, last in ((0, 13), (13, 14), (14, 20)):  # tokens leave the window at each write
        got = struck.update(k[:, :, first:last], v[:, :, first:last], 0)
        want = clean.update(k[:, :, first:last], v[:, :, first:last], 0)
    for kv, (g, w, x) in enumerate(zip(got, want, (k, v))):
        torch.testing.assert_close(g, w, rtol=0, atol=0)
        rows = struck.scheme.quantized_rows(kv, 20)
        torch.testing.assert_close(g[:, :, rows:20], x[:, :, rows:], rtol=0, atol=0)  # the window as written
    stats = struck.stats()
    window = stats["window"]
    assert window["injected"] > 0 and window["corrected"] > 0
    assert window["detected"] == window["silent"] == stats["detected"] == 0
    # A clean row's data bytes are the words themselves (Golay's lanes), then the parity.
    store = clean.layers[0]._k
    slot = 19 % store.window.shape[-2]
    assert torch.equal(store.window_code[0, 0, slot, : 2 * HEAD_DIM], k[0, 0, 19].view(torch.uint8))


@pytest.mark.parametrize("flips", [3, 4])
def test_a_detected_window_word_is_interpolated_from_its_neighbouring_tokens(flips):
    """Four flips in one Golay codeword of the window: its words are erased, counted as
    detected, and in an ``-interp`` mode read as the mean of the tokens beside them (used as
    read otherwise). Three flips are corrected, but in an ``-interp`` mode, which corrects up
    to two and erases beyond (so that five flips are never silent), erased the same way."""
    from ecc_tensor import lanes

    k, v = _states(11, seed=5)
    units = lanes.value_units(4 * HEAD_DIM)  # the codeword holding each nibble
    erased = (units == units[0]).view(HEAD_DIM, 4).any(-1)  # the words sharing word 0's first nibble's codeword
    assert 1 < int(erased.sum()) < HEAD_DIM
    for mode in ("int4-hamming84", "int4-hamming84-interp"):
        cache = ECCCache(CONFIG, 1, 16, mode=mode, residual_length=6, track_silent=True)
        cache.update(k[:, :, :10], v[:, :, :10], 0)  # tokens 4..9 in the window
        store = cache.layers[0]._k
        store.window_code[0, 0, 7 % store.window.shape[-2], 0] ^= (1 << flips) - 1  # flips in that codeword, token 7's
        got, _ = cache.update(k[:, :, 10:], v[:, :, 10:], 0)  # token 10 in, token 4 out; tokens 5..10 read
        window = cache.stats()["window"]
        torch.testing.assert_close(got[0, 0, [5, 6, 8, 9, 10]], k[0, 0, [5, 6, 8, 9, 10]], rtol=0, atol=0)
        torch.testing.assert_close(got[0, 0, 7, ~erased], k[0, 0, 7, ~erased], rtol=0, atol=0)
        assert window["silent"] == 0
        interpolated = mode.endswith("interp")
        if flips == 3 and not interpolated:
            assert window["corrected"] == 1 and window["detected"] == 0
            torch.testing.assert_close(got[0, 0, 7], k[0, 0, 7], rtol=0, atol=0)
            continue
        assert window["detected"] == 1 and window["corrected"] == 0
        if interpolated:
            mean = ((k[0, 0, 6].float() + k[0, 0, 8].float()) * 0.5).to(k.dtype)
            torch.testing.assert_close(got[0, 0, 7, erased], mean[erased], rtol=0, atol=0)
        else:
            assert not torch.equal(got[0, 0, 7, erased], k[0, 0, 7, erased])


@pytest.mark.parametrize("mode", ["int4", "int4-hamming84-interp", "int12-golay"])
@pytest.mark.parametrize("scheme", [dict(residual_length=3), dict(key_quant="channel", channel_block=4, residual_length=2)], ids=str)
def test_fused_attention_reads_a_scheme_as_the_dense_path_does(mode, scheme):
    """With a scheme the cache hands the fused attention its codewords, per-channel scales and
    window (no warning, no fallback): decoding gives the dense path's logits and counts under
    faults in the codewords and everywhere (a struck window word may be NaN, which both
    propagate)."""
    from transformers import LlamaForCausalLM

    from ecc_tensor.integrations.hf import cache_argument

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=1, max_position_embeddings=64, initializer_range=0.3)
    model = LlamaForCausalLM(config).eval()
    ids = torch.randint(0, 64, (1, 9), generator=torch.Generator().manual_seed(0))
    for targets in ("values", "all"):
        fault = FaultModel("bsc", 3e-3, seed=1, site="read", targets=targets)
        logits, stats = [], []
        for attention in ("fused", "dense"):
            model.set_attn_implementation("ecc" if attention == "fused" else "sdpa")
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                cache = ECCCache(model.config, 1, 24, mode=mode, attention=attention, fault=fault, **scheme)
            assert cache.attention == attention
            with torch.no_grad():
                model(ids, **cache_argument(model, cache), use_cache=True)
                steps = [model(torch.tensor([[step + 3]]), **cache_argument(model, cache), use_cache=True,
                               position_ids=torch.tensor([[9 + step]])).logits for step in range(6)]
            logits.append(torch.cat(steps))
            stats.append(cache.stats())
        model.set_attn_implementation("sdpa")
        torch.testing.assert_close(logits[0], logits[1], rtol=1e-4, atol=1e-4, equal_nan=True)
        for key in ("read", "corrected", "detected", "injected", "window", "metadata"):
            assert stats[0][key] == stats[1][key], key
        assert stats[0]["injected"] > 0


def _strike_windows(cache: ECCCache) -> None:
    """Flip stored bits of every layer's coded window, the same in every cache: in each window
    row one Golay codeword (a different one a row), three flips in even rows (erased at the
    -interp modes' radius 2) and one in odd rows (corrected)."""
    from ecc_tensor import lanes

    for layer in cache.layers:
        for store in (layer._k, layer._v):
            nibbles_per_row = 4 * store.layout.head_dim
            values, parity = lanes.unit_values(nibbles_per_row), lanes.unit_parity_nibbles(nibbles_per_row)
            for row in range(store.window_code.shape[-2]):
                unit = row % values.shape[0]
                nibbles = [n for n in (*values[unit].tolist(), *parity[unit].tolist()) if n >= 0]
                for n in nibbles[: 3 if row % 2 == 0 else 1]:
                    store.window_code[:, :, row, n // 2] ^= 1 << (4 * (n % 2))


# Keys per channel with a window, and per token with one: keys per channel without a window
# (residual_length=0) go through the same graph with a shorter window (the block being filled)
# and took 90 s more of the suite's 2-core run.
@pytest.mark.parametrize("scheme", [dict(residual_length=3), dict(key_quant="channel", channel_block=4, residual_length=2)], ids=str)
@pytest.mark.parametrize("attention", ["dense", "fused"])
def test_compiled_decoding_with_a_scheme_equals_eager_with_no_graph_breaks(scheme, attention):
    from transformers import LlamaForCausalLM

    from ecc_tensor.integrations.hf import cache_argument

    torch._dynamo.reset()
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=1, max_position_embeddings=64, initializer_range=0.3)
    model = LlamaForCausalLM(config).eval()
    if attention == "fused":
        model.set_attn_implementation("ecc")
    ids = torch.randint(0, 64, (1, 6), generator=torch.Generator().manual_seed(0))
    caches = [ECCCache(model.config, 1, 24, mode="int4-hamming84-interp", device="cpu", dtype=torch.float32, attention=attention,
                       **scheme) for _ in range(2)]
    backend = CompileCounterWithBackend("inductor")
    compiled = torch.compile(model.forward, fullgraph=True, backend=backend)
    with torch.no_grad():
        for cache in caches:
            model(ids, **cache_argument(model, cache), use_cache=True)  # prefill in eager
            _strike_windows(cache)  # read (and leaving) in the steps below: corrected and interpolated alike
        for step in range(7):  # across block and window boundaries
            token, position = torch.tensor([[step + 3]]), torch.tensor([[6 + step]])
            got = compiled(token, **cache_argument(model, caches[0]), use_cache=True, position_ids=position).logits
            want = model(token, **cache_argument(model, caches[1]), use_cache=True, position_ids=position).logits
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    ops = {str(node.target) for graph in backend.graphs for node in graph.graph.nodes if node.op == "call_function"}
    assert ("ecc.decode_attention" in ops) == (attention == "fused")  # the compiled steps attend the codewords
    # The compiled model's K/V differ from eager's in the last bits (fused arithmetic), so the
    # scales may too; the codes and every count agree.
    compiled_layer, eager_layer = caches[0].layers[0], caches[1].layers[0]
    for name in ("_k", "_v"):
        compiled_store, eager_store = getattr(compiled_layer, name), getattr(eager_layer, name)
        assert torch.equal(compiled_store.stored, eager_store.stored)
        tables = compiled_store.meta_tables
        torch.testing.assert_close(compiled_store.meta_layout.load(compiled_store.meta, tables)[0],
                                   eager_store.meta_layout.load(eager_store.meta, tables)[0], rtol=1e-6, atol=0)
    got, want = caches[0].stats(), caches[1].stats()
    assert got["read"] == want["read"] > 0 and got["metadata"] == want["metadata"] and got["window"] == want["window"]
    assert got["window"]["corrected"] > 0 and got["window"]["detected"] > 0


@pytest.mark.cuda
@pytest.mark.parametrize("mode", ["int4", "int4-hamming84-interp", "int12-golay", "int4-secded72"])
def test_a_scheme_on_the_gpu_stores_and_reads_what_the_cpu_does(mode):
    """The codec kernels encode and decode per-channel keys and the window's neighbours on the
    GPU; faults (drawn by address) land alike."""
    k, v = _states(300, seed=4, dtype=torch.bfloat16)
    fault = FaultModel("bsc", 1e-3, seed=5)
    config = LlamaConfig(**{**CONFIG.to_dict(), "max_position_embeddings": 512})
    results = []
    for device in ("cpu", "cuda"):
        cache = ECCCache(config, 1, 320, mode=mode, key_quant="channel", residual_length=32, fault=fault)
        got = cache.update(k.to(device), v.to(device), 0)
        results.append((tuple(t.cpu() for t in got), cache.stats()))
    (cpu_kv, cpu_stats), (gpu_kv, gpu_stats) = results
    for a, b in zip(cpu_kv, gpu_kv):
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)
    cpu_stats.pop("layers"), gpu_stats.pop("layers")
    assert cpu_stats == gpu_stats
