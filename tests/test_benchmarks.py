"""The benchmark scripts run end to end (tiny sizes, CPU reference path); no timing is asserted."""

import re

import pytest
import torch

from benchmarks.bench_codecs import bench, to_markdown


def test_bench_codecs_smoke():
    rows = bench(torch.device("cpu"), mib=0.01, head_dim=16, dtype=torch.float16)
    assert {r["codec"] for r in rows} == {"-", "int4", "hamming74", "hamming84", "golay24", "secded72"}
    assert "decode_dequantize" in to_markdown(rows) and "decode_dequantize + interpolate" in to_markdown(rows)
    rows = bench(torch.device("cpu"), mib=0.01, head_dim=16, dtype=torch.float16, codecs=("golay24",), op_names=("decode_dequantize",),
                 group_size=8, symmetric=False)
    assert [(r["codec"], r["op"]) for r in rows] == [("-", "device copy"), ("golay24", "decode_dequantize")]


def test_bench_codecs_reads_a_faulted_store(capsys, monkeypatch):
    """``--ber``: the codewords and their scales are struck once before the reads are timed."""
    from benchmarks import bench_codecs

    struck = []
    inject = bench_codecs.ops.inject
    monkeypatch.setattr(bench_codecs.ops, "inject", lambda words, *a, **k: struck.append(words.numel()) or inject(words, *a, **k))
    bench_codecs.main(["--device", "cpu", "--mib", "0.01", "--head-dim", "16", "--codecs", "hamming84", "--ops", "decode", "--ber", "0.05"])
    assert "| hamming84 | decode |" in capsys.readouterr().out
    assert len(struck) == 2  # the codewords, then the scales
    with pytest.raises(SystemExit):
        bench_codecs.main(["--device", "cpu", "--ber", "2"])


def test_bench_e2e_smoke(capsys):
    from benchmarks.bench_e2e import main

    main(["--shape", "tiny", "--device", "cpu", "--batch", "2", "--context", "40", "--steps", "2", "--no-compile", "--modes",
          "static", "int4-hamming84-interp", "fp8",
          "--attention", "both"])
    out = capsys.readouterr().out
    assert "int4-hamming84-interp (fused)" in out and "int4-hamming84-interp (dense)" in out and "tokens/s" in out
    assert "fp8 (fused)" in out and "fp8 (dense)" in out
    assert "| first step (s) | vs static's first step | vs folded static's first step |" in out
    assert next(line for line in out.splitlines() if line.startswith("| static |")).endswith("| 1.00x | - |")  # against itself
    main(["--shape", "tiny", "--device", "cpu", "--batch", "1", "--context", "40", "--steps", "2", "--no-compile", "--modes",
          "static-folded", "int4-hamming84", "--attention", "dense", "--key-quant", "channel", "--residual-length", "8"])
    out = capsys.readouterr().out
    assert "int4-hamming84 (dense)" in out
    assert next(line for line in out.splitlines() if line.startswith("| static-folded |")).endswith("| - | 1.00x |")
    main(["--shape", "tiny", "--device", "cpu", "--batch", "1", "--context", "40", "--steps", "2", "--no-compile", "--modes",
          "static", "int4", "--ops", "both"])
    labels = [line.split("|")[1].strip() for line in capsys.readouterr().out.splitlines() if line.startswith("| ")][1:]
    assert labels == ["static", "int4 (fused, ops inlined)", "int4 (fused, opaque ops)"]  # a baseline has no ops: one row


def test_bench_attention_smoke(capsys):
    from benchmarks.bench_attention import main

    main(["--device", "cpu", "--batch", "1", "--context", "40", "--q-heads", "4", "--kv-heads", "2", "--head-dim", "16", "--iters", "1"])
    out = capsys.readouterr().out
    for path in ("SDPA", "fp8 dequantize + SDPA", "fused int4", "fused hamming84-interp", "fused golay24", "unfused golay24",
                 "fused secded72-interp"):
        assert path in out
    main(["--device", "cpu", "--batch", "1", "--context", "256", "--q-heads", "2", "--kv-heads", "1", "--head-dim", "16", "--iters",
          "1", "--paths", "hamming84", "hamming84-interp", "--channel-keys"])
    out = capsys.readouterr().out
    for path in ("unfused hamming84, channel keys |", "fused hamming84, channel keys |", "fused hamming84, channel keys + window |",
                 "unfused hamming84-interp, channel keys |"):
        assert path in out
    main(["--device", "cpu", "--batch", "1", "--context", "40", "--q-heads", "2", "--kv-heads", "1", "--head-dim", "16", "--iters",
          "1", "--paths", "hamming84", "--group-size", "8", "--asymmetric"])
    assert "fused hamming84 |" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--device", "cpu", "--head-dim", "16", "--group-size", "5"])


