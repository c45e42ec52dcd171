"""The fused attention with programmatic dependent launches off, on, and on with each kernel
letting the next launch start late (``ecc_tensor.ops.launch_options.DEPENDENT_LAUNCHES``,
``LAUNCH_DEPENDENTS_AT``), in alternating rounds in one process (same inputs, same GPU state):
whether they take the gaps between a call's launches off, and what they cost where they do not.
Medians of ``--rounds`` rounds, each the CUDA-graph replay time of ``--iters`` calls over four
input copies (``benchmarks/common.py``), with the ratio to plain launches; the outputs of all
three must be equal bit for bit (the tool exits 1 otherwise). Where the GPU has no dependent
launches (before sm_90; CPU tensors) every column runs the same plain launches.

    python tools/dependent_launch_time.py --batch 1 --codecs int4 hamming84 golay24
    python tools/dependent_launch_time.py --codecs golay24 --channel-keys
    python tools/dependent_launch_time.py --cpu --batch 1 --context 256 --head-dim 16 --codecs int4   # smoke (the op's reference)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path[:0] = [os.path.dirname(os.path.abspath(__file__)), os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks")]

import torch  # noqa: E402
from attention_case import add_case_arguments, decode_calls  # noqa: E402
from common import kernel_time  # noqa: E402

from ecc_tensor.ops import launch_options  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_case_arguments(p, ["int4", "hamming84", "golay24"])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--config", help="the launch configuration (block_n,num_warps,num_stages[,waves[,maxnreg[,scale_rows]]])")
    p.add_argument("--cpu", action="store_true", help="CPU tensors (the op's reference path, wall clock): checks the tool runs")
    args = p.parse_args(argv)
    if not args.cpu and not torch.cuda.is_available():
        raise SystemExit("dependent_launch_time.py times the fused kernels: it needs a CUDA device (or --cpu for a smoke run)")
    device = "cpu" if args.cpu else "cuda"
    saved, failed = (launch_options.DEPENDENT_LAUNCHES, launch_options.LAUNCH_DEPENDENTS_AT), False
    try:
        for codec in args.codecs:
            calls = [lambda call=call: call(config=args.config) for call in decode_calls(args, codec, copies=4, device=device)]
            modes = [("plain", False, "start"), ("dependent", True, "start"), ("late trigger", True, "end")]
            times, outputs = {name: [] for name, _, _ in modes}, {}
            for _ in range(args.rounds):
                for name, on, at in modes:
                    launch_options.DEPENDENT_LAUNCHES, launch_options.LAUNCH_DEPENDENTS_AT = on, at
                    outputs[name] = calls[0]()
                    times[name].append(kernel_time(calls, args.iters) * 1e6)
            med = {name: statistics.median(t) for name, t in times.items()}
            same = all(torch.equal(outputs["plain"], out) for out in outputs.values())
            failed |= not same
            columns = "  ".join(f"{name} {med[name]:8.2f} us" + (f" ({med[name] / med['plain']:.3f})" if name != "plain" else "")
                                for name in med)
            rounds = " | ".join(" ".join(f"{x:.1f}" for x in t) for t in times.values())
            print(f"{codec:10} {args.dtype} batch {args.batch} context {args.context}: {columns}{'' if same else '  OUTPUTS DIFFER'}"
                  f"  (rounds: {rounds})", flush=True)
            del calls
            if not args.cpu:
                torch.cuda.empty_cache()
    finally:
        launch_options.DEPENDENT_LAUNCHES, launch_options.LAUNCH_DEPENDENTS_AT = saved
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
