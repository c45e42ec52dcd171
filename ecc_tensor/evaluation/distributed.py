"""The sweep's trials spread over the processes of a ``torchrun`` launch.

    torchrun --nproc-per-node 2 -m ecc_tensor.sweep --device cuda ...     # one GPU per process
    torchrun --nproc-per-node 16 -m ecc_tensor.sweep --device cuda ...    # 8 processes on each of 2 GPUs
    torchrun --nproc-per-node 2 -m ecc_tensor.sweep ...                   # CPU

torchrun starts the processes and sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; this module
joins them into one process group and leaves the scheduling to a fixed round robin: every rank
computes the same list of unfinished jobs and takes every ``size``-th one. A trial's numbers do
not depend on which rank runs it (its fault draws are keyed by the trial's seed and the bytes'
addresses, and each trial starts from a new cache), so any world size gives the same trials.

The group uses gloo whatever the device: the ranks exchange only small Python objects (the
finished trials), never tensors, and gloo needs no GPU to be bound first.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class World:
    """This process's place in the launch: ``rank`` of ``size``, ``local_rank`` on its host."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def device(self, device: str) -> str:
        """The device this rank runs on: for ``cuda``, GPU ``LOCAL_RANK`` modulo the host's GPUs.
        One process per GPU is the usual launch; more share the GPUs round robin, which pays
        where one process cannot keep a GPU busy (a small model's trials are bound by the
        Python that launches its kernels, not by the GPU)."""
        if self.distributed and device.startswith("cuda:"):
            raise ValueError(f"--device {device} under torchrun would put every rank on one GPU; use --device cuda "
                             "(each rank takes the GPU of its LOCAL_RANK)")
        if not self.distributed or device != "cuda":
            return device
        import torch

        gpus = torch.cuda.device_count()
        if gpus == 0:
            raise ValueError(f"--device cuda: rank {self.rank} sees no GPU")
        index = self.local_rank % gpus
        torch.cuda.set_device(index)
        return f"cuda:{index}"

    def all_gather(self, obj) -> list:
        """Every rank's ``obj``, in rank order (``[obj]`` in a one-process run)."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out = [None] * self.size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()


def current_world() -> World:
    """The launch this process belongs to, joined into a process group on first use; a plain
    one-process ``World`` without torchrun."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    try:
        rank = int(os.environ["RANK"])
    except KeyError:
        raise ValueError("WORLD_SIZE is set but RANK is not: start several processes with torchrun") from None
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")  # torchrun's env:// rendezvous (MASTER_ADDR, MASTER_PORT)
    return World(rank, size, local_rank)


def shutdown() -> None:
    """Leave the process group, if this process joined one (never importing torch to find out)."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard(jobs: list, world: World) -> list:
    """This rank's share of ``jobs`` (every rank holds the same list): a round robin, so
    neighbouring jobs, which cost about the same, spread over the ranks."""
    return jobs[world.rank :: world.size]
