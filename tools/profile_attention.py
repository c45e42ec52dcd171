"""Where the time of one fused decode-attention call goes: GPU time per kernel (torch.profiler)
next to the call's wall time, so launch overhead and kernel time can be told apart.

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


if __name__ == "__main__":
    main()
