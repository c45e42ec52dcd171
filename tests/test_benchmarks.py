"""The benchmark scripts run end to end (tiny sizes, CPU reference path); no timing is asserted."""

import torch

from benchmarks.bench_codecs import bench, to_markdown


def test_bench_codecs_smoke():
    rows = bench(torch.device("cpu"), mib=0.01, head_dim=16, dtype=torch.float16)
    assert {r["codec"] for r in rows} == {"-", "int4", "hamming74", "hamming84", "golay24"}
    assert "decode_dequantize" in to_markdown(rows)


def test_bench_e2e_smoke(capsys):
    from benchmarks.bench_e2e import main

    main(["--shape", "tiny", "--device", "cpu", "--batch", "2", "--context", "40", "--steps", "2", "--no-compile", "--modes", "static", "int4-hamming84-interp",
          "--attention", "both"])
    out = capsys.readouterr().out
    assert "int4-hamming84-interp (fused)" in out and "int4-hamming84-interp (dense)" in out and "tokens/s" in out


def test_bench_attention_smoke(capsys):
    from benchmarks.bench_attention import main

    main(["--device", "cpu", "--batch", "1", "--context", "40", "--q-heads", "4", "--kv-heads", "2", "--head-dim", "16", "--iters", "1"])
    out = capsys.readouterr().out
    for path in ("SDPA", "fused int4", "fused hamming84-interp", "fused golay24", "unfused golay24"):
        assert path in out
