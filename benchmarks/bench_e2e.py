"""End-to-end decode throughput: a Llama-3-8B-shaped model (random weights; no hub is
needed) decoding with the stock static cache vs ECCCache modes, all compiled.

Two FP16 baselines: ``static``, transformers' static cache with its SDPA attention (under a
mask, which a static cache always has, it repeats each KV head for its query heads before
SDPA), and ``static-folded``, the same cache with the query heads of each KV head folded onto
the query axis (one SDPA per KV head, no copies of K/V): what a careful FP16 deployment runs.

ECC modes attend with the ``"ecc"`` attention implementation (``--attention fused``, the
default: ``ecc::decode_attention`` reads the codewords, ``ecc::fp8_decode_attention`` the
``fp8`` mode's E4M3 words, the cache vLLM users pick) or decode K/V first and run SDPA
(``--attention dense``). The cache is first filled to ``--context`` tokens through the real write path (random K/V
states written layer by layer in chunks, no model prefill), then ``--steps`` single-token
decode steps of the compiled ``model.forward`` are timed. The first step's time is reported
beside them: compiling the model (and recording its CUDA graphs) is its cost. Modes run one
after another in one process, so a later mode may reuse caches an earlier one filled. By
default (``--ops auto``) the package chooses how torch.compile takes its ops, as a user's model
gets them: kept as opaque calls under CUDA graphs (``--compile-mode reduce-overhead``, the
default), their Triton kernels inlined into Inductor's graph otherwise
(``ecc_tensor.ops.opaque``). ``--ops opaque`` and ``inlined`` (or ``both``) set the way within
``ecc_tensor.ops.opaque_ops``, the opaque ops' kernels compiled in threads while torch.compile
traces them (``opaque-serial``: each at its first call, one after another; ``all``: the three).

    python benchmarks/bench_e2e.py --write                      # H100: batch 8, 32k context
    python benchmarks/bench_e2e.py --shape tiny --device cpu --context 64 --steps 4 --no-compile
    python benchmarks/bench_e2e.py --layers 4 --context 4096 --modes static int4-hamming84-interp --compile-phases
    python benchmarks/bench_e2e.py --modes static-folded int4-secded72 --ops both --steps 8   # first step, both ways
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch
import torch.nn.functional as F
from transformers import AttentionInterface, LlamaConfig, LlamaForCausalLM, StaticCache
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from ecc_tensor.integrations.hf import ECCCache, cache_argument
from ecc_tensor.ops import opaque_ops

try:
    from .common import append_results
except ImportError:  # run as a script
    from common import append_results

SHAPES = {
    "llama3-8b": dict(
        vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
        num_attention_heads=32, num_key_value_heads=8, rope_theta=500000.0, max_position_embeddings=131072,
    ),
    "tiny": dict(
        vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
    ),
}


FOLDED = "sdpa_folded_gqa"
BASELINES = ("static", "static-folded")
OPS_LABELS = {"auto": "", "inlined": ", ops inlined", "opaque": ", opaque ops", "opaque-serial": ", opaque ops compiled at first call"}


def folded_sdpa_forward(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None, **kwargs):
    """SDPA with the query heads of each KV head folded onto the query axis: queries ``[B, Hkv *
    G, L, D]`` -> ``[B, Hkv, G * L, D]`` against ``[B, Hkv, S, D]`` K/V and the mask repeated G
    times, so that no copy of K/V is made. Decoding steps only (L == 1, or a mask): anything
    causal without a mask goes to transformers' SDPA."""
    batch, q_heads, length, head_dim = query.shape
    group = q_heads // key.shape[1]
    if group == 1 or (attention_mask is None and length > 1) or dropout > 0.0:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    mask = attention_mask
    if mask is not None:
        mask = mask[..., : key.shape[-2]]
        mask = mask.expand(batch, 1, length, key.shape[-2]).repeat(1, 1, group, 1)
    folded = query.reshape(batch, key.shape[1], group * length, head_dim)
    out = F.scaled_dot_product_attention(folded, key, value, attn_mask=mask, scale=scaling)
    return out.reshape(batch, q_heads, length, head_dim).transpose(1, 2).contiguous(), None


