"""The GPU kernels of one compiled decoding step, with the package's ops kept opaque and
inlined, in alternating rounds in one process: decode tokens/s, the step's kernel time and
kernel count, and its largest kernels by name (torch.profiler over a few steps replayed from
torch.compile's CUDA graphs, mode="reduce-overhead"). What an opaque op launches beyond the
kernels Inductor fuses for an inlined one shows as extra small kernels of torch's.

    python tools/step_kernels.py                                  # 8 layers, batch 8, 4k, Hamming(8,4)+interp
    python tools/step_kernels.py --layers 4 --batch 1 --mode int4 --top 20
    python tools/step_kernels.py --context 32768 --modes static-folded int4-hamming84-interp --ways opaque --rounds 1
    python tools/step_kernels.py --modes int4-hamming84-interp --residual-length 128 --key-quant channel --ways opaque

With ``--residual-length`` the step also reads (and, in modes with a code, decodes) the recent
window's tokens: its decode and interpolation kernels show beside the attention's.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks"))

import torch  # noqa: E402
import bench_e2e  # noqa: E402

from ecc_tensor.ops import opaque_ops  # noqa: E402


def step_kernels(model, mode: str, batch: int, context: int, opaque: bool, steps: int = 24, profiled: int = 6, **scheme):
    """(tokens/s, {kernel name: (launches, GPU us)} per step) of the compiled step; ``scheme``:
    ECCCache's key_quant and residual_length."""
    device = torch.device("cuda")
    torch._dynamo.reset()
    cache = bench_e2e.make_cache(mode, model.config, batch, context + steps + profiled + 8, device, torch.bfloat16,
                                  **({} if mode in bench_e2e.BASELINES else scheme))
    bench_e2e.fill(cache, model.config, batch, context, device, torch.bfloat16)
    with opaque_ops(opaque), torch.no_grad():
        step = bench_e2e.decode_step(model, cache, batch, context, True, device)
        for i in range(4):  # compile, warm up, record
            step(i)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(4, 4 + steps):
            step(i)
        torch.cuda.synchronize()
        rate = batch * steps / (time.perf_counter() - t0)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            for i in range(4 + steps, 4 + steps + profiled):
                step(i)
            torch.cuda.synchronize()
    kernels = collections.defaultdict(lambda: [0, 0.0])
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            entry = kernels[event.name]
            entry[0] += 1
            entry[1] += event.device_time_total
    return rate, {name: (n / profiled, us / profiled) for name, (n, us) in kernels.items()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--modes", nargs="+", default=["int4-hamming84-interp"],
                   help=f"ECCCache modes, or the baselines {', '.join(bench_e2e.BASELINES)} (whose step has no ops to keep opaque)")
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--context", type=int, default=4096)
    p.add_argument("--rounds", type=int, default=2, help="every mode and way, this many times")
    p.add_argument("--ways", nargs="+", choices=["opaque", "inlined"], default=["opaque", "inlined"],
                   help="how the package's ops meet torch.compile, in this order each round")
    p.add_argument("--key-quant", choices=["token", "channel"], default="token", help="ECC modes' key quantization axis")
    p.add_argument("--residual-length", type=int, default=0, help="ECC modes' recent tokens kept as 16-bit words")
    p.add_argument("--top", type=int, default=14, help="kernels listed per run, by GPU time")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("step_kernels.py profiles compiled steps replayed from CUDA graphs: it needs a CUDA device")
    model = bench_e2e.build_model("llama3-8b", torch.device("cuda"), torch.bfloat16, args.layers)
    for _ in range(args.rounds):
        for mode in args.modes:
            baseline = mode in bench_e2e.BASELINES
            model.set_attn_implementation(bench_e2e.FOLDED if mode == "static-folded" else "sdpa" if baseline else "ecc")
            for way in args.ways[:1] if baseline else args.ways:
                rate, kernels = step_kernels(model, mode, args.batch, args.context, way == "opaque",
                                             key_quant=args.key_quant, residual_length=args.residual_length)
                total = sum(us for _, us in kernels.values())
                count = sum(n for n, _ in kernels.values())
                label = mode if baseline else f"{mode}, ops {way}"
                print(f"== {label}: {rate:.1f} tokens/s; {total:.0f} us of kernels a step, {count:.0f} launches", flush=True)
                for name, (n, us) in sorted(kernels.items(), key=lambda kv: -kv[1][1])[:args.top]:
                    print(f"   {us:9.1f} us {n:6.1f}x  {name[:100]}")
                # What an op or the CUDA graph launches of torch's own (copies, fills, gathers), beside
                # Inductor's, cuBLAS's and this package's kernels.
                torchs = {name: n for name, (n, _) in kernels.items() if "at::native" in name}
                print(f"   kernels of torch's: {sum(torchs.values()):.0f} a step"
                      + "".join(f"; {n:.0f}x {name[:80]}" for name, n in sorted(torchs.items(), key=lambda kv: -kv[1])), flush=True)
                torch.cuda.empty_cache()

if __name__ == "__main__":
    main()
