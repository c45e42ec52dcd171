"""The sweep under torchrun: two gloo processes on CPU give the one-process run's trials, and a
rank killed mid-sweep loses no finished trial and redoes none."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ecc_tensor.evaluation import sweep as S
from ecc_tensor.evaluation.distributed import World, shard

# Four modes x BER {0, 1e-2} x two seeds: 16 trials, 12 run (the fault-free second seeds reuse).
GRID = ["--cache-modes", "fp16", "int4", "int4-hamming84-interp", "int12-golay", "--ber-levels", "0", "1e-2", "--seeds", "1", "2",
        "--max-samples", "2", "--window", "48", "--stride", "24", "--quiet"]
# Every process on one thread, so that the matrix products add in the same order whatever the launch.
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}

# A sweep whose rank 1 dies (as a killed process does, without cleanup) after its second trial.
DYING = """
import os, sys
from ecc_tensor.evaluation import sweep as S
real, done = S.run_trial, []
def run_trial(*args, **kwargs):
    if os.environ["RANK"] == "1" and len(done) == 2:
        os._exit(9)
    done.append(1)
    return real(*args, **kwargs)
S.run_trial = run_trial
sys.exit(S.main(sys.argv[1:]))
"""


def sweep_args(tiny, out):
    return ["--model", str(tiny / "model"), "--text", str(tiny / "text.txt"), "--output-dir", str(out), *GRID]


def torchrun(script_args, processes=2):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}", *script_args]
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)


def trials(out):
    """results.json's trials, without what may differ between launches (time, rank)."""
    records = json.loads((out / "results.json").read_text())["trials"]
    return [{k: v for k, v in r.items() if k not in ("wall_time_s", "rank")} for r in records]


@pytest.fixture(scope="module")
def one_process(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("one")
    run = subprocess.run([sys.executable, "-m", "ecc_tensor.sweep", *sweep_args(tiny, out)], env=ENV, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return out


def test_two_gloo_processes_give_the_one_process_trials(tiny, tmp_path, one_process):
    run = torchrun(["-m", "ecc_tensor.sweep", *sweep_args(tiny, tmp_path)])
    assert run.returncode == 0, run.stderr[-3000:]
    assert trials(tmp_path) == trials(one_process)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["environment"]["world_size"] == 2
    assert {r["rank"] for r in results["trials"]} == {0, 1}
    # one trials file, merged; the per-rank files are gone; rank 0 alone reported
    assert len(S.load_finished(tmp_path)) == 16 and not list(tmp_path.glob(S.RANK_TRIALS_GLOB))
    assert run.stdout.count("16 trials") == 1


@pytest.mark.two_gpus
def test_two_processes_on_two_gpus_give_the_one_gpu_trials(tiny, tmp_path):
    """The same on the GPU: one process on one GPU against a launch of two, a GPU each."""
    one, two = tmp_path / "one", tmp_path / "two"
    run = subprocess.run([sys.executable, "-m", "ecc_tensor.sweep", *sweep_args(tiny, one), "--device", "cuda"], env=ENV,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    run = torchrun(["-m", "ecc_tensor.sweep", *sweep_args(tiny, two), "--device", "cuda"])
    assert run.returncode == 0, run.stderr[-3000:]
    assert trials(two) == trials(one)
    records = json.loads((two / "results.json").read_text())["trials"]
    assert {r["rank"] for r in records} == {0, 1}


def test_a_rank_killed_mid_sweep_loses_no_finished_trial_and_redoes_none(tiny, tmp_path, one_process):
    script = tmp_path / "dying_sweep.py"
    script.write_text(DYING)
    out = tmp_path / "out"
    killed = torchrun([str(script), *sweep_args(tiny, out)])
    assert killed.returncode != 0
    before = S.load_finished(out)
    assert list(out.glob(S.RANK_TRIALS_GLOB))  # what each rank finished is on disk
    assert any(r["rank"] == 1 for r in before.values()) and len(before) < 16
    run = torchrun(["-m", "ecc_tensor.sweep", *sweep_args(tiny, out)])
    assert run.returncode == 0, run.stderr[-3000:]
    after = S.load_finished(out)
    # not redone: a finished trial keeps the record (and the wall time) it was written with
    assert all(after[key] == record for key, record in before.items())
    assert trials(out) == trials(one_process)


def test_jobs_keep_a_modes_fault_free_trials_together_and_the_shards_cover_them_once():
    todo = [(m, b, s) for m in ("int4", "int12-golay") for b in (0.0, 1e-3) for s in (1, 2, 3)]
    jobs = S._jobs(todo, {})
    assert [("int4", 0.0, 1), ("int4", 0.0, 2), ("int4", 0.0, 3)] in jobs
    assert sum(len(j) for j in jobs) == len(todo) and len(jobs) == 2 + 6
    for size in (1, 2, 3, 5):
        shards = [shard(jobs, World(rank, size)) for rank in range(size)]
        assert sorted(t for s in shards for job in s for t in job) == sorted(todo)


def test_a_fixed_gpu_under_torchrun_is_refused():
    with pytest.raises(ValueError, match="every rank on one GPU"):
        World(0, 2).device("cuda:0")
    assert World(1, 2).device("cpu") == "cpu"
