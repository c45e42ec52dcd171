"""The ops' kernels compiled ahead while torch.compile traces them (``ecc_tensor.ops.compile_ahead``).

Triton's ``warmup`` needs a GPU driver, so these tests hand the module a stand-in kernel whose
``warmup`` records what it was given, and launch it as an opaque op's body is traced: under a
fake-tensor mode, on fake CUDA tensors. That the real kernels then compile ahead and no launch
of a compiled step compiles its own is ``tests/test_gpu.py``'s
``test_opaque_ops_compile_the_kernels_ahead_of_the_first_step``.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
import time
from pathlib import Path

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode
from torch.fx.experimental.symbolic_shapes import ShapeEnv

from ecc_tensor.ops import compile_ahead, launch_options
from ecc_tensor.ops.attention.kernel import _decode_attention_kernel


class StandIn:
    """A kernel whose ``warmup`` records its arguments (after ``delay`` seconds, or raises ``fail``)."""

    def __init__(self, delay: float = 0.0, fail: Exception | None = None) -> None:
        self.warmups: list[tuple] = []
        self.delay, self.fail = delay, fail

    def warmup(self, *args, grid, **kwargs):
        time.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        self.warmups.append((args, kwargs))


@pytest.fixture
def launched(monkeypatch):
    """The launches that reached torch's ``wrap_triton``, each with whether compiles were still
    pending then; no CUDA device is entered for the compiles."""
    calls = []

    monkeypatch.setattr(compile_ahead, "_torch_wrap_triton", lambda kernel: _Launcher(kernel, calls))
    monkeypatch.setattr(compile_ahead, "_device_context", lambda device: contextlib.nullcontext())
    return calls


class _Launcher:
    def __init__(self, kernel, calls):
        self.kernel, self.calls = kernel, calls

    def __getitem__(self, grid):
        return lambda *args, **kwargs: self.calls.append((self.kernel, grid, args, kwargs, len(compile_ahead._pending)))


def fake_cuda(mode: FakeTensorMode, shape, dtype=torch.float16, offset: int = 0) -> FakeTensor:
    """A fake CUDA tensor (a CPU-only torch can hold one, though not compute with it)."""
    storage = torch.empty(offset + math.prod(shape), device="meta", dtype=dtype)
    return FakeTensor(mode, storage[offset:].view(shape), torch.device("cuda", 0))


def test_traced_launches_compile_ahead_once_each(launched):
    kernel, mode = StandIn(), FakeTensorMode()
    q, k = fake_cuda(mode, (2, 8)), fake_cuda(mode, (4, 8), torch.uint8, offset=8)
    with compile_ahead.compiling_ahead(threads=2):
        with mode:  # as Dynamo runs an opaque op's fake implementation, its body
            for _ in range(3):  # three layers, the same launch
                compile_ahead.wrap_triton(kernel)[(4,)](q, k, 5, None, BLOCK=16)
            compile_ahead.wrap_triton(kernel)[(4,)](q, k, 6, None, BLOCK=16)  # another size: another compile
        compile_ahead.wait()
        assert len(kernel.warmups) == 2
        (args, kwargs), (args6, _) = sorted(kernel.warmups, key=lambda w: w[0][2])
        # Each tensor as its dtype and its alignment (Triton specializes on 16-byte alignment).
        assert [(a.dtype, a.data_ptr()) for a in args[:2]] == [(torch.float16, 0), (torch.uint8, 8)]
        assert args[2:] == (5, None) and args6[2] == 6 and kwargs == {"BLOCK": 16}
    assert len(launched) == 4 and all(call[1] == (4,) for call in launched)  # every launch went on to torch's wrapper
    assert compile_ahead._pool is None and not compile_ahead._submitted


def test_a_traced_launch_takes_the_options_an_eager_launch_passes(launched, monkeypatch):
    """A traced launch hands torch its configuration's Autotuner (``launch_options``); the compile
    ahead is of the kernel itself with the options the op's eager body will launch it with."""
    mode, recorder = FakeTensorMode(), StandIn()
    monkeypatch.setattr(_decode_attention_kernel, "warmup", recorder.warmup, raising=False)  # the interpreter's kernel has none
    q = fake_cuda(mode, (2, 8))
    with compile_ahead.compiling_ahead(threads=1):
        with mode:
            tuner, options = launch_options.kernel_and_options(_decode_attention_kernel, 4, 2, 128)
            assert tuner is not _decode_attention_kernel and options == {}
            compile_ahead.wrap_triton(tuner)[(1,)](q, BLOCK=16)
        compile_ahead.wait()
    assert [kwargs for _, kwargs in recorder.warmups] == [{"BLOCK": 16, "num_warps": 4, "num_stages": 2, "maxnreg": 128}]
    assert launched[0][0] is tuner  # torch's wrapper still takes the Autotuner
    assert launch_options.eager_kernel(tuner) == (_decode_attention_kernel, {"num_warps": 4, "num_stages": 2, "maxnreg": 128})
    assert launch_options.eager_kernel(_decode_attention_kernel) == (_decode_attention_kernel, {})


