"""ECCCache on tiny random-weight GPT-2, Llama, Mistral and Qwen2 models (CPU)."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    StaticCache,
)

from ecc_tensor import counters as C
from ecc_tensor.faults import FaultModel
from ecc_tensor.integrations.hf import ECCCache, cache_argument
from ecc_tensor.metadata import value_groups
from ecc_tensor.modes import MODES
from ecc_tensor.tensor import MAX_FUSED_QUERIES

CODED_MODES = [name for name, mode in MODES.items() if mode.quantized and mode.codec != "int4"]

VOCAB = 96
# Random weights at the usual 0.02 scale give nearly uniform attention, so the output hardly
# depends on the cache; a larger scale makes these tiny models sensitive to what they read.
INIT = 0.3
COMMON = dict(
    vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
    max_position_embeddings=128, initializer_range=INIT, bos_token_id=1, eos_token_id=None,
)
CONFIGS = {
    "gpt2": lambda: GPT2LMHeadModel(
        GPT2Config(vocab_size=VOCAB, n_embd=64, n_layer=2, n_head=4, n_positions=128, initializer_range=INIT, bos_token_id=1,
                   eos_token_id=None)
    ),
    "llama": lambda: LlamaForCausalLM(LlamaConfig(**COMMON, num_key_value_heads=2)),
    "mistral": lambda: MistralForCausalLM(MistralConfig(**COMMON, num_key_value_heads=2, sliding_window=64)),
    "qwen2": lambda: Qwen2ForCausalLM(Qwen2Config(**COMMON, num_key_value_heads=2)),
}


@pytest.fixture(scope="module", params=list(CONFIGS))
def model(request):
    torch.manual_seed(0)
    return CONFIGS[request.param]().eval()


def prompt(batch=2, length=12, seed=0):
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def prefill_and_decode(model, cache, ids, steps=3):
    """Logits of a prefill and of ``steps`` greedy decode steps, all through ``cache``."""
    out = model(ids, **cache_argument(model, cache), use_cache=True)
    logits = [out.logits]
    token = out.logits[:, -1:].argmax(-1)
    for i in range(steps):
        position = torch.full((ids.shape[0], 1), ids.shape[1] + i)
        out = model(token, **cache_argument(model, cache), use_cache=True, position_ids=position)
        logits.append(out.logits)
        token = out.logits[:, -1:].argmax(-1)
    return torch.cat(logits, dim=1)


def ecc(model, mode, fault=None, batch=2, length=32, **kw):
    return ECCCache(model.config, batch, length, mode=mode, fault=fault, **kw)


def test_fp16_mode_reproduces_the_stock_static_cache_exactly(model):
    """The oracle keeps 16-bit K/V: in a bfloat16 model, exactly what the stock cache keeps; in
    a float32 model, the K/V rounded to float16 (never faulted, whatever the fault model)."""
    ids = prompt()
    half = copy.deepcopy(model).to(torch.bfloat16)
    stock = prefill_and_decode(half, StaticCache(half.config, max_cache_len=32), ids)
    oracle = ecc(half, "fp16", FaultModel("bsc", 1e-2, seed=1))
    assert torch.equal(prefill_and_decode(half, oracle, ids), stock) and oracle.stats()["injected"] == 0
    stock32 = prefill_and_decode(model, StaticCache(model.config, max_cache_len=32), ids)
    # float16 rounding of K/V moves these tiny high-variance models' logits by up to ~2%.
    torch.testing.assert_close(prefill_and_decode(model, ecc(model, "fp16"), ids), stock32, rtol=5e-2, atol=5e-2)


def test_codes_add_no_error_of_their_own(model):
    ids = prompt()
    int4 = prefill_and_decode(model, ecc(model, "int4"), ids)
    stock = prefill_and_decode(model, StaticCache(model.config, max_cache_len=32), ids)
    assert not torch.equal(int4, stock)  # quantization does change something
    for mode in CODED_MODES:
        assert torch.equal(prefill_and_decode(model, ecc(model, mode, FaultModel("bsc", 0.0)), ids), int4), mode


@torch.no_grad()
def greedy(model, cache, ids, new=8):
    return model.generate(ids, attention_mask=torch.ones_like(ids), **cache_argument(model, cache), max_new_tokens=new, do_sample=False,
                          pad_token_id=0)


def test_golay_at_1e_3_keeps_greedy_tokens_and_int4_at_5e_2_loses_them(model):
    ids = prompt(batch=2, length=16, seed=1)
    clean = greedy(model, ecc(model, "int4"), ids)
    golay_cache = ecc(model, "int12-golay", FaultModel("bsc", 1e-3, seed=42))
    assert torch.equal(greedy(model, golay_cache, ids), clean)
    assert golay_cache.stats()["injected"] > 0
    assert not torch.equal(greedy(model, ecc(model, "int4", FaultModel("bsc", 5e-2, seed=42)), ids), clean)


def test_hamming84_interp_detects_at_1e_2(model):
    cache = ecc(model, "int4-hamming84-interp", FaultModel("bsc", 1e-2, seed=3))
    greedy(model, cache, prompt())
    stats = cache.stats()
    assert stats["detected"] > 0 and stats["corrected"] > 0 and len(stats["layers"]) == len(cache.layers)


@pytest.mark.parametrize("mode", ["int4", "int4-hamming", "int4-hamming84", "int12-golay"])
def test_counters_equal_an_independent_count_from_the_reference_codec(model, mode):
    """Values and scales faulted: every counter recounted from the stored bytes and the clean
    shadow copies with the reference codecs."""
    cache = ecc(model, mode, FaultModel("bsc", 2e-2, seed=5))
    ids = prompt(length=20)
    with torch.no_grad():
        model(ids, **cache_argument(model, cache), use_cache=True)  # one write and one read per layer
    for layer, stats in zip(cache.layers, cache.stats()["layers"]):
        want = dict.fromkeys(C.COUNTER_NAMES, 0)
        for store in (layer._k, layer._v):
            layout, meta_layout = store.layout, store.meta_layout
            values, status = layout.load(store.stored[:, :, :20])
            clean, _ = layout.load(store.shadow[:, :, :20])
            words, meta_status, meta_erased = meta_layout.load(store.meta[:, :, :20])
            clean_words, _, _ = meta_layout.load(store.meta_shadow[:, :, :20])
            for prefix, st in (("", status), ("meta_", meta_status)):
                want[prefix + "read"] += st.numel()
                want[prefix + "corrected"] += int((st == 1).sum())
                want[prefix + "detected"] += int((st == 2).sum())
                want[prefix + "parity_only"] += int((st == 3).sum())
            erased = layout.erased_values(status) | value_groups(meta_layout.group_flags(meta_erased), layout.head_dim)
            want["silent"] += int(((values != clean) & ~erased).sum())
            want["meta_silent"] += int(((words.view(torch.int32) != clean_words.view(torch.int32)) & ~meta_erased).sum())
        for name in C.COUNTER_NAMES:
            if "injected" not in name:
                assert stats[name] == want[name], name
        assert stats["injected"] > 0 and stats["meta_injected"] > 0
        if mode != "int4":
            assert stats["corrected"] > 0 and stats["meta_corrected"] > 0
        else:
            assert stats["silent"] > 0 and stats["meta_silent"] > 0


def test_silent_is_counted_whenever_faults_are_injected_or_reported_as_unmeasured(model):
    ids = prompt(length=20)
    for track, expect_none in ((None, False), (True, False), (False, True)):
        cache = ecc(model, "int4", FaultModel("bsc", 2e-2, seed=5), track_silent=track)
        with torch.no_grad():
            model(ids, **cache_argument(model, cache), use_cache=True)
        stats = cache.stats()
        if expect_none:
            assert stats["silent"] is None and stats["metadata"]["silent"] is None
        else:
            assert stats["silent"] > 0 and stats["metadata"]["silent"] > 0
    clean = ecc(model, "int4", track_silent=False)  # no faults: nothing can be silently wrong
    with torch.no_grad():
        model(ids, **cache_argument(model, clean), use_cache=True)
    assert clean.stats()["silent"] == 0


def test_generate_sampling_and_left_padded_batches(model):
    ids = prompt(batch=3, length=10, seed=4)
    mask = torch.ones_like(ids)
    mask[0, :4] = 0  # left padding
    ids = ids.masked_fill(mask == 0, 0)
    torch.manual_seed(0)
    with torch.no_grad():
        sampled = model.generate(ids, attention_mask=mask, **cache_argument(model, ecc(model, "int4-hamming84-interp", batch=3)),
                                 max_new_tokens=6, do_sample=True, top_k=20, pad_token_id=0)
        stock = model.generate(ids, attention_mask=mask, **cache_argument(model, StaticCache(model.config, max_cache_len=32)),
                               max_new_tokens=6, do_sample=False, pad_token_id=0)
        ours = model.generate(ids, attention_mask=mask, **cache_argument(model, ecc(model, "fp16", batch=3)), max_new_tokens=6,
                              do_sample=False, pad_token_id=0)
    assert sampled.shape == (3, 16)
    assert torch.equal(ours, stock)


def test_reset_clears_codewords_and_draws_fresh_faults(model):
    cache = ecc(model, "int4-hamming84", FaultModel("bsc", 1e-2, seed=9))
    with torch.no_grad():
        model(prompt(), **cache_argument(model, cache), use_cache=True)
    first = cache.layers[0]._k.stored.clone()
    cache.reset()
    assert not any(t.any() for layer in cache.layers for s in (layer._k, layer._v) for t in s.buffers)
    assert int(cache.get_seq_length()) == 0
    with torch.no_grad():
        model(prompt(), **cache_argument(model, cache), use_cache=True)
    assert not torch.equal(cache.layers[0]._k.stored, first)  # same tokens, new fault draw


@pytest.mark.parametrize("mode", ["int4-hamming84-interp", "fp16-unprotected"])
def test_rows_as_sequences_take_the_faults_of_one_row_caches(model, mode):
    """Row b of a rows_as_sequences cache reset to sequence s stores exactly what a one-row
    cache stores as sequence s + b (write and read faults, scales too); a plain reset then
    moves past every row's sequence."""
    fault = FaultModel("bsc", 2e-2, seed=5, site="both")
    ids = prompt(batch=3)
    together = ecc(model, mode, fault, batch=3, rows_as_sequences=True)
    together.reset(first_sequence=7)
    with torch.no_grad():
        model(ids, **cache_argument(model, together), use_cache=True)
    injected = 0
    for b in range(3):
        alone = ecc(model, mode, fault, batch=1)
        alone.reset(first_sequence=7 + b)
        with torch.no_grad():
            model(ids[b : b + 1], **cache_argument(model, alone), use_cache=True)
        for mine, theirs in zip(together.layers, alone.layers):
            for a, c in ((mine._k, theirs._k), (mine._v, theirs._v)):
                assert torch.equal(a.words[b : b + 1], c.words)
                if a.meta is not None:
                    assert torch.equal(a.meta[b : b + 1], c.meta)
        injected += alone.stats()["injected"]
    assert together.stats()["injected"] == injected > 0
    together.reset()
    assert {layer.sequence for layer in together.layers} == {10}
    with pytest.raises(ValueError, match="first_sequence must be a non-negative int"):
        together.reset(first_sequence=-1)


