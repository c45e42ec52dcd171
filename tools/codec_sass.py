"""SASS instructions of the codec kernels on Hopper, without a GPU: compiles the launches that
``quantize_encode`` (``_store_kernel``) and ``decode_dequantize`` (``_load_kernel``) make at
head_dim 128, float16, one scale per row (or ``--groups``, ``--asymmetric``), for sm_90a, as on
a CUDA device (inline PTX on), and prints the static instruction count per value and thread
(the kernel's SASS over the values one thread handles), the ``tt.load`` operations of its Triton
IR (Triton's coalescing pass takes time quadratic in them), the compile time and ptxas's
registers and spills (under the launch's register cap, if any), optionally the opcodes. Static
counts include the rare paths (a dirty tile's decode); ``--opcodes`` shows where the rest goes.
The device's own Triton is 3.6: run this under it (CONTRIBUTING.md) for the counts the H200
compiles.

    python tools/codec_sass.py                          # every codec
    python tools/codec_sass.py --codecs int4 --kernels load --opcodes
    python tools/codec_sass.py --codecs golay24 --kernels load --groups 4 --asymmetric
"""

from __future__ import annotations

import argparse
import collections
import re
import time

from codec_kernel_memory import KERNELS, recorded_launches
from codec_launches import compile_for_hopper, sass
from kernel_resources import ptxas_report
from ecc_tensor.codecs import CODEC_NAMES

_INSTRUCTION = re.compile(r"/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)(\.[\w.]+)?")


def compiled(kernel_name: str, launch: tuple[tuple, dict], num_warps: int):
    """The recorded launch compiled for sm_90a, as a CUDA device would compile it."""
    args, constants = launch
    constants = dict(constants)
    if "PTX" in constants:
        constants["PTX"] = True  # recorded on CPU tensors; a CUDA launch takes the inline PTX
    return compile_for_hopper(KERNELS[kernel_name], args, constants, aligned=True, num_warps=num_warps)


def opcodes(text: str) -> collections.Counter:
    """Opcode (with its first suffix: ``LDG.E``, ``F2F.F16``) -> count, ``NOP``s left out."""
    counts = collections.Counter()
    for op, suffix in _INSTRUCTION.findall(text):
        if op != "NOP":
            counts[op + (suffix.split(".")[1:2] and "." + suffix.split(".")[1] or "")] += 1
    return counts


def values_per_thread(launch: tuple[tuple, dict], head_dim: int, num_warps: int) -> float:
    rows = launch[1].get("BLOCK_R", 1)
    return rows * head_dim / (32 * num_warps)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--codecs", nargs="+", default=list(CODEC_NAMES))
    p.add_argument("--kernels", nargs="+", default=list(KERNELS), choices=list(KERNELS))
    p.add_argument("--num-warps", type=int, default=4, help="as the launchers use (Triton's default)")
    p.add_argument("--opcodes", action="store_true", help="print each kernel's opcode counts")
    p.add_argument("--groups", type=int, default=1, help="scales a row (head_dim 128 in groups of 128 / GROUPS values)")
    p.add_argument("--asymmetric", action="store_true", help="zero points too")
    args = p.parse_args(argv)
    for codec in args.codecs:
        for name, launch in recorded_launches(codec, groups=args.groups, symmetric=not args.asymmetric).items():
            if name not in args.kernels:
                continue
            start = time.perf_counter()
            kernel = compiled(name, launch, args.num_warps)
            seconds = time.perf_counter() - start
            counts = opcodes(sass(kernel))
            total = sum(counts.values())
            per_value = total / values_per_thread(launch, 128, args.num_warps)
            print(f"{codec:10} {name:5} {total:6d} instructions, {per_value:6.1f} per value and thread "
                  f"(BLOCK_R {launch[1].get('BLOCK_R')}, maxnreg {launch[1].get('maxnreg', '-')}), "
                  f"{kernel.asm['ttir'].count('tt.load')} loads, compiled in {seconds:.1f} s; ptxas: {ptxas_report(kernel)}", flush=True)
            if args.opcodes:
                print("    " + "  ".join(f"{op} {n}" for op, n in counts.most_common()), flush=True)


if __name__ == "__main__":
    main()
