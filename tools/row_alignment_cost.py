"""What rows that are not 16-byte aligned cost the fused attention's loads, apart from any
decoding: int4's kernel over the same INT4 rows stored at a row stride of 64 bytes (its own),
72 (SECDED(72,64)'s: every other row starts 8 bytes off a 16-byte boundary, so the kernel copies
rows in 8-byte pieces), 80 (16-byte aligned, padded) or any other multiple of 4, the bytes past
64 unread. Outputs must be equal bit for bit (the tool exits 1 otherwise); times are CUDA-graph
replay (``benchmarks/common.py``), the strides in alternating rounds, medians. The gap between
64 and 72, against the 72/64 more sectors a 72-byte stride touches, bounds what a
16-byte-aligned row layout could take off SECDED(72,64)'s call; 80 against 64 is the price of
reading padded rows. Strides of 128 and more say nothing of Golay's 136-byte rows: the kernel
reads 64 bytes of each row, so there the times follow the memory sectors those 64 bytes straddle
(2 at 128, 2.75 on average at 136, 2.5 at 144) and leave part-used, not how the rows are copied.

    python tools/row_alignment_cost.py                                   # batch 8 / 32k
    python tools/row_alignment_cost.py --batch 1 --strides 64 72 80
    python tools/row_alignment_cost.py --cpu --batch 1 --context 64 --q-heads 4 --kv-heads 1   # smoke: Triton's interpreter
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys

if "--cpu" in sys.argv[1:]:
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before Triton is imported
sys.path[:0] = [os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks")]

import torch  # noqa: E402
from common import kernel_time  # noqa: E402

import ecc_tensor.ops as ops  # noqa: E402
from ecc_tensor.counters import new_counters  # noqa: E402
from ecc_tensor.metadata import codec_tables  # noqa: E402
from ecc_tensor.ops.attention import launch, plan  # noqa: E402

INT4_ROW = 64  # bytes of an int4 row at head_dim 128


@contextlib.contextmanager
def row_stride(stride: int):
    """int4's kernel constants with ``ROW_BYTES`` = ``stride``: the kernel addresses row ``r``
    at ``r * stride`` bytes and reads its first 64 (``WORDS`` stays 16)."""
    original = plan.storage_constants

    def strided(codec, head_dim, groups, *stored, channel_block=0):
        return {**original(codec, head_dim, groups, *stored, channel_block=channel_block), "ROW_BYTES": stride}

    plan.storage_constants = strided
    try:
        yield
    finally:
        plan.storage_constants = original


def strided_rows(stored: torch.Tensor, stride: int) -> torch.Tensor:
    """``stored`` (``[..., S, 64]`` bytes) in rows of ``stride`` bytes, the rest zero."""
    out = torch.zeros(*stored.shape[:-1], stride, dtype=stored.dtype, device=stored.device)
    out[..., :INT4_ROW] = stored
    return out


def calls(args: argparse.Namespace, stride: int, device: str, copies: int) -> list:
    """``copies`` calls of int4's fused attention over rows of ``stride`` bytes, inputs seeded
    alike whatever the stride."""
    g = torch.Generator(device=device).manual_seed(0)
    shape = (args.batch, args.kv_heads, args.context, args.head_dim)
    query = torch.randn(args.batch, args.q_heads, 1, args.head_dim, device=device, dtype=torch.float16, generator=g)
    lens = torch.full((args.batch,), args.context, dtype=torch.int64, device=device)
    tables = codec_tables("int4", device)
    out = []
    for _ in range(copies):
        (k, km), (v, vm) = (ops.quantize_encode(torch.randn(shape, device=device, dtype=torch.float16, generator=g), "int4")
                            for _ in range(2))
        k, v = strided_rows(k, stride), strided_rows(v, stride)

        def call(k=k, km=km, v=v, vm=vm):
            with row_stride(stride):
                return launch.triton_decode_attention(query, k, km, v, vm, *tables, "int4", args.head_dim, 1, True, False, lens,
                                                      new_counters(device), None, False, args.head_dim ** -0.5)
        out.append(call)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--context", type=int, default=32768)
    p.add_argument("--q-heads", type=int, default=32)
    p.add_argument("--kv-heads", type=int, default=8)
    p.add_argument("--head-dim", type=int, default=128)
    p.add_argument("--strides", type=int, nargs="+", default=[64, 72, 80], help="row strides in bytes (multiples of 4, at least 64)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--cpu", action="store_true", help="CPU tensors in Triton's interpreter: checks the outputs, times nothing useful")
    args = p.parse_args(argv)
    if args.head_dim != 128:
        raise SystemExit("--head-dim 128 only: an int4 row of 64 bytes")
    if any(s < INT4_ROW or s % 4 for s in args.strides):
        raise SystemExit(f"--strides must be multiples of 4 of at least {INT4_ROW} bytes, got {args.strides}")
    if not args.cpu and not torch.cuda.is_available():
        raise SystemExit("row_alignment_cost.py times the fused kernel: it needs a CUDA device (or --cpu for a smoke run)")
    device = "cpu" if args.cpu else "cuda"
    cases = {s: calls(args, s, device, 1 if args.cpu else 4) for s in args.strides}
    outputs = {s: cs[0]() for s, cs in cases.items()}
    first = args.strides[0]
    differ = [s for s in args.strides if not torch.equal(outputs[s], outputs[first])]
    times = {s: [] for s in args.strides}
    for _ in range(args.rounds):
        for s in args.strides:
            times[s].append(kernel_time(cases[s], args.iters) * 1e6)
    base = statistics.median(times[first])
    for s in args.strides:
        t = statistics.median(times[s])
        alignment = "16-byte aligned" if s % 16 == 0 else "every other row 8 bytes off" if s % 16 == 8 else "unaligned"
        print(f"rows of {s:4d} bytes ({alignment}): {t:9.2f} us  {t / base:.3f}x rows of {first}"
              f"  (rounds: {' '.join(f'{x:.1f}' for x in times[s])})", flush=True)
    if differ:
        print(f"outputs differ from rows of {first} bytes at strides {differ}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
