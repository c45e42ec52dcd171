"""Decode attention over an ECC cache: the fused ``ecc::decode_attention`` kernel per codec,
next to FP16 SDPA on the same shapes and to the unfused path (decode + dequantize K/V into a
dense tensor, then SDPA), in one run.

"GPU time" is the kernels' own time: the calls are captured in a CUDA graph and replayed (as
a compiled decode loop with CUDA graphs runs them), so Python and launch overhead do not
count; "eager call" is one call from Python, synchronized, overhead included (the unfused
path: eager only). GB/s counts the bytes the fused kernel must read: the K and V codewords
and their scales (the queries and output are negligible). "% of copy" compares that rate with a
device-to-device copy measured in the same run (bytes read + written per second). Inputs
rotate over enough copies to keep the working set well above the L2 cache.

With ``--channel-keys`` each path also gets rows with keys quantized per channel
(``ecc_tensor.quant_scheme``: one scale per channel over blocks of 128 tokens) and the last
128 tokens in a full-precision window, fused (also without the window, every row quantized:
the window's share) and, for the paths without interpolation, unfused. Every run has
two ``fp8`` rows: E4M3 K/V with a per-head scale (the cache vLLM users pick) dequantized to the
model dtype, then SDPA; and attended by ``ecc::fp8_decode_attention``, fused.

    python benchmarks/bench_attention.py --write        # H100: batch 1/8/32 x 4k/32k/128k
    python benchmarks/bench_attention.py --device cpu --batch 1 --context 256 --iters 2   # smoke
    python benchmarks/bench_attention.py --batch 8 --context 32768 --group-size 32 --asymmetric   # grouped scales
"""

from __future__ import annotations

import argparse
import itertools
import math

import torch
import torch.nn.functional as F

import ecc_tensor.ops as ops
from ecc_tensor.counters import new_counters
from ecc_tensor.fp8 import head_scale, to_e4m3
from ecc_tensor.metadata import codec_tables

try:
    from .common import append_results, kernel_time, time_call
except ImportError:  # run as a script
    from common import append_results, kernel_time, time_call

PATHS = {  # label: (codec, interpolate)
    "int4": ("int4", False),
    "hamming74": ("hamming74", False),
    "hamming84": ("hamming84", False),
    "hamming84-interp": ("hamming84", True),
    "golay24": ("golay24", False),
    "secded72": ("secded72", False),
    "secded72-interp": ("secded72", True),
}
ROTATE_BYTES = 256 * 2**20
CHANNEL_BLOCK = 128  # tokens per per-channel key block


