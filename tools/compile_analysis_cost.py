"""What torch.compile spends tracing a protected model's decoding step, without a GPU.

A tiny Llama (``--layers`` decoder layers) fills an ``ECCCache`` on the CPU (the ops' PyTorch
reference), then its decoding step is compiled with ``aot_eager`` with the ops routed to their
Triton kernels, as on a GPU: Dynamo traces, AOT functionalizes, and torch analyses which
tensors each user Triton kernel writes (``ecc_tensor.ops.mutation_analysis``), for Hopper (a
stand-in driver answers the target; Triton compiles the IR front end only). The compiled step
then cannot run its kernels without a GPU; what is timed is the compile before that.

``--backend inductor`` goes on through Inductor's lowering, scheduling and code generation, with
Triton's compile of the kernels left out (a stub: ``tools/kernel_resources.py`` times that for
sm_90a). The graph's other operations are generated as C++ for the CPU rather than as Triton
for the GPU, so the seconds are not the GPU's; what grows with the layers over ``--modes
static``'s (the stock static cache, no user kernels) is what this package's call sites cost.
(The GPU's own: ``benchmarks/bench_e2e.py --compile-phases``.)

Prints, per mode and layer count: the first compiled step's seconds, Dynamo's compile phases
over ``--min-seconds``, the kernel analyses torch's function ran (``generated``) against those
the cache answered (``cached``), and the entries of torch's kernel side table (``kernels``,
which Inductor walks at each compile). ``generated`` and ``kernels`` should not grow with the
layers. ``--opaque`` compiles with the ops kept as opaque calls (``ecc_tensor.ops.opaque_ops``).

    python tools/compile_analysis_cost.py --modes int4 int4-secded72 --layers 8 32
    python tools/compile_analysis_cost.py --modes int4-secded72 --layers 8 --profile   # cProfile, 30 rows
    python tools/compile_analysis_cost.py --backend inductor --modes static int4-hamming84-interp --layers 4 8
    python tools/compile_analysis_cost.py --backend inductor --modes int4-hamming84-interp --layers 4 8 --opaque
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import pstats
import subprocess
import sys
import time


class _HopperWithoutGPU:
    """The part of a Triton driver torch's kernel analysis asks for: the target it generates
    the IR for."""

    def get_current_target(self):
        from codec_launches import HOPPER  # tools/, beside this script

        return HOPPER

    def get_current_device(self):
        return 0


def tiny_decoder(mode: str, layers: int, head_dim: int = 64, **cache_options):
    """A tiny bfloat16 Llama (4 query / 2 KV heads of ``head_dim``; ``mode`` "static": the stock
    static cache) after a 17-token prefill on the CPU (the ops' reference): (model, cache, the
    cache's keyword arguments to ``forward``, ids of 18 tokens, the last the decoding step's)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, StaticCache

    from ecc_tensor.integrations.hf import ECCCache, cache_argument

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=4 * head_dim, intermediate_size=64, num_hidden_layers=layers, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=256)
    model = LlamaForCausalLM(config).to(torch.bfloat16).eval()
    if mode == "static":
        cache = StaticCache(config=config, max_batch_size=2, max_cache_len=64)
        cache_kwargs = dict(past_key_values=cache)
    else:
        model.set_attn_implementation("ecc")
        cache = ECCCache(config, 2, 64, mode=mode, dtype=torch.bfloat16, **cache_options)
        cache_kwargs = cache_argument(model, cache)
    ids = torch.randint(0, 64, (2, 18))
    with torch.no_grad():
        model(ids[:, :17], **cache_kwargs, use_cache=True)
    return model, cache, cache_kwargs, ids


@contextlib.contextmanager
def ops_on_kernels():
    """Within it the ops launch their Triton kernels, as on a GPU, compiled for Hopper by a
    stand-in driver (set for the rest of the process: Triton has no driver to go back to here);
    a launch itself fails."""
    from triton.runtime.driver import driver

    import ecc_tensor.ops.library as library
    from ecc_tensor.interp import _KERNELS, register_interpolation_kernel

    on_gpu, interpolation = library._on_gpu, _KERNELS.get("cpu")
    driver.set_active(_HopperWithoutGPU())
    library._on_gpu = lambda t: True
    register_interpolation_kernel("cpu", _KERNELS["cuda"])
    try:
        yield
    finally:
        library._on_gpu = on_gpu
        if interpolation is None:
            _KERNELS.pop("cpu", None)
        else:
            register_interpolation_kernel("cpu", interpolation)


