"""Every Triton launch an ``ECCCache`` makes, compiled for Hopper without a GPU.

The CPU tests run the kernels in Triton's interpreter, which neither type-checks nor lowers
them: a kernel that cannot compile for a GPU passes every one of them (Golay's store kernel
at head_dim 32 did: it read a scale through the uint8 pointer it is handed when it writes the
scales itself, and only the H200 said so). This tool runs a small workload in the
interpreter, in a subprocess: for each mode, model dtype, head_dim and storage option (keys per token;
keys per channel with a full-precision window; grouped scales with zero points), a tiny
Llama's prefill and decoding steps through ``ECCCache`` with faults on the whole footprint,
attended dense (``"sdpa"``) and fused (``"ecc"``). It records each launch's kernel, argument types,
constexprs and options, specialized as Triton's launcher would (16-byte aligned pointers and
integers divisible by 16, integers equal to 1 made constants), then compiles each distinct
launch for sm_90a with the ptxas bundled with Triton and prints those that fail.

    python tools/compile_cache_launches.py             # every mode, head_dim 32 64 128, bfloat16 and float32
    python tools/compile_cache_launches.py --modes int12-golay --head-dims 32 80 --dtypes bfloat16 --jobs 8
    python tools/compile_cache_launches.py --modes int4-secded72 --head-dims 128 --dtypes bfloat16 --options token --jobs 2 --threads

Compiles of distinct launches do not share Triton's cache here unless ``TRITON_CACHE_DIR`` holds
them from an earlier run: give it a fresh directory to time them.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib
import itertools
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from codec_launches import HOPPER, POINTER_TYPES  # tools/, beside this script

OPTIONS = ("num_warps", "num_stages", "maxnreg", "num_ctas")
OPTION_NAMES = {"token": "keys per token", "channel": "keys per channel over blocks of 8, a window of 4",
                "groups": "scales per half row with zero points (their launches compile for minutes)"}
# Constexprs the launchers derive from the tensors' device, as they are on a GPU (recorded on
# CPU tensors, the launches carry the interpreter's values).
GPU_CONSTANTS = {"PTX": True, "EMULATE_BF16": False, "FIX_NAN": False, "FMA": True}


def record(args) -> list[tuple]:
    """Run the workload in Triton's interpreter (the caller set ``TRITON_INTERPRET=1``) and
    return each launch as (module, kernel name, {argument: ("tensor", dtype, aligned) or
    ("value", python value)}, {option: value})."""
    import torch
    from triton.runtime.interpreter import InterpretedFunction
    from transformers import LlamaConfig, LlamaForCausalLM

    from ecc_tensor.faults import FaultModel
    from ecc_tensor.integrations.hf import ECCCache, cache_argument
    from ecc_tensor.modes import get_mode

    import ecc_tensor.ops.library as library
    from ecc_tensor.interp import _KERNELS, register_interpolation_kernel
    from interpreter_speed import install  # tools/, beside this script

    install()  # the recording is most of this tool's time

    # CPU tensors take the Triton kernels (in the interpreter) where the ops would run the
    # PyTorch reference: the launches the GPU makes.
    library._on_gpu = lambda t: True
    register_interpolation_kernel("cpu", _KERNELS["cuda"])
    launches = []
    run = InterpretedFunction.run

    def recording_run(self, *a, grid, warmup, **kwargs):
        bound = dict(zip(self.arg_names, a))
        bound.update({k: v for k, v in kwargs.items() if k not in OPTIONS})
        described = {}
        for name, value in bound.items():
            if isinstance(value, torch.Tensor):
                described[name] = ("tensor", value.dtype, value.data_ptr() % 16 == 0)
            else:
                described[name] = ("value", value.value if hasattr(value, "value") else value)
        launches.append((self.fn.__module__, self.fn.__name__, described, {k: v for k, v in kwargs.items() if k in OPTIONS}))
        return run(self, *a, grid=grid, warmup=warmup, **kwargs)

    InterpretedFunction.run = recording_run
    torch.manual_seed(0)
    for dtype, head_dim in itertools.product(args.dtypes, args.head_dims):
        config = LlamaConfig(vocab_size=64, hidden_size=4 * head_dim, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                             num_key_value_heads=2, max_position_embeddings=256)
        model = LlamaForCausalLM(config).to(getattr(torch, dtype)).eval()
        ids = torch.randint(0, 64, (2, 20))
        for mode in args.modes:
            # The INT4 modes' storage options (OPTION_NAMES); the 16-bit and fp8 modes store every
            # token as it is.
            options = {"token": {}}
            if get_mode(mode).codec is not None:
                options["channel"] = dict(key_quant="channel", residual_length=4, channel_block=8)
                if head_dim % 2 == 0:
                    options["groups"] = dict(group_size=head_dim // 2, symmetric=False)
            for label, option in options.items():
                if label not in args.options:
                    continue
                for attention in ("sdpa", "ecc"):
                    model.set_attn_implementation(attention)
                    cache = ECCCache(config, 2, 32, mode=mode, fault=FaultModel("bsc", 1e-2, seed=1, targets="all"), **option)
                    with torch.no_grad():
                        model(ids[:, :17], **cache_argument(model, cache), use_cache=True)
                        for i in range(17, 20):
                            model(ids[:, i:i + 1], **cache_argument(model, cache), use_cache=True,
                                  position_ids=torch.full((2, 1), i))
                    cache.stats()
                    print(f"recorded {mode}, {dtype}, head_dim {head_dim}, {label}, {attention}: {len(launches)} launches",
                          file=sys.stderr)
        model.set_attn_implementation("sdpa")
    return launches


def signature_of(fn, described: dict) -> tuple[dict, dict, dict]:
    """The (signature, constants, attrs) Triton's launcher compiles ``fn`` with for a launch
    ``described`` as ``record`` describes it."""
    signature, constants, attrs = {}, {}, {}
    for i, param in enumerate(fn.params):
        name = param.name
        kind, *rest = described.get(name, ("value", param.default))
        value = rest[0]
        specialize = not param.do_not_specialize
        if param.is_constexpr:
            signature[name], constants[name] = "constexpr", GPU_CONSTANTS.get(name, value)
        elif kind == "tensor":
            signature[name] = POINTER_TYPES[value]
            if rest[1]:
                attrs[(i,)] = [["tt.divisibility", 16]]
        elif value is None:
            signature[name], constants[name] = "constexpr", None
        elif isinstance(value, bool):
            signature[name] = "i1"
        elif isinstance(value, int):
            if value == 1 and specialize:
                signature[name], constants[name] = "constexpr", 1
                continue
            signature[name] = "i32" if -2**31 <= value < 2**31 else ("i64" if value < 2**63 else "u64")
            if value % 16 == 0 and specialize:
                attrs[(i,)] = [["tt.divisibility", 16]]
        elif isinstance(value, float):
            signature[name] = "fp32"
        else:
            raise TypeError(f"{fn.__name__}: argument {name} of type {type(value).__name__} has no Triton type here")
    return signature, constants, attrs


def compile_launch(launch: tuple) -> str | None:
    """Compile one launch, (module, kernel name, signature, constants, attrs, options), for
    sm_90a; None, or the error: its last lines and the message of its first cause."""
    import triton
    from triton.compiler import ASTSource

    module, name, signature, constants, attrs, options = launch
    fn = getattr(importlib.import_module(module), name)
    try:
        triton.compile(ASTSource(fn, signature, constants, attrs), target=HOPPER, options=dict(options))
    except Exception as e:  # a compile error is the finding: report it and go on
        cause = e
        while cause.__cause__ is not None:
            cause = cause.__cause__
        lines = f"{type(e).__name__}: {e}".strip().splitlines()[-6:]
        if cause is not e:
            lines.append(f"caused by {type(cause).__name__}: {cause}".strip().splitlines()[-1])
        return "\n".join(lines)
    return None


def distinct(launches: list[tuple]) -> list[tuple]:
    """One (module, kernel name, signature, constants, attrs, options) per distinct compile."""
    seen = {}
    for module, name, described, options in launches:
        fn = getattr(importlib.import_module(module), name)
        signature, constants, attrs = signature_of(fn, described)
        key = (module, name, repr(signature), repr(constants), repr(sorted(attrs)), repr(sorted(options.items())))
        seen.setdefault(key, (module, name, signature, constants, attrs, options))
    return list(seen.values())


def main(argv=None) -> int:
    from ecc_tensor.modes import MODE_NAMES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", nargs="+", default=list(MODE_NAMES), choices=MODE_NAMES)
    parser.add_argument("--head-dims", nargs="+", type=int, default=[32, 64, 128])
    parser.add_argument("--dtypes", nargs="+", default=["bfloat16", "float32"], choices=["bfloat16", "float16", "float32"],
                        help="the model's dtype")
    parser.add_argument("--options", nargs="+", default=list(OPTION_NAMES), choices=list(OPTION_NAMES),
                        help="the INT4 modes' storage options: " + "; ".join(f"{k}: {v}" for k, v in OPTION_NAMES.items()))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="compiles at once")
    parser.add_argument("--threads", action="store_true",
                        help="compile in threads of this process rather than in processes (as ecc_tensor.ops.compile_ahead does)")
    parser.add_argument("--record-to", help=argparse.SUPPRESS)  # the interpreter subprocess's output
    args = parser.parse_args(argv)
    if args.record_to:
        from interpreter_speed import roomy_call  # tools/, beside this script

        launches = roomy_call(record, args)  # a stack chunk of its own: 93 -> 64 s for the test's modes (benchmarks/RESULTS.md)
        with open(args.record_to, "wb") as f:
            pickle.dump(launches, f)
        return 0

    if os.environ.get("TRITON_INTERPRET") == "1":
        raise SystemExit("run without TRITON_INTERPRET=1: the launches compile in this process (the recording sets it for its own)")
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "launches.pickle"
        env = dict(os.environ, TRITON_INTERPRET="1")
        cmd = [sys.executable, __file__, "--record-to", str(path), "--modes", *args.modes, "--head-dims", *map(str, args.head_dims),
               "--dtypes", *args.dtypes, "--options", *args.options]
        subprocess.run(cmd, env=env, check=True)
        with open(path, "rb") as f:
            launches = pickle.load(f)
    todo = distinct(launches)
    print(f"{len(launches)} launches, {len(todo)} distinct: compiling for sm_90a", flush=True)
    failed = 0
    start = time.perf_counter()
    executor = concurrent.futures.ThreadPoolExecutor if args.threads else concurrent.futures.ProcessPoolExecutor
    with executor(max(1, args.jobs)) as pool:
        for (module, name, _, constants, _, options), error in zip(todo, pool.map(compile_launch, todo)):
            if error is None:
                continue
            failed += 1
            print(f"FAILED {module}.{name} {constants} {options}\n  {error.replace(chr(10), chr(10) + '  ')}", flush=True)
    print(f"{len(todo) - failed} compiled, {failed} failed, in {time.perf_counter() - start:.1f} s "
          f"({max(1, args.jobs)} at once, in {'threads' if args.threads else 'processes'})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
