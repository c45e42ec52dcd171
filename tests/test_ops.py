"""The ``ecc`` custom ops: opcheck, agreement with the reference, torch.compile without breaks."""

from __future__ import annotations

import pytest
import torch
from torch.library import opcheck

import ecc_tensor.ops as ops
from ecc_tensor.codecs import CODEC_NAMES, get_codec
from ecc_tensor.counters import COUNTER_NAMES, new_counters
from ecc_tensor.faults import FaultModel
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
    for symmetric in (True, False):
        opcheck(torch.ops.ecc.quantize_encode, (X, tb.encode_table, tb.syndrome_table, codec, 6, symmetric))
        s, scale, zero = torch.ops.ecc.quantize_encode(X, tb.encode_table, tb.syndrome_table, codec, 6, symmetric)
        for interpolate, seq_len in ((False, None), (True, None), (True, torch.tensor(4))):
            opcheck(
                torch.ops.ecc.decode_dequantize,
                (s, scale, zero, tb.encode_table, tb.syndrome_table, codec, 12, interpolate, new_counters(), torch.float16, seq_len),
            )
    opcheck(torch.ops.ecc.inject, (stored, 8, "bsc", 0.05, 3, 0, 1, 8, 1, 4096, 1 / 16))


def test_opcheck_inject_kinds():
    words = torch.randint(0, 256, (64,), dtype=torch.uint8)
    for kind in ("bsc", "burst", "msb", "page"):
        opcheck(torch.ops.ecc.inject, (words, 8, kind, 0.05, 3, 10, 1, 8, 1, 16, 0.5))


@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_ops_match_the_reference_pipeline(codec):
    layout = StorageLayout(codec, 12)
    q, scale, zero = quantize_int4(X, 4, symmetric=False)
    stored, scale_op, zero_op = ops.quantize_encode(X, codec, 4, symmetric=False)
    assert torch.equal(stored, layout.store(q)) and torch.equal(scale_op, scale) and torch.equal(zero_op, zero)
    counters = new_counters()
    out = ops.decode_dequantize(stored, scale, zero, codec, 12, counters=counters)
    assert torch.equal(out, dequantize_int4(q, scale, zero))
    assert int(counters[0]) == X[..., 0].numel() * layout.codewords_per_row and not counters[1:].any()


def test_ops_roundtrip_with_faults_matches_simulate():
    """The ops pipeline (quantize_encode, inject, decode_dequantize) equals simulate.roundtrip."""
    for mode, codec, interp in [("int4-hamming84-interp", "hamming84", True), ("int12-golay", "golay24", False), ("int4", "int4", False)]:
        fault = FaultModel("bsc", 0.03, seed=11)
        want, want_counters = roundtrip(X, mode, FaultModel("bsc", 0.03, seed=11))
        stored, scale, zero = ops.quantize_encode(X, codec)
        corrupted, n = ops.inject(stored, StorageLayout(codec, 12).exposed_bits_per_byte, fault)
        counters = new_counters()
        got = ops.decode_dequantize(corrupted, scale, zero, codec, 12, interpolate=interp, counters=counters)
        counters[COUNTER_NAMES.index("injected")] += n
        assert torch.equal(got, want), mode
        assert torch.equal(counters[:4], want_counters[:4]), mode


def test_seq_len_limits_counting_and_interpolation_to_written_rows():
    """Rows at or beyond seq_len are neither counted nor used as interpolation neighbours."""
    stored, scale, zero = ops.quantize_encode(X, "hamming84")
    stored[..., 5:, :] = 0x03  # unwritten rows: every codeword would decode as detected
    counters = new_counters()
    out = ops.decode_dequantize(stored, scale, zero, "hamming84", 12, interpolate=True, counters=counters, seq_len=torch.tensor(5))
    assert int(counters[0]) == 2 * 3 * 5 * 12 and int(counters[2]) == 0
    assert torch.equal(out[..., :5, :], ops.decode_dequantize(stored[..., :5, :], scale[..., :5, :], zero, "hamming84", 12, interpolate=True))


def test_quantize_encode_bad_group():
    with pytest.raises(ValueError, match="group_size"):
        ops.quantize_encode(X, "hamming84", 5)


@pytest.mark.parametrize("codec", ["hamming84", "golay24"])
def test_compile_fullgraph_roundtrip_has_no_graph_breaks(codec):
    torch._dynamo.reset()

    def fn(x, counters):
        stored, scale, zero = ops.quantize_encode(x, codec)
        return ops.decode_dequantize(stored, scale, zero, codec, x.shape[-1], interpolate=True, counters=counters)

    compiled = torch.compile(fn, fullgraph=True)
    c1, c2 = new_counters(), new_counters()
    assert torch.equal(compiled(X, c1), fn(X, c2))
    assert torch.equal(c1, c2)
