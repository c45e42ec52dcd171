"""The launcher: ``LaunchPlan``, then the main launch, the deferred launch and the combine."""

from __future__ import annotations

import torch

from ecc_tensor.codecs import get_codec
from ecc_tensor.device_tables import float32_table
from ecc_tensor.metadata import MetadataLayout
from ecc_tensor.storage import StorageLayout

from ..compile_ahead import wrap_triton
from ..codec_kernels import (
    _pow2,
    nibble_parity_table,
)
from ..launch_options import dependent_launches, dependent_option, kernel_and_options
from ..memo import lane_meta_aligned
from .kernel import LOG2E, _combine_splits_kernel, _decode_attention_kernel
from .channel_scales import channel_scale_buffer, read_channel_scales
from .plan import (LaunchPlan, channel_scales_constants, coded_channel_scales_constants, combine_tiles, deferred_block_u,
                   grouped_scales_constants, key_meta_constants, meta_constants)


def mask_arguments(attn_mask: torch.Tensor | None, shape: tuple[int, int, int, int], unused: torch.Tensor):
    """The attention kernels' mask arguments for ``attn_mask`` broadcast to ``shape`` ``(B, Hq,
    Lq, S)``: (HAS_MASK, the mask as the kernels read it, its four strides, MASK_ROWS). HAS_MASK:
    0 none (``unused`` is passed in its place), 1 a float mask (added), 2 a boolean one as float32
    (its hidden keys -inf whatever their scores, NaN included, as the reference masks them), 3 a
    boolean one read in place as int32 words of four keys' bytes (the same masking); MASK_ROWS:
    one mask row a sequence. A boolean mask is read as words where it is one row a sequence
    (a decoding step's, as transformers builds it) whose bytes lie in whole aligned words, in a
    call that runs rather than is traced, else as a float32 copy; never as one byte a key, which
    the main loop would load unprefetched (a copy of at least 4 bytes is what ptxas makes
    asynchronous for sm_90a;
    ``tests/test_attention.py::test_kernel_compiles_for_hopper_as_torch_compile_calls_it``)."""
    if attn_mask is None:
        return 0, unused, (0, 0, 0, 0), True
    has_mask = 2 if attn_mask.dtype == torch.bool else 1
    runs = type(attn_mask) is torch.Tensor  # not traced (fake or functional tensors)
    # Traced (an op inlined by torch.compile), the float copy: Inductor fuses its select into its
    # own kernels, and cannot lower a boolean tensor's view as int32 (torch 2.11, CUDA).
    words = _mask_words(attn_mask, shape) if has_mask == 2 and runs else None
    if words is not None:
        return 3, words, words.stride(), True
    if has_mask == 2:
        # Run: kept on the mask's device, since Python numbers would each be made a tensor there,
        # a fill launch each a call (CPU scalars cannot be copied in a CUDA graph). Traced: the
        # numbers, which torch.compile's graph folds.
        hidden, visible = float32_table((float("-inf"), 0.0), attn_mask.device) if runs else (float("-inf"), 0.0)
        mask = torch.where(attn_mask, visible, hidden)
    else:
        mask = attn_mask.float()
    mask = mask.expand(*shape)
    strides = mask.stride()
    return has_mask, mask, strides, (shape[1] == 1 or strides[1] == 0) and (shape[2] == 1 or strides[2] == 0)


def _mask_words(attn_mask: torch.Tensor, shape: tuple[int, int, int, int]) -> torch.Tensor | None:
    """A boolean ``attn_mask`` that is one row a sequence, as int32 words of four keys each
    (``[B, 1, 1, S / 4]``, broadcast strides kept), or None where its bytes do not lie in whole
    4-byte aligned words (a row's keys not contiguous, S not a multiple of 4, an odd offset)."""
    mask = attn_mask.expand(*shape)
    if mask.stride(1) and shape[1] > 1 or mask.stride(2) and shape[2] > 1:
        return None  # rows per head or query: the float copy
    mask = mask[:, :1, :1]
    if shape[3] % 4 or mask.stride(3) != 1 or mask.stride(0) % 4 or mask.storage_offset() % 4:
        return None
    return mask.view(torch.int32)


