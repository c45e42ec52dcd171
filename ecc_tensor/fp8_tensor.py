"""``FP8KVTensor``: a KV cache's E4M3 words and per-head scales (the ``fp8`` mode,
:mod:`ecc_tensor.fp8`) as one tensor, so that attention can read the words themselves
(``ecc::fp8_decode_attention``) where a dense tensor would have been dequantized first."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import return_and_correct_aliasing

from . import ops as _ops  # noqa: F401  (registers torch.ops.ecc)
from .cache_key import stable_hash_for_caching
from .fp8 import E4M3, from_e4m3
from .ops.dispatch import call_op
from .tensor import TorchAOBaseTensor, _sdpa_arguments, attended_lengths, copy_target, decode_call_fits

__all__ = ["FP8KVTensor", "fp8_attention_applies", "fp8_decode_attention", "fp8_dequantize"]

aten = torch.ops.aten


class FP8KVTensor(TorchAOBaseTensor):
    """``[batch, kv_heads, seq, head_dim]`` keys or values as E4M3 words times a scale per
    (sequence, head), read as ``dtype``.

    Tensor Data Attributes:
        words: float8_e4m3fn ``[batch, kv_heads, seq, head_dim]``.
        scale: float32 ``[batch, kv_heads, 1, 1]``.

    Optional Tensor Data Attributes:
        seq_len: int64 scalar, for a preallocated cache: only rows ``< seq_len`` along dim -2
            are written (and attended). Kept by whole-tensor views and copies, dropped by slices.

    Non-Tensor Attributes:
        shape: the logical shape (the words').
        dtype: the logical (dequantized) dtype.
    """

    tensor_data_names = ["words", "scale"]
    tensor_attribute_names = ["shape", "dtype"]
    optional_tensor_data_names = ["seq_len"]
    _stable_hash_for_caching = stable_hash_for_caching  # torch.compile's AOTAutograd cache key (cache_key.py)

    def __new__(cls, words, scale, shape, dtype, seq_len=None):
        return torch.Tensor._make_wrapper_subclass(cls, shape, dtype=dtype, device=words.device, requires_grad=False)

    def __init__(self, words, scale, shape, dtype, seq_len=None):
        super().__init__()
        if words.dtype != E4M3 or words.dim() != 4 or scale.shape != (*words.shape[:2], 1, 1):
            raise ValueError(f"FP8KVTensor takes float8_e4m3fn words [B, H, S, D] and float32 scales [B, H, 1, 1], got "
                             f"{words.dtype} {tuple(words.shape)} and {tuple(scale.shape)}")
        self.words = words
        self.scale = scale
        self.seq_len = seq_len

    def _quantization_type(self):
        return f"shape={tuple(self.shape)}, device={self.device}"

    def dequantize(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The values in ``dtype`` (default: the tensor's): words times their head's scale.
        (Compiled code that also writes the words calls :func:`fp8_dequantize`.)"""
        return fp8_dequantize(self, dtype)

    def _with(self, fn, keep_seq_len: bool) -> "FP8KVTensor":
        words, scale = fn(self.words), fn(self.scale)
        return FP8KVTensor(words, scale, words.shape, self.dtype, self.seq_len if keep_seq_len else None)


implements = FP8KVTensor.implements
implements_torch_function = FP8KVTensor.implements_torch_function


@implements([aten.detach.default, aten.alias.default])
def _(func, types, args, kwargs):
    return return_and_correct_aliasing(func, args, kwargs, args[0]._with(func, keep_seq_len=True))


@implements([aten.clone.default, aten.contiguous.default])
def _(func, types, args, kwargs):
    return args[0]._with(lambda t: t.clone(), keep_seq_len=True)


@implements(aten._to_copy.default)
def _(func, types, args, kwargs):
    """``.to(device)`` moves everything; ``.to(dtype)`` only changes the dequantized dtype."""
    self = args[0]
    device, dtype = copy_target(self, kwargs)
    seq_len = None if self.seq_len is None else self.seq_len.to(device)
    return FP8KVTensor(self.words.to(device), self.scale.to(device), self.shape, dtype, seq_len)


@implements(aten.slice.Tensor)
def _(func, types, args, kwargs):
    """A slice of the sequence or batch or head dim (the scales follow the batch and heads)."""
    self, dim, start, end, step = (list(args) + [0, None, None, 1][len(args) - 1 :])[:5]
    dim = dim % self.dim()
    if dim == 3:
        raise NotImplementedError("FP8KVTensor slices its leading dims, not head_dim")
    words = func(self.words, dim, start, end, step)
    scale = self.scale if dim == 2 else func(self.scale, dim, start, end, step)
    return return_and_correct_aliasing(func, args, kwargs, FP8KVTensor(words, scale, words.shape, self.dtype))


def fp8_dequantize(t: FP8KVTensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``t.dequantize(dtype)`` as a function: compiled code that writes the cache's words and
    reads them back in one graph calls this (under torch.compile 2.13 a method of a tensor
    subclass that is a graph input reads its inner tensors as they were when the graph began;
    a function reads them as written: tests/test_tensor.py)."""
    return from_e4m3(t.words, t.scale, dtype or t.dtype)


def _dense(t):
    return fp8_dequantize(t) if isinstance(t, FP8KVTensor) else t


@implements_torch_function([torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.bmm, torch.Tensor.bmm])
def _(func, types, args, kwargs):
    return func(*(_dense(a) for a in args), **(kwargs or {}))


def fp8_attention_applies(query, key, value, dropout_p=0.0, is_causal=False, enable_gqa=False) -> bool:
    """Whether ``ecc::fp8_decode_attention`` computes this SDPA call: a few dense query tokens
    over FP8 keys and values of one shape, no dropout, and no top-left causal mask."""
    if not (isinstance(key, FP8KVTensor) and isinstance(value, FP8KVTensor)) or isinstance(query, FP8KVTensor):
        return False
    return decode_call_fits(query, key, value, dropout_p, is_causal, enable_gqa)


def fp8_decode_attention(query: torch.Tensor, key: FP8KVTensor, value: FP8KVTensor, attn_mask: torch.Tensor | None = None,
                         scale: float | None = None, is_causal: bool = False) -> torch.Tensor:
    """``ecc::fp8_decode_attention`` of ``query`` ``[B, Hq, Lq, D]`` over FP8 ``key``/``value``
    (``Hq`` a multiple of their heads); the key's ``seq_len`` bounds the rows attended, and
    ``is_causal`` aligns the queries with the last of them (decoding)."""
    seq_lens = attended_lengths(key, query)
    scale = query.shape[-1] ** -0.5 if scale is None else scale
    return call_op(torch.ops.ecc.fp8_decode_attention, query, key.words, key.scale, value.words, value.scale, seq_lens, attn_mask,
                   is_causal, scale, None)


@implements_torch_function(F.scaled_dot_product_attention)
def _(func, types, args, kwargs):
    """Attention over FP8 keys/values: a few query tokens (decoding) read the words in
    ``ecc::fp8_decode_attention``; anything else dequantizes them and runs dense SDPA."""
    query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa = _sdpa_arguments(*args, **(kwargs or {}))
    if fp8_attention_applies(query, key, value, dropout_p, is_causal, enable_gqa):
        return fp8_decode_attention(query, key, value, attn_mask=attn_mask, scale=scale)
    return F.scaled_dot_product_attention(_dense(query), _dense(key), _dense(value), attn_mask=_dense(attn_mask), dropout_p=dropout_p,
                                          is_causal=is_causal, scale=scale, enable_gqa=enable_gqa)


torch.serialization.add_safe_globals([FP8KVTensor])
