"""Triton kernel for fault injection (``ecc::inject``): the reference's Philox draws, on the GPU.

For the word at flat address ``a`` and stored bit ``b`` the draw is lane ``b % 4`` of
``tl.philox(seed, a_lo, a_hi, b // 4, step)``, the counter layout of
:mod:`ecc_tensor.faults`, so every flip equals the CPU reference's. Kinds ``bsc``, ``msb``
and ``page`` are per-bit independent and run here; ``burst`` needs the draws of earlier words
and runs as the reference's tensor code on the same device. ``msb`` takes the bits it may
strike per word position along the last dim (``eligible``), or the top bits of each word.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ecc_tensor.faults import FaultModel
from ecc_tensor.philox import probability_threshold

from .compile_ahead import wrap_triton

_KERNEL_KINDS = {"bsc": 0, "msb": 1, "page": 2}


# Scalars that may pass 2^31 (addresses: the metadata's start at 2^39; seeds; thresholds up to
# 2^32 - 1) travel as pieces of 31 bits: torch.compile's Inductor fails to type a Python int
# argument of a user Triton kernel that does not fit in int32 ("'int' object has no attribute
# 'xreplace'", PyTorch 2.11, found by a compiled generate with faults on the H200).
_PIECE_BITS = 31


def int31_pieces(x: int, pieces: int) -> tuple[int, ...]:
    """``x >= 0`` as ``pieces`` ints of 31 bits, least significant first."""
    if not 0 <= x < 1 << (_PIECE_BITS * pieces):
        raise ValueError(f"{x} does not fit in {pieces} pieces of {_PIECE_BITS} bits")
    return tuple((x >> (_PIECE_BITS * i)) & ((1 << _PIECE_BITS) - 1) for i in range(pieces))


@triton.jit
def _joined(lo, mid, hi):
    """The int64 ``lo + mid 2^31 + hi 2^62`` of ``int31_pieces``. ``tl.cast``, not ``.to``: a piece
    may be a Python int (a literal, or an argument Triton specialized because it equals 1)."""
    return tl.cast(lo, tl.int64) | (tl.cast(mid, tl.int64) << 31) | (tl.cast(hi, tl.int64) << 62)


@triton.jit
def _lane_flips(r, lane, thr_minus_1, BITS: tl.constexpr, LOW_LANE: tl.constexpr):
    """1 where lane's draw falls under the threshold and the lane is exposed and eligible."""
    ok = (lane < BITS) & (lane >= LOW_LANE)
    return (ok & (r.to(tl.int64) <= thr_minus_1)).to(tl.int32) << lane


