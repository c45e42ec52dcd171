"""``tools/kernel_resources.py``'s reading of Triton's IR, on hand-written TTGIR: which loads a
loop leaves waiting for global memory (``loop_loads``). The tool itself runs in the Hopper
compile tests (tests/test_attention.py, tests/test_fp8_attention.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def _kernel_resources():
    sys.path.insert(0, str(TOOLS))  # the tool imports attention_case from beside it
    try:
        spec = importlib.util.spec_from_file_location("kernel_resources", TOOLS / "kernel_resources.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(TOOLS))


def loop_loads(ttgir: str) -> int:
    return _kernel_resources().loop_loads(SimpleNamespace(asm={"ttgir": ttgir}))


def test_loads_a_loop_waits_for_are_counted_and_prefetched_ones_are_not():
    ttgir = """
module {
  tt.func public @kernel() {
    %early = tt.load %p0 : tensor<32x!tt.ptr<i8>>
    %acc:3 = scf.for %i = %a to %b step %c iter_args(%x = %z, %carried_in = %early, %t = %tok) -> (f32, tensor<32xi8>, i32) {
      %copy = ttg.async_copy_global_to_local %p1, %buf : tensor<32x!tt.ptr<i8>> -> <32xi8>
      %check = tt.load %p2 : tensor<32x!tt.ptr<i32>>
      %dirty = arith.ori %check, %check : tensor<32xi32>
      %r = scf.if %cond -> (tensor<32xi32>) {
        %rare = tt.load %p3 : tensor<32x!tt.ptr<i32>>
        scf.yield %rare : tensor<32xi32>
      } else {
        scf.yield %dirty : tensor<32xi32>
      }
      %next = tt.load %p4 : tensor<32x!tt.ptr<i8>>
      scf.yield %x, %next, %t : f32, tensor<32xi8>, i32
    }
    %after = tt.load %p5 : tensor<32x!tt.ptr<i8>>
    tt.return
  }
}
"""
    # %check and %rare wait where they are used; %next is carried to the next iteration (issued
    # a stage ahead), %copy is an async copy, %early and %after are outside the loop.
    assert loop_loads(ttgir) == 2
    assert loop_loads(ttgir.replace("scf.yield %x, %next, %t", "scf.yield %x, %carried_in, %t")) == 3


def test_nested_loops_judge_each_load_by_its_own_loop():
    ttgir = """
module {
  tt.func public @kernel() {
    %o:2 = scf.for %i = %a to %b step %c iter_args(%x = %z, %v = %w) -> (f32, i32) {
      %outer = tt.load %p0 : tensor<32x!tt.ptr<i32>>
      %in:1 = scf.for %j = %a to %b step %c iter_args(%y = %x) -> (f32) {
        %inner = tt.load %p1 : tensor<32x!tt.ptr<i32>>
        scf.yield %y : f32
      }
      scf.yield %in#0, %outer : f32, i32
    }
    tt.return
  }
}
"""
    assert loop_loads(ttgir) == 1  # %inner waits; %outer is carried by the outer loop's yield
