"""The ``ecc`` custom ops: opcheck, agreement with the reference, torch.compile without breaks."""

from __future__ import annotations

import pytest
import torch
from torch.library import opcheck

import ecc_tensor.ops as ops
from ecc_tensor.codecs import CODEC_NAMES, get_codec
from ecc_tensor import counters as C
from ecc_tensor.counters import counters_to_dict, new_counters
from ecc_tensor.faults import METADATA_ADDRESS, FaultModel
from ecc_tensor.metadata import MetadataLayout, codec_tables
from ecc_tensor.quant import dequantize_int4, quantize_int4
from ecc_tensor.simulate import roundtrip
from ecc_tensor.storage import StorageLayout

X = torch.randn(2, 3, 7, 12, generator=torch.Generator().manual_seed(0))


def t(codec):
    return get_codec(codec).tables()


@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_opcheck_every_op(codec):
    tb = t(codec)
    values = torch.randint(0, 16, (3, 5, 12), dtype=torch.uint8)
    stored = torch.ops.ecc.encode(values, tb.encode_table, tb.syndrome_table, codec)
    opcheck(torch.ops.ecc.encode, (values, tb.encode_table, tb.syndrome_table, codec))
    opcheck(torch.ops.ecc.decode, (stored, tb.encode_table, tb.syndrome_table, codec, 12))
    # decode_dequantize's branches once each (symmetric or not, interpolation, a length): each
    # opcheck traces the op with dynamic shapes, 3-4 s on two cores.
    cases = {True: [(False, None)], False: [(True, None), (True, torch.tensor(4))]}
    for symmetric in (True, False):
        opcheck(torch.ops.ecc.quantize_encode, (X, *codec_tables(codec, "cpu"), codec, 6, symmetric))
        s, meta = torch.ops.ecc.quantize_encode(X, *codec_tables(codec, "cpu"), codec, 6, symmetric)
        for interpolate, seq_len in cases[symmetric]:
            opcheck(
                torch.ops.ecc.decode_dequantize,
                (s, meta, *codec_tables(codec, "cpu"), codec, 12, 2, symmetric, interpolate, new_counters(), torch.float16, seq_len),
            )
    opcheck(torch.ops.ecc.inject, (stored, 8, "bsc", 0.05, 3, 0, 1, 8, 1, 4096, 1 / 16))
    opcheck(torch.ops.ecc.inject, (stored, 8, "msb", 0.05, 3, 0, 1, 8, 1, 4096, 1 / 16, StorageLayout(codec, 12).value_msb_bits()))


def test_opcheck_inject_kinds():
    words = torch.randint(0, 256, (64,), dtype=torch.uint8)
    for kind in ("bsc", "burst", "msb", "page"):
        opcheck(torch.ops.ecc.inject, (words, 8, kind, 0.05, 3, 10, 1, 8, 1, 16, 0.5))


@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_ops_match_the_reference_pipeline(codec):
    layout = StorageLayout(codec, 12)
    q, scale, zero = quantize_int4(X, 4, symmetric=False)
    stored, meta = ops.quantize_encode(X, codec, 4, symmetric=False)
    meta_layout = MetadataLayout(codec, 3, symmetric=False)
    assert torch.equal(stored, layout.store(q)) and torch.equal(meta, meta_layout.store(scale, zero))
    counters = new_counters()
    out = ops.decode_dequantize(stored, meta, codec, 12, groups=3, symmetric=False, counters=counters)
    assert torch.equal(out, dequantize_int4(q, scale, zero))
    rows = X[..., 0].numel()
    c = counters_to_dict(counters)
    assert c["read"] == rows * layout.codewords_per_row and c["meta_read"] == rows * meta_layout.codewords_per_row
    assert sum(v for k, v in c.items() if k not in ("read", "meta_read")) == 0


