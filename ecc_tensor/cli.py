"""``ecc-tensor`` command line."""

from __future__ import annotations

import argparse
import sys

import torch

from . import counters as C
from .faults import FAULT_KINDS, FAULT_SITES, FaultModel
from .modes import MODE_NAMES, MODES
from .simulate import roundtrip


def _ber(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (0.0 <= value <= 1.0):
        raise argparse.ArgumentTypeError(f"bit error rate must lie in [0, 1], got {value}")
    return value


def _smooth_kv(heads: int, seq: int, dim: int, seed: int) -> torch.Tensor:
    """A KV-like tensor: per-channel random walks along the sequence (temporally smooth, as
    real caches are, which is what interpolation exploits) plus a little noise."""
    g = torch.Generator().manual_seed(seed)
    steps = torch.randn(heads, seq, dim, generator=g) * 0.1
    return steps.cumsum(1) + torch.randn(heads, 1, dim, generator=g) + 0.05 * torch.randn(heads, seq, dim, generator=g)


def demo(args: argparse.Namespace) -> int:
    x = _smooth_kv(args.heads, args.seq, args.head_dim, args.seed)
    clean_int4, _ = roundtrip(x, "int4", group_size=args.group_size)
    print(
        f"KV-like tensor {tuple(x.shape)}, fault model {args.fault_model} at BER {args.ber:g} "
        f"({args.fault_site} site), seed {args.seed}\n"
    )
    header = f"{'mode':24} {'bits/val':>8} {'injected':>9} {'read':>9} {'corrected':>9} {'detected':>9} {'silent':>7} {'rmse':>9} {'rmse vs int4':>12}"
    print(header)
    print("-" * len(header))
    for name in args.modes:
        mode = MODES[name]
        fault = FaultModel(args.fault_model, args.ber, args.seed, site=args.fault_site)
        out, counters = roundtrip(x, mode, fault, group_size=args.group_size)
        c = C.counters_to_dict(counters)
        bits = f"{mode.stored_bits_per_value:g}"
        rmse = (out - x).pow(2).mean().sqrt().item()
        vs_int4 = (out - clean_int4).pow(2).mean().sqrt().item()
        print(
            f"{name:24} {bits:>8} {c['injected']:>9} {c['read']:>9} {c['corrected']:>9} "
            f"{c['detected']:>9} {c['silent']:>7} {rmse:>9.4f} {vs_int4:>12.4f}"
        )
    print(
        "\nsilent = decoded values that differ from what was written and were not flagged;"
        "\nrmse vs int4 = error against the fault-free INT4 read (0: the code undid every fault);"
        "\nfp16 rmse is nan when a flip hits an exponent bit and makes an inf or a NaN."
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecc-tensor", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="encode a KV-like tensor, corrupt it at a BER, decode, print the counters")
    p.add_argument("--ber", type=_ber, default=1e-2, help="bit error rate (default 1e-2)")
    p.add_argument("--fault-model", choices=FAULT_KINDS + ("random",), default="bsc")
    p.add_argument("--fault-site", choices=FAULT_SITES, default="write")
    p.add_argument("--modes", nargs="+", choices=MODE_NAMES, default=list(MODE_NAMES))
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--head-dim", type=int, default=128)
    p.add_argument("--group-size", type=int, default=None)
    p.set_defaults(func=demo)

    from .evaluation.sweep import add_arguments, run_from_args

    s = sub.add_parser("sweep", help="the Monte Carlo sweep: cache modes x BERs x seeds on a model and a text")
    add_arguments(s)
    s.set_defaults(func=run_from_args)

    t = sub.add_parser("tasks-path", help="print the directory of the local lm-eval tasks (for --include_path)")
    t.set_defaults(func=_print_tasks_path)
    return parser


def _print_tasks_path(args: argparse.Namespace) -> int:
    from .evaluation.lm_eval_tasks import PATH

    print(PATH)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as err:
        parser.exit(2, f"ecc-tensor: error: {err}\n")


if __name__ == "__main__":
    sys.exit(main())
