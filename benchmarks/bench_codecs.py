"""Throughput of the ecc codec ops against a device-to-device copy measured in the same run.

GB/s counts bytes read + written by each op (codewords, scales, values); the copy moves the
same kind of traffic, so "% of copy" says how close an op is to the memory roofline (the
copy's time: the faster of its graph-replayed and eager times). Times
are the GPU's work alone (``common.kernel_time``: the call captured in a CUDA graph and
replayed, as a compiled decode runs it); "call" is an eager call's time, Python and launches
included, which for an op of several launches can exceed the GPU's.

    python benchmarks/bench_codecs.py                 # CUDA, 256 MiB of codewords per codec
    python benchmarks/bench_codecs.py --write         # ... and append the table to RESULTS.md
    python benchmarks/bench_codecs.py --device cpu --mib 1   # a smoke run (reference path)
    python benchmarks/bench_codecs.py --ops decode_dequantize --group-size 32 --asymmetric   # grouped scales
    python benchmarks/bench_codecs.py --ops decode_dequantize decode --ber 1e-4   # reads of a faulted store
"""

from __future__ import annotations

import argparse

import torch

import ecc_tensor.ops as ops
from ecc_tensor.codecs import CODEC_NAMES
from ecc_tensor.counters import new_counters
from ecc_tensor.faults import FaultModel
from ecc_tensor.metadata import MetadataLayout
from ecc_tensor.storage import StorageLayout

try:
    from .common import append_results, kernel_time, time_call
except ImportError:  # run as a script
    from common import append_results, kernel_time, time_call


# The ops each codec is timed on (bench's cases).
OPS = ("quantize_encode", "decode_dequantize", "decode_dequantize + interpolate", "encode", "decode", "inject (bsc 1e-3)")


