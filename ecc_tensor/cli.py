"""``ecc-tensor``: error-correcting codes for INT4 KV caches: a demo, the Monte Carlo sweep, reliability benchmarks."""

from __future__ import annotations

import argparse
import sys

# Only torch-free names here: --help and usage errors answer before torch is imported.
from .names import FAULT_KINDS, FAULT_SITES, FAULT_TARGETS, MODE_NAMES


def _ber(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (0.0 <= value <= 1.0):
        raise argparse.ArgumentTypeError(f"bit error rate must lie in [0, 1], got {value}")
    return value


def _smooth_kv(heads: int, seq: int, dim: int, seed: int):
    """A KV-like tensor: per-channel random walks along the sequence (temporally smooth, as
    real caches are, which is what interpolation exploits) plus a little noise."""
    import torch

    g = torch.Generator().manual_seed(seed)
    steps = torch.randn(heads, seq, dim, generator=g) * 0.1
    return steps.cumsum(1) + torch.randn(heads, 1, dim, generator=g) + 0.05 * torch.randn(heads, seq, dim, generator=g)


def demo(args: argparse.Namespace) -> int:
    from . import counters as C
    from .faults import FaultModel
    from .modes import MODES
    from .simulate import roundtrip

    x = _smooth_kv(args.heads, args.seq, args.head_dim, args.seed)
    clean_int4, _ = roundtrip(x, "int4", group_size=args.group_size)
    print(
        f"KV-like tensor {tuple(x.shape)}, fault model {args.fault_model} at BER {args.ber:g} "
        f"({args.fault_site} site), seed {args.seed}\n"
    )
    header = (
        f"{'mode':22} {'bits/val':>8} {'meta bits':>9} {'injected':>9} {'read':>8} {'corrected':>9} {'parity':>6} "
        f"{'detected':>8} {'silent':>6} {'scales c/d/s':>13} {'rmse':>9} {'rmse vs int4':>12}"
    )
    print(header)
    print("-" * len(header))
    for name in args.modes:
        mode = MODES[name]
        fault = FaultModel(args.fault_model, args.ber, args.seed, site=args.fault_site, targets=args.fault_targets)
        out, counters = roundtrip(x, mode, fault, group_size=args.group_size)
        c = C.counters_to_dict(counters)
        values_bits, meta_bits = mode.storage_bits(args.head_dim, args.group_size)
        rmse = (out - x).pow(2).mean().sqrt().item()
        vs_int4 = (out - clean_int4).pow(2).mean().sqrt().item()
        scales = f"{c['meta_corrected']}/{c['meta_detected']}/{c['meta_silent']}"
        print(
            f"{name:22} {values_bits:>8.3g} {meta_bits:>9.3g} {c['injected'] + c['meta_injected']:>9} {c['read']:>8} "
            f"{c['corrected']:>9} {c['parity_only']:>6} {c['detected']:>8} {c['silent']:>6} {scales:>13} {rmse:>9.4f} {vs_int4:>12.4f}"
        )
    print(
        "\nbits/val, meta bits = stored bits per value for the values and for their (protected) scales;"
        "\nparity = codewords whose overall parity bit alone flipped (data valid); scales c/d/s = scale codewords"
        "\ncorrected / detected, and scale words silently wrong; silent = decoded values that differ from what"
        "\nwas written and were not flagged; rmse vs int4 = error against the fault-free INT4 read (0: the code"
        "\nundid every fault); fp16 is the oracle (never faulted); rmse is nan where a flip made an inf or a NaN."
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecc-tensor", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="encode a KV-like tensor, corrupt it at a BER, decode, print the counters")
    p.add_argument("--ber", type=_ber, default=1e-2, help="bit error rate (default 1e-2)")
    p.add_argument("--fault-model", choices=FAULT_KINDS + ("random",), default="bsc")
    p.add_argument("--fault-site", choices=FAULT_SITES, default="write")
    p.add_argument("--fault-targets", choices=FAULT_TARGETS, default="all",
                   help="stored bytes faults strike: all (values, scales, zero points) or values")
    p.add_argument("--modes", nargs="+", choices=MODE_NAMES, default=list(MODE_NAMES))
    p.add_argument("--seed", type=_non_negative, default=42)
    p.add_argument("--heads", type=_positive, default=8)
    p.add_argument("--seq", type=_positive, default=1024)
    p.add_argument("--head-dim", type=_positive, default=128)
    p.add_argument("--group-size", type=_positive, default=None)
    p.set_defaults(func=demo)

    from .evaluation.sweep import add_arguments, run_from_args

    s = sub.add_parser("sweep", help="the Monte Carlo sweep: cache modes x BERs x seeds on a model and a text")
    add_arguments(s)
    s.set_defaults(func=run_from_args)

    g = sub.add_parser("generation", help="greedy-generation reliability: golden vs faulted runs per mode and fault model")
    _model_arguments(g)
    g.add_argument("--modes", nargs="+", choices=MODE_NAMES, default=["int4", "int4-hamming", "int4-hamming84-interp", "int12-golay"])
    g.add_argument("--fault-models", nargs="+", choices=FAULT_KINDS + ("random",), default=list(FAULT_KINDS))
    g.add_argument("--bers", nargs="+", type=_ber, default=[1e-3, 1e-2])
    g.add_argument("--sites", nargs="+", choices=FAULT_SITES, default=["write", "read"])
    g.add_argument("--fault-targets", choices=FAULT_TARGETS, default="all")
    g.add_argument("--prompts", type=_positive, default=8, help="prompts taken from the evaluation text")
    g.add_argument("--new-tokens", type=_positive, default=50)
    g.add_argument("--output-dir", default="results/generation")
    g.set_defaults(func=_generation)

    n = sub.add_parser("needle", help='"math needle": retrieval and reasoning over var_a/var_b planted in filler text')
    _model_arguments(n)
    n.add_argument("--modes", nargs="+", choices=MODE_NAMES, default=["fp16", "int4", "int4-hamming84-interp", "int12-golay"])
    n.add_argument("--bers", nargs="+", type=_ber, default=[0.0, 1e-3, 1e-2])
    n.add_argument("--contexts", nargs="+", type=_positive, default=None,
                   help="context lengths in tokens (default: a quarter, half and nearly all of the model's positions)")
    n.add_argument("--seeds", nargs="+", type=_non_negative, default=None, help="fault seeds per case (default: --seed, +1, +2)")
    n.add_argument("--fault-model", choices=FAULT_KINDS + ("random",), default="bsc")
    n.add_argument("--fault-site", choices=FAULT_SITES, default="write")
    n.add_argument("--fault-targets", choices=FAULT_TARGETS, default="all")
    n.add_argument("--output-dir", default="results/needle")
    n.set_defaults(func=_needle)

    c = sub.add_parser("codes", help="which code for which error rate: detected and silent codewords per million values, exactly")
    c.add_argument("--bers", nargs="+", type=_ber, default=[1e-6, 1e-5, 1e-4, 1e-3, 1e-2])
    c.add_argument("--monte-carlo", type=_positive, default=0, metavar="N",
                   help="also measure each rate on N codewords of random data with seeded bsc flips (default: exact rates only)")
    c.set_defaults(func=_codes)

    t = sub.add_parser("tasks-path", help="print the directory of the local lm-eval tasks (for --include_path)")
    t.set_defaults(func=_print_tasks_path)
    return parser


def _model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="ref-gpt2", help="reference short name, local HF dir, or hub id")
    p.add_argument("--text", default=None, help="text for prompts / filler (default: the reference held-out text)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=_non_negative, default=0)
    p.add_argument("--key-quant", choices=("token", "channel"), default="token",
                   help="keys' quantization axis: token (the paper's) or channel over --channel-block tokens")
    p.add_argument("--residual-length", type=_non_negative, default=0, help="the most recent tokens kept as 16-bit words")
    p.add_argument("--channel-block", type=_positive, default=128, help="tokens per per-channel key block")


def _scheme(args: argparse.Namespace):
    from .quant_scheme import QuantScheme

    return QuantScheme(args.key_quant, "token", args.residual_length, args.channel_block)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value < 1 << 63:
        raise argparse.ArgumentTypeError(f"must lie in [0, 2**63), got {value}")
    return value


def _load(args):
    """The model, its tokenizer and the text, every argument checked before the model loads."""
    from pathlib import Path

    from .evaluation.models import REFERENCE_DIR, load_model_and_tokenizer
    from .evaluation.sweep import check_device, read_text

    check_device(args.device)
    text = read_text(Path(args.text) if args.text else REFERENCE_DIR / "heldout.txt")
    model, tokenizer = load_model_and_tokenizer(args.model, args.device)
    return model, tokenizer, text


def _generation(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .evaluation import reliability as R

    model, tokenizer, text = _load(args)
    rows = R.generation_reliability(
        model, tokenizer, R.default_prompts(text, args.prompts), args.modes, args.fault_models, args.bers, args.sites,
        new_tokens=args.new_tokens, seed=args.seed, targets=args.fault_targets, scheme=_scheme(args),
    )
    print(R.write(rows, Path(args.output_dir), "generation", ["mode", "fault_model", "ber", "site", "exact_match", "mean_char_drift"]))
    return 0


def _codes(args: argparse.Namespace) -> int:
    from .code_rates import rate_table

    print("Per million stored values, one codeword's (fp8: one word's) bits flipping independently at each BER "
          "(ecc_tensor/code_rates.py):\n")
    print(rate_table(args.bers, monte_carlo=args.monte_carlo))
    return 0


def _needle(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .evaluation import reliability as R

    model, tokenizer, text = _load(args)
    contexts = args.contexts or R.default_contexts(model.config)
    seeds = tuple(args.seeds) if args.seeds else (args.seed, args.seed + 1, args.seed + 2)
    rows = R.needle(model, tokenizer, text, args.modes, args.bers, contexts, fault_model=args.fault_model, site=args.fault_site,
                    seeds=seeds, targets=args.fault_targets, scheme=_scheme(args))
    print(R.write(rows, Path(args.output_dir), "needle", ["mode", "ber", "context", "task", "accuracy"]))
    return 0


def _print_tasks_path(args: argparse.Namespace) -> int:
    from .evaluation.lm_eval_tasks import PATH

    print(PATH)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as err:  # bad input: a message and exit status 2, no traceback
        parser.exit(2, f"ecc-tensor {args.command}: error: {err}\n")


if __name__ == "__main__":
    sys.exit(main())