def test_tuning_tools_case_runs(monkeypatch):
    """The case tools/sweep_attention.py and tools/profile_attention.py time, on the CPU
    reference path: one call per input copy, each the op's output shape."""
    import argparse
    import pathlib
    import sys

    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).resolve().parents[1] / "tools"))
    from attention_case import add_case_arguments, decode_calls

    p = argparse.ArgumentParser()
    add_case_arguments(p, ["hamming84"])
    args = p.parse_args(["--batch", "2", "--context", "24", "--q-heads", "4", "--kv-heads", "2", "--head-dim", "16"])
    calls = decode_calls(args, args.codecs[0], copies=2, device="cpu")
    assert len(calls) == 2 and all(c().shape == (2, 4, 1, 16) for c in calls)
    # The call a cache makes while decoding: rows past the written ones, a mask over all of them.
    args = p.parse_args(["--batch", "2", "--context", "24", "--q-heads", "4", "--kv-heads", "2", "--head-dim", "16",
                         "--dtype", "bfloat16", "--spare", "8", "--masked"])
    (call,) = decode_calls(args, args.codecs[0], device="cpu")
    out = call()
    assert out.shape == (2, 4, 1, 16) and out.dtype == torch.bfloat16 and torch.isfinite(out).all()
    # Keys per channel and a window.
    args = p.parse_args(["--batch", "2", "--context", "256", "--q-heads", "4", "--kv-heads", "2", "--head-dim", "16",
                         "--channel-keys"])
    (call,) = decode_calls(args, args.codecs[0], device="cpu")
    out = call()
    assert out.shape == (2, 4, 1, 16) and torch.isfinite(out).all()
    # Struck storage (--ber): the same inputs, read through the decode's repairs.
    shape_args = ["--batch", "2", "--context", "64", "--q-heads", "4", "--kv-heads", "2", "--head-dim", "16", "--interpolate"]
    (clean,) = decode_calls(p.parse_args(shape_args), "hamming84", device="cpu")
    (struck,) = decode_calls(p.parse_args([*shape_args, "--ber", "0.02"]), "hamming84", device="cpu")
    clean, struck = clean(), struck()
    assert torch.isfinite(struck).all() and not torch.equal(clean, struck)
    with pytest.raises(SystemExit, match="--ber"):
        decode_calls(p.parse_args([*shape_args, "--ber", "0.02", "--channel-keys"]), "hamming84", device="cpu")
    assert "attention_case" in sys.modules
    # The sweep times the launcher's default first, once, whatever --configs holds.
    from sweep_attention import default_config, timed_configs

    from ecc_tensor.ops.attention import parse_config

    default = default_config(args, "hamming84")
    assert parse_config(default)["block_n"] == 32
    assert timed_configs(default, ["64,2,2,8", default, "16,1,3,16"]) == [default, "64,2,2,8", "16,1,3,16"]


def test_profile_counts_each_launch_of_a_call_apart(monkeypatch):
    """``tools/profile_attention.py``'s launch-order view: the attention kernel's main and
    deferred launches (one name) apart, averaged over the calls; kernels that are not whole calls
    of the same launches refused."""
    import pathlib

    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).resolve().parents[1] / "tools"))
    from profile_attention import launches_in_order

    call = [("attn", 30.0), ("attn", 4.0), ("combine", 3.0)]
    kernels = [(100.0 * c + i, name, us + c) for c in range(2) for i, (name, us) in enumerate(call)]
    assert launches_in_order(kernels[::-1], 2) == [("attn", 30.5), ("attn", 4.5), ("combine", 3.5)]
    with pytest.raises(ValueError, match="not 2 calls"):
        launches_in_order(kernels[:5], 2)
    with pytest.raises(ValueError, match="differs"):
        launches_in_order(kernels[:3] + [(200.0, "attn", 1.0), (201.0, "combine", 1.0), (202.0, "attn", 1.0)], 2)


