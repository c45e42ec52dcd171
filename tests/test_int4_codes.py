"""The store kernel's quantization (``ops.int4_codes``) against IEEE division and round half to
even: the quotient bit for bit (the float64 quotient rounded to float32 is the correctly rounded
one: 53 >= 2 * 24 + 2 bits), the codes as the reference's. On CPU in Triton's interpreter over
float32 bit patterns and constructed ties; on the GPU for every pair of float16 values and of
bfloat16 values."""

from __future__ import annotations

import pytest
import torch
import triton
import triton.language as tl
from hypothesis import given, settings
from hypothesis import strategies as st

from ecc_tensor.ops.codec_kernels import fma_rounds_once
from ecc_tensor.ops.int4_codes import fma_quotient_safe, int4_codes, quotients

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # the interpreter's CPU tensors without a GPU


@triton.jit
def _codes_kernel(x_ptr, scale_ptr, zero_ptr, quotient_ptr, code_ptr, N, SYMMETRIC: tl.constexpr, FMA: tl.constexpr,
                  BLOCK: tl.constexpr):
    """Each of N values ``x`` by every scale (program axis 1), as the store kernel quantizes
    them: the reciprocal once per scale, the quotient, the code."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    row = tl.program_id(1)
    ok = offs < N
    x = tl.load(x_ptr + offs, mask=ok, other=0.0).to(tl.float32)
    scale = tl.load(scale_ptr + row + tl.zeros([BLOCK], dtype=tl.int32))
    zero = tl.load(zero_ptr + row + tl.zeros([BLOCK], dtype=tl.int32))
    recip = tl.math.div_rn(tl.zeros_like(scale) + 1.0, scale)
    quotient = quotients(x, scale, recip, fma_quotient_safe(scale, ok) if FMA else 0)
    out = row.to(tl.int64) * N + offs
    tl.store(quotient_ptr + out, quotient, mask=ok)
    tl.store(code_ptr + out, int4_codes(quotient, zero, SYMMETRIC).to(tl.uint8), mask=ok)


def kernel_codes(x, scale, zero, symmetric, fma=None):
    """(quotients ``[scales, values]`` float32, codes uint8) from ``_codes_kernel``."""
    fma = fma_rounds_once(x.device.type) if fma is None else fma
    quotient = torch.empty(scale.numel(), x.numel(), dtype=torch.float32, device=x.device)
    code = torch.empty(quotient.shape, dtype=torch.uint8, device=x.device)
    block = 1024
    _codes_kernel[(triton.cdiv(x.numel(), block), scale.numel())](x, scale, zero, quotient, code, x.numel(), SYMMETRIC=symmetric,
                                                                   FMA=fma, BLOCK=block)
    return quotient, code


def reference_codes(x, scale, zero, symmetric):
    """The correctly rounded quotients (through float64) and the reference's codes; a NaN
    quotient's code is undefined (NaN to uint8) and left out by the callers."""
    quotient = (x.double()[None, :] / scale.double()[:, None]).float()
    if symmetric:
        code = torch.clamp(torch.round(quotient), -8, 7) + 8
    else:
        code = torch.clamp(torch.round(quotient + zero[:, None]), 0, 15)
    return quotient, code


def assert_codes_match(x, scale, zero, symmetric, fma=None, *, every_quotient=False):
    """The kernel's codes equal the reference's where the reference's quotient is not NaN (its
    code is undefined) and, unless ``every_quotient`` (scales that divide), where the quotient
    is one the store kernel can meet: a finite value, at most 2^32 times its scale
    (``ops.int4_codes``). The quotients themselves equal the correctly rounded ones (as numbers:
    the refinement's zero is +0 where the division's can be -0) where those are normal and the
    value is at least 2^-100; a smaller one's is below 2^-40 and its code the same."""
    x, scale, zero = x.to(DEVICE), scale.to(DEVICE), zero.to(DEVICE)
    got_q, got_code = kernel_codes(x, scale, zero, symmetric, fma)
    want_q, want_code = reference_codes(x, scale, zero, symmetric)
    compared = ~torch.isnan(want_q)
    if not every_quotient:
        compared &= torch.isfinite(x)[None, :] & (want_q.abs() <= 2.0**32)
    assert torch.equal(got_code[compared], want_code[compared].to(torch.uint8))
    exact = compared & (x.abs() >= 2.0**-100)[None, :] & ((want_q.abs() >= 2.0**-126) | (want_q == 0))
    assert torch.equal(got_q[exact], want_q[exact])
    return compared.float().mean().item()


