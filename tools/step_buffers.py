"""The buffers a compiled decoding step over ``ECCCache`` allocates, without a GPU.

A decoding step should write one token per layer and let the ops read the rest; a buffer the
compiled step allocates in the stored codewords' dtype and as large as a sequence's stored rows
is a copy of the cache (Inductor copied the FP8 cache's K and V twice a step through an integer
view, and SECDED(72,64)'s codewords around each decode launch when torch's analysis took them for
written; both were found on a GPU). This compiles a tiny Llama's decoding step with Inductor,
the ops' Triton kernels inlined for Hopper (a stand-in driver; Triton's compile of the kernels
stubbed, as ``tools/compile_analysis_cost.py --backend inductor`` does; the graph's other
operations become C++ for the CPU, whose buffers are allocated alike), reads the generated
module and prints, per mode and head_dim, the bytes of one sequence's stored rows of a layer's
keys and the allocations of that dtype at least that large, flat or in rows of the stored width
(``cache_copies``: should be none; a scratch buffer of decoded values has rows of head_dim).

    python tools/step_buffers.py                                  # every coded mode and fp8, head dims 32 64
    python tools/step_buffers.py --modes int4-secded72 --head-dims 32 --json
    python tools/step_buffers.py --key-quant channel --residual-length 16 --channel-block 16   # KIVI-style keys
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

_ALLOCATION = re.compile(r"(buf\d+) = empty_strided_cpu\(\(([\d, ]*)\), \([\d, ]*\), torch\.(\w+)\)")


def measure(mode: str, head_dim: int, **cache_options) -> dict:
    import torch
    from torch._inductor.codecache import PyCodeCache
    from torch._inductor.runtime.triton_heuristics import CachingAutotuner

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from compile_analysis_cost import first_compiled_step, ops_on_kernels, tiny_decoder

    CachingAutotuner.precompile = lambda self, *args, **kwargs: None  # Triton's compile needs the GPU's driver
    torch._inductor.config.compile_threads = 1  # in this process, where the stub is
    torch._dynamo.reset()
    model, cache, cache_kwargs, ids = tiny_decoder(mode, 1, head_dim, **cache_options)
    keys = cache.layers[0]._k
    stored = keys.stored if getattr(keys, "stored", None) is not None else keys.words
    with ops_on_kernels():
        before = set(PyCodeCache.modules)
        first_compiled_step(torch.compile(model.forward, fullgraph=True), cache_kwargs, ids)
    sources = [open(m.__file__).read() for m in PyCodeCache.modules if m not in before and getattr(m, "__file__", None)]
    sources = [s for s in sources if "def call(" in s]
    if not sources:
        raise RuntimeError(f"{mode} {head_dim}: no generated step found")
    sequence_bytes = stored[0].numel() * stored.element_size()
    dtype = str(stored.dtype).removeprefix("torch.")
    copies = []
    row = stored.shape[-1]
    for name, shape, kind in _ALLOCATION.findall("\n".join(sources)):
        sizes = [int(x) for x in shape.replace(" ", "").split(",") if x]
        numel = 1
        for size in sizes:
            numel *= size
        # Flat, or rows of the stored width: a scratch buffer of decoded values is [..., head_dim].
        if kind == dtype and numel * stored.element_size() >= sequence_bytes and (len(sizes) == 1 or sizes[-1] == row):
            copies.append(f"{name} [{shape}] {kind}")
    return dict(mode=mode, head_dim=head_dim, stored_dtype=dtype, sequence_bytes=sequence_bytes, cache_copies=copies)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--modes", nargs="+", default=["int4", "int4-hamming", "int4-hamming84-interp", "int12-golay", "int4-secded72",
                                                  "int4-secded72-interp", "fp8"])
    p.add_argument("--head-dims", nargs="+", type=int, default=[32, 64])
    p.add_argument("--group-size", type=int, help="the cache's scales per group of this many values")
    p.add_argument("--key-quant", choices=["token", "channel"], default="token")
    p.add_argument("--residual-length", type=int, default=0, help="the cache's full-precision recent tokens")
    p.add_argument("--channel-block", type=int, default=16, help="rows a per-channel key scale covers")
    p.add_argument("--json", action="store_true", help="one JSON object a mode and head_dim")
    args = p.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        raise SystemExit("run without TRITON_INTERPRET=1: the step's kernels are generated for the GPU")
    for mode in args.modes:
        for head_dim in args.head_dims:
            result = measure(mode, head_dim, group_size=args.group_size, key_quant=args.key_quant,
                             residual_length=args.residual_length, channel_block=args.channel_block)
            if args.json:
                print(json.dumps(result), flush=True)
            else:
                found = ", ".join(result["cache_copies"]) or "none"
                print(f"{mode:24} {head_dim:4}: a sequence's stored keys {result['sequence_bytes']} B of {result['stored_dtype']}; "
                      f"copies that large: {found}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
