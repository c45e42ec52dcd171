"""The Triton kernels each ``ecc`` op may launch, told to torch.compile's AOTAutograd cache.

torch keys a compiled graph in its AOTAutograd cache (on by default, on disk, kept across
processes) on, among other things, the source of the Triton kernels of each ``triton_op`` in
the graph, so that a changed kernel is compiled anew. It finds those kernels by reading the
op's source for ``wrap_triton(name)`` calls and following calls of bare names a few levels
deep (``get_inner_triton_kernels``; torch's PR 160120 names the cases it misses). This
package's ops launch through module attributes, a registry (the interpolation kernels) and
launch options, which that reading does not follow: it found no kernel for six of the seven
ops. A graph compiled before the kernels changed (an upgrade of this package, an edit) would
then be loaded from the cache with the old kernels in it. ``register`` adds each op's kernels
to the list torch keeps for it; ``tests/test_op_kernels.py`` checks that every kernel an op
launches is listed.
"""

from __future__ import annotations

from typing import Any


def op_kernels() -> dict[str, tuple[Any, ...]]:
    """Each op's kernels, fallbacks included (an op that decodes with the codec kernels where
    the fused attention does not read the storage lists them too)."""
    from .attention.channel_scales import _channel_scales_kernel
    from .attention.fp8 import _fp8_decode_attention_kernel
    from .attention.kernel import _combine_splits_kernel, _decode_attention_kernel
    from .codec_kernels import _load_kernel, _store_kernel
    from .fault_kernels import _inject_kernel
    from .interp_kernels import _interpolate_kernel, _tile_kept_bounds_kernel

    read = (_load_kernel, _tile_kept_bounds_kernel, _interpolate_kernel)
    return {
        "ecc::encode": (_store_kernel,),
        "ecc::decode": (_load_kernel,),
        "ecc::quantize_encode": (_store_kernel,),
        "ecc::decode_dequantize": read,
        "ecc::inject": (_inject_kernel,),
        "ecc::decode_attention": (_decode_attention_kernel, _combine_splits_kernel, _channel_scales_kernel, *read),
        "ecc::fp8_decode_attention": (_fp8_decode_attention_kernel, _combine_splits_kernel),
    }


def register() -> bool:
    """Add each op's kernels to torch's list for the op (``get_triton_kernels_for_op``, whose
    list ``triton_op`` made); False where this torch keeps no such list."""
    from torch._library import triton as library_triton

    listed_for = getattr(library_triton, "get_triton_kernels_for_op", None)
    if listed_for is None:
        return False
    for name, kernels in op_kernels().items():
        listed = listed_for(name)
        listed.extend([k for k in kernels if not any(k is known for known in listed)])
        if not all(any(k is known for known in listed_for(name)) for k in kernels):
            return False  # the accessor gave a copy: nothing to add to
    return True
