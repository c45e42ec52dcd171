"""What SECDED(72,64)'s fused main launch pays for beyond int4's, by stubs: parts of its
clean-block check replaced by kernels that do less, timed on the same storage.

    python tools/secded_check_cost.py                      # every variant, batch 8 / 32k, GPU
    python tools/secded_check_cost.py nocheck int4 --runs 3
    TRITON_INTERPRET=1 python tools/secded_check_cost.py --cpu   # small shapes, outputs only

Variants (each stub returns zero for clean storage, so no block is deferred and every variant
must give the shipped launch's output; the tool checks that before timing it):

    full        the launch as shipped
    nocheck     the syndromes replaced by zeros: the check bytes are never loaded
    nometa      nocheck, and the scales' Golay check stubbed: the scale words alone loaded, as int4's
    aligned     nometa over rows padded to 80 bytes (data words 16-byte aligned)
    checksonly  the check words loaded and compared with a constant, no syndromes
    planesonly  the byte-plane transposes and one XOR of the planes, no rotations
    wordsonly   the data words of each codeword group XORed (``tl.xor_sum``), no transpose
    interleaved the whole check (rotations and XORs) over the data words as they lie, no
                transpose: what a layout that interleaves four codewords' bytes would cost
    int4        the int4 path over the same values

The stubs compare against a constant no clean word equals (``MAGIC``) rather than return
zeros, so that the compiler keeps the loads and arithmetic they measure. Kernel time is by
CUDA-graph replay, as the benchmarks time kernels (``benchmarks/common.py``: ``kernel_time``, the
median of 30 replays). In benchmarks/RESULTS.md (2026-12-04) the first figures came from a first
script that took the minimum of five replays of ten calls; the tool's own GPU run follows them."""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

import ecc_tensor.ops as ops
import ecc_tensor.ops.attention.kernel as kernel
import ecc_tensor.ops.attention.plan as plan
from ecc_tensor.counters import new_counters
from ecc_tensor.metadata import codec_tables
from ecc_tensor.ops.attention.launch import triton_decode_attention
from ecc_tensor.ops.attention.syndromes import _plane_checks, _row_byte_planes

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks"))
from common import kernel_time  # noqa: E402

MAGIC = tl.constexpr(0x9E3779B9)  # a global a Triton kernel reads must be a constexpr