def first_compiled_step(forward, cache_kwargs: dict, ids) -> bool:
    """The decoding step's first call of the compiled ``forward``: compiled whole by the time its
    first kernel launch fails without a GPU. Whether it ran (the static cache's launches none)."""
    import torch

    try:
        with torch.no_grad():
            forward(ids[:, 17:], **cache_kwargs, use_cache=True, position_ids=torch.full((2, 1), 17))
    except torch._dynamo.exc.TorchDynamoException:  # the compile itself failed
        raise
    except Exception:  # noqa: BLE001 - the compiled step's first kernel launch, which needs the GPU: compiled by then
        return False
    return True


def measure(mode: str, layers: int, profile: bool, min_seconds: float, backend: str = "aot_eager", opaque: bool = False) -> dict:
    import torch
    from torch._higher_order_ops.triton_kernel_wrap import kernel_side_table

    from ecc_tensor.ops import opaque_ops

    analysis = _analysis()
    if backend == "inductor":  # everything but Triton's compile of the kernels (which needs the GPU's driver)
        from torch._inductor.runtime.triton_heuristics import CachingAutotuner

        CachingAutotuner.precompile = lambda self, *args, **kwargs: None
    # --opaque: the ops stay custom-op calls in the graph rather than their kernels inlined
    # (ecc_tensor.ops.opaque_ops); their launchers would run when the step does.
    with opaque_ops(opaque):
        model, _, cache_kwargs, ids = tiny_decoder(mode, layers)
        with ops_on_kernels():
            analysis.cache.clear()
            hits = analysis.hits
            forward = torch.compile(model.forward, fullgraph=True, backend=backend)
            profiler = cProfile.Profile() if profile else None
            t0 = time.perf_counter()
            if profiler:
                profiler.enable()
            if first_compiled_step(forward, cache_kwargs, ids) and mode != "static":
                raise SystemExit("the compiled step ran its kernels without a GPU")
            seconds = time.perf_counter() - t0
            if profiler:
                profiler.disable()
                pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks"))
    from bench_e2e import compile_phases  # Dynamo's own metrics, nested: a phase includes those it calls

    return dict(mode=mode, layers=layers, backend=backend, opaque=opaque, seconds=seconds, phases=dict(compile_phases(min_seconds)),
                generated=len(analysis.cache), cached=analysis.hits - hits, kernels=len(kernel_side_table.id_to_kernel))


def _analysis():
    """torch's kernel analysis as ``mutation_analysis`` wrapped it."""
    from ecc_tensor.ops import mutation_analysis

    analysis = mutation_analysis.current()
    if getattr(analysis, "cache", None) is None:
        raise SystemExit("the analysis cache is not installed (ECC_TENSOR_NO_ANALYSIS_CACHE?)")
    return analysis


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--modes", nargs="+", default=["int4", "int4-secded72"], help="cache modes, or static: the stock static cache")
    p.add_argument("--backend", choices=["aot_eager", "inductor"], default="aot_eager")
    p.add_argument("--layers", nargs="+", type=int, default=[8])
    p.add_argument("--profile", action="store_true")
    p.add_argument("--opaque", action="store_true", help="the ops as opaque custom-op calls, their kernels not inlined")
    p.add_argument("--min-seconds", type=float, default=0.3)
    p.add_argument("--json", action="store_true", help="one JSON object a line")
    p.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # MODE LAYERS: measure in this process
    args = p.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        raise SystemExit("run without TRITON_INTERPRET=1: the analysis generates the kernels' IR for the GPU")
    if args.one:
        print(json.dumps(measure(args.one[0], int(args.one[1]), args.profile, args.min_seconds, args.backend, args.opaque)))
        return 0
    for mode in args.modes:
        for layers in args.layers:  # a process each: compile caches and Dynamo's counters start empty
            cmd = [sys.executable, __file__, "--one", mode, str(layers), "--min-seconds", str(args.min_seconds), "--backend", args.backend]
            cmd += ["--profile"] * args.profile + ["--opaque"] * args.opaque
            out = subprocess.run(cmd, stdout=subprocess.PIPE,
                                 stderr=None if args.profile else subprocess.PIPE, text=True, check=False)
            if out.returncode:
                sys.stderr.write(out.stderr or "")
                return out.returncode
            result = json.loads(out.stdout.strip().splitlines()[-1])
            if args.json:
                print(json.dumps(result), flush=True)
                continue
            phases = ", ".join(f"{name} {t:.1f}" for name, t in result["phases"].items())
            label = mode + (" (opaque)" if args.opaque else "")
            print(f"{label:33} {layers:3} layers: first compiled step {result['seconds']:6.1f} s; kernel analyses generated "
                  f"{result['generated']}, cached {result['cached']}; side-table kernels {result['kernels']}; {phases}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