def test_launches_whose_compile_cannot_be_foreseen_are_left_to_their_first_call(launched):
    mode, kernel = FakeTensorMode(), StandIn()
    size = ShapeEnv().create_unbacked_symint()
    with compile_ahead.compiling_ahead(threads=1):
        with mode:
            compile_ahead.wrap_triton(kernel)[(1,)](fake_cuda(mode, (2, 8)), size)  # a symbolic size
            compile_ahead.wrap_triton(kernel)[(1,)](FakeTensor(mode, torch.empty(2, device="meta"), torch.device("cpu")))  # CPU
        compile_ahead.wrap_triton(kernel)[(1,)](torch.zeros(2))  # a real launch
        compile_ahead.wait()
    assert kernel.warmups == [] and len(launched) == 3


def test_nothing_is_compiled_ahead_outside_the_context_or_untraced(launched):
    mode, kernel = FakeTensorMode(), StandIn()
    with mode:
        compile_ahead.wrap_triton(kernel)[(1,)](fake_cuda(mode, (2, 8)))
    assert kernel.warmups == [] and not compile_ahead._pending
    # Outside the context torch's wrapper is handed back as it is: nothing between it and the kernel.
    assert isinstance(compile_ahead.wrap_triton(kernel), _Launcher)


def test_the_pool_kept_for_the_process_compiles_only_the_ops_kept_opaque(launched, monkeypatch):
    """``compile_ahead_from_now_on`` (the automatic choice's: ``opaque.opaque_now``) makes one pool
    for the rest of the process; it then compiles a traced launch ahead where the automatic
    choice keeps the op opaque (Inductor compiling for CUDA graphs), not where the op is traced
    into (Inductor compiles its kernels itself) nor within ``opaque_ops(compile_ahead=False)``."""
    import torch._inductor.config as inductor_config

    from ecc_tensor.ops import opaque_ops

    for name, value in (("_for_the_process", False), ("_active", 0), ("_pool", None), ("_submitted", set())):
        monkeypatch.setattr(compile_ahead, name, value)
    compile_ahead.compile_ahead_from_now_on()
    pool = compile_ahead._pool
    compile_ahead.compile_ahead_from_now_on()  # once a process
    assert compile_ahead._active == 1 and compile_ahead._pool is pool is not None
    mode, kernel = FakeTensorMode(), StandIn()
    try:
        with mode:
            compile_ahead.wrap_triton(kernel)[(1,)](fake_cuda(mode, (2, 8)), 1)  # no CUDA graphs: traced into
            with opaque_ops(False, compile_ahead=False), inductor_config.patch({"triton.cudagraphs": True}):
                compile_ahead.wrap_triton(kernel)[(1,)](fake_cuda(mode, (2, 8)), 2)  # inlined by request
        compile_ahead.wait()
        assert kernel.warmups == [] and len(launched) == 2
        with mode, inductor_config.patch({"triton.cudagraphs": True}):
            compile_ahead.wrap_triton(kernel)[(1,)](fake_cuda(mode, (2, 8)), 3)
            with opaque_ops(compile_ahead=False):
                compile_ahead.wrap_triton(kernel)[(1,)](fake_cuda(mode, (2, 8)), 4)
        compile_ahead.wait()
        assert [args[1] for args, _ in kernel.warmups] == [3]
    finally:
        pool.shutdown(wait=True)


def test_a_real_launch_waits_for_the_compiles_sent_ahead(launched):
    mode, slow = FakeTensorMode(), StandIn(delay=0.3)
    with compile_ahead.compiling_ahead(threads=1):
        with mode:
            compile_ahead.wrap_triton(slow)[(1,)](fake_cuda(mode, (2, 8)))
        assert compile_ahead._pending
        compile_ahead.wrap_triton(StandIn())[(1,)](torch.zeros(2))  # the compiled step's first launch
        assert launched[-1][-1] == 0 and len(slow.warmups) == 1  # nothing pending when it went on to launch


def test_a_failed_compile_ahead_is_left_to_the_launch(launched):
    """Whatever a compile ahead raises is the launch's to raise, at its first call, as without it."""
    mode, failing = FakeTensorMode(), StandIn(fail=RuntimeError("ptxas: out of registers"))
    with compile_ahead.compiling_ahead(threads=1):
        with mode:
            compile_ahead.wrap_triton(failing)[(1,)](fake_cuda(mode, (2, 8)))
    assert failing.warmups == [] and not compile_ahead._pending


def test_threads_leave_when_the_context_does(launched):
    before = {t.name for t in threading.enumerate()}
    with compile_ahead.compiling_ahead(threads=2):
        with compile_ahead.compiling_ahead():  # nested: one pool
            pool = compile_ahead._pool
        assert compile_ahead._pool is pool
    assert compile_ahead._pool is None
    assert not {t.name for t in threading.enumerate() if t.name.startswith("ecc-compile")} - before


def test_every_launch_site_goes_through_compile_ahead():
    """A module that imported torch's ``wrap_triton`` itself would launch past the compiles ahead
    (and past the wait for them)."""
    root = Path(compile_ahead.__file__).parent
    direct = [str(p.relative_to(root)) for p in root.rglob("*.py")
              if p.name != "compile_ahead.py" and re.search(r"import .*\bwrap_triton\b", p.read_text())
              and not re.search(r"from \.+compile_ahead import wrap_triton", p.read_text())]
    assert direct == []
    users = [p.name for p in root.rglob("*.py") if "wrap_triton(" in p.read_text() and p.name != "compile_ahead.py"]
    assert {"launch.py", "fp8.py", "channel_scales.py", "codec_kernels.py", "fault_kernels.py", "interp_kernels.py"} <= set(users)
