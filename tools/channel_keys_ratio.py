"""The fused attention over keys quantized per channel with the full-precision window, against
the per-token path, in alternating rounds in one process (same inputs, same GPU state): the
ratio issue 24 holds within 1.10 at batch 8 / 32k. Medians of ``--rounds`` rounds, each the
CUDA-graph replay time of ``--iters`` calls over four input copies (``benchmarks/common.py``).

    python tools/channel_keys_ratio.py --codecs secded72 golay24 hamming84 --rounds 3 --iters 20
    python tools/channel_keys_ratio.py --codecs int4 --dtype bfloat16
    python tools/channel_keys_ratio.py --codecs golay24 --channel-config 32,1,3,16,0,2   # two rows of channel scales a step
    python tools/channel_keys_ratio.py --cpu --batch 1 --context 256 --head-dim 16   # the op's reference, wall clock: a smoke run
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys

sys.path[:0] = [os.path.dirname(os.path.abspath(__file__)), os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks")]

import torch  # noqa: E402
from attention_case import add_case_arguments, decode_calls  # noqa: E402
from common import kernel_time  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_case_arguments(p, ["int4", "hamming84", "secded72", "golay24"])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--channel-config", help="the calls over keys per channel under this launch configuration "
                                            "(block_n,num_warps,num_stages[,waves[,maxnreg[,scale_rows]]]; default: the launcher's)")
    p.add_argument("--cpu", action="store_true", help="CPU tensors (the op's reference path, wall clock): checks the tool runs")
    args = p.parse_args(argv)
    if not args.cpu and not torch.cuda.is_available():
        raise SystemExit("channel_keys_ratio.py times the fused kernels: it needs a CUDA device (or --cpu for a smoke run)")
    device = "cpu" if args.cpu else "cuda"
    for codec in args.codecs:
        args.channel_keys = False
        token = decode_calls(args, codec, copies=4, device=device)
        args.channel_keys = True
        channel = [functools.partial(call, config=args.channel_config) for call in decode_calls(args, codec, copies=4, device=device)]
        ts, cs = [], []
        for _ in range(args.rounds):
            ts.append(kernel_time(token, args.iters) * 1e6)
            cs.append(kernel_time(channel, args.iters) * 1e6)
        t, c = statistics.median(ts), statistics.median(cs)
        print(f"{codec:10} {args.dtype} per token {t:7.1f} us  channel keys + window {c:7.1f} us  ratio {c / t:.3f}"
              f"  (rounds: {' '.join(f'{x:.1f}' for x in ts)} | {' '.join(f'{x:.1f}' for x in cs)})", flush=True)
        del token, channel
        if not args.cpu:
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