def copy_bandwidth(device) -> float:
    if device.type != "cuda":
        return float("nan")
    src = torch.empty(512 * 2**20, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    return 2 * src.numel() / time_call(lambda: dst.copy_(src), iters=20)


def bench_case(batch, context, q_heads, kv_heads, head_dim, dtype, device, iters, copy_bw, dense_limit_bytes, paths=tuple(PATHS),
               config=None, channel_keys=False, group_size=None, symmetric=True):
    groups = head_dim // group_size if group_size else 1
    g = torch.Generator(device=device).manual_seed(0)
    rows = []
    fp16_bytes = 2 * batch * kv_heads * context * head_dim * 2
    copies = max(1, min(8, math.ceil(ROTATE_BYTES / fp16_bytes)))
    queries = [torch.randn(batch, q_heads, 1, head_dim, device=device, dtype=dtype, generator=g) for _ in range(copies)]

    # FP16 (model dtype) SDPA over a dense cache: the baseline.
    dense = [
        (torch.randn(batch, kv_heads, context, head_dim, device=device, dtype=dtype, generator=g),
         torch.randn(batch, kv_heads, context, head_dim, device=device, dtype=dtype, generator=g))
        for _ in range(copies)
    ]
    it = itertools.count()  # rotates over the input copies

    def sdpa(i=None):
        i = next(it) % copies if i is None else i
        return F.scaled_dot_product_attention(queries[i], dense[i][0], dense[i][1], enable_gqa=True)

    base = kernel_time([lambda i=i: sdpa(i) for i in range(copies)], iters)
    rows.append(dict(batch=batch, context=context, path=f"{str(dtype).split('.')[-1]} SDPA", us=base * 1e6, bytes=fp16_bytes,
                     call_us=time_call(sdpa, iters=iters) * 1e6))
    source = dense[0]
    del dense

    # FP8 (E4M3, per-head scale): dequantized to the model dtype, then SDPA.
    fp8 = [(to_e4m3(x, head_scale(x)), head_scale(x)) for x in source]

    def fp8_sdpa():
        i = next(it) % copies
        k, v = (words.to(dtype).mul_(scale.to(dtype)) for words, scale in fp8)  # as from_e4m3, in two passes not four
        return F.scaled_dot_product_attention(queries[i], k, v, enable_gqa=True)

    t = kernel_time([fp8_sdpa], iters)
    rows.append(dict(batch=batch, context=context, path="fp8 dequantize + SDPA", us=t * 1e6, bytes=fp16_bytes // 2,
                     call_us=time_call(fp8_sdpa, iters=iters) * 1e6))

    def fp8_fused():
        return ops.fp8_decode_attention(queries[next(it) % copies], *fp8)

    t = kernel_time([fp8_fused], iters)
    rows.append(dict(batch=batch, context=context, path="fused fp8", us=t * 1e6, bytes=fp16_bytes // 2,
                     call_us=time_call(fp8_fused, iters=iters) * 1e6))
    del fp8

    for label, (codec, interpolate) in PATHS.items():
        if label not in paths:
            continue
        k = ops.quantize_encode(source[0], codec, group_size, symmetric)
        v = ops.quantize_encode(source[1], codec, group_size, symmetric)
        case_bytes = sum(t.numel() * t.element_size() for t in (*k, *v))
        n = max(1, min(copies, math.ceil(ROTATE_BYTES / case_bytes)))
        caches = [(k, v)] + [(tuple(t.clone() for t in k), tuple(t.clone() for t in v)) for _ in range(n - 1)]
        seq_lens = torch.full((batch,), context, dtype=torch.int64, device=device)
        counters = new_counters(device)
        scale = head_dim**-0.5

        def fused(i=None):
            i = next(it) % n if i is None else i
            kc, vc = caches[i]
            return ops.decode_attention(queries[i % copies], kc, vc, codec, groups=groups, symmetric=symmetric, interpolate=interpolate,
                                        seq_lens=seq_lens, counters=counters, scale=scale, config=config)

        t = kernel_time([lambda i=i: fused(i) for i in range(n)], iters)
        rows.append(dict(batch=batch, context=context, path=f"fused {label}", us=t * 1e6, bytes=case_bytes,
                         call_us=time_call(fused, iters=iters) * 1e6))

        if 2 * fp16_bytes <= dense_limit_bytes:  # room for the dense K/V the unfused path writes
            def unfused():
                i = next(it) % n
                (ks, km), (vs, vm) = caches[i]
                kd = ops.decode_dequantize(ks, km, codec, head_dim, groups=groups, symmetric=symmetric, interpolate=interpolate,
                                           counters=counters, dtype=dtype, seq_len=seq_lens[0])
                vd = ops.decode_dequantize(vs, vm, codec, head_dim, groups=groups, symmetric=symmetric, interpolate=interpolate,
                                           counters=counters, dtype=dtype, seq_len=seq_lens[0])
                return F.scaled_dot_product_attention(queries[i % copies], kd, vd, enable_gqa=True)

            t = time_call(unfused, iters=max(3, iters // 4))
            rows.append(dict(batch=batch, context=context, path=f"unfused {label}", us=t * 1e6, bytes=case_bytes, call_us=t * 1e6))

        if channel_keys and context % CHANNEL_BLOCK == 0:
            ck = ops.quantize_encode_channels(source[0], codec, CHANNEL_BLOCK)
            ck_bytes = sum(t.numel() * t.element_size() for t in (*ck, *v))
        if channel_keys and context % CHANNEL_BLOCK == 0 and context > CHANNEL_BLOCK:
            # KIVI's layout: the last 128 tokens (a block) in a full-precision window of 256 rows.
            windows = [torch.randn(batch, kv_heads, 2 * CHANNEL_BLOCK, head_dim, device=device, dtype=dtype, generator=g)
                       for _ in range(2)]
            quantized = torch.full((batch,), context - CHANNEL_BLOCK, dtype=torch.int64, device=device)
            tables = codec_tables(codec, device)

            def fused_channel_keys(i=None, windowed=True):
                i = next(it) % n if i is None else i
                vs, vm = caches[i][1]
                scheme = (quantized, *windows) if windowed else (None, None, None)
                return torch.ops.ecc.decode_attention(
                    queries[i % copies], *ck, vs, vm, *tables, codec, head_dim, 1, True, interpolate, seq_lens, counters, None, False,
                    scale, config, CHANNEL_BLOCK, *scheme)

            # Without the window too: what the per-channel scales cost, apart from the window's programs.
            for windowed, suffix in ((True, " + window"), (False, "")):
                t = kernel_time([lambda i=i: fused_channel_keys(i, windowed) for i in range(n)], iters)
                rows.append(dict(batch=batch, context=context, path=f"fused {label}, channel keys{suffix}", us=t * 1e6, bytes=ck_bytes,
                                 call_us=time_call(lambda: fused_channel_keys(windowed=windowed), iters=iters) * 1e6))
        if channel_keys and 2 * fp16_bytes <= dense_limit_bytes and context % CHANNEL_BLOCK == 0:

            def unfused_channel_keys():
                i = next(it) % n
                vs, vm = caches[i][1]
                kd = ops.decode_dequantize_channels(*ck, codec, head_dim, interpolate=interpolate, counters=counters, dtype=dtype)
                vd = ops.decode_dequantize(vs, vm, codec, head_dim, interpolate=interpolate, counters=counters, dtype=dtype,
                                           seq_len=seq_lens[0])
                return F.scaled_dot_product_attention(queries[i % copies], kd, vd, enable_gqa=True)

            t = time_call(unfused_channel_keys, iters=max(3, iters // 4))
            rows.append(dict(batch=batch, context=context, path=f"unfused {label}, channel keys", us=t * 1e6, bytes=ck_bytes,
                             call_us=t * 1e6))
            del ck
        del caches, k, v
    for r in rows:
        r["GB/s"] = r["bytes"] / (r["us"] * 1e-6) / 1e9
        r["% of copy"] = 100 * r["GB/s"] * 1e9 / copy_bw
        r["speedup"] = base * 1e6 / r["us"]
    del source
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows


def to_markdown(rows) -> str:
    lines = [
        "| batch | context | path | GPU time (us) | bytes read (MiB) | GB/s | % of copy | vs SDPA | eager call (us) |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['batch']} | {r['context']} | {r['path']} | {r['us']:.1f} | {r['bytes'] / 2**20:.1f} | "
            f"{r['GB/s']:.0f} | {r['% of copy']:.0f}% | {r['speedup']:.2f}x | {r['call_us']:.1f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--context", type=int, nargs="+", default=[4096, 32768, 131072])
    p.add_argument("--q-heads", type=int, default=32)
    p.add_argument("--kv-heads", type=int, default=8)
    p.add_argument("--head-dim", type=int, default=128)
    p.add_argument("--dtype", choices=["float16", "bfloat16"], default="float16")
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--paths", nargs="+", choices=list(PATHS), default=list(PATHS))
    p.add_argument("--dense-limit-gib", type=float, default=24, help="skip the unfused path above this much dense K/V")
    p.add_argument("--config", help="the fused kernel's launch configuration, block_n,num_warps,num_stages[,waves[,maxnreg[,scale_rows]]] "
                   "(default: its own per path)")
    p.add_argument("--channel-keys", action="store_true", help="add unfused rows with keys quantized per channel")
    p.add_argument("--group-size", type=int, help="the ECC caches' scales per this many values (default: one a row)")
    p.add_argument("--asymmetric", action="store_true", help="the ECC caches with zero points (asymmetric quantization)")
    p.add_argument("--write", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = p.parse_args(argv)
    if args.group_size is not None and (args.group_size <= 0 or args.head_dim % args.group_size):
        p.error(f"--group-size must divide --head-dim ({args.head_dim})")
    if args.channel_keys and (args.group_size or args.asymmetric):
        p.error("--channel-keys rows are symmetric, one scale a channel: not with --group-size or --asymmetric")
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    copy_bw = copy_bandwidth(device)
    rows = []
    for batch in args.batch:
        for context in args.context:
            case = bench_case(batch, context, args.q_heads, args.kv_heads, args.head_dim, dtype, device, args.iters, copy_bw,
                              args.dense_limit_gib * 2**30, args.paths, args.config, args.channel_keys, args.group_size,
                              not args.asymmetric)
            rows += case
            print(to_markdown(case).split("\n", 2)[2], flush=True)
    table = to_markdown(rows)
    print(table)
    if args.write:
        append_results(
            f"Decode attention, {args.q_heads} query / {args.kv_heads} KV heads, head_dim {args.head_dim}, {args.dtype}",
            device, table,
            f"\nDevice copy: {copy_bw / 1e9:.0f} GB/s (read + write). GB/s: codeword + scale bytes of K and V "
            f"(the FP16 row: its K and V bytes) per second."
            + (f" Kernel config (--config): {args.config}." if args.config else "")
            + (f" ECC caches' scales in groups of {args.group_size} values." if args.group_size else "")
            + (" With zero points (--asymmetric)." if args.asymmetric else "") + "\n",
        )


if __name__ == "__main__":
    main()