def test_keys_are_ecc_tensors(model):
    from ecc_tensor import ECCInt4Tensor

    cache = ecc(model, "int12-golay")
    with torch.no_grad():
        model(prompt(), **cache_argument(model, cache), use_cache=True)
    keys = cache.layers[0].keys
    assert isinstance(keys, ECCInt4Tensor) and keys.shape[2] == 32
    assert keys[:, :, :12].dequantize().abs().sum() > 0


def test_clear_errors():
    model = CONFIGS["llama"]().eval()
    with pytest.raises(ValueError, match="unknown cache mode"):
        ECCCache(model.config, 1, 16, mode="int8")
    with pytest.raises(ValueError, match="max_cache_len"):
        ECCCache(model.config, 1, 0)
    cache = ECCCache(model.config, 1, 8)
    with pytest.raises(ValueError, match="max_cache_len=8"):
        with torch.no_grad():
            model(prompt(batch=1, length=9), **cache_argument(model, cache))
    from transformers import BertConfig, T5Config

    with pytest.raises(ValueError, match="encoder-decoder"):
        ECCCache(T5Config(), 1, 8)
    with pytest.raises(NotImplementedError, match="window"):
        ECCCache(MistralConfig(**COMMON, sliding_window=16), 1, 32)
    with pytest.raises(ValueError, match="FaultModel"):
        ECCCache(model.config, 1, 8, fault="bsc")
    assert BertConfig  # an encoder has attention but no causal cache: see test below