def triton_decode_attention(
    query: torch.Tensor, k_stored: torch.Tensor, k_meta: torch.Tensor,
    v_stored: torch.Tensor, v_meta: torch.Tensor,
    encode_table: torch.Tensor, syndrome_table: torch.Tensor,
    meta_encode_table: torch.Tensor, meta_syndrome_table: torch.Tensor,
    codec: str, head_dim: int, groups: int, symmetric: bool,
    interpolate: bool, seq_lens: torch.Tensor, counters: torch.Tensor,
    attn_mask: torch.Tensor | None, is_causal: bool,
    scale: float, config: str | None = None,
    key_channel_block: int = 0, quantized_lens: torch.Tensor | None = None,
    k_window: torch.Tensor | None = None, v_window: torch.Tensor | None = None,
) -> torch.Tensor:
    """See ``ecc::decode_attention``; arguments are validated there. Inputs of any strides
    (a cache passes its one length expanded over the batch); ``attn_mask`` boolean or
    additive; ``config`` overrides the launch configuration (``kernel_config``)."""
    # The kernel addresses storage and metadata as dense rows; the query, the mask, the window
    # and the lengths it reads through their strides (the lengths' one stride: a cache's expanded
    # length is read in place, not copied).
    k_stored, k_meta, v_stored, v_meta = (t.contiguous() for t in (k_stored, k_meta, v_stored, v_meta))
    if quantized_lens is None:
        quantized_lens = seq_lens
    elif quantized_lens.stride(0) != seq_lens.stride(0):
        seq_lens, quantized_lens = seq_lens.contiguous(), quantized_lens.contiguous()
    meta_layout = MetadataLayout(codec, groups, symmetric)
    k_meta_layout = MetadataLayout(codec, head_dim, symmetric) if key_channel_block else meta_layout
    k_meta, v_meta = lane_meta_aligned(k_meta_layout, k_meta), lane_meta_aligned(meta_layout, v_meta)
    batch, q_heads, lq, _ = query.shape
    kv_heads, seq = k_stored.shape[1], k_stored.shape[2]
    layout = StorageLayout(codec, head_dim)
    plan = LaunchPlan.make(codec, head_dim, groups, interpolate, batch=batch, q_heads=q_heads, kv_heads=kv_heads, lq=lq, seq=seq,
                           device=query.device, stored=(k_stored, v_stored), config=config, channel_block=key_channel_block)
    block_n, block_m, splits, split_len = plan.main["block_n"], plan.block_m, plan.splits, plan.split_len
    emulate_bf16 = query.dtype == torch.bfloat16 and query.device.type == "cpu"  # CPU tensors: interpreter

    out = torch.empty_like(query, memory_format=torch.contiguous_format)
    parts = 2 * batch * kv_heads * splits  # the main launch's, then the deferred launch's
    o_part = torch.empty(parts * block_m * plan.part_cols, dtype=torch.float32, device=query.device)
    ml_part = torch.empty(parts * block_m * 2, dtype=torch.float32, device=query.device)
    decode = get_codec(codec).decodes
    interp = interpolate and decode
    defer = plan.deferred is not None
    flags = torch.empty(batch * kv_heads * splits * (split_len // block_n) if defer else 1, dtype=torch.uint8, device=query.device)
    # Syndromes by table (Golay, and the clean-units branch of any code) read one small table
    # per data nibble; the blocks layout computes its check bits from its structure instead.
    parity_table = encode_table if layout.blocks else nibble_parity_table(encode_table, layout.codec.k)
    meta_parity_table = nibble_parity_table(meta_encode_table, meta_layout.storage.codec.k)
    meta = meta_constants(meta_layout, k_meta, v_meta) if not key_channel_block else meta_constants(meta_layout, v_meta)
    has_mask, mask, mask_strides, mask_rows = mask_arguments(attn_mask, (batch, q_heads, lq, seq), o_part)
    combine_unit_values = plan.combine_unit_values
    combine_slots = _pow2(combine_unit_values)
    window = k_window is not None
    # Every launch after the op's first waits on the one before it in the kernel, not in the
    # stream (launch_options): its programs start while that one's last finish. The first stays
    # plain: before it, the stream may hold anything (the cache's write, the previous call).
    gdc = dependent_launches(query.device)
    o_window, ml_window = o_part, ml_part  # not read without a window
    if window:  # attended by the main launch's last program of each (sequence, KV head), laid out as the combine reads it
        k_window, v_window = k_window.contiguous(), v_window.contiguous()
        o_window = torch.empty(batch * kv_heads * block_m * plan.part_cols, dtype=torch.float32, device=query.device)
        ml_window = torch.empty(batch * kv_heads * block_m * 2, dtype=torch.float32, device=query.device)
    args = (
        query, k_stored, k_meta, v_stored, v_meta, parity_table, syndrome_table, meta_parity_table, meta_syndrome_table, seq_lens,
        quantized_lens, seq_lens.stride(0), mask, counters, o_part, ml_part, flags, o_part,
        scale * LOG2E, split_len, splits, *query.stride(), *mask_strides,
        seq, k_meta.shape[2],
    )
    window_args = (k_window, v_window, o_window, ml_window, k_window.shape[2]) if window else (o_part, o_part, o_part, ml_part, 1)
    constants = dict(
        HKV=kv_heads, GQA=q_heads // kv_heads, LQ=lq, **plan.storage, HAS_ZERO=not symmetric, INTERP=interp, DEFER=defer,
        HAS_MASK=has_mask, MASK_ROWS=mask_rows, CAUSAL=is_causal,
        DOT_PRECISION="ieee" if query.dtype == torch.float32 or emulate_bf16 else "tf32", EMULATE_BF16=emulate_bf16,
        SPLIT_P=query.dtype == torch.bfloat16 and not emulate_bf16,
        PTX=query.device.type == "cuda" and torch.version.hip is None, **meta,
        **key_meta_constants(k_meta_layout, head_dim, key_channel_block, meta, k_meta),
        BLOCK_M=block_m, BLOCK_N=block_n, PART_COLS=plan.part_cols,
        WINDOW=False, WINDOW_BLOCK_D=_pow2(max(head_dim, 16)), WINDOW_UNIT_VALUES=combine_unit_values, WINDOW_BLOCK_U=plan.combine_u,
        GDC=gdc, SCALE_ROWS=plan.main["scale_rows"],
    )
    main = plan.main
    main_args, main_constants = args, constants
    if plan.channel_scales_pass:  # the main launch reads the coded channel scales as float32 words (channel_scales.py)
        km = _decode_attention_kernel.arg_names.index("km_ptr")
        k_scales = read_channel_scales(k_meta, meta_parity_table, k_meta_layout, quantized_lens, key_channel_block)
        main_args = (*args[:km], k_scales, *args[km + 1:])
        main_constants = {**constants, **channel_scales_constants(k_meta_layout)}
    elif plan.channel_scales_in_main:  # each main program reads its own rows of them into float32 words first
        ks = _decode_attention_kernel.arg_names.index("ks_ptr")
        k_scales = channel_scale_buffer(k_meta, k_meta_layout).view(torch.uint8)  # addressed in bytes, as metadata rows are
        main_args = (*args[:ks], k_scales, *args[ks + 1:])
        main_constants = {**constants, **coded_channel_scales_constants(k_meta_layout, k_meta.storage_offset() % 4)}
    elif plan.grouped_scales_pass:  # the main launch reads K's and V's coded grouped scales as float32 words (channel_scales.py)
        km, vm = (_decode_attention_kernel.arg_names.index(name) for name in ("km_ptr", "vm_ptr"))
        k_scales = read_channel_scales(k_meta, meta_parity_table, meta_layout, quantized_lens, 1)
        v_scales = read_channel_scales(v_meta, meta_parity_table, meta_layout, quantized_lens, 1, dependent=True)
        main_args = (*args[:km], k_scales, *args[km + 1:vm], v_scales, *args[vm + 1:])
        main_constants = {**constants, **grouped_scales_constants(meta_layout)}
    after_pass = plan.channel_scales_pass or plan.grouped_scales_pass
    kernel, options = kernel_and_options(_decode_attention_kernel, main["num_warps"], main["num_stages"], main["maxnreg"],
                                         dependent=gdc and after_pass)
    wrap_triton(kernel)[(batch * kv_heads, splits + window)](
        *main_args, 1, *window_args, DEFERRED=False, **{**main_constants, "WINDOW": window}, **options,
    )
    if defer:
        constants.update(BLOCK_U=deferred_block_u(layout, plan.storage["BLOCK_U"]))
        kernel, options = kernel_and_options(_decode_attention_kernel, plan.deferred["num_warps"], plan.deferred["num_stages"],
                                             dependent=gdc)
        wrap_triton(kernel)[(batch * kv_heads, plan.deferred_programs)](
            *args, plan.program_splits, *window_args, DEFERRED=True, **constants, **options,
        )
    combine_parts = splits + plan.deferred_programs
    combine_u = plan.combine_u
    rows = (q_heads // kv_heads) * lq
    col_programs, block_c, block_s = combine_tiles(batch * kv_heads * rows, combine_slots * combine_u, combine_parts, query.device)
    wrap_triton(_combine_splits_kernel)[(batch * kv_heads, rows, col_programs)](
        o_part, ml_part, o_window, ml_window, out, *out.stride(), splits, combine_parts,
        HKV=kv_heads, GQA=q_heads // kv_heads, LQ=lq, D=head_dim,
        UNITS=head_dim if plan.value_order else layout.units, UNIT_VALUES=combine_unit_values,
        SLOTS=combine_slots, BLOCK_M=block_m, BLOCK_U=combine_u, PART_COLS=plan.part_cols,
        BLOCK_S=block_s, HAS_WINDOW=window, BLOCK_C=block_c, GDC=gdc, **dependent_option(gdc),
    )
    return out