def test_split_floor_sweep_plans_each_floor_and_restores_the_shipped_one(monkeypatch, capsys):
    """``sweep_attention.py --split-floors``: one line per floor and round, each with the plan's
    splits for that floor; the shipped floor is back afterwards."""
    import pathlib

    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).resolve().parents[1] / "tools"))
    import sweep_attention

    from ecc_tensor.ops.attention import plan

    shipped = plan.MIN_SPLIT_KEYS
    args = ["--codecs", "int4", "--batch", "1", "--context", "4096", "--q-heads", "2", "--kv-heads", "1", "--head-dim", "16",
            "--iters", "1", "--copies", "1", "--split-floors", "256", "64", "--rounds", "2"]
    monkeypatch.setattr(sweep_attention, "sweep_split_floors", lambda a, f=sweep_attention.sweep_split_floors: f(a, device="cpu"))
    sweep_attention.main(args)
    lines = [line for line in capsys.readouterr().out.splitlines() if "floor" in line]
    assert len(lines) == 4 and plan.MIN_SPLIT_KEYS == shipped
    assert "floor  256: 16 splits of 256 keys" in lines[0] and "floor   64: 64 splits of 64 keys" in lines[1]  # 4 "SMs" on a CPU


def test_bench_cache_cpu_smoke(capsys):
    from benchmarks.bench_cache_cpu import main

    main(["--lengths", "48", "64", "--modes", "int4-hamming84-interp", "--steps", "2"])
    assert "| 64 |" in capsys.readouterr().out


def test_the_folded_gqa_baseline_attends_what_transformers_sdpa_does():
    """bench_e2e's ``static-folded`` baseline (query heads folded onto the query axis, no copies
    of K/V) gives the stock SDPA's logits over a static cache, prefill and decoding steps."""
    import torch
    from transformers import StaticCache

    from benchmarks.bench_e2e import FOLDED, build_model
    from ecc_tensor.integrations.hf import cache_argument

    torch.manual_seed(0)
    model = build_model("tiny", torch.device("cpu"), torch.float32)
    ids = torch.randint(0, 256, (2, 9), generator=torch.Generator().manual_seed(1))
    logits = {}
    for attention in ("sdpa", FOLDED):
        model.set_attn_implementation(attention)
        cache = StaticCache(model.config, max_cache_len=16)
        with torch.no_grad():
            out = [model(ids, **cache_argument(model, cache), use_cache=True).logits]
            for step in range(3):
                token, position = ids[:, step : step + 1], torch.full((2, 1), 9 + step)
                out.append(model(token, **cache_argument(model, cache), use_cache=True, position_ids=position).logits)
        logits[attention] = torch.cat(out, dim=1)
    model.set_attn_implementation("sdpa")
    torch.testing.assert_close(logits[FOLDED], logits["sdpa"], rtol=1e-5, atol=1e-5)


def test_host_overhead_tool_times_the_gpu_path_without_a_gpu(monkeypatch, capsys):
    """tools/host_overhead.py runs the CUDA launcher on CPU tensors with the launches stubbed:
    a positive time per entry point and codec, and the table it prints."""
    import pathlib

    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).resolve().parents[1] / "tools"))
    import host_overhead

    times = host_overhead.measure("hamming84", kv_heads=2, q_heads=4, seq=64, head_dim=16, number=2, repeat=1)
    assert set(times) == {"ops.decode_attention", "torch.ops.ecc", "launcher", "ops.quantize_encode", "quantize_encode launcher"}
    assert min(times.values()) > 0
    host_overhead.main(["--codecs", "int4", "--number", "1", "--repeat", "1"])
    assert "| int4 |" in capsys.readouterr().out
    assert host_overhead.measure_step("int4-hamming84-interp", layers=2, context=16, number=1, repeat=1) > 0
    threads = torch.get_num_threads()
    host_overhead.main(["--steps", "static-folded", "int4", "--number", "10", "--repeat", "1"])
    assert "| int4 |" in capsys.readouterr().out and torch.get_num_threads() == threads