AttentionInterface.register(FOLDED, folded_sdpa_forward)
AttentionMaskInterface.register(FOLDED, sdpa_mask)  # the masks transformers makes for its own SDPA


def build_model(shape: str, device: torch.device, dtype: torch.dtype, layers: int | None = None):
    config = LlamaConfig(**{**SHAPES[shape], **({"num_hidden_layers": layers} if layers else {})})
    with torch.device(device):
        model = LlamaForCausalLM._from_config(config, dtype=dtype)
    return model.eval()


@torch.no_grad()
def fill(cache, config, batch: int, context: int, device, dtype, chunk: int = 2048) -> None:
    """Write ``context`` random tokens' K/V into every layer through ``update``."""
    heads = config.num_key_value_heads
    head_dim = config.hidden_size // config.num_attention_heads
    g = torch.Generator(device=device).manual_seed(0)
    for layer_idx in range(config.num_hidden_layers):
        for start in range(0, context, chunk):
            n = min(chunk, context - start)
            k = torch.randn(batch, heads, n, head_dim, device=device, dtype=dtype, generator=g)
            v = torch.randn(batch, heads, n, head_dim, device=device, dtype=dtype, generator=g)
            cache.layers[layer_idx].update(k, v)


def make_cache(mode: str, config, batch, max_len, device, dtype, **scheme):
    """``scheme``: ECCCache's key_quant, residual_length, channel_block (ecc_tensor.quant_scheme)."""
    if mode in BASELINES:
        cache = StaticCache(config, max_cache_len=max_len)
        cache.early_initialization(batch, config.num_key_value_heads, config.hidden_size // config.num_attention_heads, dtype, device)
        return cache
    return ECCCache(config, batch, max_len, mode=mode, device=device, dtype=dtype, **scheme)


def decode_step(model, cache, batch, context, compile_model, device, compile_mode: str = "reduce-overhead"):
    """``step(i)``: one decoding step of ``model`` (compiled in ``compile_mode`` if
    ``compile_model``) over ``cache``, a token at position ``context + i`` for each sequence; its
    logits."""
    forward = torch.compile(model.forward, fullgraph=True, mode=compile_mode) if compile_model else model.forward
    token = torch.zeros(batch, 1, dtype=torch.long, device=device)

    def step(i):
        position = torch.full((batch, 1), context + i, device=device)
        return forward(token, **cache_argument(model, cache), use_cache=True, position_ids=position).logits

    return step


@torch.no_grad()
def decode_tokens_per_second(model, cache, batch, context, steps, compile_model, device,
                             compile_mode: str = "reduce-overhead") -> tuple[float, float]:
    """(decode tokens/s over ``steps`` timed steps, seconds of the first step): the first step
    compiles the model (and records its CUDA graphs under ``compile_mode`` "reduce-overhead"), so
    its time is the compile's cost."""
    step = decode_step(model, cache, batch, context, compile_model, device, compile_mode)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    t0 = time.perf_counter()
    step(0)
    sync()
    first_s = time.perf_counter() - t0
    warmup = 3
    for i in range(1, warmup):
        step(i)
    sync()
    t0 = time.perf_counter()
    for i in range(warmup, warmup + steps):
        step(i)
    sync()
    return batch * steps / (time.perf_counter() - t0), first_s


def compile_phases(min_seconds: float = 0.3) -> list[tuple[str, float]]:
    """torch.compile's phases since the metrics were last cleared, with their total seconds
    (dynamo's ``compilation_time_metrics``, nested: a phase includes those it calls), in the
    order they first ran; those shorter than ``min_seconds`` left out."""
    metrics = getattr(torch._dynamo.utils, "compilation_time_metrics", {})
    return [(name, sum(times)) for name, times in metrics.items() if sum(times) >= min_seconds]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", choices=list(SHAPES), default="llama3-8b")
    p.add_argument("--device", default="cuda")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--context", type=int, default=32768)
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--modes", nargs="+",
                   default=["static", "static-folded", "fp16", "fp8", "int4", "int4-hamming84-interp", "int4-secded72", "int12-golay"])
    p.add_argument("--attention", choices=["fused", "dense", "both"], default="fused", help="how ECC modes attend")
    p.add_argument("--key-quant", choices=["token", "channel"], default="token", help="ECC modes' key quantization axis")
    p.add_argument("--residual-length", type=int, default=0, help="ECC modes' full-precision recent tokens")
    p.add_argument("--layers", type=int, help="decoder layers (default: the shape's): compile time grows with them")
    p.add_argument("--ops", choices=["auto", "inlined", "opaque", "opaque-serial", "both", "all"], default="auto",
                   help="under torch.compile, ECC modes' ops as the package chooses outside ecc_tensor.ops.opaque_ops (auto: opaque "
                        "with CUDA graphs, inlined without), inlined as Triton kernels, or opaque calls whose kernels compile in threads "
                        "as torch.compile traces them (opaque-serial: at their first call, one after another); both: inlined and "
                        "opaque; all: the three")
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--compile-mode", choices=["reduce-overhead", "default", "max-autotune-no-cudagraphs"], default="reduce-overhead",
                   help="torch.compile's mode: reduce-overhead records CUDA graphs; default launches every kernel from Python each step")
    p.add_argument("--compile-phases", action="store_true", help="print where each mode's first step spent its compile time")
    p.add_argument("--write", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = p.parse_args(argv)
    device, dtype = torch.device(args.device), torch.bfloat16
    model = build_model(args.shape, device, dtype, args.layers)
    rows = []
    attentions = ["fused", "dense"] if args.attention == "both" else [args.attention]
    ways = {"both": ["inlined", "opaque"], "all": ["inlined", "opaque", "opaque-serial"]}.get(args.ops, [args.ops])
    runs = [(mode, None, "inlined") if mode in (*BASELINES, "fp16") else (mode, a, w) for mode in args.modes for a in attentions
            for w in ways]
    for mode, attention, ops_way in dict.fromkeys(runs):
        torch._dynamo.reset()
        getattr(torch._dynamo.utils, "compilation_time_metrics", {}).clear()
        model.set_attn_implementation(FOLDED if mode == "static-folded" else "ecc" if attention == "fused" else "sdpa")
        cache = make_cache(mode, model.config, args.batch, args.context + args.steps + 8, device, dtype, key_quant=args.key_quant,
                           residual_length=args.residual_length)
        fill(cache, model.config, args.batch, args.context, device, dtype)
        chosen = contextlib.nullcontext() if ops_way == "auto" else opaque_ops(ops_way != "inlined", compile_ahead=ops_way == "opaque")
        with chosen:
            tps, first_s = decode_tokens_per_second(model, cache, args.batch, args.context, args.steps, not args.no_compile, device,
                                                      args.compile_mode)
        label = mode if attention is None else f"{mode} ({attention}{OPS_LABELS[ops_way]})"
        rows.append((label, tps, first_s))
        print(f"{label:32} {tps:10.1f} tokens/s   first step {first_s:7.1f} s", flush=True)
        if args.compile_phases:
            print("".join(f"    {name:60} {seconds:8.2f} s\n" for name, seconds in compile_phases()), end="", flush=True)
        del cache
        if device.type == "cuda":
            torch.cuda.empty_cache()
    by_label = {label: (tps, first_s) for label, tps, first_s in rows}
    base, folded = (by_label.get(b, (None, None)) for b in ("static", "static-folded"))
    lines = ["| cache | decode tokens/s | vs stock static | vs folded static | first step (s) | vs static's first step "
             "| vs folded static's first step |", "|---|---:|---:|---:|---:|---:|---:|"]
    for label, tps, first_s in rows:
        ratios = [f"{tps / b:.2f}x" if b else "-" for b in (base[0], folded[0])]
        firsts = [f"{first_s / b:.2f}x" if b else "-" for b in (base[1], folded[1])]
        lines.append(f"| {label} | {tps:.1f} | {' | '.join(ratios)} | {first_s:.1f} | {' | '.join(firsts)} |")
    table = "\n".join(lines)
    print(table)
    if args.write:
        layers = f" ({args.layers} layers)" if args.layers else ""
        append_results(
            f"End-to-end decode, {args.shape}{layers} random weights, batch {args.batch}, context {args.context}, "
            f"{'eager' if args.no_compile else 'compiled'}",
            device, table,
        )


if __name__ == "__main__":
    main()