def test_compiled_decode_loop_has_no_graph_breaks_or_recompiles():
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = CONFIGS["llama"]().eval()
    ids = prompt(batch=1, length=8)
    eager_cache = ECCCache(model.config, 1, 16, mode="int4-hamming84-interp")
    cache = ECCCache(model.config, 1, 16, mode="int4-hamming84-interp", device="cpu", dtype=torch.float32)
    compiled = torch.compile(model.forward, fullgraph=True)
    with torch.no_grad():
        model(ids, **cache_argument(model, cache), use_cache=True)  # prefill in eager
        model(ids, **cache_argument(model, eager_cache), use_cache=True)
        token = torch.tensor([[5]])
        with torch._dynamo.config.patch(error_on_recompile=False):
            counts = []
            for step in range(4):
                position = torch.tensor([[8 + step]])
                got = compiled(token, **cache_argument(model, cache), use_cache=True, position_ids=position).logits
                want = model(token, **cache_argument(model, eager_cache), use_cache=True, position_ids=position).logits
                assert torch.allclose(got, want, atol=1e-5)
                counts.append(torch._dynamo.utils.counters["stats"]["unique_graphs"])
    assert counts[-1] == counts[1]  # no recompiles after the first steps


@pytest.mark.parametrize("mode", ["int4", "int4-hamming84-interp", "int12-golay", "fp8"])
@pytest.mark.parametrize("fault", [None, FaultModel("bsc", 1e-2, seed=3), FaultModel("bsc", 1e-2, seed=4, site="read")])
def test_fused_attention_decodes_what_the_dense_path_decodes(model, mode, fault):
    """``"ecc"`` attention over ECCInt4Tensor K/V (fp8: FP8KVTensor; prefill dequantizes,
    decode steps run ecc::decode_attention or ecc::fp8_decode_attention) gives the dense path's
    logits and exactly its counters, with left padding and faults at either site (in int4, on
    the values only: its unprotected scales, faulted, make inf and NaN logits that two attention
    implementations need not place alike)."""
    if fault is not None and mode == "int4":
        fault = dataclasses.replace(fault, targets="values")
    if fault is not None and mode == "fp8":  # at 1e-2 NaN words make every logit NaN: nothing left to compare
        fault = dataclasses.replace(fault, ber=1e-3)
    ids = prompt(batch=2, length=12)
    mask = torch.ones_like(ids)
    mask[1, :3] = 0
    results = {}
    for attention in ("sdpa", "ecc"):
        model.set_attn_implementation(attention)
        try:
            cache = ECCCache(model.config, 2, 24, mode=mode, fault=fault, track_silent=True)
            assert cache.attention == ("fused" if attention == "ecc" else "dense")
            with torch.no_grad():
                out = model.generate(ids, attention_mask=mask, **cache_argument(model, cache), max_new_tokens=5, do_sample=False,
                                     output_logits=True, return_dict_in_generate=True)
        finally:
            model.set_attn_implementation("sdpa")
        results[attention] = (torch.stack(out.logits), cache.stats())
    (dense_logits, dense_stats), (fused_logits, fused_stats) = results["sdpa"], results["ecc"]
    torch.testing.assert_close(fused_logits, dense_logits, rtol=1e-4, atol=1e-4, equal_nan=True)  # int4: scales can be hit
    assert fused_stats == dense_stats
    assert not fused_logits.isnan().all()
    if fault is not None and mode not in ("int4", "fp8"):
        assert dense_stats["corrected"] > 0


