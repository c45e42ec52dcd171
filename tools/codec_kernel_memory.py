"""The global loads and stores of the codec kernels on Hopper, without a GPU: compiles the
launches ``quantize_encode`` (``_store_kernel``, the values' launch) and ``decode_dequantize``
(``_load_kernel``) make at head_dim 128, float16, one scale per row, for sm_90a, and counts the
load and store instructions of their SASS by width. A row read or written as single values
``UNIT_VALUES`` apart costs an L2 transaction per value; 16-byte accesses (``.128``) move it whole.

    python tools/codec_kernel_memory.py                      # every codec
    python tools/codec_kernel_memory.py --codecs int4 secded72
"""

from __future__ import annotations

import argparse
import collections
import re

import torch

from codec_launches import compile_for_hopper, recording, sass
from ecc_tensor.codecs import CODEC_NAMES
from ecc_tensor.counters import new_counters
from ecc_tensor.metadata import codec_tables
from ecc_tensor.ops import codec_kernels

KERNELS = {"store": codec_kernels._store_kernel, "load": codec_kernels._load_kernel}


def recorded_launches(codec: str, head_dim: int = 128, groups: int = 1, symmetric: bool = True) -> dict[str, tuple[tuple, dict]]:
    """The first (arguments, constexprs) of each kernel that ``quantize_encode`` and
    ``decode_dequantize`` of ``codec`` launch, by ``KERNELS`` name: ``groups`` scales a row,
    zero points unless ``symmetric``."""
    group_size = None if groups == 1 else head_dim // groups
    with recording(KERNELS) as launches:
        tables = codec_tables(codec, "cpu")
        x = torch.randn(64, head_dim, dtype=torch.float16)
        codec_kernels.triton_quantize_encode(x, tables[0], tables[2], codec, group_size, symmetric)
        stored, meta = torch.ops.ecc.quantize_encode(x.float(), *tables, codec, group_size, symmetric)
        codec_kernels.triton_decode_dequantize(stored, meta, *tables, codec, head_dim, groups, symmetric, False, new_counters(),
                                               torch.float16)
    first = {}
    for name, args, kwargs in launches:
        first.setdefault(name, (args, kwargs))
    return first


def access_widths(kernel_name: str, launch: tuple[tuple, dict]) -> dict[str, collections.Counter]:
    """``{"LDG": ..., "STG": ...}``: the compiled kernel's global loads and stores by suffix
    (``128``, ``U16``, ``U8``, ..., ``32`` for a plain 4-byte access)."""
    args, constants = launch
    text = sass(compile_for_hopper(KERNELS[kernel_name], args, constants, aligned=True))
    counts = {}
    for op in ("LDG", "STG"):
        # The width is the last suffix where there is one (``LDG.E.EL.128``: an evict-last
        # 16-byte load), else a 4-byte access.
        suffixes = [m.split(".")[-1] for m in re.findall(rf"\b{op}\.E[.\w]*", text)]
        counts[op] = collections.Counter(s if s in ("128", "64", "U16", "S16", "U8", "S8") else "32" for s in suffixes)
    return counts

def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--codecs", nargs="+", default=list(CODEC_NAMES))
    args = p.parse_args(argv)
    for codec in args.codecs:
        for name, launch in recorded_launches(codec).items():
            widths = access_widths(name, launch)
            text = "  ".join(op + "".join(f" .{w}={n}" for w, n in sorted(c.items())) for op, c in widths.items())
            print(f"{codec:10} {name:5} {text}", flush=True)


if __name__ == "__main__":
    main()
