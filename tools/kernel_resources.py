"""Registers, spills and compile time of the fused attention kernel on Hopper, without a GPU.

Compiles ``_decode_attention_kernel`` for sm_90a with Triton (no device needed) for every
codec / dtype / interpolation variant at its launch configuration, with the argument types
torch.compile passes (the softmax scale as float64), then runs the ptxas bundled with Triton
in verbose mode. A kernel that fails to compile for the GPU fails here first; a stack frame or
spill bytes mean the configuration is too large for the register file. Each line ends with the
program's shared memory and how many programs an SM holds at once (``resident_programs``), next
to the programs per SM the launch plan counts on. Each line also gives
the compile time and the ``tt.load`` operations of the kernel's Triton IR: a kernel compiles
at its first call, and Triton's coalescing pass takes time quadratic in a kernel's loads; and
the loads left in a loop after pipelining (``loop_loads``), which wait for global memory.
Compile times depend on the CPU; compare within one run (each run compiles into an empty cache).

    python tools/kernel_resources.py                       # every variant, default configs
    python tools/kernel_resources.py --config 64,4,2 --codecs hamming84
    python tools/kernel_resources.py --channel-keys --codecs int4 hamming84   # keys per channel
    python tools/kernel_resources.py --groups 4 --asymmetric --codecs golay24   # grouped scales with zero points
    python tools/kernel_resources.py --codecs hamming84 --dtypes bf16 --launches main --loops   # SASS per loop
    python tools/kernel_resources.py --codecs golay24 --launches deferred --loops --lines 12   # and where the largest loop's come from
    python tools/kernel_resources.py --codecs fp8          # ecc::fp8_decode_attention's kernel (ops/attention/fp8.py)
"""

from __future__ import annotations

import argparse
import collections
import linecache
import os
import re
import subprocess
import tempfile
import time

import triton
from triton.backends.compiler import GPUTarget
from triton.backends.nvidia.compiler import get_ptxas
from triton.compiler import ASTSource

import torch

from ecc_tensor.metadata import MetadataLayout
from ecc_tensor.ops import launch_options
from ecc_tensor.ops.attention import plan as A
from ecc_tensor.ops.attention.fp8 import FP8_CONFIG, _fp8_decode_attention_kernel
from ecc_tensor.ops.attention.kernel import _decode_attention_kernel
from ecc_tensor.storage import StorageLayout

from attention_case import CHANNEL_BLOCK  # tools/, beside this script: --channel-keys uses the timing tools' block

POINTERS = {
    "k_ptr": "*u8", "km_ptr": "*u8", "v_ptr": "*u8", "vm_ptr": "*u8",
    "enc_ptr": "*i32", "syn_ptr": "*i32", "menc_ptr": "*i32", "msyn_ptr": "*i32",
    "seq_lens_ptr": "*i64", "kv_lens_ptr": "*i64", "mask_ptr": "*i32", "counters_ptr": "*i64",  # a boolean mask's words
    "o_part_ptr": "*fp32", "ml_part_ptr": "*fp32", "defer_ptr": "*u8", "ks_ptr": "*u8", "o_window_ptr": "*fp32", "ml_window_ptr": "*fp32",
}


def plan(codec, interpolate, q_heads=32, kv_heads=8, head_dim=128, config=None, *, channel_block=0, groups=1) -> A.LaunchPlan:
    """The launcher's plan for a decoding step at batch 8, 32k keys (the splits as on a GPU of
    132 SMs); ``channel_block`` > 0: keys quantized per channel over blocks of that many rows;
    ``groups`` scales a row."""
    return A.LaunchPlan.make(codec, head_dim, groups, interpolate, batch=8, q_heads=q_heads, kv_heads=kv_heads, lq=1, seq=32768,
                             device=torch.device("cpu"), config=config, channel_block=channel_block)


