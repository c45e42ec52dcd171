"""The Python time of the eager calls of a decoding step on the GPU path, without a GPU:
``ecc::decode_attention`` and ``ecc::quantize_encode`` (a cache's write of one token).

Runs the CUDA launchers on CPU tensors with every Triton launch replaced by a no-op, so what is
timed is this package's Python (argument checks, the launch plan, allocations) and PyTorch's
dispatch of the op, not the kernels nor Triton's own launch code. Best of ``--repeat`` runs of
``--number`` calls, per codec and entry point:

- ``ops.decode_attention``: the Python entry point (``ops/dispatch.py``'s ``call_op``);
- ``torch.ops.ecc``: the op through the dispatcher, autograd layers included;
- ``launcher``: ``triton_decode_attention`` alone;
- ``ops.quantize_encode`` and its launcher ``triton_quantize_encode``, one token of every head.

``--steps MODE ...`` times instead a whole eager decoding step of a small Llama (8 layers,
transformers' model code, float16 on the CPU, one thread) over an ``ECCCache`` of each mode
filled with 128 tokens, the kernels stubbed the same way, per layer: this package's Python,
transformers' and the small model's CPU arithmetic (``static-folded``: the stock static cache,
for comparison).

    python tools/host_overhead.py                      # int4, hamming84, golay24, secded72
    python tools/host_overhead.py --codecs hamming84 --number 50
    python tools/host_overhead.py --steps static-folded int4 int4-hamming84-interp
"""

from __future__ import annotations

import argparse
import contextlib
import timeit
from unittest import mock

import torch

import ecc_tensor.ops as ops
import ecc_tensor.ops.attention.channel_scales as channel_scales
import ecc_tensor.ops.codec_kernels as codec_kernels
import ecc_tensor.ops.library as library
from ecc_tensor.counters import new_counters
from ecc_tensor.metadata import codec_tables
from ecc_tensor.ops.attention import launch, plan


class _NoLaunch:
    """``wrap_triton(kernel)[grid](...)`` that launches nothing."""

    def __init__(self, kernel):
        pass

    def __getitem__(self, grid):
        return lambda *args, **kwargs: None


def _best_us(fn, number: int, repeat: int) -> float:
    for _ in range(10):
        fn()
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def measure(codec: str, batch: int = 1, kv_heads: int = 8, q_heads: int = 32, seq: int = 4096, head_dim: int = 128,
            number: int = 100, repeat: int = 7) -> dict[str, float]:
    """Microseconds per call of each entry point (see the module docstring)."""
    x = torch.randn(batch, kv_heads, seq, head_dim)
    k, v = ops.quantize_encode(x, codec), ops.quantize_encode(-x, codec)
    query = torch.randn(batch, q_heads, 1, head_dim, dtype=torch.float16)
    seq_lens = torch.full((batch,), seq, dtype=torch.int64)
    counters = new_counters("cpu")
    args = (query, *k, *v, *codec_tables(codec, "cpu"), codec, head_dim, 1, True, False, seq_lens, counters, None, False, 0.1)
    token = torch.randn(batch, kv_heads, 1, head_dim, dtype=torch.float16)
    tables = codec_tables(codec, "cpu")
    with contextlib.ExitStack() as stack:
        for patch in _stubbed():
            stack.enter_context(patch)
        return {
            "ops.decode_attention": _best_us(lambda: ops.decode_attention(query, k, v, codec, seq_lens=seq_lens, counters=counters,
                                                                          scale=0.1), number, repeat),
            "torch.ops.ecc": _best_us(lambda: torch.ops.ecc.decode_attention(*args), number, repeat),
            "launcher": _best_us(lambda: launch.triton_decode_attention(*args), number, repeat),
            "ops.quantize_encode": _best_us(lambda: ops.quantize_encode(token, codec), number, repeat),
            "quantize_encode launcher": _best_us(
                lambda: codec_kernels.triton_quantize_encode(token, tables[0], tables[2], codec, None, True), number, repeat),
        }


def _stubbed():
    """Every Triton launch of the GPU path a no-op, CPU tensors taking that path."""
    patches = [mock.patch.object(library, "_on_gpu", lambda t: True), mock.patch.object(plan, "_multiprocessors", lambda d: 132)]
    patches += [mock.patch.object(module, "wrap_triton", _NoLaunch) for module in (launch, channel_scales, codec_kernels)]
    return patches


def measure_step(mode: str, layers: int = 8, context: int = 128, number: int = 10, repeat: int = 7) -> float:
    """Microseconds per layer of an eager decoding step (see the module docstring)."""
    import pathlib
    import sys

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_e2e
    from ecc_tensor.integrations.hf import cache_argument

    device, dtype = torch.device("cpu"), torch.float16
    model = bench_e2e.build_model("tiny", device, dtype, layers=layers)
    if mode not in bench_e2e.BASELINES:
        model.set_attn_implementation("ecc")
    elif mode == "static-folded":
        model.set_attn_implementation(bench_e2e.FOLDED)
    cache = bench_e2e.make_cache(mode, model.config, 1, context + 16 + number * repeat, device, dtype)  # a row a step
    bench_e2e.fill(cache, model.config, 1, context, device, dtype)
    token = torch.zeros(1, 1, dtype=torch.long)
    position = torch.full((1, 1), context)
    with contextlib.ExitStack() as stack, torch.no_grad():
        for patch in _stubbed():
            stack.enter_context(patch)
        return _best_us(lambda: model(token, **cache_argument(model, cache), use_cache=True, position_ids=position), number,
                        repeat) / layers


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--codecs", nargs="+", default=["int4", "hamming84", "golay24", "secded72"])
    p.add_argument("--number", type=int, default=100, help="calls per timed run")
    p.add_argument("--repeat", type=int, default=7, help="timed runs (the best is reported)")
    p.add_argument("--steps", nargs="+", metavar="MODE", help="time eager decoding steps of a small model instead, per cache mode")
    args = p.parse_args(argv)
    if args.steps:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # the small model's arithmetic on one core, as steady as it gets
        try:
            print("| cache mode | eager step per layer (us) |")
            print("|---|---:|")
            for mode in args.steps:
                print(f"| {mode} | {measure_step(mode, number=args.number // 10 or 1, repeat=args.repeat):.0f} |", flush=True)
        finally:
            torch.set_num_threads(threads)
        return
    print("| codec | ops.decode_attention (us) | torch.ops.ecc (us) | launcher (us) | ops.quantize_encode (us) | its launcher (us) |")
    print("|---|---:|---:|---:|---:|---:|")
    for codec in args.codecs:
        t = measure(codec, number=args.number, repeat=args.repeat)
        print(f"| {codec} | {t['ops.decode_attention']:.1f} | {t['torch.ops.ecc']:.1f} | {t['launcher']:.1f} | "
              f"{t['ops.quantize_encode']:.1f} | {t['quantize_encode launcher']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
