"""Where the time of one fused decode-attention call goes: GPU time per kernel (torch.profiler)
next to the call's wall time, so launch overhead and kernel time can be told apart.

    python tools/profile_attention.py --codecs int4 hamming84 --batch 8 --context 32768
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

import ecc_tensor.ops as ops
from ecc_tensor.codecs import get_codec
from ecc_tensor.counters import new_counters


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--codecs", nargs="+", default=["int4", "hamming84", "golay24"])
    p.add_argument("--interpolate", action="store_true")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--context", type=int, default=32768)
    p.add_argument("--q-heads", type=int, default=32)
    p.add_argument("--kv-heads", type=int, default=8)
    p.add_argument("--head-dim", type=int, default=128)
    p.add_argument("--iters", type=int, default=10)
    args = p.parse_args(argv)
    device = torch.device("cuda")
    g = torch.Generator(device=device).manual_seed(0)
    shape = (args.batch, args.kv_heads, args.context, args.head_dim)
    query = torch.randn(args.batch, args.q_heads, 1, args.head_dim, device=device, dtype=torch.float16, generator=g)
    for codec in args.codecs:
        k = ops.quantize_encode(torch.randn(shape, device=device, dtype=torch.float16, generator=g), codec)
        v = ops.quantize_encode(torch.randn(shape, device=device, dtype=torch.float16, generator=g), codec)
        tables = get_codec(codec).tables(device)
        seq_lens = torch.full((args.batch,), args.context, dtype=torch.int64, device=device)
        counters = new_counters(device)

        def call():
            return torch.ops.ecc.decode_attention(
                query, *k, *v, tables.encode_table, tables.syndrome_table, codec, args.head_dim, args.interpolate,
                seq_lens, counters, None, False, args.head_dim**-0.5)

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