def compile_variant(codec, dtype, interpolate, masked, deferred=False, q_heads=32, kv_heads=8, head_dim=128, symmetric=True,
                    config=None, channel_block=0, window=False, groups=1):
    """The main launch, or with ``deferred`` the launch over the blocks the main one deferred,
    as ``LaunchPlan`` configures it (``config``: its override string); ``window``: the main
    launch attends a full-precision window too."""
    fn = _decode_attention_kernel
    layout = StorageLayout(codec, head_dim)
    launch = plan(codec, interpolate, q_heads, kv_heads, head_dim, config, channel_block=channel_block, groups=groups)
    storage = dict(launch.storage)
    launch_config = launch.deferred if deferred else launch.main
    if deferred:
        storage["BLOCK_U"] = A.deferred_block_u(layout, storage["BLOCK_U"])
    signature = {}
    for name in fn.arg_names:
        if name in ("q_ptr", "kw_ptr", "vw_ptr"):
            signature[name] = f"*{dtype}"
        elif name in POINTERS:
            signature[name] = POINTERS[name]
        elif name == "qk_scale":
            signature[name] = "fp64"
        elif name in ("split_len", "splits", "S", "k_meta_rows", "program_splits", "W") or name.startswith("stride"):
            signature[name] = "i32"
        else:
            signature[name] = "constexpr"
    meta = A.meta_constants(MetadataLayout(codec, groups, symmetric), torch.empty(0, dtype=torch.uint8))
    constants = dict(
        HKV=kv_heads, GQA=q_heads // kv_heads, LQ=1, **storage, HAS_ZERO=not symmetric, INTERP=interpolate,
        DEFER=launch.deferred is not None,
        DEFERRED=deferred, HAS_MASK=3 if masked else 0, MASK_ROWS=masked, CAUSAL=False,  # a decoding step's boolean [B, 1, 1, S] mask
        DOT_PRECISION="tf32", EMULATE_BF16=False, PTX=True, SPLIT_P=dtype == "bf16",
        **meta,
        **A.key_meta_constants(MetadataLayout(codec, head_dim if channel_block else groups, symmetric), head_dim, channel_block, meta),
        BLOCK_M=launch.block_m, BLOCK_N=launch_config["block_n"], PART_COLS=launch.part_cols,
        WINDOW=window and not deferred, WINDOW_BLOCK_D=triton.next_power_of_2(max(head_dim, 16)),
        WINDOW_UNIT_VALUES=launch.combine_unit_values, WINDOW_BLOCK_U=launch.combine_u,
        GDC=launch_options.dependent_gdc(),  # as launched on sm_90 with dependent launches
        SCALE_ROWS=launch.main["scale_rows"],
    )
    if launch.channel_scales_pass and not deferred:  # the main launch reads the pass's float32 rows, as the launcher
        constants.update(A.channel_scales_constants(MetadataLayout(codec, head_dim, symmetric)))
    elif launch.channel_scales_in_main and not deferred:  # its programs read their coded rows first
        constants.update(A.coded_channel_scales_constants(MetadataLayout(codec, head_dim, symmetric), 0))
    if launch.grouped_scales_pass and not deferred:  # the main launch reads the pass's float32 rows of K and V scales
        constants.update(A.grouped_scales_constants(MetadataLayout(codec, groups, symmetric)))
    if not deferred:  # the main launch passes 1, which Triton's launcher specializes on
        signature["program_splits"] = "constexpr"
        constants["program_splits"] = 1
    # What Triton's launcher specializes on at run time: 16-byte aligned tensors, the storage
    # length and split length (multiples of the block) and the contiguous query's strides
    # divisible by 16, its last stride equal to 1. Without these the compiler cannot prove
    # the word loads aligned and emits 4-byte copies where the real kernel has 16-byte ones.
    aligned = [name for name in fn.arg_names if name in POINTERS or name in ("q_ptr", "kw_ptr", "vw_ptr")]
    aligned += ["split_len", "S", "stride_qb", "stride_qh", "stride_qm"]
    attrs = {(fn.arg_names.index(name),): [["tt.divisibility", 16]] for name in aligned}
    signature["stride_qd"] = "constexpr"
    constants["stride_qd"] = 1
    options = {"num_warps": launch_config["num_warps"], "num_stages": launch_config["num_stages"]}
    if launch_config.get("maxnreg") and not deferred:  # as the launcher: a cap on the main launch only
        options["maxnreg"] = launch_config["maxnreg"]
    return triton.compile(ASTSource(fn, signature, constants, attrs), target=GPUTarget("cuda", 90, 32), options=options), launch_config


