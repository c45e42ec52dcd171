"""``ECCInt4Tensor``: INT4 values stored inside error-correcting codewords, as a tensor subclass."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import return_and_correct_aliasing

from . import ops as _ops  # noqa: F401  (registers torch.ops.ecc)
from .ops.dispatch import call_op
from .cache_key import stable_hash_for_caching
from .codecs import CodecTables
from .counters import new_counters
from .attention import dequantize_channel_cache, quantize_encode_channels, with_window
from .metadata import MetadataLayout, codec_tables
from .quant_scheme import DEFAULT_CHANNEL_BLOCK, QuantScheme
from .quiet_imports import quiet_torchao_imports
from .storage import StorageLayout


def _torchao_base_tensor():
    """torchao's base class, imported without its import-time messages (:mod:`ecc_tensor.quiet_imports`)."""
    with quiet_torchao_imports():
        from torchao.utils import TorchAOBaseTensor
    return TorchAOBaseTensor


TorchAOBaseTensor = _torchao_base_tensor()


__all__ = ["ECCInt4Tensor", "ecc_decode_attention", "fused_attention_applies"]

aten = torch.ops.aten


class ECCInt4Tensor(TorchAOBaseTensor):
    """INT4 quantized values (per row of the last dim, optionally grouped) kept in codewords,
    their scales too.

    The logical tensor is ``[*lead, D]`` in a float ``dtype``; a KV cache uses
    ``[batch, kv_heads, seq, head_dim]`` and dim -2 is the sequence axis along which
    :meth:`dequantize` interpolates erasures. Only the last dim is packed, so views, slices,
    transposes and in-place writes along any other dim act on the packed data directly.

    Tensor Data Attributes:
        stored: uint8 ``[*lead, row_bytes]``, the codewords of each row
            (:class:`ecc_tensor.storage.StorageLayout`: int4 two values a byte, Hamming one
            codeword a byte, Golay the lane layout of :mod:`ecc_tensor.lanes`).
        meta: uint8 ``[*lead, meta_bytes]``, each row's float32 scales (and zero points), in
            codewords of the metadata code (:class:`ecc_tensor.metadata.MetadataLayout`).
        encode_table: int32 ``[2^k]``, the codec's codeword of each data word (shared).
        syndrome_table: int32 ``[2^(n-k)]``, coset leader per syndrome or -1 (shared).
        meta_encode_table, meta_syndrome_table: the same tables of the metadata code
            (:func:`ecc_tensor.metadata.metadata_codec`; shared).

    Optional Tensor Data Attributes:
        counters: int64 ``[12]`` (:mod:`ecc_tensor.counters`) that every decode of this tensor
            adds to; None to not count.
        seq_len: int64 scalar, for a preallocated cache view ``[batch, heads, seq, D]``: only
            rows ``< seq_len`` along dim -2 are written (decoded, counted, used as
            interpolation neighbours and attended). Kept by whole-tensor views and copies,
            dropped by ops that reshape or index.
        window: ``[batch, heads, W, D]`` in a 16-bit float dtype, the full-precision window of
            a quantization scheme (:mod:`ecc_tensor.quant_scheme`): rows
            ``[quantized_rows(), seq_len)`` are read from it (token ``p`` at row ``p % W``),
            not from the codewords. The words as read: ``ECCCache`` stores its window coded
            (:mod:`ecc_tensor.window_layout`) and decodes it here at every read.

    Non-Tensor Attributes:
        codec: a codec name (``ecc_tensor.codecs.CODEC_NAMES``).
        shape: the logical shape.
        dtype: the logical (dequantized) dtype.
        groups: scales per row (``D // group_size``).
        symmetric: symmetric quantization (no zero points).

    Optional Non-Tensor Attributes:
        interpolate: whether reads replace detected values by their temporal neighbours
            (the default of :meth:`dequantize` and of attention over this tensor).
        channel_block: quantized per channel (keys, as KIVI does) over blocks of this many rows
            along dim -2: ``meta`` then holds one row of ``D`` channel scales per block
            (``groups`` is ``D``). None: per row.
        residual_length, window_block: the window's extent: rows from ``floor((seq_len -
            residual_length) / window_block) * window_block`` on are in ``window``
            (:meth:`quantized_rows`; ``window_block`` is the keys' channel block, 1 when
            they are quantized per token).
    """

    tensor_data_names = ["stored", "meta", "encode_table", "syndrome_table", "meta_encode_table", "meta_syndrome_table"]
    tensor_attribute_names = ["codec", "shape", "dtype", "groups", "symmetric"]
    optional_tensor_data_names = ["counters", "seq_len", "window"]
    optional_tensor_attribute_names = ["interpolate", "channel_block", "residual_length", "window_block"]
    _stable_hash_for_caching = stable_hash_for_caching  # torch.compile's AOTAutograd cache key (cache_key.py)

    def __new__(
        cls, stored, meta, encode_table, syndrome_table, meta_encode_table, meta_syndrome_table, codec, shape, dtype, groups=1,
        symmetric=True, counters=None, seq_len=None, window=None, interpolate=None, channel_block=None, residual_length=None,
        window_block=None,
    ):
        return torch.Tensor._make_wrapper_subclass(cls, shape, dtype=dtype, device=stored.device, requires_grad=False)

    def __init__(
        self, stored, meta, encode_table, syndrome_table, meta_encode_table, meta_syndrome_table, codec, shape, dtype, groups=1,
        symmetric=True, counters=None, seq_len=None, window=None, interpolate=None, channel_block=None, residual_length=None,
        window_block=None,
    ):
        super().__init__()
        self.stored = stored
        self.meta = meta
        self.encode_table = encode_table
        self.syndrome_table = syndrome_table
        self.meta_encode_table = meta_encode_table
        self.meta_syndrome_table = meta_syndrome_table
        self.codec = codec
        self.groups = int(groups)
        self.symmetric = bool(symmetric)
        self.counters = counters
        self.seq_len = seq_len
        self.window = window
        self.interpolate = bool(interpolate)
        self.channel_block = None if channel_block is None else int(channel_block)
        self.residual_length = None if residual_length is None else int(residual_length)
        self.window_block = None if window_block is None else int(window_block)

    def _quantization_type(self):
        scheme = ""
        if self.channel_block:
            scheme += f", channel_block={self.channel_block}"
        if self.window is not None:
            scheme += f", residual_length={self.residual_length}, window_rows={self.window.shape[-2]}"
        return (f"codec={self.codec}, shape={tuple(self.shape)}, groups={self.groups}, symmetric={self.symmetric}{scheme}, "
                f"device={self.device}")

    @property
    def has_scheme(self) -> bool:
        """Quantized per channel, or with a full-precision window (not the paper's per-row layout)."""
        return bool(self.channel_block) or self.window is not None

    def quantized_rows(self):
        """How many leading rows along dim -2 are codewords (int64 scalar tensor, or None: every
        row, or every written row with ``seq_len``)."""
        return _quantized_rows(self)

    def __repr__(self) -> str:
        return f"ECCInt4Tensor({self._quantization_type()}, dtype={self.dtype})"

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_hp(
        cls,
        x: torch.Tensor,
        codec: str = "hamming84",
        group_size: int | None = None,
        symmetric: bool = True,
        counters: torch.Tensor | None = None,
        axis: str = "token",
        channel_block: int = DEFAULT_CHANNEL_BLOCK,
        residual_length: int = 0,
        window_block: int | None = None,
        interpolate: bool | None = None,
    ) -> "ECCInt4Tensor":
        """Quantize ``x`` ``[..., D]`` to INT4 and encode: per row (``axis="token"``; groups of
        ``group_size`` along D), or, for keys ``[batch, heads, seq, D]``, per channel over blocks
        of ``channel_block`` rows (``axis="channel"``, as KIVI and KVQuant quantize keys). With
        ``residual_length`` R (or per channel), the last tokens stay in ``x``'s dtype in a window
        (:mod:`ecc_tensor.quant_scheme`): per token the last R; per channel also the tokens of
        a block not yet whole. ``window_block``: for values beside per-channel keys, their
        ``channel_block``, so that both leave the window together (default: 1 per token,
        ``channel_block`` per channel). ``interpolate``: the default of the tensor's reads; True
        also picks the tables an ``-interp`` mode reads with (per-token scales decoded to two
        flips, erased beyond: :func:`~ecc_tensor.metadata.codec_tables`)."""
        if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point or x.dim() == 0:
            raise ValueError("ECCInt4Tensor.from_float needs a floating-point tensor with at least one dimension")
        scheme = QuantScheme(key_quant=axis, residual_length=residual_length, channel_block=channel_block)
        tables = codec_tables(codec, x.device, interpolate=bool(interpolate) and axis == "token")  # as ECCCache's stores
        if scheme.plain and window_block is None:
            stored, meta = call_op(torch.ops.ecc.quantize_encode, x, *tables, codec, group_size, symmetric)
            groups = 1 if group_size is None else x.shape[-1] // group_size
            return cls(stored, meta, *tables, codec, x.shape, x.dtype, groups, symmetric, counters=counters, interpolate=interpolate)
        if x.dim() != 4 or x.dtype.itemsize != 2:
            raise ValueError(f"a per-channel or windowed ECCInt4Tensor takes [batch, heads, seq, head_dim] in a 16-bit float dtype "
                             f"(its window keeps them as they are), got {x.dtype} {tuple(x.shape)}")
        if axis == "channel" and group_size is not None:
            raise ValueError("group_size groups a row's channels: per-channel quantization has one scale per channel already")
        seq, head_dim = x.shape[-2:]
        block = window_block if window_block is not None else (channel_block if axis == "channel" else 1)
        boundary = _window_scheme(residual_length, block)
        rows = boundary.quantized_rows(0, seq)
        stored = torch.zeros(*x.shape[:-1], StorageLayout(codec, head_dim).row_bytes, dtype=torch.uint8, device=x.device)
        if axis == "channel":
            layout = MetadataLayout(codec, head_dim, symmetric)
            meta = torch.zeros(*x.shape[:2], scheme.blocks(seq), layout.row_bytes, dtype=torch.uint8, device=x.device)
            if rows:
                stored[:, :, :rows], meta[:, :, : rows // channel_block] = quantize_encode_channels(
                    x[:, :, :rows], channel_block, CodecTables(*tables[:2]), CodecTables(*tables[2:]), codec, symmetric)
            groups = head_dim
        else:
            groups = 1 if group_size is None else head_dim // group_size
            layout = MetadataLayout(codec, groups, symmetric)
            meta = torch.zeros(*x.shape[:-1], layout.row_bytes, dtype=torch.uint8, device=x.device)
            if rows:
                stored[:, :, :rows], meta[:, :, :rows] = call_op(torch.ops.ecc.quantize_encode, x[:, :, :rows], *tables, codec, group_size,
                                                                                      symmetric)
        window = None
        if boundary.window_rows(0):  # as ECCCache's
            window = x.new_zeros(*x.shape[:2], boundary.window_rows(0), head_dim)
            window.index_copy_(2, torch.arange(rows, seq, device=x.device) % window.shape[-2], x[:, :, rows:])
        return cls(stored, meta, *tables, codec, x.shape, x.dtype, groups, symmetric, counters=counters,
                   seq_len=torch.full((), seq, dtype=torch.int64, device=x.device), window=window,
                   channel_block=channel_block if axis == "channel" else None,
                   residual_length=residual_length, window_block=block, interpolate=interpolate)

    from_float = from_hp

    @property
    def tables(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The values' code's encode and syndrome tables, then the metadata code's, as the
        ``ecc`` ops take them."""
        return self.encode_table, self.syndrome_table, self.meta_encode_table, self.meta_syndrome_table

    @property
    def metadata_layout(self) -> MetadataLayout:
        return MetadataLayout(self.codec, self.groups, self.symmetric)

    # -- reading --------------------------------------------------------------------------
    def dequantize(
        self, interpolate: bool | None = None, dtype: torch.dtype | None = None, counters: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Decode (correcting what the code can), dequantize and, with ``interpolate``
        (default: this tensor's ``interpolate``), replace detected values by their neighbours
        along dim -2. Decode counts go to ``counters`` if given, else to this tensor's own
        counters if it has them."""
        return ecc_dequantize(self, interpolate, dtype, counters)

    def decode(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(INT4 values uint8 [..., D], status uint8 [..., codewords per row])``."""
        return call_op(torch.ops.ecc.decode, self.stored, self.encode_table, self.syndrome_table, self.codec, self.shape[-1])

    def scales(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The decoded (corrected) ``(scale, zero or None)``, float32 ``[..., groups]``."""
        layout = self.metadata_layout
        words, _, _ = layout.load(self.meta, CodecTables(self.meta_encode_table, self.meta_syndrome_table))
        return layout.split(words)

    # -- helpers for the op implementations ----------------------------------------------
    def _with_rows(self, fn, shape=None, dtype=None, keep_seq_len=False) -> "ECCInt4Tensor":
        """A new tensor whose row data (stored, meta, window) is ``fn`` of this one's; the tables
        and counters are shared; ``seq_len`` only where the rows keep their places (whole-tensor
        views and copies, the only ops a per-channel or windowed tensor takes)."""
        if self.has_scheme and not keep_seq_len:
            raise NotImplementedError(f"{self!r}: its rows are not one codeword row each (per-channel scales, or a window); "
                                      f"call .dequantize() first")
        return ECCInt4Tensor(
            fn(self.stored), fn(self.meta), *self.tables, self.codec,
            self.shape if shape is None else torch.Size(shape), dtype or self.dtype, self.groups, self.symmetric,
            counters=self.counters, seq_len=self.seq_len if keep_seq_len else None,
            window=None if self.window is None else fn(self.window), interpolate=self.interpolate, **self._scheme_attributes(),
        )

    def _scheme_attributes(self) -> dict:
        return dict(channel_block=self.channel_block, residual_length=self.residual_length, window_block=self.window_block)

    def _row_dim(self, dim: int, ndim: int | None = None) -> int:
        ndim = self.dim() if ndim is None else ndim
        d = dim % ndim if -ndim <= dim < ndim else None
        if d is None:
            raise IndexError(f"dim {dim} out of range for a {ndim}-d tensor")
        if d == ndim - 1:
            raise NotImplementedError(
                f"ECCInt4Tensor packs its last dim ({self.shape[-1]} values per row); ops along it "
                f"are not supported: call .dequantize() first"
            )
        return d

    def _as_ecc(self, src: torch.Tensor) -> "ECCInt4Tensor":
        """``src`` in this tensor's codec and grouping (quantizing a dense source)."""
        if self.has_scheme or (isinstance(src, ECCInt4Tensor) and src.has_scheme):
            raise NotImplementedError("copying into or from a per-channel or windowed ECCInt4Tensor: build it with from_float instead")
        if isinstance(src, ECCInt4Tensor):
            if (src.codec, src.groups, src.symmetric) != (self.codec, self.groups, self.symmetric):
                raise ValueError(f"cannot copy an ECCInt4Tensor({src.codec}) into an ECCInt4Tensor({self.codec}) of another layout")
            return src
        return ECCInt4Tensor.from_hp(src.to(self.dtype), self.codec, self.shape[-1] // self.groups, self.symmetric)


# Internal code reads an ECCInt4Tensor's parts through these functions, not through its
# methods: under torch.compile (2.13), a method called on a subclass that is a graph input reads
# its inner tensors as they were when the graph began, missing the in-place writes the graph
# made through other references to them (an ECCCache's buffers, written and read in one step).
def _written_rows(t: "ECCInt4Tensor") -> torch.Tensor:
    # A fill, not a copy from host memory (which a CUDA graph capture refuses).
    return t.seq_len if t.seq_len is not None else torch.full((), t.shape[-2], dtype=torch.int64, device=t.device)


def _quantized_rows(t: "ECCInt4Tensor") -> torch.Tensor | None:
    if t.window is None:
        return t.seq_len
    return _window_scheme(t.residual_length, t.window_block).quantized_rows(0, _written_rows(t))


def ecc_dequantize(t: "ECCInt4Tensor", interpolate: bool | None = None, dtype: torch.dtype | None = None,
                   counters: torch.Tensor | None = None) -> torch.Tensor:
    """:meth:`ECCInt4Tensor.dequantize` as a function, the form to call under ``torch.compile``
    (see above)."""
    counters = counters if counters is not None else t.counters
    if counters is None:
        counters = new_counters(t.device)
    interpolate = t.interpolate if interpolate is None else interpolate
    rows = _quantized_rows(t)
    if t.channel_block:
        values, status = call_op(torch.ops.ecc.decode, t.stored, t.encode_table, t.syndrome_table, t.codec, t.shape[-1])
        meta_tables = CodecTables(t.meta_encode_table, t.meta_syndrome_table)
        out = dequantize_channel_cache(values, status, t.meta, meta_tables, t.codec, t.symmetric, interpolate, counters,
                                       dtype or t.dtype, rows=rows, block=t.channel_block)
    else:
        out = call_op(torch.ops.ecc.decode_dequantize,
            t.stored, t.meta, *t.tables, t.codec, t.shape[-1], t.groups, t.symmetric, interpolate, counters,
            dtype or t.dtype, rows,
        )
    if t.window is not None:
        out = with_window(out, t.window, rows, _written_rows(t))
    return out


def _window_scheme(residual_length: int, window_block: int) -> QuantScheme:
    """The scheme whose window boundary a tensor with ``residual_length`` and ``window_block``
    has (the keys' channel block, or 1 per token): keys and values share it."""
    if window_block > 1:
        return QuantScheme(key_quant="channel", residual_length=residual_length, channel_block=window_block)
    return QuantScheme(residual_length=residual_length)


implements = ECCInt4Tensor.implements
implements_torch_function = ECCInt4Tensor.implements_torch_function


@implements([aten.detach.default, aten.alias.default])
def _(func, types, args, kwargs):
    """Views of the whole tensor: the same view of each row tensor."""
    return return_and_correct_aliasing(func, args, kwargs, args[0]._with_rows(func, keep_seq_len=True))


@implements([aten.clone.default, aten.contiguous.default])
def _(func, types, args, kwargs):
    """Copies of the row data; tables stay shared (they are constants)."""
    return args[0]._with_rows(lambda t: t.clone(), keep_seq_len=True)


def copy_target(t: torch.Tensor, kwargs: dict) -> tuple[torch.device, torch.dtype]:
    """The device and logical dtype ``aten._to_copy`` asks of a quantized tensor subclass
    (each its own where not given); its data moves, its dtype is only what it dequantizes to,
    which must be floating."""
    device = kwargs.get("device") or t.device
    dtype = kwargs.get("dtype") or t.dtype
    if not dtype.is_floating_point:
        raise ValueError(f"{type(t).__name__} dequantizes to floating dtypes only, not {dtype}")
    return device, dtype


@implements(aten._to_copy.default)
def _(func, types, args, kwargs):
    """``.to(device)`` moves everything; ``.to(dtype)`` only changes the dequantized dtype."""
    self = args[0]
    device, dtype = copy_target(self, kwargs)
    moved = lambda t: None if t is None else t.to(device)  # noqa: E731
    return ECCInt4Tensor(
        moved(self.stored), moved(self.meta), *(moved(t) for t in self.tables), self.codec, self.shape, dtype, self.groups,
        self.symmetric, counters=moved(self.counters),
        seq_len=moved(self.seq_len), window=moved(self.window), interpolate=self.interpolate, **self._scheme_attributes(),
    )


@implements([aten.view.default, aten._unsafe_view.default, aten.reshape.default])
def _(func, types, args, kwargs):
    """Reshape the leading dims; the last (packed) dim must stay ``D``."""
    self, shape = args[0], list(args[1])
    if -1 in shape:
        known = 1
        for s in shape:
            known *= s if s != -1 else 1
        shape[shape.index(-1)] = self.numel() // known
    if shape[-1] != self.shape[-1]:
        raise NotImplementedError(f"ECCInt4Tensor can only be reshaped with its last dim ({self.shape[-1]}) kept")
    out = self._with_rows(lambda t: func(t, [*shape[:-1], t.shape[-1]]), shape)
    return return_and_correct_aliasing(func, args, kwargs, out)


@implements(aten.transpose.int)
def _(func, types, args, kwargs):
    """Swap two leading dims."""
    self, d0, d1 = args
    d0, d1 = self._row_dim(d0), self._row_dim(d1)
    shape = list(self.shape)
    shape[d0], shape[d1] = shape[d1], shape[d0]
    return return_and_correct_aliasing(func, args, kwargs, self._with_rows(lambda t: func(t, d0, d1), shape))


@implements(aten.permute.default)
def _(func, types, args, kwargs):
    """Permute the leading dims; the packed dim stays last."""
    self, dims = args
    dims = [d % self.dim() for d in dims]
    if dims[-1] != self.dim() - 1:
        raise NotImplementedError("ECCInt4Tensor.permute must keep the last (packed) dim last")
    shape = [self.shape[d] for d in dims]
    return return_and_correct_aliasing(func, args, kwargs, self._with_rows(lambda t: func(t, dims), shape))


@implements(aten.slice.Tensor)
def _(func, types, args, kwargs):
    """Slice a leading dim (e.g. the sequence): the same slice of the row data."""
    self, dim, start, end, step = (list(args) + [0, None, None, 1][len(args) - 1 :])[:5]
    dim = self._row_dim(dim)
    sliced = self._with_rows(lambda t: func(t, dim, start, end, step))
    sliced = ECCInt4Tensor(
        sliced.stored, sliced.meta, *self.tables, self.codec,
        (*sliced.stored.shape[:-1], self.shape[-1]), self.dtype, self.groups, self.symmetric, counters=self.counters,
        interpolate=self.interpolate,
    )
    return return_and_correct_aliasing(func, args, kwargs, sliced)


@implements(aten.select.int)
def _(func, types, args, kwargs):
    """Select one index of a leading dim."""
    self, dim, index = args
    dim = self._row_dim(dim)
    shape = [s for i, s in enumerate(self.shape) if i != dim]
    return return_and_correct_aliasing(func, args, kwargs, self._with_rows(lambda t: func(t, dim, index), shape))


@implements(aten.unsqueeze.default)
def _(func, types, args, kwargs):
    self, dim = args
    dim = self._row_dim(dim, self.dim() + 1)
    shape = list(self.shape)
    shape.insert(dim, 1)
    return return_and_correct_aliasing(func, args, kwargs, self._with_rows(lambda t: func(t, dim), shape))


@implements(aten.copy_.default)
def _(func, types, args, kwargs):
    """In-place write: a dense float source is quantized and encoded first."""
    self, src = args[0], args[1]
    if src.shape != self.shape:
        src = src.expand(self.shape) if not isinstance(src, ECCInt4Tensor) else src
    src = self._as_ecc(src)
    self.stored.copy_(src.stored)
    self.meta.copy_(src.meta)
    return self


@implements(aten.index_copy_.default)
def _(func, types, args, kwargs):
    """Write rows at ``index`` along a leading dim (a cache writing new tokens)."""
    self, dim, index, source = args
    dim = self._row_dim(dim)
    src = self._as_ecc(source)
    self.stored.index_copy_(dim, index, src.stored)
    self.meta.index_copy_(dim, index, src.meta)
    return self


@implements([aten.cat.default, aten.stack.default])
def _(func, types, args, kwargs):
    """Concatenate or stack along a leading dim (the row data, no decoding)."""
    tensors, dim = args[0], (args[1] if len(args) > 1 else 0)
    first = tensors[0]
    tensors = [first._as_ecc(t) for t in tensors]
    is_stack = func is aten.stack.default
    dim = first._row_dim(dim, first.dim() + is_stack)
    stored = func([t.stored for t in tensors], dim)
    meta = func([t.meta for t in tensors], dim)
    shape = (*stored.shape[:-1], first.shape[-1])
    return ECCInt4Tensor(
        stored, meta, *first.tables, first.codec, shape, first.dtype, first.groups,
        first.symmetric, counters=first.counters, interpolate=first.interpolate,
    )


def _dense(t):
    return ecc_dequantize(t) if isinstance(t, ECCInt4Tensor) else t


@implements_torch_function([torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.bmm, torch.Tensor.bmm])
def _(func, types, args, kwargs):
    """Dequantize (decode + correct) the ECC operands, then the dense product."""
    return func(*(_dense(a) for a in args), **(kwargs or {}))


@implements_torch_function(torch.Tensor.__rmatmul__)
def _(func, types, args, kwargs):
    return torch.matmul(_dense(args[1]), _dense(args[0]))


@implements_torch_function(F.linear)
def _(func, types, args, kwargs):
    """``F.linear(x, w, b)`` with an ECC weight (or input): dequantize, then the dense op."""
    return F.linear(*(_dense(a) for a in args), **(kwargs or {}))


MAX_FUSED_QUERIES = 16  # decode and speculative verification; longer queries (prefill) dequantize first


def _sdpa_arguments(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    return query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa


def fused_attention_applies(query, key, value, dropout_p=0.0, is_causal=False, enable_gqa=False) -> bool:
    """Whether ``ecc::decode_attention`` computes this SDPA call: a few dense query tokens over
    ECC keys/values of one layout, no dropout, and SDPA's top-left causal mask only where
    it is no mask at all."""
    if isinstance(query, ECCInt4Tensor) or not (isinstance(key, ECCInt4Tensor) and isinstance(value, ECCInt4Tensor)):
        return False
    if not decode_call_fits(query, key, value, dropout_p, is_causal, enable_gqa):
        return False
    return (
        (key.codec, key.symmetric, key.interpolate, key.residual_length, key.window_block)
        == (value.codec, value.symmetric, value.interpolate, value.residual_length, value.window_block)
        and (key.groups == value.groups or key.channel_block) and not value.channel_block
        and (key.window is None) == (value.window is None)
    )


def decode_call_fits(query, key, value, dropout_p=0.0, is_causal=False, enable_gqa=False) -> bool:
    """What a fused decode attention needs of an SDPA call, whatever the keys' format: 4-D
    ``[B, H, L, D]`` operands of one batch and head_dim, K and V of one shape, query heads a
    multiple of the KV heads (with ``enable_gqa``), at most ``MAX_FUSED_QUERIES`` floating
    query tokens, no dropout and no top-left causal mask."""
    if query.dim() != 4 or key.dim() != 4 or value.shape != key.shape or query.shape[-1] != key.shape[-1]:
        return False
    heads_ok = query.shape[1] == key.shape[1] or (enable_gqa and query.shape[1] % key.shape[1] == 0)
    return (heads_ok and query.shape[0] == key.shape[0] and query.shape[2] <= MAX_FUSED_QUERIES and dropout_p == 0.0
            and not is_causal and query.dtype.is_floating_point)


def attended_lengths(key: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """Each sequence's rows a fused decode attends, int64 ``[B]``: the key's ``seq_len`` (one
    written length for the batch), else every stored row."""
    batch, seq = key.shape[0], key.shape[-2]
    if key.seq_len is not None:
        return key.seq_len.to(torch.int64).reshape(-1).expand(batch)
    return torch.full((batch,), seq, dtype=torch.int64, device=query.device)


def ecc_decode_attention(
    query: torch.Tensor,
    key: "ECCInt4Tensor",
    value: "ECCInt4Tensor",
    attn_mask: torch.Tensor | None = None,
    scale: float | None = None,
    is_causal: bool = False,
    counters: torch.Tensor | None = None,
) -> torch.Tensor:
    """``ecc::decode_attention`` of ``query`` ``[B, Hq, Lq, D]`` over ECC ``key``/``value``
    ``[B, Hkv, S, D]`` (``Hq`` a multiple of ``Hkv``). ``is_causal`` aligns the queries with
    the last written positions (decoding); the key's ``seq_len`` bounds the written rows, its
    ``interpolate`` says whether detected values are interpolated, and the decode counts of
    K and V go to ``counters`` (default: the key's, else the value's, else nowhere)."""
    batch = key.shape[0]
    seq_lens = attended_lengths(key, query)
    for c in (counters, key.counters, value.counters):
        if c is not None:
            counters = c
            break
    else:
        counters = new_counters(query.device)
    scale = query.shape[-1] ** -0.5 if scale is None else scale
    scheme = {}
    if key.has_scheme:
        rows = _quantized_rows(key)
        scheme = dict(key_channel_block=key.channel_block or 0)
        if key.window is not None:
            scheme.update(quantized_lens=rows.to(torch.int64).reshape(-1).expand(batch), k_window=key.window, v_window=value.window)
    return call_op(torch.ops.ecc.decode_attention,
        query, key.stored, key.meta, value.stored, value.meta, *key.tables, key.codec,
        key.shape[-1], value.groups, key.symmetric, key.interpolate, seq_lens, counters, attn_mask, is_causal, scale, **scheme,
    )


@implements_torch_function(F.scaled_dot_product_attention)
def _(func, types, args, kwargs):
    """Attention over ECC keys/values. A few query tokens (decoding) run the fused
    ``ecc::decode_attention`` kernel on the codewords; anything else decodes, corrects and
    dequantizes K/V (with the tensors' own interpolation) and runs dense SDPA."""
    query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa = _sdpa_arguments(*args, **(kwargs or {}))
    if fused_attention_applies(query, key, value, dropout_p, is_causal, enable_gqa):
        return ecc_decode_attention(query, key, value, attn_mask=attn_mask, scale=scale)
    return F.scaled_dot_product_attention(
        _dense(query), _dense(key), _dense(value), attn_mask=_dense(attn_mask), dropout_p=dropout_p,
        is_causal=is_causal, scale=scale, enable_gqa=enable_gqa,
    )


torch.serialization.add_safe_globals([ECCInt4Tensor])