@pytest.mark.parametrize("mode", ["int12-golay", "fp8"])
def test_compiled_fused_decode_loop_has_no_graph_breaks(mode):
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = CONFIGS["llama"]().eval()
    model.set_attn_implementation("ecc")
    ids = prompt(batch=1, length=8)
    eager_cache = ECCCache(model.config, 1, 16, mode=mode, device="cpu", dtype=torch.float32)
    cache = ECCCache(model.config, 1, 16, mode=mode, device="cpu", dtype=torch.float32)
    compiled = torch.compile(model.forward, fullgraph=True)
    with torch.no_grad():
        model(ids, **cache_argument(model, cache), use_cache=True)
        model(ids, **cache_argument(model, eager_cache), use_cache=True)
        token = torch.tensor([[5]])
        for step in range(3):
            position = torch.tensor([[8 + step]])
            got = compiled(token, **cache_argument(model, cache), use_cache=True, position_ids=position).logits
            want = model(token, **cache_argument(model, eager_cache), use_cache=True, position_ids=position).logits
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert cache.stats()["read"] == eager_cache.stats()["read"] > 0


@pytest.mark.parametrize("mode, scheme", [("int4-hamming84-interp", {}), ("int4-secded72", {}), ("fp8", {}),
                                          ("int4-hamming84-interp", dict(residual_length=4)),
                                          ("int12-golay", dict(key_quant="channel", channel_block=4, residual_length=4))], ids=str)