@triton.jit
def _inject_kernel(
    words_ptr,
    out_ptr,
    count_ptr,  # int64 [1]
    N,
    offset_lo, offset_hi,  # int31_pieces of the first word's address
    step,
    seed_lo, seed_mid, seed_hi,  # int31_pieces of the seed
    thr_lo, thr_hi,  # of threshold - 1 for a bit flip (p > 0 here), in [0, 2^32)
    page_thr_lo, page_thr_hi,
    page_words,
    eligible_ptr,  # int64 [width]: msb's bits per position along the last dim (HAS_ELIGIBLE)
    width,
    BITS: tl.constexpr,
    KIND: tl.constexpr,
    LOW_LANE: tl.constexpr,  # first eligible lane: BITS - msb_bits for msb on bare words, else 0
    HAS_ELIGIBLE: tl.constexpr,
    BLOCK: tl.constexpr,
):
    offset = _joined(offset_lo, offset_hi, 0)
    seed = _joined(seed_lo, seed_mid, seed_hi)
    thr_minus_1 = _joined(thr_lo, thr_hi, 0)
    page_thr_minus_1 = _joined(page_thr_lo, page_thr_hi, 0)
    idx = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    ok = idx < N
    addr = idx + offset
    a_lo = (addr & 0xFFFFFFFF).to(tl.uint32)
    a_hi = (addr >> 32).to(tl.uint32)
    c3 = tl.full([BLOCK], step, tl.uint32)
    mask = tl.zeros([BLOCK], dtype=tl.int32)
    for g in tl.static_range((BITS + 3) // 4):
        c2 = tl.full([BLOCK], g, tl.uint32)
        r0, r1, r2, r3 = tl.philox(seed, a_lo, a_hi, c2, c3)
        mask |= _lane_flips(r0, 4 * g + 0, thr_minus_1, BITS, LOW_LANE)
        mask |= _lane_flips(r1, 4 * g + 1, thr_minus_1, BITS, LOW_LANE)
        mask |= _lane_flips(r2, 4 * g + 2, thr_minus_1, BITS, LOW_LANE)
        mask |= _lane_flips(r3, 4 * g + 3, thr_minus_1, BITS, LOW_LANE)
    if KIND == 2:  # page
        page = addr // page_words
        p0, _, _, _ = tl.philox(
            seed,
            (page & 0xFFFFFFFF).to(tl.uint32),
            (page >> 32).to(tl.uint32),
            tl.full([BLOCK], 0x80000000, tl.uint32),
            c3,
        )
        mask = tl.where(p0.to(tl.int64) <= page_thr_minus_1, mask, 0)
    if HAS_ELIGIBLE:
        mask &= tl.load(eligible_ptr + idx % width, mask=ok, other=0).to(tl.int32)
    mask = tl.where(ok, mask, 0)
    w = tl.load(words_ptr + idx, mask=ok, other=0)
    tl.store(out_ptr + idx, w ^ mask.to(w.dtype), mask=ok)
    # popcount of the flip masks
    bits = tl.zeros([BLOCK], dtype=tl.int32)
    for b in tl.static_range(BITS):
        bits += (mask >> b) & 1
    n = tl.sum(bits, axis=0)
    tl.atomic_add(count_ptr, n.to(tl.int64), mask=n > 0, sem="relaxed")  # read after the kernel: no ordering needed


def launch_inject(
    words: torch.Tensor,
    out: torch.Tensor,
    count: torch.Tensor,
    *,
    bits: int,
    kind: int,
    low_lane: int,
    offset: int,
    step: int,
    seed: int,
    threshold: int,
    page_threshold: int,
    page_words: int,
    eligible: torch.Tensor | None = None,
) -> None:
    """Flip bits of contiguous ``words`` into ``out``, adding the number flipped to ``count``.

    Thresholds are integers in [1, 2^32] (callers skip p = 0); ``u < t`` is ``u <= t - 1``
    so that t = 2^32 fits in uint32.
    """
    n = words.numel()
    block = 1024
    wrap_triton(_inject_kernel)[(triton.cdiv(n, block),)](
        words,
        out,
        count,
        n,
        *int31_pieces(offset, 2),
        step,
        *int31_pieces(seed, 3),
        *int31_pieces(threshold - 1, 2),
        *int31_pieces(max(page_threshold, 1) - 1, 2),
        page_words,
        eligible if eligible is not None else count,
        eligible.numel() if eligible is not None else 1,
        BITS=bits,
        KIND=kind,
        LOW_LANE=low_lane,
        HAS_ELIGIBLE=eligible is not None,
        BLOCK=block,
    )


def supports(model: FaultModel, bits_per_word: int) -> bool:
    """Whether the kernel draws this model's flips (burst, p = 0 and empty pages go to the reference)."""
    return (
        model.kind in _KERNEL_KINDS
        and probability_threshold(model.bit_probability(bits_per_word)) > 0
        and (model.kind != "page" or probability_threshold(model.page_fraction) > 0)
    )


def triton_inject(
    words: torch.Tensor, bits_per_word: int, model: FaultModel, offset: int, step: int, eligible: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    out = torch.empty_like(words)
    count = torch.zeros(1, dtype=torch.int64, device=words.device)
    narrowed = model.kind == "msb" and eligible is not None
    if narrowed:
        eligible = eligible.to(device=words.device, dtype=torch.int64).reshape(-1).expand(words.shape[-1]).contiguous()
    if words.numel():
        launch_inject(
            words.contiguous(), out, count, bits=bits_per_word, kind=_KERNEL_KINDS[model.kind],
            low_lane=0 if narrowed else bits_per_word - model.eligible_bits(bits_per_word), offset=offset, step=step,
            seed=model.seed, threshold=probability_threshold(model.bit_probability(bits_per_word)),
            page_threshold=probability_threshold(model.page_fraction), page_words=model.page_words,
            eligible=eligible if narrowed else None,
        )
    return out, count.reshape(())