def compile_fp8(dtype, config=None, q_heads=32, kv_heads=8, head_dim=128):
    """``ecc::fp8_decode_attention``'s kernel as its launcher configures it (``config``:
    ``FP8_CONFIG``'s override), with the specializations Triton's launcher makes at run time."""
    fn = _fp8_decode_attention_kernel
    launch = A.parse_config(config or FP8_CONFIG)
    pointers = {"k_ptr": "*u8", "v_ptr": "*u8", "k_scale_ptr": "*fp32", "v_scale_ptr": "*fp32", "seq_lens_ptr": "*i64",
                "mask_ptr": "*fp32", "o_part_ptr": "*fp32", "ml_part_ptr": "*fp32", "q_ptr": f"*{dtype}"}
    signature = {name: pointers.get(name, "fp32" if name == "qk_scale" else "i32") for name in fn.arg_names[:fn.arg_names.index("HKV")]}
    constants = dict(HKV=kv_heads, GQA=q_heads // kv_heads, LQ=1, D=head_dim, BLOCK_M=max(A.MIN_BLOCK_M, q_heads // kv_heads),
                     BLOCK_D=head_dim, BLOCK_N=launch["block_n"], HAS_MASK=0, MASK_ROWS=True, CAUSAL=False, DOT_PRECISION="tf32",
                     EMULATE_BF16=False, HALF_OPERANDS=dtype == "bf16", FIX_NAN=False, WIDE_OFFSETS=False,
                     GDC=launch_options.dependent_gdc())
    for name in ("stride_qd", "stride_kd", "stride_vd"):  # contiguous rows: 1, which the launcher specializes on
        signature[name] = "constexpr"
        constants[name] = 1
    signature.update({name: "constexpr" for name in constants if name not in signature})
    aligned = [name for name in fn.arg_names if name in pointers] + ["split_len", "S", "stride_qb", "stride_qh", "stride_qm", "stride_kb",
                                                                      "stride_kh", "stride_ks", "stride_vb", "stride_vh", "stride_vs"]
    attrs = {(fn.arg_names.index(name),): [["tt.divisibility", 16]] for name in aligned}
    options = {"num_warps": launch["num_warps"], "num_stages": launch["num_stages"]}
    if launch["maxnreg"]:
        options["maxnreg"] = launch["maxnreg"]
    return triton.compile(ASTSource(fn, signature, constants, attrs), target=GPUTarget("cuda", 90, 32), options=options), launch


def ptxas_report(kernel) -> str:
    # The ptxas Triton itself compiles sm_90a with: Triton 3.6's `ptxas` (CUDA 12.8), Triton
    # 3.9's `ptxas-blackwell` (13.x). Another one reports other registers and spills (for
    # Hamming(8,4)'s float16 main launch, 12.9's ptxas-blackwell: 168 registers and 64 bytes
    # of spills, where Triton 3.6's own ptxas, the H200 machine's, has 242 and none).
    ptxas = get_ptxas(90).path
    with tempfile.NamedTemporaryFile("w", suffix=".ptx", delete=False) as f:
        f.write(kernel.asm["ptx"])
    result = subprocess.run([ptxas, "-arch=sm_90a", "-v", f.name, "-o", os.devnull], capture_output=True, text=True)
    os.unlink(f.name)
    lines = [line.split("info    :")[-1].strip() for line in result.stderr.splitlines() if "registers" in line or "spill" in line]
    return " | ".join(lines) or result.stderr.strip()