def test_secded_check_cost_stubs_keep_clean_outputs_and_take_effect(monkeypatch, capsys):
    """tools/secded_check_cost.py in Triton's interpreter (every variant patched in and out in
    turn in one process; a process each took 53 s on CI): every stubbed launch gives the shipped
    launch's output on clean storage, and the syndrome stubs are in effect (a flipped bit in
    every row is corrected by the shipped launch only, so each patch was undone)."""
    import pathlib

    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).resolve().parents[1] / "tools"))
    import secded_check_cost

    secded_check_cost.main(["--cpu"])
    out = capsys.readouterr().out
    for variant in secded_check_cost.VARIANTS:
        assert f"{variant}: output" in out
    assert "full: a flipped bit in every row corrected" in out
    for variant in secded_check_cost.SYNDROMES:
        assert f"{variant}: a flipped bit in every row attended as read" in out


def test_channel_keys_ratio_prints_a_ratio_per_codec(monkeypatch, capsys):
    """tools/channel_keys_ratio.py on CPU tensors (the op's reference): per-token and
    per-channel-key calls of each codec timed in alternating rounds, one line per codec."""
    import pathlib

    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).resolve().parents[1] / "tools"))
    import channel_keys_ratio

    channel_keys_ratio.main(["--cpu", "--codecs", "int4", "secded72", "--batch", "1", "--context", "256", "--q-heads", "2",
                             "--kv-heads", "1", "--head-dim", "16", "--rounds", "2", "--iters", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["int4", "secded72"]
    for line in lines:
        found = re.search(r"per token +([\d.]+) us .* window +([\d.]+) us +ratio ([\d.]+)", line)
        token, channel, ratio = (float(x) for x in found.groups())
        assert token > 0 and channel > 0 and abs(ratio - channel / token) <= 0.01 * ratio + 1e-3, line


def test_channel_scales_pass_time_prints_both_cases_and_their_digests(monkeypatch, capsys):
    """tools/channel_scales_pass_time.py in the interpreter (the test run's TRITON_INTERPRET):
    the pass timed over scales and over scales with zero points, each with a digest of what it
    wrote, the same at the launcher's rows a program and at any other (what an A/B compares)."""
    import pathlib

    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).resolve().parents[1] / "tools"))
    import channel_scales_pass_time

    from ecc_tensor.ops.attention import channel_scales

    picked = channel_scales.rows_per_program
    args = ["--cpu", "--batch", "1", "--kv-heads", "1", "--context", "96", "--channel-block", "32", "--head-dim", "16",
            "--iters", "1", "--runs", "1"]
    line_form = r"\(1, 1, 3, \d+\) rows of bytes, (\d+) a program, us [\d.]+, output sha256 ([0-9a-f]{16})$"
    runs = {}
    for per_program in (["0"], ["1", "4"]):
        channel_scales_pass_time.main(args + ["--rows-per-program", *per_program])
        for line in capsys.readouterr().out.splitlines():
            found = re.search(line_form, line)
            assert found, line
            runs.setdefault(line.split(":")[0], []).append((int(found.group(1)), found.group(2)))
    assert channel_scales.rows_per_program is picked
    assert list(runs) == ["scales", "scales and zero points"]
    for case in runs.values():
        assert [n for n, _ in case][1:] == [1, 4] and len({digest for _, digest in case}) == 1, runs
    assert runs["scales"][0][1] != runs["scales and zero points"][0][1]


