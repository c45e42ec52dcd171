"""The sweep's thread count follows the cores other processes leave free."""

import pytest
import torch

from ecc_tensor.evaluation.cpu_threads import CpuThreads, _busy_seconds


@pytest.fixture
def threads_restored():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


class _Machine:
    """A fake clock: ``step(seconds, ours, others)`` advances wall time and busy time."""

    def __init__(self):
        self.wall = self.busy = self.own = 0.0

    def step(self, seconds, ours, others):
        self.wall += seconds
        self.own += ours * seconds
        self.busy += (ours + others) * seconds


def _threads(machine, cores, max_threads):
    torch.set_num_threads(max_threads)
    t = CpuThreads(busy=lambda: machine.busy, own=lambda: machine.own, clock=lambda: machine.wall)
    t.cores = cores
    return t


def test_busy_neighbour_takes_a_core_and_leaving_gives_it_back(threads_restored):
    m = _Machine()
    t = _threads(m, cores=2, max_threads=2)
    m.step(10, ours=2.0, others=0.0)
    assert t.adjust() == 2
    m.step(10, ours=1.2, others=0.8)  # a CPU-bound neighbour, sharing with our two threads
    assert t.adjust() == 1
    m.step(10, ours=1.0, others=1.0)
    assert t.adjust() == 1
    m.step(10, ours=1.0, others=0.0)  # it left
    assert t.adjust() == 2
    t.restore()
    assert torch.get_num_threads() == 2


def test_never_more_than_started_with_nor_fewer_than_one(threads_restored):
    m = _Machine()
    t = _threads(m, cores=8, max_threads=3)
    m.step(1, ours=0.0, others=0.0)
    assert t.adjust() == 3
    m.step(1, ours=0.0, others=8.0)
    assert t.adjust() == 1


def test_unknown_load_changes_nothing(threads_restored):
    torch.set_num_threads(2)
    t = CpuThreads(busy=lambda: None)
    assert t.adjust() == 2


def test_reads_this_machine():
    busy = _busy_seconds()
    assert busy is None or busy > 0
