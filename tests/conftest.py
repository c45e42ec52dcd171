"""Without a GPU, Triton kernels run in Triton's interpreter on CPU tensors.

``TRITON_INTERPRET`` is read when ``@triton.jit`` decorates a kernel, so it is set here,
before any test imports ``ecc_tensor.ops``. On a CUDA machine the kernels compile for real.
Shared fixtures: ``kernel_device``, ``aten_calls`` (a recorder of aten calls), ``run_compile_tool`` and ``tiny`` (a tiny model, its
tokenizer and a text).
"""

import importlib.util
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
_tool = Path(__file__).resolve().parents[1] / "tools" / "interpreter_speed.py"
_spec = importlib.util.spec_from_file_location("interpreter_speed", _tool)
_interpreter_speed = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_interpreter_speed)
if os.environ.get("TRITON_INTERPRET", "") not in ("", "0"):
    _interpreter_speed.install()  # two costs of Triton's interpreter that are no part of what it runs


# The slowest tests on a 2-core machine (minutes each: compiles, interpreted kernels), run
# first, so that pytest-xdist's workers share them instead of one finishing them alone after
# the rest: the end of a run was a tail of them.
SLOW_FIRST = (
    "test_kernel_compiles_for_hopper_as_torch_compile_calls_it", "test_kernel_property",
    "test_fused_per_channel_keys_and_window_match_the_reference", "test_opcheck_every_op",
    "test_compiled_decoding_with_a_scheme_equals_eager_with_no_graph_breaks", "test_kernel_matches_reference_with_faults",
    "test_kernel_decodes_protected_scales", "test_every_launch_a_cache_makes_compiles_for_hopper",
    # On a GPU: its deferred launches compile for minutes (Hamming(8,4) with interpolation and
    # zero points, 81-87 s alone for sm_90a), and one left last ran past a device call; so do
    # the Llama-shape attention's interpolating launches (Golay's 39 s each for sm_90a, four
    # variants), and the compiled model and cache tests compile every launch a model makes.
    "test_fused_per_channel_keys_and_window_match_the_reference_on_the_gpu", "test_fused_attention_on_llama_shapes",
    "test_generate_compiled_with_faults_on_the_whole_footprint_equals_eager",
    "test_cache_decodes_every_sequence_of_a_batch_as_the_dense_path", "test_large_random_inputs_bit_exact",
)


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: getattr(item, "originalname", item.name) not in SLOW_FIRST)  # stable: slow ones first
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    skip_cuda = pytest.mark.skip(reason="needs a CUDA device")
    skip_two = pytest.mark.skip(reason="needs two GPUs")
    for item in items:
        if gpus == 0 and "cuda" in item.keywords:
            item.add_marker(skip_cuda)
        elif gpus < 2 and "two_gpus" in item.keywords:
            item.add_marker(skip_two)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """pytest's own call of a (synchronous) test function, made from a stack chunk of its own
    (``interpreter_speed.roomy_call``)."""
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        return None  # pytest's own hook (and its async plugins) handle these
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    _interpreter_speed.roomy_call(pyfuncitem.obj, **args)
    return True


@pytest.fixture
def aten_calls():
    """A ``TorchDispatchMode`` class: ``with aten_calls() as calls:`` logs every aten operation
    called inside into ``calls.ops`` (what a call would launch on a GPU, its launches stubbed)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class AtenCalls(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops.append(func)
            return func(*args, **(kwargs or {}))

    return AtenCalls


@pytest.fixture
def kernel_device():
    """Where Triton kernels run in this session: the GPU, or CPU tensors under the interpreter."""
    return "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture
def run_compile_tool():
    """``run(script, *args, timeout=900)``: ``tools/<script>`` in a subprocess without Triton's
    interpreter, which this session may run: the tools compile kernels for sm_90a (no GPU
    needed), which interpreted kernels cannot. Returns the ``subprocess.CompletedProcess``."""
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}

    def run(script, *args, timeout=900):
        return subprocess.run([sys.executable, str(root / "tools" / script), *args], capture_output=True, text=True, env=env, cwd=root,
                              timeout=timeout)

    return run


def pytest_runtest_logreport(report):
    """``ECC_FAILURE_LOG=FILE``: append each failure's traceback to FILE as it happens, so a run
    cut short by a time limit (a lent GPU machine's) still says why its failures failed."""
    path = os.environ.get("ECC_FAILURE_LOG")
    if path and report.failed:
        with open(path, "a") as f:
            f.write(f"=== {report.nodeid} ({report.when})\n{report.longreprtext}\n")


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """A tiny random Llama with a byte-level BPE tokenizer, and a real English text."""
    from pydoc_data.topics import topics
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    root = tmp_path_factory.mktemp("tiny")
    text = "\n\n".join(topics[k] for k in sorted(topics))[:60_000]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator([text], trainers.BpeTrainer(vocab_size=320, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                        special_tokens=["<eos>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, initializer_range=0.3,
    )
    LlamaForCausalLM(config).save_pretrained(root / "model")
    fast.save_pretrained(root / "model")
    (root / "text.txt").write_text(text)
    return root
