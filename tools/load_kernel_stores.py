"""The global stores of the codec decode kernel (``ops/codec_kernels.py: _load_kernel``) on
Hopper, without a GPU: compiles the launch ``decode_dequantize`` makes (head_dim 128, float16,
one scale per row) for sm_90a and counts the store instructions of its SASS by width. A row
stored as single bytes ``UNIT_VALUES`` apart costs an L2 transaction per byte; 16-byte stores
(``STG.E.128``) write it whole.

    python tools/load_kernel_stores.py                      # every codec
    python tools/load_kernel_stores.py --codecs int4 secded72
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import tempfile

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from ecc_tensor.codecs import CODEC_NAMES
from ecc_tensor.counters import new_counters
from ecc_tensor.metadata import codec_tables
from ecc_tensor.ops import codec_kernels

POINTER_TYPES = {torch.uint8: "*u8", torch.int32: "*i32", torch.int64: "*i64", torch.float16: "*fp16"}


def recorded_launch(codec: str, head_dim: int = 128) -> tuple[tuple, dict]:
    """The (arguments, constexprs) ``launch_load`` passes for a decode_dequantize of ``codec``."""
    launches = []

    class Recorder:
        def __getitem__(self, grid):
            return lambda *args, **kwargs: launches.append((args, kwargs))

    launcher = codec_kernels.wrap_triton
    codec_kernels.wrap_triton = lambda kernel: Recorder()
    try:
        tables = codec_tables(codec, "cpu")
        stored, meta = torch.ops.ecc.quantize_encode(torch.randn(64, head_dim), *tables, codec, None, True)
        codec_kernels.triton_decode_dequantize(stored, meta, *tables, codec, head_dim, 1, True, False, new_counters(), torch.float16)
    finally:
        codec_kernels.wrap_triton = launcher
    (launch,) = launches
    return launch


def store_widths(codec: str) -> collections.Counter:
    """``STG`` instructions of the compiled kernel by suffix (``.128``, ``.U16``, ``.U8``, ...)."""
    args, constants = recorded_launch(codec)
    fn = codec_kernels._load_kernel
    signature = {name: POINTER_TYPES[a.dtype] if isinstance(a, torch.Tensor) else "i32" for name, a in zip(fn.arg_names, args)}
    signature.update(dict.fromkeys(constants, "constexpr"))
    # As Triton's launcher specializes fresh allocations: 16-byte aligned pointers.
    aligned = {(i,): [["tt.divisibility", 16]] for i, a in enumerate(args) if isinstance(a, torch.Tensor)}
    kernel = triton.compile(ASTSource(fn, signature, constants, aligned), target=GPUTarget("cuda", 90, 32), options={"num_warps": 4})
    tool = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "load.cubin")
        with open(path, "wb") as f:
            f.write(kernel.asm["cubin"])
        sass = subprocess.run([tool, "-sass", path], capture_output=True, text=True, check=True).stdout
    return collections.Counter(m or ".32" for m in re.findall(r"\bSTG\.E(\.\w+)?", sass))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--codecs", nargs="+", default=list(CODEC_NAMES))
    args = p.parse_args(argv)
    for codec in args.codecs:
        widths = store_widths(codec)
        print(f"{codec:10} stores " + " ".join(f"STG.E{w}={n}" for w, n in sorted(widths.items())), flush=True)


if __name__ == "__main__":
    main()