def loop_loads(kernel) -> int:
    """Loads left in a loop's body after Triton's pipeliner (``tt.load`` inside an ``scf.for``
    of the TTGIR) whose value the same iteration uses: each waits for global memory there. The
    pipeliner issues a loop's loads ahead only where a dot uses them, directly or through other
    operations: as ``async_copy_global_to_local`` stages ahead, or, for a dot operand it keeps in
    registers (the FP8 kernel's values), as a ``tt.load`` whose value the loop yields to the
    next iteration (not counted). A load that feeds only a check (a syndrome OR-ed into a flag
    that no dot reads) stays behind (benchmarks/RESULTS.md)."""
    owners, count = [], 0  # each open region: (its operation, the loads of its scf.for's body)
    for line in kernel.asm["ttgir"].splitlines():
        text = line.strip()
        if text.startswith("}"):  # "}", "} else {", "} do {": a region ends (and maybe another begins)
            op, loads = owners.pop() if owners else (None, [])
            count += len(loads)  # a loop's loads no yield carried
            if text.endswith("{"):
                owners.append((op, []))
            continue
        loop = next((loads for op, loads in reversed(owners) if op == "scf.for"), None)  # the innermost loop's
        if " tt.load " in text and loop is not None:
            loop.append(text.split(" = ", 1)[0])
        if text.startswith("scf.yield") and owners and owners[-1][0] == "scf.for":
            # The loop's yield: its loads carried to the next iteration were issued a stage ahead.
            carried = set(re.findall(r"%[\w.#]+", text.split(" : ", 1)[0]))
            count += sum(name not in carried for name in loop)
            loop.clear()
        if text.endswith("{"):
            owners.append((next((op for op in ("scf.for", "scf.while", "scf.if", "tt.func", "module") if op in text), "other"), []))
    return count


# An sm_90 SM (H100, H200): its register file, shared memory (each resident program also
# reserves 1 KiB of it), warps and programs.
SM90_REGISTERS = 65536
SM90_SHARED = 228 * 1024
SM90_WARPS = 64
SM90_PROGRAMS = 32


