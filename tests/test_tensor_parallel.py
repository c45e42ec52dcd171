"""ECCCache under transformers' tensor parallelism (tp_plan="auto", 2 gloo processes on CPU, or
2 NCCL processes on two GPUs): the same generation and counters as the unsplit model, without
and with faults."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from ecc_tensor.faults import FaultModel
from ecc_tensor.integrations.hf import ECCCache

WORKER = """
import json, os, sys
from pathlib import Path
import torch
from transformers import AutoModelForCausalLM
from ecc_tensor.faults import FaultModel
from ecc_tensor.integrations.hf import ECCCache, cache_argument

model_dir, out, device = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
split = int(os.environ.get("WORLD_SIZE", "1")) > 1
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, **({"tp_plan": "auto"} if split else {}))
if not split:
    model = model.to(device)
ids = torch.arange(3, 40)[None].to(model.device)
result = {}
for name, mode, fault in (("clean", "int4-hamming84-interp", None), ("faulted", "int4-hamming84-interp", FaultModel("bsc", 1e-3, seed=7)),
                          ("faulted_read", "int12-golay", FaultModel("bsc", 1e-3, seed=3, site="read")),
                          ("fp16_unprotected", "fp16-unprotected", FaultModel("bsc", 1e-4, seed=5))):
    cache = ECCCache(model.config, 1, 64, mode=mode, fault=fault, tp_size=(getattr(model, "tp_size", None) or 1) if split else 1)
    tokens = model.generate(ids, **cache_argument(model, cache), max_new_tokens=12, do_sample=False)
    stats = cache.stats(all_ranks=True)
    result[name] = {"tokens": tokens[0].tolist(), "stats": {k: v for k, v in stats.items() if k != "layers"}}
if os.environ.get("RANK", "0") == "0":
    out.write_text(json.dumps(result))
"""


def run(tiny, tmp_path, processes: int, device: str = "cpu") -> dict:
    script, out = tmp_path / "worker.py", tmp_path / f"result-{processes}.json"
    script.write_text(WORKER)
    launcher = [sys.executable] if processes == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                       f"--nproc-per-node={processes}"]
    done = subprocess.run([*launcher, str(script), str(tiny / "model"), str(out), device], env={**os.environ, "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.two_gpus)])
def test_two_way_tensor_parallel_generation_and_counters_equal_the_unsplit_model(tiny, tmp_path, device):
    """On CPU the ranks join by gloo; on two GPUs transformers joins them by NCCL, each on its own GPU."""
    one, two = run(tiny, tmp_path, 1, device), run(tiny, tmp_path, 2, device)
    assert one["faulted"]["stats"]["injected"] > 0 and one["faulted"]["stats"]["corrected"] > 0
    assert one["faulted_read"]["stats"]["injected"] > 0 and one["fp16_unprotected"]["stats"]["injected"] > 0
    for case in one:
        assert two[case]["tokens"] == one[case]["tokens"], case
        assert two[case]["stats"] == one[case]["stats"], case


def test_tensor_parallel_arguments_are_checked(tiny):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny / "model")  # 2 KV heads
    with pytest.raises(ValueError, match="do not split evenly"):
        ECCCache(config, 1, 32, tp_size=4, tp_rank=0)
    with pytest.raises(ValueError, match="tp_rank must be"):
        ECCCache(config, 1, 32, tp_size=2, tp_rank=2)
    with pytest.raises(ValueError, match="initialized torch.distributed"):
        ECCCache(config, 1, 32, tp_size=2)
    cache = ECCCache(config, 1, 32, tp_size=2, tp_rank=1, fault=FaultModel("bsc", 1e-2, seed=0))
    assert cache.layers[0].tp_rank == 1 and cache.layers[0].tp_size == 2
    # a rank's share of the heads without tp_size: refused, not drawn at the wrong addresses
    half = torch.zeros(1, 1, 4, 16)
    with pytest.raises(ValueError, match="tp_size=model.tp_size"):
        ECCCache(config, 1, 32).layers[0].update(half, half)
    assert ECCCache(config, 1, 32, tp_size=2, tp_rank=0).layers[0].update(half, half)[0].shape[:2] == (1, 1)
