"""Tables made from Python data on the caller's device, and the codec ops called eagerly inside
a CUDA graph capture (as the benchmarks, and servers that capture their own decode step,
record them): a table copied from pageable host memory inside a capture is an error. (Under
torch.compile the tables are constants of the graph.)"""

from __future__ import annotations

import pytest
import torch

import ecc_tensor.ops as ops
from ecc_tensor import device_tables, lanes
from ecc_tensor.codecs import CODEC_NAMES
from ecc_tensor.counters import new_counters
from ecc_tensor.faults import FaultModel
from ecc_tensor.storage import StorageLayout

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("values", [(3, 1, 2), ((0, 1, -1), (4, 5, 6)), tuple(range(16))])
def test_a_table_holds_its_values_as_int64(values):
    table = device_tables.int64_table(values, "cpu")
    assert table.dtype == torch.int64 and torch.equal(table, torch.tensor(values))


def test_a_table_on_the_cpu_is_made_for_each_call():
    """CPU tables are cheap and may be written by a caller; only GPU tables are shared."""
    assert device_tables.int64_table((1, 2), "cpu") is not device_tables.int64_table((1, 2), "cpu")


def test_a_table_made_while_tracing_is_the_tracers_own():
    """Under fake tensors (torch.compile's tracing) a GPU table is a fake constant of the trace,
    never a kept tensor: this runs without a GPU."""
    from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode

    with FakeTensorMode():
        table = device_tables.int64_table((4, 5, 6), "cuda")
        constants = device_tables.float32_table((float("-inf"), 0.0), "cuda")
    assert isinstance(table, FakeTensor) and table.device.type == "cuda" and table.shape == (3,)
    assert isinstance(constants, FakeTensor) and constants.dtype == torch.float32
    assert not any(key[0] in ((4, 5, 6), (float("-inf"), 0.0)) for key in device_tables._kept)


def test_float32_constants_come_as_given():
    constants = device_tables.float32_table((float("-inf"), 0.0, 2.5))
    assert constants.dtype == torch.float32 and constants.tolist() == [float("-inf"), 0.0, 2.5]


def test_the_lane_maps_come_as_before():
    slots = lanes._value_slots(100)
    assert torch.equal(lanes.value_slots(100), torch.tensor(slots)) and torch.equal(lanes.value_units(100), torch.tensor(slots) // 3)


@cuda
def test_a_gpu_table_is_made_once_per_device():
    first = device_tables.int64_table((7, 8, 9), "cuda")
    assert first.device.type == "cuda" and device_tables.int64_table((7, 8, 9), torch.device("cuda")) is first


@cuda
@pytest.mark.parametrize("table", ["int64_table", "float32_table", "nibble_parity_table"])
def test_a_kept_gpu_table_is_made_outside_a_pool_the_caller_allocates_to(table):
    """torch.compile's CUDA graphs warm a step up with the thread's allocations routed to the
    graph's pool; a table kept from there is memory the graph reuses (torch stopped bench_e2e's
    opaque-ops runs: "tensor(s) in the cudagraph pool not tracked as outputs")."""
    from ecc_tensor.codecs import get_codec
    from ecc_tensor.ops.codec_kernels import _NIBBLE_TABLES, _nibble_table, nibble_parity_table

    encode = get_codec("golay24").tables("cuda").encode_table.clone()  # a fresh key: nothing kept for it
    make = {"int64_table": lambda: device_tables.int64_table((11, 12, 13), "cuda"),
            "float32_table": lambda: device_tables.float32_table((11.0, 12.0, 13.0), "cuda"),
            "nibble_parity_table": lambda: nibble_parity_table(encode, 12)}[table]
    pool = torch.cuda.MemPool()
    with torch.cuda.use_mem_pool(pool):
        kept = make()
        transient = torch.empty(1024, device="cuda")  # the routing itself works
    in_pool = {block["address"] for segment in pool.snapshot() for block in segment["blocks"] if block["state"] == "active_allocated"}
    assert transient.data_ptr() in in_pool and kept.data_ptr() not in in_pool
    assert make() is kept
    want = _nibble_table(encode.cpu(), 12) if table == "nibble_parity_table" else torch.tensor((11, 12, 13))
    assert torch.equal(kept.cpu(), want.to(kept.dtype))
    _NIBBLE_TABLES.clear()


@cuda
@pytest.mark.parametrize("codec", CODEC_NAMES)
@pytest.mark.parametrize("head_dim", [128, 100])
def test_the_codec_ops_record_in_a_cuda_graph_and_replay_as_called(codec, head_dim):
    """Every codec op the decode and the benchmarks run, recorded with no table kept yet (the
    pinned copy) and replayed, gives what an eager call gives; so does a second recording."""
    torch.manual_seed(0)
    x = torch.randn(4, 96, head_dim, device="cuda", dtype=torch.float16)
    stored, meta = ops.quantize_encode(x, codec)
    layout = StorageLayout(codec, head_dim)
    fault = FaultModel("bsc", 2e-2, seed=1)
    faulty, _ = ops.inject(stored, layout.exposed_bits_per_byte, fault, step=0)
    values, _ = ops.decode(stored, codec, head_dim)
    calls = {
        "quantize_encode": lambda: ops.quantize_encode(x, codec),
        "decode_dequantize": lambda: ops.decode_dequantize(faulty, meta, codec, head_dim, counters=new_counters("cuda"), dtype=x.dtype),
        "decode_dequantize + interpolate": lambda: ops.decode_dequantize(faulty, meta, codec, head_dim, interpolate=True,
                                                                         counters=new_counters("cuda"), dtype=x.dtype),
        "encode": lambda: ops.encode(values, codec),
        "decode": lambda: ops.decode(faulty, codec, head_dim),
        "inject": lambda: ops.inject(stored, layout.exposed_bits_per_byte, fault, step=0),
    }
    for name, call in calls.items():
        want = call()
        for _ in range(2):
            device_tables._kept.clear()
            torch.cuda.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                got = call()
            graph.replay()
            torch.cuda.synchronize()
            for w, g in zip(*(t if isinstance(t, tuple) else (t,) for t in (want, got)), strict=True):
                assert torch.equal(w.reshape(-1).view(torch.uint8), g.reshape(-1).view(torch.uint8)), name