def test_plot_attention_draws_bench_attention_output(capsys, tmp_path):
    """benchmarks/plot_attention.py reads the table bench_attention.py prints (its per-case
    rows, then the whole table: each row kept once) and draws one panel per batch size."""
    from benchmarks.bench_attention import main as bench
    from benchmarks.plot_attention import main as plot, parse_rows, speedups

    bench(["--device", "cpu", "--batch", "1", "2", "--context", "40", "--q-heads", "4", "--kv-heads", "2", "--head-dim", "16",
           "--iters", "1", "--paths", "int4"])
    table = tmp_path / "attention.md"
    table.write_text(capsys.readouterr().out)
    rows = parse_rows(table.read_text())
    assert {(r["batch"], r["path"]) for r in rows} >= {(1, "float16 SDPA"), (2, "fused int4")}
    assert len(rows) == len({(r["batch"], r["context"], r["path"]) for r in rows})
    series = speedups(rows)
    assert "float16 SDPA" not in series and set(series["fused int4"]) == {1, 2}
    plot([str(table), "-o", str(tmp_path / "attention.png"), "--paths", "fused int4"])
    assert (tmp_path / "attention.png").stat().st_size > 0
    empty = tmp_path / "empty.md"
    empty.write_text("nothing\n")
    with pytest.raises(SystemExit, match="no bench_attention.py rows"):
        plot([str(empty)])


def test_row_alignment_cost_reads_the_same_rows_at_every_stride(monkeypatch, capsys):
    """tools/row_alignment_cost.py in the interpreter: int4's kernel over rows of 64, 72 and 80
    bytes returns the same output bit for bit, one line per stride; with the stride not passed
    to the kernel (rows read at 64 bytes) the outputs differ and the tool fails."""
    import contextlib
    import pathlib

    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).resolve().parents[1] / "tools"))
    import row_alignment_cost

    argv = ["--cpu", "--batch", "1", "--context", "64", "--q-heads", "4", "--kv-heads", "1", "--rounds", "1", "--iters", "1"]
    assert row_alignment_cost.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[2] for line in lines] == ["64", "72", "80"] and "8 bytes off" in lines[1]
    monkeypatch.setattr(row_alignment_cost, "row_stride", lambda stride: contextlib.nullcontext())
    assert row_alignment_cost.main(argv) == 1


def test_dependent_launch_time_prints_both_per_codec_and_restores_the_switch(monkeypatch, capsys):
    """tools/dependent_launch_time.py on CPU tensors (the op's reference): plain launches and
    dependent ones, their dependents let start first thing or late, in alternating rounds, one
    line per codec, outputs equal, the switches as they were."""
    import pathlib

    from ecc_tensor.ops import launch_options

    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).resolve().parents[1] / "tools"))
    import dependent_launch_time

    before = launch_options.DEPENDENT_LAUNCHES, launch_options.LAUNCH_DEPENDENTS_AT
    assert dependent_launch_time.main(["--cpu", "--codecs", "int4", "golay24", "--batch", "1", "--context", "256", "--q-heads", "2",
                                       "--kv-heads", "1", "--head-dim", "16", "--rounds", "2", "--iters", "1"]) == 0
    assert (launch_options.DEPENDENT_LAUNCHES, launch_options.LAUNCH_DEPENDENTS_AT) == before
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["int4", "golay24"]
    pattern = (r"plain +[\d.]+ us +dependent +[\d.]+ us \([\d.]+\) +late trigger +[\d.]+ us \([\d.]+\)"
               r"  \(rounds:( [\d.]+){2}( \|( [\d.]+){2}){2}\)$")
    assert all(re.search(pattern, line) for line in lines), lines


def test_mask_read_time_prints_both_ways_per_codec(monkeypatch, capsys):
    """tools/mask_read_time.py on CPU tensors (the op's reference): a boolean decoding mask read
    from its float32 copy and in place as words, in alternating rounds, one line per codec,
    outputs equal; the launcher's choice restored after."""
    import pathlib

    from ecc_tensor.ops.attention import launch

    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).resolve().parents[1] / "tools"))
    import mask_read_time

    before = launch._mask_words
    assert mask_read_time.main(["--cpu", "--codecs", "int4", "hamming84", "--batch", "2", "--context", "256", "--q-heads", "2",
                                "--kv-heads", "1", "--head-dim", "16", "--rounds", "2", "--iters", "1"]) == 0
    assert launch._mask_words is before
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["int4", "hamming84"]
    pattern = r"float copy +[\d.]+ us +words +[\d.]+ us \([\d.]+\)  \(rounds:( [\d.]+){2} \|( [\d.]+){2}\)$"
    assert all(re.search(pattern, line) for line in lines), lines