def resident_programs(registers: int, shared: int, num_warps: int) -> tuple[int, str]:
    """(programs of a launch an sm_90 SM holds at once, what bounds it) for ``registers`` a
    thread (allocated per warp, 256 at a time), ``shared`` bytes of shared memory a program and
    ``num_warps``. Where the plan's ``waves`` (programs per SM) exceeds it, the programs past it
    run in a second wave: Golay's and FP8's main launches (8 an SM by registers) by design, two
    whole waves; the one-byte codes' (19 KiB of shared memory, three stages of K and V words: 11
    an SM) in a partial one, which timed within 1-2% of 8 and 12 an SM at batch 8 / 32k
    (benchmarks/RESULTS.md, "Programs per SM and register caps")."""
    per_warp = -(-registers * 32 // 256) * 256
    bounds = {"registers": SM90_REGISTERS // (per_warp * num_warps), "shared memory": SM90_SHARED // (shared + 1024),
              "warps": SM90_WARPS // num_warps, "programs": SM90_PROGRAMS}
    bound = min(bounds, key=bounds.get)
    return bounds[bound], bound


def residency_report(kernel, report: str, config: dict) -> str:
    """A line's residency: shared memory a program, programs an SM (``resident_programs``, from
    ptxas's registers in ``report``) and the plan's programs an SM (``waves``)."""
    used = re.search(r"Used (\d+) registers", report)
    if used is None:
        return f"{kernel.metadata.shared} B shared"
    resident, bound = resident_programs(int(used.group(1)), kernel.metadata.shared, config["num_warps"])
    over = " (over: a second wave)" if config.get("waves", 0) > resident else ""
    return f"{kernel.metadata.shared} B shared, {resident} an SM by {bound}, plan {config.get('waves', '-')}{over}"


def compile_report(kernel, seconds: float) -> str:
    """A line's compile figures: its time, the Triton IR's loads, the loads ``loop_loads`` finds."""
    return f"compile {seconds:5.1f} s, {kernel.asm['ttir'].count('tt.load '):3d} loads, {loop_loads(kernel)} in loops not prefetched"


def parse_sass(listing: str) -> tuple[list[tuple[int, str, tuple[str, int] | None]], dict[str, int]]:
    """nvdisasm's listing -> (instructions as ``(address, text, source)``, labels as ``{name:
    address}``). ``source`` is the ``(file, line)`` that ``-g`` writes above the instructions
    compiled from it (for an inlined function, its own line, not its caller's), else None."""
    instructions, labels, pending, source = [], {}, [], None
    for line in listing.splitlines():
        if label := re.match(r"\s*(\.L_x_\d+):", line):
            pending.append(label.group(1))
        elif where := re.match(r'\s*//## File "([^"]+)", line (\d+)', line):
            source = (where.group(1), int(where.group(2)))
        elif m := re.match(r"\s*/\*([0-9a-f]{4,})\*/\s+(.*?);", line):
            labels.update((name, int(m.group(1), 16)) for name in pending)
            pending = []
            instructions.append((int(m.group(1), 16), m.group(2).strip(), source))
    return instructions, labels


def loop_report(instructions, labels, count: int = 3, lines: int = 0) -> list[str]:
    """``parse_sass``'s result -> the ``count`` largest loops (the address range from a backward
    branch's target to the branch, its instruction count and most frequent opcodes, then its
    global loads by width: ``LDGSTS.E.BYPASS.128`` is a 16-byte asynchronous copy, ``.64`` one
    of 8 bytes, which rows that are not 16-byte aligned get) and, with
    ``lines``, the source lines that most of the largest loop's instructions come from. Nested
    loops overlap: an outer loop's count includes its inner one's."""
    loops = set()
    for address, text, _ in instructions:
        target = re.search(r"BRA\S*\s.*`\((\.L_x_\d+)\)", text)
        if target and labels.get(target.group(1), address) < address:
            loops.add((labels[target.group(1)], address))
    report = [f"    {len(instructions)} SASS instructions"]
    largest = sorted(loops, key=lambda r: r[0] - r[1])[:count]
    for low, high in largest:
        opcodes = [re.sub(r"^@!?U?P\w+\s+", "", t).split()[0] for a, t, _ in instructions if low <= a <= high]  # with modifiers
        body = [op.split(".")[0] for op in opcodes]
        mix = ", ".join(f"{op} {n}" for op, n in collections.Counter(body).most_common(8))
        loads = collections.Counter(op for op in opcodes if op.startswith("LDG") and op != "LDGDEPBAR")
        widths = "; global loads " + ", ".join(f"{op} {n}" for op, n in sorted(loads.items())) if loads else ""
        report.append(f"    loop {low:#06x}-{high:#06x}: {len(body):5d} instructions ({mix}){widths}")
    if lines and largest:
        low, high = largest[0]
        sources = collections.Counter(src for a, _, src in instructions if low <= a <= high)
        for src, n in sources.most_common(lines):
            where, text = "(no line information)", ""
            if src is not None:
                where = f"{os.path.basename(src[0])}:{src[1]}"
                text = linecache.getline(src[0], src[1]).strip()[:90]
            report.append(f"      {n:5d}  {where:24} {text}")
    return report


def sass_loops(kernel, count: int = 3, lines: int = 0) -> list[str]:
    """``loop_report`` of the kernel's SASS (nvdisasm, bundled with Triton, with line information)."""
    nvdisasm = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "nvdisasm")
    with tempfile.NamedTemporaryFile(suffix=".cubin", delete=False) as f:
        f.write(kernel.asm["cubin"])
    listing = subprocess.run([nvdisasm, "-c", "-g", f.name], capture_output=True, text=True).stdout
    os.unlink(f.name)
    return loop_report(*parse_sass(listing), count=count, lines=lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--codecs", nargs="+", default=["int4", "hamming74", "hamming84", "golay24", "secded72"])
    p.add_argument("--dtypes", nargs="+", default=["fp16", "bf16"])
    p.add_argument("--config", help="block_n,num_warps,num_stages[,waves[,maxnreg[,scale_rows]]] (default: the kernel's own per variant)")
    p.add_argument("--asymmetric", action="store_true", help="zero points (asymmetric quantization) instead of symmetric")
    p.add_argument("--groups", type=int, default=1, help="scales a row (values and keys per token; head_dim 128 in groups of 128 / GROUPS)")
    p.add_argument("--launches", nargs="+", choices=["main", "deferred"], default=["main", "deferred"],
                   help="which launches to compile (the deferred one, where there is one, compiles slowest)")
    p.add_argument("--no-interpolate", action="store_true", help="only the variants without interpolation")
    p.add_argument("--channel-keys", action="store_true",
                   help=f"keys quantized per channel over blocks of {CHANNEL_BLOCK} rows (codecs whose fused kernel reads them)")
    p.add_argument("--window", action="store_true",
                   help="the main launch attends a full-precision window too (its last program of each sequence and KV head), "
                        "as the timing tools' --channel-keys calls do")
    p.add_argument("--loops", action="store_true", help="also the SASS instruction count of each variant's largest loops")
    p.add_argument("--lines", type=int, default=0, metavar="N",
                   help="with --loops: the N source lines most of the largest loop's SASS instructions come from")
    p.add_argument("--dependents-at", choices=["start", "end"], default=launch_options.LAUNCH_DEPENDENTS_AT,
                   help="where each kernel lets the launch after it start (launch_options.LAUNCH_DEPENDENTS_AT)")
    args = p.parse_args(argv)
    launch_options.LAUNCH_DEPENDENTS_AT = args.dependents_at
    channel_block = CHANNEL_BLOCK if args.channel_keys else 0
    # An empty cache, so that every variant is compiled (and timed), not read back.
    triton.knobs.cache.dir = tempfile.mkdtemp(prefix="kernel-resources-")
    for codec in args.codecs:
        if codec == "fp8":
            for dtype in args.dtypes:
                start = time.perf_counter()
                kernel, config = compile_fp8(dtype, args.config)
                label = f"fp8 main {dtype} {config['block_n']},{config['num_warps']},{config['num_stages']}"
                compiled = compile_report(kernel, time.perf_counter() - start)
                report = ptxas_report(kernel)
                print(f"{label:40} {compiled} | {report} | {residency_report(kernel, report, config)}", flush=True)
                if args.loops:
                    print("\n".join(sass_loops(kernel, lines=args.lines)), flush=True)
            continue
        if not A.has_kernel(codec, groups=args.groups, channel_block=channel_block):
            print(f"{codec}: no fused kernel for this scheme", flush=True)
            continue
        for interpolate in ([False] if codec in ("int4", "hamming74") or args.no_interpolate else [False, True]):
            deferred = plan(codec, interpolate, channel_block=channel_block, groups=args.groups).deferred
            launches = ["main"] + (["deferred"] if deferred else [])
            launches = [launch for launch in launches if launch in args.launches]
            for launch in launches:
                for dtype in args.dtypes:
                    start = time.perf_counter()
                    kernel, config = compile_variant(codec, dtype, interpolate, True, deferred=launch == "deferred",
                                                     symmetric=not args.asymmetric, config=args.config, channel_block=channel_block,
                                                     window=args.window, groups=args.groups)
                    seconds = time.perf_counter() - start
                    # The compile's own parameters: block_n, warps, stages, and the register cap where the
                    # main launch has one (waves, the programs per SM, only shape the grid).
                    capped = launch == "main" and config.get("maxnreg")
                    shape = f"{config['block_n']},{config['num_warps']},{config['num_stages']}" + (f" cap {capped}" if capped else "")
                    label = f"{codec}{'-interp' if interpolate else ''} {launch} {dtype} {shape}"
                    compiled = compile_report(kernel, seconds)
                    report = ptxas_report(kernel)
                    print(f"{label:40} {compiled} | {report} | {residency_report(kernel, report, config)}", flush=True)
                    if args.loops:
                        print("\n".join(sass_loops(kernel, lines=args.lines)), flush=True)

if __name__ == "__main__":
    main()
