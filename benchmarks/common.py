"""Shared helpers for the benchmarks: timing, device description, appending to RESULTS.md."""

from __future__ import annotations

import datetime as _dt
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).with_name("RESULTS.md")


def time_call(fn, *, warmup: int = 3, iters: int = 20) -> float:
    """Median seconds per call; CUDA events on a GPU, wall clock otherwise."""
    for _ in range(warmup):
        fn()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        times = []
        for _ in range(iters):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
    else:
        times = []
        for _ in range(iters):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def kernel_time(calls, iters) -> float:
    """Seconds per call of the GPU work alone: the calls (one per input copy) captured in one
    CUDA graph and replayed, as a compiled decode loop with CUDA graphs runs them, so that
    Python and launch overhead do not count. Wall clock per call elsewhere."""
    if not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return time_call(lambda: [c() for c in calls], iters=iters) / len(calls)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # compile and warm up outside the capture
        for c in calls:
            c()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for c in calls:
            c()
    t = time_call(graph.replay, iters=iters) / len(calls)
    del graph
    return t


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        return f"{p.name} ({p.multi_processor_count} SMs), torch {torch.__version__}, CUDA {torch.version.cuda}"
    return f"CPU {platform.processor() or platform.machine()}, torch {torch.__version__}"


def command_line() -> str:
    return "python " + " ".join(shlex.quote(a) for a in sys.argv)


def append_results(title: str, device: torch.device, table: str, notes: str = "") -> None:
    """Append a dated section (device, exact command, table) to benchmarks/RESULTS.md."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"\n## {title}\n\n- date: {stamp}\n- device: {device_description(device)}\n"
        f"- command: `{command_line()}`\n\n{table}\n{notes}\n"
    )
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\nMeasured figures, newest last. Never asserted in tests.\n")
    with RESULTS.open("a") as fh:
        fh.write(section)