@triton.jit
def _no_syndromes(words, checks, OFFSETS: tl.constexpr, PTX: tl.constexpr):
    return tl.zeros([words.shape[0], words.shape[1] // 8], tl.uint32)


@triton.jit
def _checks_only(words, checks, OFFSETS: tl.constexpr, PTX: tl.constexpr):
    c = tl.reshape(checks.to(tl.uint32, bitcast=True), [words.shape[0], words.shape[1] // 8])
    return tl.where(c == MAGIC, 1, 0).to(tl.uint32)


@triton.jit
def _planes_only(words, checks, OFFSETS: tl.constexpr, PTX: tl.constexpr):
    p = _row_byte_planes(words, PTX)
    acc = p[0] ^ p[1] ^ p[2] ^ p[3] ^ p[4] ^ p[5] ^ p[6] ^ p[7]
    acc ^= tl.reshape(checks.to(tl.uint32, bitcast=True), [words.shape[0], words.shape[1] // 8])
    return tl.where(acc == MAGIC, 1, 0).to(tl.uint32)


@triton.jit
def _words_only(words, checks, OFFSETS: tl.constexpr, PTX: tl.constexpr):
    N: tl.constexpr = words.shape[0]
    G: tl.constexpr = words.shape[1] // 8
    acc = tl.xor_sum(tl.reshape(words.to(tl.uint32, bitcast=True), [N, G, 8]), axis=2)
    acc ^= tl.reshape(checks.to(tl.uint32, bitcast=True), [N, G])
    return tl.where(acc == MAGIC, 1, 0).to(tl.uint32)


@triton.jit
def _interleaved(words, checks, OFFSETS: tl.constexpr, PTX: tl.constexpr):
    """``_block_row_syndromes`` with the data words themselves as the byte planes (no transposes): word ``8 g + B``
    plane ``B`` of group ``g``, as a layout storing byte ``B`` of codewords ``4 g .. 4 g + 3`` in
    word ``8 g + B`` would have them."""
    N: tl.constexpr = words.shape[0]
    G: tl.constexpr = words.shape[1] // 8
    w = tl.reshape(words.to(tl.uint32, bitcast=True), [N, G, 2, 2, 2])  # word 8 g + 4 a + 2 b + c
    even, odd = tl.split(w)
    e0, e1 = tl.split(even)
    o0, o1 = tl.split(odd)
    p0, p4 = tl.split(e0)
    p2, p6 = tl.split(e1)
    p1, p5 = tl.split(o0)
    p3, p7 = tl.split(o1)
    acc = _plane_checks((p0, p1, p2, p3, p4, p5, p6, p7), OFFSETS, PTX)
    acc ^= tl.reshape(checks.to(tl.uint32, bitcast=True), [N, G])
    return tl.where(acc == MAGIC, 1, 0).to(tl.uint32)


@triton.jit
def _scales_only(km_base, vm_base, rows, menc_ptr, MK: tl.constexpr, DECODE: tl.constexpr, HAS_ZERO: tl.constexpr,
                 META_WORDS: tl.constexpr, META_LANES: tl.constexpr, META_UNITS: tl.constexpr, MUV: tl.constexpr,
                 MUB: tl.constexpr, MRB: tl.constexpr):
    k_scale = tl.load(km_base.to(tl.pointer_type(tl.uint32)) + rows * 4).to(tl.float32, bitcast=True)
    v_scale = tl.load(vm_base.to(tl.pointer_type(tl.uint32)) + rows * 4).to(tl.float32, bitcast=True)
    zero = tl.zeros(rows.shape, tl.float32)
    return k_scale, zero, v_scale, zero, tl.zeros(rows.shape, tl.int32)


SYNDROMES = {"nocheck": _no_syndromes, "nometa": _no_syndromes, "aligned": _no_syndromes, "checksonly": _checks_only,
             "planesonly": _planes_only, "wordsonly": _words_only, "interleaved": _interleaved}
VARIANTS = ["full", "nocheck", "nometa", "aligned", "checksonly", "planesonly", "wordsonly", "interleaved", "int4"]


@contextlib.contextmanager
def patched(variant: str):
    """The kernel module's helpers (and, for ``aligned``, the plan's row stride) replaced until
    the block exits. On a GPU each variant runs in a process of its own, patched before its
    first launch: Triton keys its compiled kernels by their arguments, not by the helpers they
    call, so one process would run whichever variant it compiled first. Interpreted kernels
    look their helpers up at each call, so ``--cpu`` runs every variant in this process."""
    saved = kernel._block_row_syndromes, kernel._clean_rows_meta, plan.storage_constants
    if variant in SYNDROMES:
        kernel._block_row_syndromes = SYNDROMES[variant]
    if variant in ("nometa", "aligned"):
        kernel._clean_rows_meta = _scales_only
    if variant == "aligned":
        constants = plan.storage_constants
        plan.storage_constants = lambda *a, **kw: {**constants(*a, **kw), "ROW_BYTES": 80}
    try:
        yield
    finally:
        kernel._block_row_syndromes, kernel._clean_rows_meta, plan.storage_constants = saved


def make_call(variant: str, q: torch.Tensor, values: list[torch.Tensor], seq_lens: torch.Tensor, flip: bool = False):
    """A no-argument call of the variant's launch over ``values`` (K, V), encoded here; with
    ``flip``, bit 3 of every K row's first byte flipped (every row's first value 8 levels off)."""
    codec = "int4" if variant == "int4" else "secded72"
    kv = [ops.quantize_encode(x, codec) for x in values]
    if flip:
        kv[0][0][..., 0] ^= 8
    if variant == "aligned":
        kv = [(F.pad(words, (0, 8)), meta) for words, meta in kv]
    tables = codec_tables(codec, q.device)
    counters = new_counters(q.device)
    head_dim = q.shape[-1]

    def call():
        return triton_decode_attention(q, kv[0][0], kv[0][1], kv[1][0], kv[1][1], *tables, codec, head_dim, 1, True, False, seq_lens,
                                       counters, None, False, head_dim ** -0.5)

    return call


def run_variant(variant: str, cpu: bool, runs: int, out_file: str) -> None:
    """In this process: the variant patched in, its outputs on clean storage and (for the
    shipped launch and the syndrome stubs) on storage with a flipped bit in every row saved
    to ``out_file``; on a GPU, its kernel time ``runs`` times."""
    with patched(variant):
        _run_patched(variant, cpu, runs, out_file)


def _run_patched(variant: str, cpu: bool, runs: int, out_file: str) -> None:
    device = "cpu" if cpu else "cuda"
    batch, q_heads, kv_heads, seq, head_dim = (1, 4, 1, 256, 128) if cpu else (8, 32, 8, 32768, 128)
    g = torch.Generator(device=device).manual_seed(0)
    q = torch.randn(batch, q_heads, 1, head_dim, device=device, dtype=torch.float16, generator=g)
    values = [torch.randn(batch, kv_heads, seq, head_dim, device=device, dtype=torch.float16, generator=g) for _ in range(2)]
    seq_lens = torch.full((batch,), seq, device=device)
    call = make_call(variant, q, values, seq_lens)
    outputs = {"clean": call().cpu()}
    if variant == "full" or variant in SYNDROMES:
        outputs["flipped"] = make_call(variant, q, values, seq_lens, flip=True)().cpu()
    torch.save(outputs, out_file)
    if not cpu:
        for _ in range(runs):  # one input copy: its 150 MiB a tensor pass the L2 anyway
            print(f"{variant:>11}: {kernel_time([call], iters=30) * 1e6:6.1f} us", flush=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("variants", nargs="*", help=f"of {', '.join(VARIANTS)} (default: all)")
    p.add_argument("--cpu", action="store_true", help="small shapes in Triton's interpreter (TRITON_INTERPRET=1): outputs only")
    p.add_argument("--runs", type=int, default=1, help="times each variant is timed")
    p.add_argument("--child", metavar="FILE", help=argparse.SUPPRESS)  # one variant in this process, its outputs to FILE
    args = p.parse_args(argv)
    args.variants = args.variants or VARIANTS
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        p.error(f"unknown variants {sorted(unknown)}; choose from {', '.join(VARIANTS)}")
    if args.child:
        run_variant(args.variants[0], args.cpu, args.runs, args.child)
        return
    outputs = {}
    if args.cpu:
        from interpreter_speed import install  # tools/, beside this script

        install()
    with tempfile.TemporaryDirectory() as tmp:
        for variant in dict.fromkeys(["full"] + args.variants):
            out_file = os.path.join(tmp, f"{variant}.pt")
            if args.cpu:
                run_variant(variant, True, args.runs, out_file)
                outputs[variant] = torch.load(out_file)
                continue
            command = [sys.executable, __file__, variant, "--child", out_file, "--runs", str(args.runs)]
            child = subprocess.run(command, capture_output=True, text=True)
            if child.returncode != 0:
                raise SystemExit(f"{variant} failed:\n{child.stderr[-3000:]}")
            print(child.stdout, end="", flush=True)
            outputs[variant] = torch.load(out_file)
    expected = outputs["full"]["clean"]
    for variant, out in outputs.items():
        # int4 stores the same codes and scales, but its launch may sum in another order.
        clean = out["clean"]
        same = torch.allclose(clean, expected, rtol=1e-3, atol=1e-3) if variant == "int4" else torch.equal(clean, expected)
        if not same:
            raise SystemExit(f"{variant}: output differs from the shipped launch's on clean storage")
        print(f"{variant}: output {'within 1e-3 of' if variant == 'int4' else 'equal to'} the shipped launch's")
        # The stubs are in effect: with a flipped bit in every row the shipped launch corrects
        # it (its deferred launch then sums in another order: equal within rounding), and each
        # launch whose syndromes are stubbed attends the flipped values.
        if "flipped" in out:
            corrected = torch.allclose(out["flipped"], expected, rtol=1e-3, atol=1e-3)
            if corrected != (variant == "full"):
                raise SystemExit(f"{variant}: a flipped bit was {'corrected' if corrected else 'not corrected'}")
            print(f"{variant}: a flipped bit in every row {'corrected' if corrected else 'attended as read'}")


if __name__ == "__main__":
    main()