def float32_bits(draw, lo_exponent, hi_exponent):
    """A float32 of either sign whose exponent lies in ``[lo_exponent, hi_exponent]`` (biased)."""
    return draw(st.integers(0, 1)) << 31 | draw(st.integers(lo_exponent, hi_exponent)) << 23 | draw(st.integers(0, (1 << 23) - 1))


def as_float32(bits):
    return torch.tensor(bits, dtype=torch.int64).to(torch.int32).view(torch.float32)


@st.composite
def scales_and_values(draw):
    """Scales over the whole float32 range (subnormal and huge ones take the division) and values
    within a few binades of each, so that quotients fall on every side of the codes' ties."""
    scale_bits = [float32_bits(draw, 0, 254) & 0x7FFFFFFF for _ in range(4)]
    values = []
    for s in scale_bits:
        e = (s >> 23) & 0xFF
        values += [float32_bits(draw, max(0, e - 4), min(254, e + 4)) for _ in range(16)]
    return as_float32(scale_bits), as_float32(values)


@settings(max_examples=40, deadline=None)
@given(scales_and_values(), st.booleans())
def test_quotients_and_codes_over_float32_bits(case, symmetric):
    scale, x = case
    zero = torch.linspace(-20, 20, scale.numel())
    assert_codes_match(x, scale, zero, symmetric)


@pytest.mark.parametrize("symmetric", [True, False])
def test_codes_at_ties(symmetric):
    """Quotients on, and an ulp either side of, every half-integer the codes round at, for
    scales of every mantissa pattern class; and the special values."""
    gen = torch.Generator().manual_seed(0)
    scale = torch.cat([torch.rand(24, generator=gen) * 10 + 1e-3, torch.tensor([1.0, 0.1, 3.0, 1e-30, 1e30, 2.0**-120])])
    halves = torch.arange(-17, 18, dtype=torch.float32) * 0.5
    ties = (halves[None, :] * scale[:, None]).flatten()
    near = ties.view(torch.int32)
    x = torch.cat([ties, (near + 1).view(torch.float32), (near - 1).view(torch.float32),
                   torch.tensor([0.0, -0.0, float("nan"), 1e-45, -1e-38])])
    zero = torch.tensor([0.0, 0.5, -3.25, 7.0]).repeat(scale.numel())[: scale.numel()]
    assert assert_codes_match(x, scale, zero, symmetric) > 0.9


def test_unsafe_scales_divide():
    """Subnormal, tiny (below 2^-60), infinite and NaN scales: the program divides (the check is per program,
    one of them makes every value divide), matching IEEE division all the same."""
    x = torch.tensor([1e-40, -3e-39, 1.0, 2.5e-38, 0.0, 7e-45])
    scale = torch.tensor([1e-41, 2.0**-61, float("inf"), float("nan"), 1.0])
    assert_codes_match(x, scale, torch.zeros(scale.numel()), True, every_quotient=True)
    assert_codes_match(x, scale[-1:], torch.zeros(1), True, every_quotient=True)


def test_division_path_without_fma():
    """``FMA=False`` (Triton's interpreter before 3.9, whose FMA rounds twice) divides."""
    gen = torch.Generator().manual_seed(1)
    x, scale = torch.randn(256, generator=gen) * 5, torch.rand(8, generator=gen) + 0.01
    assert_codes_match(x, scale, torch.zeros(8), True, fma=False)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_every_16_bit_pair_on_the_gpu(dtype):
    """Every finite value of the dtype by the scale of every positive finite amax (``amax / 7``,
    as the kernel makes it): 2^31 quotients, bit for bit, and their codes."""
    values = torch.arange(-(2**15), 2**15, dtype=torch.int32, device="cuda").to(torch.int16).view(dtype)
    values = values[torch.isfinite(values)]
    amax = values[values > 0].float()
    for chunk in amax.split(512):
        scale = chunk / torch.full_like(chunk, 7.0)
        assert_codes_match(values, scale, torch.zeros_like(scale), True)


@pytest.mark.cuda
def test_asymmetric_ranges_on_the_gpu():
    """Zero points too: random (min, max) ranges of float16 values, every float16 value each."""
    values = torch.arange(-(2**15), 2**15, dtype=torch.int32, device="cuda").to(torch.int16).view(torch.float16)
    values = values[torch.isfinite(values)]
    gen = torch.Generator(device="cuda").manual_seed(0)
    for _ in range(8):
        ends = values[torch.randint(values.numel(), (2, 512), device="cuda", generator=gen)].float()
        lo, hi = ends.min(0).values, ends.max(0).values
        scale = torch.where(hi > lo, (hi - lo) / torch.full_like(hi, 15.0), torch.ones_like(hi))
        assert_codes_match(values, scale, (0.0 - lo) / scale, False)
