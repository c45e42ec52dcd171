"""The fused multiply-adds in the decode path's kernels on Hopper, without a GPU: compiles the
launches ``decode_dequantize`` makes with interpolation into float16 and bfloat16 (the decode
``_load_kernel``, the interpolation ``_interpolate_kernel`` that recomputes the neighbours'
values from the kept INT4 codes) for sm_90a and counts ``fma.rn.f32`` in their PTX.

These kernels promise PyTorch's bits. The compiler fuses a product that feeds an addition into
one FMA, rounded once where PyTorch rounds twice: the last bit differs, and an overflowing
product can give -inf where PyTorch gives NaN. The interpreter, which the CPU tests run,
computes each product alone, so only a GPU run, or this count, sees it.

    python tools/fused_products.py
    python tools/fused_products.py --codecs hamming84 golay24
"""

from __future__ import annotations

import argparse

import torch

from codec_launches import compile_for_hopper, recording
from ecc_tensor.codecs import CODEC_NAMES
from ecc_tensor.counters import new_counters
from ecc_tensor.metadata import codec_tables
from ecc_tensor.ops import codec_kernels, interp_kernels

KERNELS = {"load": codec_kernels._load_kernel, "interpolate": interp_kernels._interpolate_kernel}


def recorded_launches(codec: str, dtype: torch.dtype, symmetric: bool, head_dim: int = 16) -> list[tuple[str, tuple, dict]]:
    """(``KERNELS`` name, arguments, constexprs) of each launch of ``KERNELS`` that
    ``decode_dequantize`` with interpolation makes, as on CUDA (``PTX``: inline PTX on)."""
    with recording(KERNELS) as launches:
        tables = codec_tables(codec, "cpu")
        x = torch.randn(2, 40, head_dim)
        stored, meta = torch.ops.ecc.quantize_encode(x, *tables, codec, None, symmetric)
        codec_kernels.triton_decode_dequantize(stored, meta, *tables, codec, head_dim, 1, symmetric, True, new_counters(), dtype,
                                               torch.tensor(30))
    return [(name, args, {**kwargs, "PTX": True} if "PTX" in kwargs else kwargs) for name, args, kwargs in launches]


def fused_products(kernel_name: str, args: tuple, constants: dict) -> int:
    """The ``fma.rn.f32`` instructions in the kernel's PTX for sm_90a."""
    return compile_for_hopper(KERNELS[kernel_name], args, constants).asm["ptx"].count("fma.rn.f32")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--codecs", nargs="+", default=list(CODEC_NAMES))
    args = p.parse_args(argv)
    for codec in args.codecs:
        for dtype in (torch.float16, torch.bfloat16):
            for symmetric in (True, False):
                for name, launch_args, constants in recorded_launches(codec, dtype, symmetric):
                    print(f"{codec:10} {str(dtype).removeprefix('torch.'):8} {'symmetric' if symmetric else 'zero-point':10} {name:11} "
                          f"fma={fused_products(name, launch_args, constants)}", flush=True)


if __name__ == "__main__":
    main()