@pytest.mark.parametrize("targets", ["all", "values"])
def test_ops_roundtrip_with_faults_matches_simulate(targets):
    """The ops pipeline (quantize_encode, inject into values and scales, decode_dequantize)
    equals simulate.roundtrip."""
    for mode, codec, interp in [("int4-hamming84-interp", "hamming84", True), ("int12-golay", "golay24", False), ("int4", "int4", False)]:
        fault = FaultModel("bsc", 0.03, seed=11, targets=targets)
        want, want_counters = roundtrip(X, mode, FaultModel("bsc", 0.03, seed=11, targets=targets))
        stored, meta = ops.quantize_encode(X, codec)
        corrupted, n = ops.inject(stored, StorageLayout(codec, 12).exposed_bits_per_byte, fault, step=0)
        meta_n = torch.zeros((), dtype=torch.int64)
        if targets == "all":
            meta, meta_n = ops.inject(meta, MetadataLayout(codec).exposed_bits_per_byte, fault, offset=METADATA_ADDRESS, step=0)
        counters = new_counters()
        got = ops.decode_dequantize(corrupted, meta, codec, 12, interpolate=interp, counters=counters)
        counters[C.INJECTED] += n
        counters[C.META_INJECTED] += meta_n
        assert torch.equal(got.view(torch.int32), want.view(torch.int32)), mode
        silent = [C.SILENT, C.META_SILENT]
        keep = [i for i in range(len(C.COUNTER_NAMES)) if i not in silent]
        assert torch.equal(counters[keep], want_counters[keep]), mode


def test_seq_len_limits_counting_and_interpolation_to_written_rows():
    """Rows at or beyond seq_len are neither counted nor used as interpolation neighbours."""
    stored, meta = ops.quantize_encode(X, "hamming84")
    stored[..., 5:, :] = 0x03  # unwritten rows: every codeword would decode as detected
    meta[..., 5:, :] = 0x03
    counters = new_counters()
    out = ops.decode_dequantize(stored, meta, "hamming84", 12, interpolate=True, counters=counters, seq_len=torch.tensor(5))
    c = counters_to_dict(counters)
    assert c["read"] == 2 * 3 * 5 * 12 and c["detected"] == 0 and c["meta_read"] == 2 * 3 * 5 * 3 and c["meta_detected"] == 0
    assert torch.equal(out[..., :5, :], ops.decode_dequantize(stored[..., :5, :], meta[..., :5, :], "hamming84", 12, interpolate=True))


def test_decode_dequantize_refuses_metadata_of_another_layout():
    stored, meta = ops.quantize_encode(X, "hamming84")
    with pytest.raises(ValueError, match="metadata"):
        ops.decode_dequantize(stored, meta, "hamming84", 12, symmetric=False)
    with pytest.raises(ValueError, match="metadata"):
        ops.decode_dequantize(stored, meta[..., :4], "hamming84", 12)


def test_quantize_encode_bad_group():
    with pytest.raises(ValueError, match="group_size"):
        ops.quantize_encode(X, "hamming84", 5)


@pytest.mark.parametrize("codec", ["hamming84", "golay24"])
def test_compile_fullgraph_roundtrip_has_no_graph_breaks(codec):
    torch._dynamo.reset()

    def fn(x, counters):
        stored, meta = ops.quantize_encode(x, codec)
        return ops.decode_dequantize(stored, meta, codec, x.shape[-1], interpolate=True, counters=counters)

    compiled = torch.compile(fn, fullgraph=True)
    c1, c2 = new_counters(), new_counters()
    assert torch.equal(compiled(X, c1), fn(X, c2))
    assert torch.equal(c1, c2)


@pytest.mark.parametrize("codec", ["hamming84", "golay24"])
def test_channel_key_entry_points_round_trip_through_the_reference(codec):
    """ops.quantize_encode_channels / decode_dequantize_channels: the reference functions with the
    codec's tables, and the keys come back within their per-channel quantization error."""
    from ecc_tensor.attention import dequantize_channel_cache, quantize_encode_channels
    from ecc_tensor.codecs import CodecTables

    x = torch.randn(2, 3, 64, 16, generator=torch.Generator().manual_seed(0))
    stored, meta = ops.quantize_encode_channels(x, codec, 32)
    tables = codec_tables(codec, "cpu")
    want_stored, want_meta = quantize_encode_channels(x, 32, CodecTables(*tables[:2]), CodecTables(*tables[2:]), codec)
    assert torch.equal(stored, want_stored) and torch.equal(meta, want_meta)
    counters = new_counters()
    got = ops.decode_dequantize_channels(stored, meta, codec, 16, interpolate=True, counters=counters)
    values, status = ops.decode(stored, codec, 16)
    want = dequantize_channel_cache(values, status, meta, CodecTables(*tables[2:]), codec, True, True, new_counters(), torch.float32)
    assert torch.equal(got, want) and int(counters[0]) == stored[..., 0].numel() * StorageLayout(codec, 16).codewords_per_row
    scale = x.abs().unflatten(-2, (2, 32)).amax(-2, keepdim=True) / 7
    assert ((got - x).abs().unflatten(-2, (2, 32)) <= scale / 2 + 1e-6).all()
