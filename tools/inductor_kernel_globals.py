"""Whether torch.compile's Inductor can compile each of the project's Triton kernels from its
copy of them: Inductor rebuilds a user-defined kernel from the source of the kernel and of the
Triton functions it calls, with their int, str, bool and ``tl.constexpr`` globals, and nothing
else. A function that loads any other global (a tuple, a tensor, a codec's matrix) fails to
compile inside a compiled model, and only on a GPU, where Inductor runs the kernels. Exits 1,
naming the function and the globals, where a copy leaves one undefined.

    python tools/inductor_kernel_globals.py
"""

from __future__ import annotations

import builtins
import dis
import importlib.util
import sys
import tempfile
from pathlib import Path

import triton
from torch._inductor.codegen.wrapper import user_defined_triton_kernel_transitive_closure_source_code as copied_source

from ecc_tensor.ops import codec_kernels, fault_kernels, interp_kernels
from ecc_tensor.ops.attention import kernel as attention_kernel
from ecc_tensor.ops.attention import channel_scales, fp8

KERNELS = [codec_kernels._store_kernel, codec_kernels._load_kernel, fault_kernels._inject_kernel, interp_kernels._tile_kept_bounds_kernel,
           interp_kernels._interpolate_kernel, attention_kernel._decode_attention_kernel, attention_kernel._combine_splits_kernel,
           channel_scales._channel_scales_kernel, fp8._fp8_decode_attention_kernel]


def undefined_globals(kernel) -> dict[str, list[str]]:
    """``{function: [globals it loads that the copy leaves undefined]}`` for Inductor's copy of ``kernel``."""
    with tempfile.TemporaryDirectory() as d:  # Triton reads a function's source from its file, as Inductor writes it
        path = Path(d) / "copy.py"
        path.write_text("import triton\nimport triton.language as tl\n" + copied_source(kernel))
        spec = importlib.util.spec_from_file_location("copy", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    namespace = vars(module)
    missing = {}
    for name, fn in namespace.items():
        if isinstance(fn, (triton.JITFunction, triton.runtime.jit.ConstexprFunction)):
            loads = {i.argval for i in dis.Bytecode(fn.fn) if i.opname == "LOAD_GLOBAL"}
            if undefined := sorted(g for g in loads if g not in namespace and not hasattr(builtins, g)):
                missing[name] = undefined
    return missing


def main() -> int:
    failed = False
    for kernel in KERNELS:
        missing = undefined_globals(kernel)
        failed |= bool(missing)
        print(f"{kernel.fn.__name__}: " + ("; ".join(f"{f} loads {g}" for f, g in missing.items()) or "every global defined"))
    return int(failed)


if __name__ == "__main__":
    sys.exit(main())
