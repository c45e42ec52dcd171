"""Which tensors torch.compile believes each of this package's Triton kernels writes, without a GPU.

Under torch.compile a user Triton kernel is functionalized: torch analyses the kernel's IR for
the tensors it may write (a store's address traced back to the kernel's pointer arguments) and
copies each such tensor before the launch. A tensor the kernel only reads but the analysis
names is copied whole at every call: the stored codewords once were (SECDED(72,64) at head
dims its fused attention does not take), because a helper returned the store's columns together
with values decoded from the codewords, so every store address seemed to depend on them.

For each codec and head_dim this compiles (``aot_eager``'s front end, the analysis done for
Hopper by a stand-in driver; nothing runs) each op the cache runs (``quantize_encode``,
``ECCInt4Tensor.dequantize`` with and without interpolation, ``inject``,
``ecc_decode_attention``, over keys quantized per token and per channel; and, once, the FP8
cache's attention, which has no codec) with its Triton kernels inlined, and prints each launch's
kernel, the tensors the analysis says it writes, and those of them that are the op's inputs
(``inputs_written``: graph inputs or views of them, the decode counters excepted). That last
list should be empty.

    python tools/kernel_writes.py                                   # every codec, head dims 32 100 128
    python tools/kernel_writes.py --codecs secded72 --head-dims 32 --json
    python tools/kernel_writes.py --group-size 32 --asymmetric --head-dims 128   # grouped scales, zero points
"""

from __future__ import annotations

import argparse
import json
import os
import sys

_VIEWS = {"select", "slice", "view", "_unsafe_view", "reshape", "as_strided", "permute", "transpose", "expand", "unsqueeze", "squeeze",
          "alias", "t", "view_as", "unflatten", "flatten", "narrow", "diagonal"}


OPS = ("encode", "dequantize", "interpolate", "inject", "attention", "channel-attention", "fp8-attention")


class _Stop(Exception):
    """Raised by the graph compiler once it has read the graph: nothing is run."""


def _stopped(error: BaseException | None) -> bool:
    """Whether ``error`` is the graph compiler's ``_Stop``, however torch wrapped it."""
    while error is not None:
        if isinstance(error, _Stop):
            return True
        error = error.__cause__ or error.__context__
    return False


def _base(node):
    """The node a chain of views starts from."""
    while node.op == "call_function" and getattr(node.target, "__name__", "").split(".")[0] in _VIEWS and node.args:
        node = node.args[0]
    return node


def _launches(gm) -> list[dict]:
    launches = []
    for node in gm.graph.nodes:
        if node.op != "call_function" or "triton_kernel_wrapper_functional" not in str(node.target):
            continue
        from torch._higher_order_ops.triton_kernel_wrap import kernel_side_table

        kernel = kernel_side_table.get_kernel(node.kwargs["kernel_idx"])
        name = getattr(getattr(kernel, "fn", kernel), "__name__", str(kernel))
        writes = list(node.kwargs["tensors_to_clone"])
        bound = node.kwargs["kwargs"]
        inputs = [w for w in writes if w != "counters_ptr" and _base(bound[w]).op == "placeholder"]
        launches.append(dict(kernel=name, writes=writes, inputs_written=inputs))
    return launches


def analyse(codec: str, head_dim: int, op: str, group_size: int | None = None, symmetric: bool = True) -> list[dict]:
    import torch
    from torch._dynamo.backends.common import aot_autograd

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from compile_analysis_cost import ops_on_kernels

    import ecc_tensor.ops as ops
    from ecc_tensor import ECCInt4Tensor
    from ecc_tensor.faults import FaultModel
    from ecc_tensor.fp8 import head_scale, to_e4m3
    from ecc_tensor.fp8_tensor import FP8KVTensor, fp8_decode_attention
    from ecc_tensor.storage import StorageLayout
    from ecc_tensor.tensor import ecc_decode_attention

    torch.manual_seed(0)
    query = torch.randn(2, 4, 1, head_dim, dtype=torch.float16)
    dense = torch.randn(2, 2, 48, head_dim, dtype=torch.float16)
    if op == "fp8-attention":  # no codec
        fp8 = FP8KVTensor(to_e4m3(dense, head_scale(dense)), head_scale(dense), dense.shape, torch.float16)
        fn, args = (lambda q, k, v: fp8_decode_attention(q, k, v)), (query, fp8, fp8)
    else:
        scales = dict(group_size=group_size, symmetric=symmetric)
        k = ECCInt4Tensor.from_float(dense, codec, **scales)
        bits = StorageLayout(codec, head_dim).exposed_bits_per_byte
        fn, args = {
            "encode": (lambda x: ops.quantize_encode(x, codec), (query,)),
            "dequantize": (lambda k: k.dequantize(), (k,)),
            "interpolate": (lambda k: k.dequantize(interpolate=True), (k,)),
            "inject": (lambda w: ops.inject(w, bits, FaultModel("bsc", 1e-3, seed=0), step=0), (k.stored,)),
            "attention": (lambda q, k, v: ecc_decode_attention(q, k, v), (query, k, ECCInt4Tensor.from_float(-dense, codec, **scales))),
            "channel-attention": (lambda q, k, v: ecc_decode_attention(q, k, v),
                                  (query, ECCInt4Tensor.from_float(dense, codec, axis="channel", channel_block=32, symmetric=symmetric),
                                   ECCInt4Tensor.from_float(-dense, codec, window_block=32, **scales))),
        }[op]
    seen = []

    def graph_compiler(gm, _inputs):
        seen.extend(_launches(gm))
        raise _Stop

    torch._dynamo.reset()
    with ops_on_kernels():
        try:
            torch.compile(fn, fullgraph=True, backend=aot_autograd(fw_compiler=graph_compiler))(*args)
        except Exception as e:  # noqa: BLE001 - _Stop, as Dynamo wraps it
            if not _stopped(e):
                raise
    return [dict(op=op, codec=codec, head_dim=head_dim, **launch) for launch in seen]


def main(argv=None) -> int:
    from ecc_tensor.codecs import CODEC_NAMES

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--codecs", nargs="+", default=list(CODEC_NAMES), choices=CODEC_NAMES)
    p.add_argument("--head-dims", nargs="+", type=int, default=[32, 100, 128])
    p.add_argument("--ops", nargs="+", default=list(OPS), choices=OPS)
    p.add_argument("--group-size", type=int, help="scales per group of this many values (default: one a row)")
    p.add_argument("--asymmetric", action="store_true", help="scales with zero points")
    p.add_argument("--json", action="store_true", help="one JSON object a launch")
    args = p.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        raise SystemExit("run without TRITON_INTERPRET=1: the analysis generates the kernels' IR for the GPU")
    bad = 0
    for op in args.ops:
        for codec in ["fp8"] if op == "fp8-attention" else args.codecs:
            for head_dim in args.head_dims:
                for launch in analyse(codec, head_dim, op, args.group_size, not args.asymmetric):
                    bad += bool(launch["inputs_written"])
                    if args.json:
                        print(json.dumps(launch), flush=True)
                    else:
                        flag = f"  INPUTS WRITTEN: {', '.join(launch['inputs_written'])}" if launch["inputs_written"] else ""
                        writes = ", ".join(launch["writes"])
                        print(f"{op:10} {codec:9} {head_dim:4} {launch['kernel']:28} writes {writes}{flag}", flush=True)
    if bad and not args.json:
        print(f"{bad} launches would copy an input of their op before each call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
