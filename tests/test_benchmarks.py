"""The benchmark scripts run end to end (tiny sizes, CPU reference path); no timing is asserted."""

import torch

from benchmarks.bench_codecs import bench, to_markdown


def test_bench_codecs_smoke():
    rows = bench(torch.device("cpu"), mib=0.01, head_dim=16, dtype=torch.float16)
    assert {r["codec"] for r in rows} == {"-", "int4", "hamming74", "hamming84", "golay24"}
    assert "decode_dequantize" in to_markdown(rows)