def test_a_compiled_steps_inputs_but_the_token_and_positions_have_static_addresses(mode, scheme):
    """A compiled decoding step's graph inputs are the step's token and positions, the model's
    parameters and buffers, and the cache's tensors: its buffers, length, counters and the codec
    tables the ops take. Every cache tensor is a static address, which CUDA graphs
    (``mode="reduce-overhead"``) read in place. The tables were not: each replay copied them into
    placeholders of the graph's, and the recorded attention calls, keyed on the placeholders,
    missed the kept nibble parity tables and made their own (4-5 launches a layer, H100). With a
    window, its counters were not either: a step that mutates an input CUDA graphs do not hold
    still is not recorded at all, and a windowed step ran every kernel from Python (H100, 4 layers,
    batch 8: 385 tokens/s against 5,962 without a window)."""
    torch._dynamo.reset()
    model = CONFIGS["llama"]().eval()
    model.set_attn_implementation("ecc")
    cache = ECCCache(model.config, 2, 32, mode=mode, device="cpu", dtype=torch.float32, **scheme)
    token, position = torch.tensor([[5], [6]]), torch.tensor([[8], [8]])
    inputs = []

    def backend(gm, example_inputs):
        for node in gm.graph.nodes:
            if node.op == "placeholder" and "grapharg" in node.meta:
                inputs.append((node.name, node.meta["grapharg"].example))
        return gm.forward

    with torch.no_grad():
        model(prompt(batch=2, length=8), **cache_argument(model, cache), use_cache=True)
        torch.compile(model.forward, fullgraph=True, backend=backend)(token, **cache_argument(model, cache), use_cache=True,
                                                                    position_ids=position)
    if mode != "fp8":
        assert any(t.dim() == 1 and t.dtype == torch.int32 for _, t in inputs), "no codec table among the inputs"
    moving = [name for name, t in inputs if isinstance(t, torch.Tensor) and not isinstance(t, torch.nn.Parameter)
              and getattr(t, "_dynamo_static_input_type", None) is None and t is not token and t is not position]
    assert moving == [], moving


@pytest.mark.parametrize("opaque", [False, True])
def test_opaque_ops_stay_calls_in_the_compiled_graph_and_decode_alike(opaque):
    """Under ``ecc_tensor.ops.opaque_ops()`` the compiled decoding step keeps the ops as calls
    (its AOT graph names ``ecc.decode_attention`` and ``ecc.quantize_encode``), where by default
    torch traces into their bodies (on the CPU, the reference's aten ops); logits and counters
    equal eager's either way, with no graph break."""
    from torch._dynamo.testing import AotEagerAndRecordGraphs

    from ecc_tensor.ops import opaque_ops

    torch._dynamo.reset()
    torch.manual_seed(0)
    model = CONFIGS["llama"]().eval()
    model.set_attn_implementation("ecc")
    ids = prompt(batch=1, length=8)
    caches = [ECCCache(model.config, 1, 16, mode="int4-hamming84-interp", device="cpu", dtype=torch.float32) for _ in range(2)]
    backend = AotEagerAndRecordGraphs()
    compiled = torch.compile(model.forward, fullgraph=True, backend=backend)
    with torch.no_grad(), opaque_ops(opaque):
        for cache in caches:
            model(ids, **cache_argument(model, cache), use_cache=True)
        for step in range(2):
            token, position = torch.tensor([[5 + step]]), torch.tensor([[8 + step]])
            got = compiled(token, **cache_argument(model, caches[0]), use_cache=True, position_ids=position).logits
            want = model(token, **cache_argument(model, caches[1]), use_cache=True, position_ids=position).logits
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert caches[0].stats() == caches[1].stats() and caches[0].stats()["read"] > 0
    graph = "\n".join(str(g.graph) for g in backend.fw_graphs)
    assert backend.fw_graphs and (("ecc.decode_attention" in graph and "ecc.quantize_encode" in graph) == opaque)
    assert torch._functorch.config.decompose_custom_triton_ops  # torch's default, restored


