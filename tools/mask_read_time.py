"""A decoding step's boolean mask read two ways by the fused attention, in alternating rounds in
one process (same inputs, same GPU state): as a float32 copy made by a select before the kernels
(``HAS_MASK`` 2: a launch of its own a call, which a CUDA graph replays each layer) and in place as
int32 words of four keys' bytes (``HAS_MASK`` 3: no copy, a shift and a mask a key in the loop).
Medians of ``--rounds`` rounds, each the CUDA-graph replay time of ``--iters`` calls over four
input copies (``benchmarks/common.py``), select included; the two outputs must be equal bit for
bit (the tool exits 1 otherwise).

    python tools/mask_read_time.py --codecs int4 hamming84 secded72 golay24
    python tools/mask_read_time.py --batch 1 --context 4096 --spare 64
    python tools/mask_read_time.py --cpu --batch 2 --context 256 --head-dim 16 --codecs int4   # smoke (the op's reference)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from unittest import mock

sys.path[:0] = [os.path.dirname(os.path.abspath(__file__)), os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks")]

import torch  # noqa: E402
from attention_case import add_case_arguments, decode_calls  # noqa: E402
from common import kernel_time  # noqa: E402

from ecc_tensor.ops.attention import launch  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_case_arguments(p, ["int4", "hamming84", "secded72", "golay24"])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--cpu", action="store_true", help="CPU tensors (the op's reference path, wall clock): checks the tool runs")
    args = p.parse_args(argv)
    args.masked = True
    if not args.cpu and not torch.cuda.is_available():
        raise SystemExit("mask_read_time.py times the fused kernels: it needs a CUDA device (or --cpu for a smoke run)")
    device = "cpu" if args.cpu else "cuda"
    failed = False
    ways = {"float copy": lambda attn_mask, shape: None, "words": launch._mask_words}
    for codec in args.codecs:
        calls = decode_calls(args, codec, copies=4, device=device)
        times, outputs = {name: [] for name in ways}, {}
        for _ in range(args.rounds):
            for name, words in ways.items():
                with mock.patch.object(launch, "_mask_words", words):
                    outputs[name] = calls[0]()
                    times[name].append(kernel_time(calls, args.iters) * 1e6)
        med = {name: statistics.median(t) for name, t in times.items()}
        same = torch.equal(outputs["float copy"], outputs["words"])
        failed |= not same
        rounds = " | ".join(" ".join(f"{x:.1f}" for x in t) for t in times.values())
        print(f"{codec:10} {args.dtype} batch {args.batch} context {args.context}: float copy {med['float copy']:8.2f} us  "
              f"words {med['words']:8.2f} us ({med['words'] / med['float copy']:.3f}){'' if same else '  OUTPUTS DIFFER'}"
              f"  (rounds: {rounds})", flush=True)
        del calls
        if not args.cpu:
            torch.cuda.empty_cache()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
