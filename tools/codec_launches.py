"""The codec kernels' launches, recorded on the CPU rather than run, and compiled for Hopper
without a GPU: what ``codec_kernel_memory.py`` and ``fused_products.py`` inspect."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from ecc_tensor.ops import codec_kernels, interp_kernels

POINTER_TYPES = {  # a tensor argument's Triton type, by dtype
    torch.uint8: "*u8", torch.int8: "*i8", torch.int16: "*i16", torch.int32: "*i32", torch.int64: "*i64", torch.bool: "*i1",
    torch.float16: "*fp16", torch.bfloat16: "*bf16", torch.float32: "*fp32", torch.float64: "*fp64",
    torch.float8_e4m3fn: "*fp8e4nv", torch.float8_e5m2: "*fp8e5",
}
HOPPER = GPUTarget("cuda", 90, 32)


@contextlib.contextmanager
def recording(kernels: dict) -> Iterator[list[tuple[str, tuple, dict]]]:
    """Within it, the codec and interpolation launchers record each launch of ``kernels``
    (``{name: jit function}``) as (name, arguments, constexprs) in the list it yields, and run
    nothing; other kernels' launches are dropped."""
    launches = []

    class Recorder:
        def __init__(self, kernel):
            self.name = next((name for name, k in kernels.items() if k is kernel), None)

        def __getitem__(self, grid):
            def record(*args, **kwargs):
                if self.name:
                    launches.append((self.name, args, kwargs))
            return record

    saved = codec_kernels.wrap_triton, interp_kernels.wrap_triton
    codec_kernels.wrap_triton = interp_kernels.wrap_triton = Recorder
    try:
        yield launches
    finally:
        codec_kernels.wrap_triton, interp_kernels.wrap_triton = saved


LAUNCH_OPTIONS = ("num_warps", "num_stages", "maxnreg")  # keywords of a launch that are not the kernel's


def compile_for_hopper(fn, args: tuple, constants: dict, *, aligned: bool = False, num_warps: int | None = None):
    """``fn`` compiled for sm_90a as the launch ``(args, constants)`` calls it, with the launch's
    options among ``constants`` (a register cap, ``codec_kernels.register_cap``; ``num_warps``
    given here wins, else the launch's or Triton's 4); ``aligned``: every tensor 16-byte aligned,
    as Triton's launcher specializes fresh allocations."""
    options = {name: constants[name] for name in LAUNCH_OPTIONS if name in constants}
    options["num_warps"] = num_warps or options.get("num_warps", 4)
    constants = {name: value for name, value in constants.items() if name not in LAUNCH_OPTIONS}
    signature = {name: POINTER_TYPES[a.dtype] if isinstance(a, torch.Tensor) else "i32" for name, a in zip(fn.arg_names, args)}
    signature.update(dict.fromkeys(constants, "constexpr"))
    attrs = {(i,): [["tt.divisibility", 16]] for i, a in enumerate(args) if isinstance(a, torch.Tensor)} if aligned else None
    return triton.compile(ASTSource(fn, signature, constants, attrs), target=HOPPER, options=options)


def sass(kernel) -> str:
    """The compiled ``kernel``'s SASS, by the ``cuobjdump`` bundled with Triton."""
    tool = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "kernel.cubin")
        with open(path, "wb") as f:
            f.write(kernel.asm["cubin"])
        return subprocess.run([tool, "-sass", path], capture_output=True, text=True, check=True).stdout