@pytest.mark.parametrize("mode", ["int4-hamming84", "fp8"])
def test_compiled_fused_chunk_longer_than_a_decode_step_equals_eager(mode):
    """A compiled chunk of more than MAX_FUSED_QUERIES tokens (chunked prefill) writes the
    codewords (fp8: the words) and reads them back dequantized in one graph."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = CONFIGS["llama"]().eval()
    model.set_attn_implementation("ecc")
    ids, chunk = prompt(batch=1, length=8), prompt(batch=1, length=MAX_FUSED_QUERIES + 2)
    caches = [ECCCache(model.config, 1, 32, mode=mode, device="cpu", dtype=torch.float32) for _ in range(2)]
    position = torch.arange(8, 8 + chunk.shape[1])[None]
    with torch.no_grad():
        for cache in caches:
            model(ids, **cache_argument(model, cache), use_cache=True)
        got = torch.compile(model.forward, fullgraph=True)(chunk, **cache_argument(model, caches[0]), use_cache=True,
                                                           position_ids=position).logits
        want = model(chunk, **cache_argument(model, caches[1]), use_cache=True, position_ids=position).logits
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_attention_argument_is_checked(model):
    with pytest.raises(ValueError, match="attention"):
        ECCCache(model.config, 1, 8, attention="flash")
    with pytest.raises(ValueError, match="set_attn_implementation"):
        ECCCache(model.config, 1, 8, attention="fused")  # the model still uses sdpa


@pytest.mark.parametrize("mode", ["fp16", "int4", "int12-golay"])
def test_read_counts_only_written_tokens(model, mode):
    cache = ecc(model, mode)
    with torch.no_grad():
        model(prompt(batch=2, length=12), **cache_argument(model, cache), use_cache=True)
    config = cache.config
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = config.hidden_size // config.num_attention_heads
    per_row = {"fp16": head_dim, "int4": head_dim, "int12-golay": -(-head_dim // 3)}[mode]  # values or codewords
    assert cache.stats()["read"] == len(cache.layers) * 2 * 2 * heads * 12 * per_row


def test_sizes_are_checked_before_they_can_go_wrong():
    model = CONFIGS["llama"]().eval()
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="max_batch_size"):
            ECCCache(model.config, bad, 16)
    for bad in (0, -4):
        with pytest.raises(ValueError, match="group_size"):
            ECCCache(model.config, 1, 16, group_size=bad)
    with pytest.raises(ValueError, match="exceeds the model's 128 positions"):
        ECCCache(model.config, 1, 129)
    cache = ECCCache(model.config, 1, 16)
    with pytest.raises(ValueError, match="max_batch_size=1 and given a batch of 3"):
        with torch.no_grad():
            model(prompt(batch=3, length=4), **cache_argument(model, cache))
    early = ECCCache(model.config, 2, 16, device="cpu", dtype=torch.float32)
    with pytest.raises(ValueError, match="batches of 2 sequences"):
        with torch.no_grad():
            model(prompt(batch=1, length=4), **cache_argument(model, early))


def test_a_new_prompt_on_a_used_cache_asks_for_reset(model):
    """generate() keeps only the prompt's tokens past what the cache holds: with 16 held and
    a prompt of 8, none (input_ids[:, 8 - 16:]); a message that names reset(), not a reshape
    error from inside the model. (Other lengths are indistinguishable from a continuation, for
    transformers' own static cache too: the docs say to reset before every new prompt.)"""
    cache = ecc(model, "int4-hamming84", batch=1, length=64)
    greedy(model, cache, prompt(batch=1, length=12), new=5)
    assert int(cache.get_seq_length()) == 16
    with pytest.raises(ValueError, match=r"reset\(\)"):
        greedy(model, cache, prompt(batch=1, length=8, seed=1), new=4)
    cache.reset()
    fresh = greedy(model, ecc(model, "int4-hamming84", batch=1, length=64), prompt(batch=1, length=8, seed=1), new=4)
    assert torch.equal(greedy(model, cache, prompt(batch=1, length=8, seed=1), new=4), fresh)


def test_cache_argument_is_the_keyword_this_transformers_takes(model):
    import inspect

    from ecc_tensor.integrations.hf import cache_argument

    (keyword,) = cache_argument(model, None)
    assert keyword in inspect.signature(type(model).forward).parameters
    cache = ecc(model, "int4", batch=1)
    with torch.no_grad():
        model(prompt(batch=1), **cache_argument(model, cache), use_cache=True)
    assert int(cache.get_seq_length()) == 12


def test_each_mode_gets_the_layer_of_its_storage(model):
    from ecc_tensor.integrations.hf import DenseLayer, ECCLayer

    assert all(type(layer) is DenseLayer for layer in ecc(model, "fp16").layers)
    assert all(type(layer) is ECCLayer for layer in ecc(model, "int12-golay").layers)


@pytest.mark.parametrize("mode", ["int4-hamming84", "int4-hamming84-interp"])
def test_an_interpolating_mode_erases_a_scale_codeword_with_three_flips(mode):
    """Golay corrects three flips; a mode that interpolates what is detected decodes its scales
    at radius 2 instead (metadata.codec_tables), so that five flips are never silent: three
    flips in a scale's codeword then erase its row, which is interpolated from its neighbours."""
    config = CONFIGS["llama"]().config
    cache = ECCCache(config, 1, 16, mode=mode, device="cpu", dtype=torch.float32)
    heads, head_dim = config.num_key_value_heads, config.hidden_size // config.num_attention_heads
    g = torch.Generator().manual_seed(0)
    k, v = (torch.randn(1, heads, 6, head_dim, generator=g) for _ in range(2))
    clean, _ = cache.update(k, v, 0)
    cache.layers[0]._k.meta[0, 0, 2, 0] ^= 0x07  # three flips in the codeword of token 2's scale's first nibble
    got, _ = cache.update(k[:, :, :1], v[:, :, :1], 0)  # a read (of one more token)
    meta = cache.stats()["metadata"]
    if mode.endswith("interp"):
        assert meta["detected"] == 1 and meta["corrected"] == 0
        torch.testing.assert_close(got[0, 0, 2], (clean[0, 0, 1] + clean[0, 0, 3]) / 2)
    else:
        assert meta["corrected"] == 1 and meta["detected"] == 0
        torch.testing.assert_close(got[0, 0, 2], clean[0, 0, 2], rtol=0, atol=0)
    torch.testing.assert_close(got[0, 0, :2], clean[0, 0, :2], rtol=0, atol=0)


def test_keys_per_channel_keep_their_scales_full_radius_and_the_window_takes_two():
    """Under keys per channel an -interp mode decodes the keys' channel scales at Golay's full
    radius (erasing one would erase a channel of a whole block), the values' per-token scales
    and every window word at radius 2; a mode without interpolation decodes all at radius 3."""
    config = CONFIGS["llama"]().config
    leaders = {}
    for mode in ("int4-hamming84", "int4-hamming84-interp"):
        cache = ECCCache(config, 1, 16, mode=mode, device="cpu", dtype=torch.float32, key_quant="channel", channel_block=4,
                         residual_length=2)
        heads, head_dim = config.num_key_value_heads, config.hidden_size // config.num_attention_heads
        cache.update(torch.randn(1, heads, 3, head_dim), torch.randn(1, heads, 3, head_dim), 0)
        layer = cache.layers[0]
        syndrome_tables = (layer._k.meta_tables.syndrome_table, layer._v.meta_tables.syndrome_table,
                           layer._k.window_tables[1], layer._v.window_tables[1])
        leaders[mode] = [int((t >= 0).sum()) for t in syndrome_tables]
    full, two = 1 + 24 + 276 + 2024, 1 + 24 + 276
    assert leaders["int4-hamming84"] == [full] * 4
    assert leaders["int4-hamming84-interp"] == [full, two, two, two]
