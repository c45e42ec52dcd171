"""Launch-configuration sweep of the fused decode-attention kernel, on kernel time.

For each codec, times ``ecc::decode_attention`` under every launch configuration (its
``config=``: block_n, num_warps, num_stages, programs per SM) of the grid below, from CUDA-graph replay
as ``benchmarks/bench_attention.py`` does, and prints one table per codec, fastest first. The
defaults in ``ops/attention/plan.py`` come from such sweeps (benchmarks/RESULTS.md).

    python tools/sweep_attention.py                                   # batch 8, 32k, H100 grid
    python tools/sweep_attention.py --codecs int4 --configs 64,4,3,16 128,4,2,4
    python tools/sweep_attention.py --codecs fp8          # ecc::fp8_decode_attention (ops/attention/fp8.py)
    python tools/sweep_attention.py --batch 1 --codecs int4 hamming84 --split-floors 256 192 160 128

``--split-floors`` times each codec's default configuration under each floor of keys a split
(``plan.MIN_SPLIT_KEYS``) instead: how many programs the plan makes of a small batch.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
from attention_case import CHANNEL_BLOCK, add_case_arguments, decode_calls  # noqa: E402
from common import kernel_time  # noqa: E402

from ecc_tensor.ops.attention import LaunchPlan  # noqa: E402
from ecc_tensor.ops.attention import plan as attention_plan  # noqa: E402
from ecc_tensor.ops.attention.fp8 import FP8_CONFIG  # noqa: E402

GRID = [f"{n},{w},{s},{v}" for (n, w), s, v in itertools.product(
    [(32, 2), (32, 4), (64, 2), (64, 4), (64, 8), (128, 4), (128, 8)], [2, 3], [4, 16])]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_case_arguments(p, ["int4", "hamming84"])
    p.add_argument("--configs", nargs="+", default=GRID,
                   help="block_n,num_warps,num_stages,waves (waves: programs per SM); each codec's default is timed first, "
                        "so that every table holds it")
    p.add_argument("--copies", type=int, default=4, help="input copies the replay rotates over (L2 cold)")
    p.add_argument("--split-floors", type=int, nargs="+", metavar="KEYS",
                   help="time the default configuration under each of these floors of keys a split (MIN_SPLIT_KEYS), not --configs")
    p.add_argument("--rounds", type=int, default=1, help="with --split-floors: rounds over the floors, alternating")
    args = p.parse_args(argv)
    if args.split_floors:
        return sweep_split_floors(args)

    for codec in args.codecs:
        default = default_config(args, codec)
        print(f"{codec}: the launcher's default for this case is {default}", flush=True)
        calls = decode_calls(args, codec, args.copies)
        rows = []
        for config in timed_configs(default, args.configs):
            try:
                t = kernel_time([lambda c=c, config=config: c(config) for c in calls], args.iters)
            except Exception as e:  # a configuration that does not fit (shared memory, registers)
                print(f"{codec} {config}: {type(e).__name__}: {str(e).splitlines()[0][:100]}", flush=True)
                continue
            rows.append((t * 1e6, config))
            print(f"{codec} {config}: {t * 1e6:.1f} us", flush=True)
        print(f"\n{codec}{' interp' if args.interpolate else ''}, batch {args.batch}, {args.context} keys, fastest first:")
        ranked = sorted(rows)
        for us, config in ranked[:8] + [row for row in ranked[8:] if row[1] == default]:
            print(f"  {config:>14}  {us:8.1f} us{'  (default)' if config == default else ''}")
        del calls


def sweep_split_floors(args: argparse.Namespace, device: str = "cuda") -> None:
    """Each codec's default launch under each floor of keys a split, in ``args.rounds``
    alternating rounds: the splits and programs the plan makes, and the kernel time (on the
    CPU, the op's reference path and wall time: a check of the tool, not a measurement)."""
    if "fp8" in args.codecs:
        raise SystemExit("--split-floors times the ECC codecs' launch plans (fp8's is FP8_CONFIG's)")
    shipped = attention_plan.MIN_SPLIT_KEYS
    try:
        for codec in args.codecs:
            calls = decode_calls(args, codec, args.copies, device=device)
            for round_ in range(args.rounds):
                for floor in args.split_floors:
                    attention_plan.MIN_SPLIT_KEYS = floor
                    plan = case_plan(args, codec, torch.device(device))
                    t = kernel_time(calls, args.iters)
                    print(f"{codec}{' interp' if args.interpolate else ''} round {round_ + 1} floor {floor:4d}: {plan.splits} splits of "
                          f"{plan.split_len} keys, {plan.splits * args.batch * args.kv_heads} programs: {t * 1e6:.1f} us", flush=True)
            del calls
    finally:
        attention_plan.MIN_SPLIT_KEYS = shipped


def timed_configs(default: str, configs: list[str]) -> list[str]:
    """The configurations a codec's sweep times: the launcher's default first, then the others
    given (a table without the default cannot say whether a configuration beats it)."""
    return [default] + [c for c in configs if c != default]


def default_config(args: argparse.Namespace, codec: str) -> str:
    """The main launch's configuration the launcher picks for the case, as ``--configs`` spells it."""
    if codec == "fp8":
        return FP8_CONFIG
    main = case_plan(args, codec, torch.device("cuda" if torch.cuda.is_available() else "cpu")).main
    fields = [main["block_n"], main["num_warps"], main["num_stages"], main["waves"]]
    if main["maxnreg"] or main["scale_rows"] != 1:
        fields.append(main["maxnreg"])
    if main["scale_rows"] != 1:
        fields.append(main["scale_rows"])
    return ",".join(map(str, fields))


def case_plan(args: argparse.Namespace, codec: str, device: torch.device) -> LaunchPlan:
    """The launch plan ``ecc::decode_attention`` makes for the case of ``args`` (keys per channel
    with ``--channel-keys``)."""
    return LaunchPlan.make(codec, args.head_dim, 1, args.interpolate, batch=args.batch, q_heads=args.q_heads, kv_heads=args.kv_heads,
                           lq=1, seq=args.context, device=device,
                           channel_block=getattr(args, "channel_block", CHANNEL_BLOCK) if getattr(args, "channel_keys", False) else 0)


if __name__ == "__main__":
    main()
