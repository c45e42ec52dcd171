"""Without a GPU, Triton kernels run in Triton's interpreter on CPU tensors.

``TRITON_INTERPRET`` is read when ``@triton.jit`` decorates a kernel, so it is set here,
before any test imports ``ecc_tensor.ops``. On a CUDA machine the kernels compile for real.
"""

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def kernel_device():
    """Where Triton kernels run in this session: the GPU, or CPU tensors under the interpreter."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def pytest_runtest_logreport(report):
    """``ECC_FAILURE_LOG=FILE``: append each failure's traceback to FILE as it happens, so a run
    cut short by a time limit (a lent GPU machine's) still says why its failures failed."""
    path = os.environ.get("ECC_FAILURE_LOG")
    if path and report.failed:
        with open(path, "a") as f:
            f.write(f"=== {report.nodeid} ({report.when})\n{report.longreprtext}\n")
