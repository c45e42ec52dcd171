"""A compiled decoding step copies no layer's cache (``tools/step_buffers.py``, without a GPU):
the step writes one token per layer and the ops read the rest where it lies."""

from __future__ import annotations

import json


def test_a_compiled_decoding_step_allocates_no_copy_of_the_cache(run_compile_tool):
    """Inductor's generated step (the ops' kernels inlined, for Hopper) allocates no buffer of
    the stored codewords' dtype as large as a sequence's stored rows, flat or in rows of their
    width, for any mode at head_dim 32 (where SECDED(72,64) has no fused attention), nor with
    keys quantized per channel and a full-precision window: such
    buffers were the copies of SECDED(72,64)'s codewords around each decode launch while
    torch's analysis took them for written (five a layer at batch 2)."""
    result = run_compile_tool("step_buffers.py", "--head-dims", "32", "--json", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    steps = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert {s["mode"] for s in steps} >= {"int4", "int4-hamming84-interp", "int12-golay", "int4-secded72", "int4-secded72-interp", "fp8"}
    kivi = run_compile_tool("step_buffers.py", "--head-dims", "64", "--modes", "int4-hamming84-interp", "int4-secded72",  # keys per channel
                            "--key-quant", "channel", "--residual-length", "16", "--channel-block", "16", "--json", timeout=600)
    assert kivi.returncode == 0, kivi.stderr[-3000:]
    steps += [json.loads(line) for line in kivi.stdout.splitlines() if line.startswith("{")]
    assert all(s["sequence_bytes"] > 0 for s in steps)
    assert [(s["mode"], s["cache_copies"]) for s in steps if s["cache_copies"]] == []
