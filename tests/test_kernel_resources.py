"""``tools/kernel_resources.py``'s reading of Triton's IR, on hand-written TTGIR: which loads a
loop leaves waiting for global memory (``loop_loads``); and of nvdisasm's SASS listing, on a
hand-written one: its loops and the source lines their instructions come from (``--loops
--lines``); and how many programs an SM holds (``resident_programs``). The tool itself runs in
the Hopper compile tests (tests/test_attention.py, tests/test_fp8_attention.py)."""

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


def test_sass_loops_and_the_source_lines_of_the_largest():
    src = Path(__file__).resolve()  # any file: its lines are quoted
    listing = f"""
        /*0000*/                   MOV R1, c[0x0][0x28] ;
.L_x_0:
\t//## File "{src}", line 3
        /*0010*/                   LOP3.LUT R2, R3, 0xf, RZ, 0xc0, !PT ;
        /*0020*/                   @P0 SHF.R.U32.HI R4, RZ, 0x4, R2 ;
.L_x_1:
\t//## File "{src}", line 5
        /*0030*/                   IMAD R5, R4, 0x3, RZ ;
        /*0040*/              @!P1 BRA `(.L_x_1) ;
\t//## File "{src}", line 3
        /*0050*/                   LOP3.LUT R6, R5, 0x1, RZ, 0xc0, !PT ;
        /*0060*/                   BRA `(.L_x_0) ;
        /*0070*/                   EXIT ;
"""
    module = _kernel_resources()
    instructions, labels = module.parse_sass(listing)
    assert labels == {".L_x_0": 0x10, ".L_x_1": 0x30} and instructions[0][2] is None
    assert [source[1] for _, _, source in instructions[1:]] == [3, 3, 5, 5, 3, 3, 3]
    report = module.loop_report(instructions, labels, lines=2)
    assert report[0] == "    8 SASS instructions"
    # the outer loop (0x10-0x60, 6 instructions) holds the inner one (0x30-0x40, 2)
    assert report[1].startswith("    loop 0x0010-0x0060:     6 instructions (LOP3 2, BRA 2, SHF 1, IMAD 1)")
    assert report[2].startswith("    loop 0x0030-0x0040:     2 instructions (IMAD 1, BRA 1)")
    line_3 = src.read_text().splitlines()[2].strip()[:90]
    assert report[3].split()[:2] == ["4", f"{src.name}:3"] and report[3].rstrip().endswith(line_3)
    assert report[4].split()[:2] == ["2", f"{src.name}:5"]


def test_sass_loops_count_their_global_loads_by_width():
    listing = """
.L_x_0:
        /*0010*/                   LDGSTS.E.BYPASS.128 [R2], desc[UR4][R4.64] ;
        /*0020*/              @!P0 LDGSTS.E.64 [R3], desc[UR4][R6.64] ;
        /*0030*/                   LDGSTS.E.64 [R5], desc[UR4][R8.64] ;
        /*0040*/                   LDGDEPBAR ;
        /*0050*/                   LDG.E R9, desc[UR4][R10.64] ;
        /*0060*/                   BRA `(.L_x_0) ;
"""
    module = _kernel_resources()
    report = module.loop_report(*module.parse_sass(listing))
    assert report[1].endswith("; global loads LDG.E 1, LDGSTS.E.64 2, LDGSTS.E.BYPASS.128 1")


def test_resident_programs_are_bounded_by_registers_shared_memory_warps_or_programs():
    """Programs an sm_90 SM holds at once, and what bounds them (the launches' figures of
    sm_90a compiles: int4's main launch 105 registers and 10 KiB of shared memory, Hamming's 128
    and 19 KiB, Golay's 247 and 19.5 KiB)."""
    resident = _kernel_resources().resident_programs
    assert resident(105, 10240, 1) == (18, "registers")  # 105 -> 112 a thread, 3,584 a warp
    assert resident(128, 19456, 1) == (11, "shared memory")  # 228 KiB / (19 + 1) KiB
    assert resident(247, 19968, 1) == (8, "registers")
    assert resident(16, 0, 4) == (16, "warps")
    assert resident(16, 0, 1) == (32, "programs")