def bench(device: torch.device, mib: float, head_dim: int, dtype: torch.dtype, codecs=CODEC_NAMES, op_names=None, group_size=None,
          symmetric=True, ber: float = 0.0) -> list[dict]:
    """One row per codec and op (``op_names``: a subset of the ops, all by default); the scales
    per row, or per ``group_size`` values, with zero points where not ``symmetric``. ``ber``:
    every stored bit of the codewords and their scales flipped with this probability once
    (BSC, seeded) before the reads are timed, so that they decode what faults leave."""
    groups = head_dim // group_size if group_size else 1
    itemsize = torch.finfo(dtype).bits // 8
    rows_full = max(1, int(mib * 2**20) // head_dim)  # ~mib MiB of 1-byte codewords (H(8,4))
    copy_src = torch.empty(rows_full * head_dim * itemsize, dtype=torch.uint8, device=device)
    copy_dst = torch.empty_like(copy_src)
    # The faster of the copy's two times sets the roofline: recorded in a CUDA graph the copy
    # ran at 2.7 TB/s on the H200 against 4.1 TB/s called eagerly (2026-12-03, RESULTS.md).
    copy_call = time_call(lambda: copy_dst.copy_(copy_src))
    copy_s = min(kernel_time([lambda: copy_dst.copy_(copy_src)], iters=20), copy_call)
    copy_gbs = 2 * copy_src.numel() / copy_s / 1e9
    rows_out = [{"codec": "-", "op": "device copy", "MiB": copy_src.numel() / 2**20, "us": copy_s * 1e6, "GB/s": copy_gbs,
                 "% of copy": 100.0, "call us": copy_call * 1e6}]
    del copy_src, copy_dst

    for codec in codecs:
        layout = StorageLayout(codec, head_dim)
        rows = rows_full
        x = torch.randn(rows, head_dim, device=device, dtype=dtype)
        stored, meta_stored = ops.quantize_encode(x, codec, group_size, symmetric)
        if ber > 0:
            strike = FaultModel("bsc", ber, seed=1)
            stored, _ = ops.inject(stored, layout.exposed_bits_per_byte, strike, step=0)
            meta_layout = MetadataLayout(codec, groups, symmetric)
            meta_stored, _ = ops.inject(meta_stored, meta_layout.exposed_bits_per_byte, strike, offset=stored.numel(), step=0)
        values, _ = ops.decode(stored, codec, head_dim)
        counters = new_counters(device)
        fault = FaultModel("bsc", 1e-3, seed=0)
        value_bytes = x.numel() * itemsize
        meta = meta_stored.numel()
        cases = {
            "quantize_encode": (lambda: ops.quantize_encode(x, codec, group_size, symmetric), value_bytes + stored.numel() + meta),
            "decode_dequantize": (
                lambda: ops.decode_dequantize(stored, meta_stored, codec, head_dim, groups=groups, symmetric=symmetric,
                                              counters=counters, dtype=dtype),
                stored.numel() + meta + value_bytes,
            ),
            # Interpolation (a scan along the sequence) on top, for the codes that detect; the
            # rows form one sequence, so the clean case measures its cost with no erasure.
            "decode_dequantize + interpolate": (
                lambda: ops.decode_dequantize(stored, meta_stored, codec, head_dim, groups=groups, symmetric=symmetric, interpolate=True,
                                              counters=counters, dtype=dtype),
                stored.numel() + meta + value_bytes,
            ),
            "encode": (lambda: ops.encode(values, codec), values.numel() + stored.numel()),
            "decode": (lambda: ops.decode(stored, codec, head_dim),
                       stored.numel() + values.numel() + stored.numel() // layout.row_bytes * layout.codewords_per_row),
            "inject (bsc 1e-3)": (lambda: ops.inject(stored, layout.exposed_bits_per_byte, fault, step=0), 2 * stored.numel()),
        }
        for name, (fn, nbytes) in cases.items():
            if op_names is not None and name not in op_names:
                continue
            s = kernel_time([fn], iters=20)
            gbs = nbytes / s / 1e9
            rows_out.append({"codec": codec, "op": name, "MiB": stored.numel() / 2**20, "us": s * 1e6, "GB/s": gbs,
                             "% of copy": 100 * gbs / copy_gbs, "call us": time_call(fn) * 1e6})
        del x, stored, meta_stored, values
    return rows_out


def to_markdown(rows: list[dict]) -> str:
    lines = ["| codec | op | codeword MiB | time (us) | GB/s (read+write) | % of copy | call (us) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['codec']} | {r['op']} | {r['MiB']:.0f} | {r['us']:.1f} | {r['GB/s']:.0f} | {r['% of copy']:.0f}% "
                     f"| {r['call us']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--mib", type=float, default=256, help="MiB of (1-byte) codewords per codec")
    p.add_argument("--head-dim", type=int, default=128)
    p.add_argument("--dtype", choices=["float16", "bfloat16", "float32"], default="float16")
    p.add_argument("--codecs", nargs="+", choices=CODEC_NAMES, default=list(CODEC_NAMES))
    p.add_argument("--ops", nargs="+", choices=OPS, help="a subset of the ops (default: all)")
    p.add_argument("--group-size", type=int, help="scales per this many values (default: one a row)")
    p.add_argument("--asymmetric", action="store_true", help="zero points (asymmetric quantization)")
    p.add_argument("--ber", type=float, default=0.0,
                   help="flip every stored bit of the codewords and scales with this probability, once, before timing (BSC, seeded)")
    p.add_argument("--write", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = p.parse_args(argv)
    if not 0 <= args.ber <= 1:
        p.error(f"--ber must be in [0, 1], got {args.ber}")
    if args.group_size is not None and (args.group_size <= 0 or args.head_dim % args.group_size):
        p.error(f"--group-size must divide --head-dim ({args.head_dim})")
    device = torch.device(args.device)
    rows = bench(device, args.mib, args.head_dim, getattr(torch, args.dtype), args.codecs, args.ops, args.group_size,
                 not args.asymmetric, args.ber)
    table = to_markdown(rows)
    print(table)
    if args.write:
        scheme = ((f", groups of {args.group_size}" if args.group_size else "") + (", zero points" if args.asymmetric else "")
                  + (f", stored bits flipped at BER {args.ber:g}" if args.ber else ""))
        append_results(
            f"Codec ops throughput (head_dim {args.head_dim}, {args.dtype} values, {args.mib:g} MiB{scheme})", device, table
        )


if __name__ == "__main__":
    main()
