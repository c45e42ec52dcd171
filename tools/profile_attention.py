"""Where the time of one fused decode-attention call goes: GPU time per kernel (torch.profiler)
next to the call's wall time, so launch overhead and kernel time can be told apart; then each
launch of a call in launch order (the attention kernel's main and deferred launches apart). The
profiled calls repeat one input: its K and V may stay in L2 (32 MiB of int4 at batch 1 / 32k),
where ``sweep_attention.py`` and the benchmarks rotate over copies.

    python tools/profile_attention.py --codecs int4 hamming84 --batch 8 --context 32768
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from attention_case import add_case_arguments, decode_calls


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_case_arguments(p, ["int4", "hamming84", "golay24"])
    args = p.parse_args(argv)
    for codec in args.codecs:
        (call,) = decode_calls(args, codec)
        for _ in range(3):
            call()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(args.iters):
            call()
        enqueue = (time.perf_counter() - t0) / args.iters
        torch.cuda.synchronize()
        wall = (time.perf_counter() - t0) / args.iters
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(args.iters):
                call()
            torch.cuda.synchronize()
        kernels = {}
        for e in prof.key_averages():
            if e.device_type == torch.autograd.DeviceType.CUDA and e.count:
                kernels[e.key] = e.device_time_total / args.iters
        print(f"{codec}{' interp' if args.interpolate else ''}: host enqueue {enqueue * 1e6:.0f} us/call, "
              f"back-to-back {wall * 1e6:.0f} us/call, GPU {sum(kernels.values()):.0f} us/call")
        for name, us in sorted(kernels.items(), key=lambda kv: -kv[1]):
            print(f"    {us:9.1f} us  {name[:90]}")
        launched = [(e.time_range.start, e.name, e.time_range.elapsed_us()) for e in prof.events()
                    if e.device_type == torch.autograd.DeviceType.CUDA]
        print("  in launch order:")
        for i, (name, us) in enumerate(launches_in_order(launched, args.iters)):
            print(f"    {i + 1}. {us:9.1f} us  {name[:90]}")


def launches_in_order(kernels: list[tuple[float, str, float]], calls: int) -> list[tuple[str, float]]:
    """GPU kernels of ``calls`` identical calls as ``(start, name, us)``, in any order -> the
    launches of one call in launch order, each ``(name, mean us)``: a kernel launched twice in a
    call (the attention kernel's main and deferred launches) is counted apart, where grouping by
    name adds them up."""
    ordered = sorted(kernels)
    per_call, rest = divmod(len(ordered), calls)
    if rest or not per_call:
        raise ValueError(f"{len(ordered)} kernels are not {calls} calls of the same launches")
    launches = []
    for i in range(per_call):
        names = {ordered[c * per_call + i][1] for c in range(calls)}
        if len(names) != 1:
            raise ValueError(f"launch {i + 1} differs between calls: {sorted(names)}")
        launches.append((names.pop(), sum(ordered[c * per_call + i][2] for c in range(calls)) / calls))
    return launches


if __name__ == "__main__":
    main()
