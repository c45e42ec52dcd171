"""An ECC-protected static KV cache for any transformers causal LM.

    from ecc_tensor.integrations.hf import ECCCache
    cache = ECCCache(model.config, max_batch_size=1, max_cache_len=512, mode="int4-hamming84-interp",
                     fault=FaultModel("bsc", 1e-3, seed=0))
    out = model.generate(**inputs, cache=cache, max_new_tokens=50)   # past_key_values= before transformers 5.23
    cache.stats()   # {'read': ..., 'corrected': ..., 'parity_only': ..., 'detected': ..., 'injected': ..., 'silent': ...,
                    #  'metadata': {the same for the scales}, 'layers': [...]}

The cache is a transformers ``Cache`` whose layers (:class:`ECCLayer`) follow ``StaticLayer``:
preallocated ``[batch, kv_heads, max_cache_len, ...]`` storage, ``update`` writes the new
tokens in place (quantize + encode only those) and returns what attention needs: the whole
cache decoded, corrected, dequantized (and interpolated) from the stored codewords, so every
attention read, prefill included, goes through the codes and any corruption reaches the model.

Faults (a :class:`~ecc_tensor.faults.FaultModel`) strike the stored bytes: the codewords and,
with ``targets="all"`` (the default), the stored scales and zero points, which every mode with
a code protects with that code (:mod:`ecc_tensor.metadata`). Each stored byte has the address
``(layer, K/V, position, batch, head, byte)`` laid out position-major (the metadata bytes in a
range of their own), so the flips a token receives do not depend on how the sequence was
chunked into writes. Write-site
faults are drawn once per sequence (event ``sequence << 20``), read-site faults anew on every
read (event ``(sequence << 20) + read``). Fault injection is a simulation feature of eager
mode; ``torch.compile`` is supported for fault-free decoding.

Fused attention: with the model's attention implementation set to ``"ecc"`` (registered by
this module), the cache returns :class:`ECCInt4Tensor` views of its codewords instead of
decoded tensors, and decoding steps run ``ecc::decode_attention``, which decodes, corrects,
dequantizes and interpolates K/V in registers inside the attention kernel. Prefill (more than
``MAX_FUSED_QUERIES`` query tokens) decodes one layer's K/V and runs SDPA.

    model.set_attn_implementation("ecc")
    cache = ECCCache(model.config, max_batch_size=8, max_cache_len=32768, device="cuda", dtype=torch.bfloat16)
"""

from __future__ import annotations

import functools
import inspect
import warnings

import torch
from transformers.cache_utils import Cache, StaticLayer
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
from transformers.modeling_utils import AttentionInterface

try:
    from transformers.utils import is_torchdynamo_compiling
except ImportError:  # pragma: no cover
    from torch.compiler import is_compiling as is_torchdynamo_compiling

import ecc_tensor.ops as ops
from ecc_tensor import counters as C
from ecc_tensor.codecs import CodecTables, int_to_bits
from ecc_tensor.attention import dequantize_channel_cache
from ecc_tensor.faults import FLOAT16_MSB, METADATA_ADDRESS, WINDOW_ADDRESS, FaultModel
from ecc_tensor.fp8 import head_scale
from ecc_tensor.metadata import MetadataLayout, codec_tables, value_groups
from ecc_tensor.modes import CacheMode, get_mode
from ecc_tensor.quant import quantize_int4_channels
from ecc_tensor.quant_scheme import DEFAULT_CHANNEL_BLOCK, QuantScheme
from ecc_tensor.storage import StorageLayout
from ecc_tensor.tensor import MAX_FUSED_QUERIES, ECCInt4Tensor, ecc_decode_attention

__all__ = ["ATTENTION_NAME", "DenseLayer", "ECCCache", "ECCLayer", "cache_argument", "ecc_attention_forward"]

ATTENTION_NAME = "ecc"  # model.set_attn_implementation("ecc"), or from_pretrained(..., attn_implementation="ecc")

_ADDRESS_BITS_PER_STORE = 40  # each (layer, K/V) store gets 2^40 byte addresses
_REGION_ADDRESS = {"values": 0, "metadata": METADATA_ADDRESS, "window": WINDOW_ADDRESS}
# A layer's counters of its full-precision window's 16-bit words, apart from the codewords'.
WINDOW_COUNTERS = ("read", "injected", "silent")
_WINDOW_READ, _WINDOW_INJECTED, _WINDOW_SILENT = range(len(WINDOW_COUNTERS))
_READ_EVENTS_PER_SEQUENCE = 1 << 20


@functools.cache
def _forward_takes_cache(model_class: type) -> bool:
    return "cache" in inspect.signature(model_class.forward).parameters


def cache_argument(model, cache) -> dict:
    """The keyword a model's ``forward`` and ``generate`` take a cache by: ``{"cache": cache}``
    from transformers 5.23 on (where ``past_key_values=`` is deprecated), else
    ``{"past_key_values": cache}`` (5.17-5.22)."""
    return {"cache" if _forward_takes_cache(type(model)) else "past_key_values": cache}


class _DenseStore:
    """The buffer of one of a layer's K or V tensors as 16-bit words (the ``fp16`` modes) or
    E4M3 words with a per-head scale (``fp8``, :mod:`ecc_tensor.fp8`; the scale is set by the
    sequence's first write)."""

    meta = meta_shadow = None

    def __init__(self, mode: CacheMode, shape, dtype, device, track_silent: bool):
        self.mode = mode
        self.dense = torch.zeros(shape, dtype=mode.word_dtype(dtype), device=device)
        self.bits = mode.word_bits
        self.msb = torch.tensor(mode.word_msb, device=device)
        batch, heads = shape[:2]
        self.scale = torch.ones(batch, heads, 1, 1, device=device) if mode.fp8 else None
        self.buffers = [self.dense] + ([self.scale] if mode.fp8 else [])
        # A clean copy of what was written, for counting silent corruptions in simulation.
        self.shadow = torch.zeros_like(self.dense) if track_silent else None

    @property
    def words(self) -> torch.Tensor:
        """The stored words faults strike: the 16-bit (or 8-bit) values as integers."""
        return self.dense.view(self.mode.word_int_dtype)

    def encode(self, states: torch.Tensor, first: int) -> torch.Tensor:
        """``states`` as stored words; an ``fp8`` sequence's first write sets its scales."""
        if self.mode.fp8 and first == 0:
            self.scale.copy_(head_scale(states))
        return self.mode.to_words(states, self.scale)

    def decode(self, words: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return self.mode.from_words(words.view(self.dense.dtype), self.scale, dtype)


class _CodedStore:
    """The buffers of one of a layer's K or V tensors as codewords and protected scales, and,
    under a :class:`QuantScheme` with one, its full-precision window: ``window`` ``[batch,
    heads, window_rows, head_dim]`` 16-bit words, token ``p`` at row ``p % window_rows``.
    Keys quantized per channel keep one metadata row per block of ``channel_block`` tokens
    (``head_dim`` scales) instead of one per token."""

    def __init__(self, mode: CacheMode, shape, device, group_size, symmetric, track_silent: bool,
                 scheme: QuantScheme, kv: int, dtype: torch.dtype):
        batch, heads, length, head_dim = shape
        self.layout = StorageLayout(mode.codec, head_dim)
        self.channel_block = scheme.channel_block if scheme.axis(kv) == "channel" else None
        if self.channel_block:
            self.meta_layout = MetadataLayout(mode.codec, head_dim, symmetric)
            meta_rows = scheme.blocks(length)
        else:
            groups = 1 if group_size is None else head_dim // group_size
            self.meta_layout = MetadataLayout(mode.codec, groups, symmetric)
            meta_rows = length
        # The values' code's tables, then the metadata code's, as the ecc ops take them.
        self.tables = codec_tables(mode.codec, device)
        self.meta_tables = CodecTables(*self.tables[2:])
        self.stored = torch.zeros(batch, heads, length, self.layout.row_bytes, dtype=torch.uint8, device=device)
        self.meta = torch.zeros(batch, heads, meta_rows, self.meta_layout.row_bytes, dtype=torch.uint8, device=device)
        self.bits = self.layout.exposed_bits_per_byte
        self.msb = self.layout.value_msb_bits(device)
        self.meta_msb = self.meta_layout.storage.value_msb_bits(device)
        self.buffers = [self.stored, self.meta]
        # Clean copies of what was written, for counting silent corruptions in simulation.
        self.shadow = torch.zeros_like(self.stored) if track_silent else None
        self.meta_shadow = torch.zeros_like(self.meta) if track_silent else None
        rows = scheme.window_rows(kv)
        self.window = self.window_shadow = None
        if rows:
            # As the 16-bit modes store words: the model's dtype if 16 bits wide, else float16.
            self.window = torch.zeros(batch, heads, rows, head_dim, dtype=dtype if dtype.itemsize == 2 else torch.float16,
                                      device=device)
            self.window_msb = torch.tensor(FLOAT16_MSB, device=device)
            self.buffers.append(self.window)
            self.window_shadow = torch.zeros_like(self.window) if track_silent else None

    def meta_rows(self, rows: int) -> int:
        """Metadata rows that hold the scales of the first ``rows`` codeword rows."""
        return rows // self.channel_block if self.channel_block else rows

    def window_slots(self, first: int, last: int) -> torch.Tensor:
        """Rows of ``window`` holding tokens ``[first, last)``."""
        return torch.arange(first, last, device=self.window.device) % self.window.shape[-2]

    @property
    def words(self) -> torch.Tensor:
        """The stored words faults strike: the codeword bytes."""
        return self.stored


class _StoredLayer(StaticLayer):
    """What a layer's storage shares whatever it stores: sizes, the cache protocol (update,
    reset, masks), fault addresses and injection, counters. :class:`ECCLayer` stores codewords,
    :class:`DenseLayer` 16-bit words (as transformers splits its quantized layer from the
    static one). ``counters`` is this layer's int64 counter tensor (:mod:`ecc_tensor.counters`)."""

    is_compileable = True

    def __init__(
        self,
        max_cache_len: int,
        mode: CacheMode,
        layer_idx: int,
        fault: FaultModel | None = None,
        group_size: int | None = None,
        symmetric: bool = True,
        track_silent: bool = False,
        is_sliding: bool = False,
        fused_attention: bool = False,
        max_batch_size: int | None = None,
        tp_rank: int = 0,
        tp_size: int = 1,
        model_kv_heads: int | None = None,
        rows_as_sequences: bool = False,
        scheme: QuantScheme | None = None,
    ):
        super().__init__(max_cache_len=max_cache_len)
        self.scheme = QuantScheme() if scheme is None else scheme
        self.rows_as_sequences = rows_as_sequences
        # Under tensor parallelism this layer holds heads [tp_rank * h, (tp_rank + 1) * h) of the
        # model's tp_size * h; faults are drawn at the unsplit cache's addresses.
        self.tp_rank, self.tp_size = tp_rank, tp_size
        self.model_kv_heads = model_kv_heads
        self.max_batch_size = max_batch_size
        self.fused_attention = fused_attention
        self.mode = mode
        self.layer_idx = layer_idx
        # The fp16 oracle is never faulted.
        self.fault = fault if fault is not None and fault.ber > 0 and mode.faulted else None
        self.group_size = group_size
        self.symmetric = symmetric
        self.track_silent = track_silent
        self.is_sliding = is_sliding
        self.counters = C.new_counters()
        self.window_counters = torch.zeros(len(WINDOW_COUNTERS), dtype=torch.int64)
        self.sequence = 0  # advances on reset(): fresh fault draws per sequence
        self._reads = 0
        self._written = 0  # Python mirror of cumulative_length, for eager-mode checks and fault addresses
        self._mirror_stale = False

    faults_metadata = False  # whether faults strike stored scales (ECCLayer)

    # -- allocation -----------------------------------------------------------------------
    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.dtype, self.device = key_states.dtype, key_states.device
        self.batch_size, self.num_heads = key_states.shape[:2]
        whole = self.model_kv_heads
        if whole and self.num_heads * self.tp_size < whole and whole % (self.num_heads * self.tp_size) == 0:
            raise ValueError(
                f"layer {self.layer_idx} was given {self.num_heads} of the model's {whole} KV heads: under tensor parallelism "
                f"create the cache with tp_size=model.tp_size (faults are drawn at the unsplit cache's addresses)"
            )
        if self.max_batch_size is not None and self.batch_size > self.max_batch_size:
            raise ValueError(f"ECCCache was created for max_batch_size={self.max_batch_size} and given a batch of {self.batch_size}")
        self.k_head_dim, self.v_head_dim = key_states.shape[-1], value_states.shape[-1]
        if self.group_size is not None and (self.k_head_dim % self.group_size or self.v_head_dim % self.group_size):
            raise ValueError(f"group_size {self.group_size} does not divide head_dim {self.k_head_dim}")
        self._k, self._v = self._new_store(self.k_head_dim, 0), self._new_store(self.v_head_dim, 1)
        self.cumulative_length = self.cumulative_length.to(self.device)
        self.counters = self.counters.to(self.device)
        self.window_counters = self.window_counters.to(self.device)
        self.keys, self.values = self._public_view(self._k), self._public_view(self._v)
        if not is_torchdynamo_compiling():
            for t in (*self._k.buffers, *self._v.buffers, self.cumulative_length, self.counters):
                torch._dynamo.mark_static_address(t)
        self.is_initialized = True

    # -- the cache protocol ---------------------------------------------------------------
    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        new_tokens = key_states.shape[-2]
        compiling = is_torchdynamo_compiling()
        if not compiling and key_states.shape[0] != self.batch_size:
            raise ValueError(
                f"ECCCache holds batches of {self.batch_size} sequences (its storage is allocated for them) and was given "
                f"{key_states.shape[0]}; create a cache for this batch size"
            )
        if compiling:
            if self.fault is not None or self.track_silent:
                raise RuntimeError("ECCCache: fault injection and silent-corruption tracking run in eager mode only")
            self._mirror_stale = True
        else:
            if self._mirror_stale:
                self._written, self._mirror_stale = int(self.cumulative_length), False
            if self._written + new_tokens > self.max_cache_len:
                raise ValueError(
                    f"ECCCache holds at most max_cache_len={self.max_cache_len} tokens; layer {self.layer_idx} has "
                    f"{self._written} and was given {new_tokens} more (create the cache with a larger max_cache_len)"
                )
        position = torch.arange(new_tokens, device=self.device) + self.cumulative_length
        self.cumulative_length.add_(new_tokens)
        first = self._written
        self._write(self._k, 0, key_states, position, first)
        self._write(self._v, 1, value_states, position, first)
        if not compiling:
            self._written += new_tokens
        return self._read(self._k, 0), self._read(self._v, 1)

    def get_mask_sizes(self, query_length) -> tuple[int, int]:
        # transformers asks before any layer runs; an empty query here means generate() sliced a
        # new prompt to nothing because the cache still holds an earlier one.
        queries = query_length.numel() if isinstance(query_length, torch.Tensor) else query_length
        if queries == 0 and self._written and not is_torchdynamo_compiling():
            raise ValueError(
                f"this ECCCache already holds {self._written} tokens of an earlier sequence, and generate() treats "
                "a prompt no longer than that as nothing new: call cache.reset() before a new prompt (to continue "
                "a sequence, pass the whole sequence so far)"
            )
        return self.max_cache_len, 0

    def reset(self, first_sequence: int | None = None) -> None:
        """Forget the sequence: zero every stored byte (nothing leaks into the next sequence)
        and draw fresh faults for the next one (sequence ``first_sequence`` if given, else the
        next number). Counters keep accumulating (see reset_stats)."""
        if self.is_initialized:
            for store in (self._k, self._v):
                for t in (*store.buffers, store.shadow, store.meta_shadow, getattr(store, "window_shadow", None)):
                    if t is not None:
                        t.zero_()
        self.cumulative_length.zero_()
        self._written, self._mirror_stale, self._reads = 0, False, 0
        if first_sequence is None:  # the next number past every row's sequence
            first_sequence = self.sequence + (self.batch_size if self.rows_as_sequences and self.is_initialized else 1)
        self.sequence = first_sequence

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        raise NotImplementedError("ECCCache does not support beam search")

    # -- writes and reads -----------------------------------------------------------------
    def _fault_address(self, kv: int, first_position: int, width: int, region: str) -> int:
        """Position-major word addresses: a token's flips do not depend on how the sequence was
        written; a store's metadata bytes start at ``METADATA_ADDRESS``, its window's words at
        ``WINDOW_ADDRESS`` (per-channel key scales are addressed by block, as a position)."""
        rows = 1 if self.rows_as_sequences else self.batch_size
        per_position = rows * self.num_heads * self.tp_size * width
        base = ((self.layer_idx * 2 + kv) << _ADDRESS_BITS_PER_STORE) + _REGION_ADDRESS[region]
        return base + first_position * per_position

    def _inject(self, words: torch.Tensor, store, kv: int, first_position: int, event: int,
                region: str = "values") -> torch.Tensor:
        """Faults on ``words`` ``[batch, heads, positions, width]`` at their position-major
        addresses in ``region``: the store's ``values``, ``metadata`` or ``window`` words."""
        if self.rows_as_sequences and words.shape[0] > 1:
            # Row b is sequence ``self.sequence + b`` of a one-row cache: its own draws, one launch each.
            return torch.cat([self._inject_rows(words[b : b + 1], store, kv, first_position, event, region, b)
                              for b in range(words.shape[0])])
        return self._inject_rows(words, store, kv, first_position, event, region, 0)

    def _inject_rows(self, words, store, kv, first_position, event, region, row) -> torch.Tensor:
        position_major = words.permute(2, 0, 1, 3).contiguous()
        step = ((self.sequence + row) * _READ_EVENTS_PER_SEQUENCE + event) & 0xFFFFFFFF
        if region == "window":
            bits, eligible = 16, store.window_msb
        elif region == "metadata":
            bits, eligible = store.meta_layout.exposed_bits_per_byte, store.meta_msb
        else:
            bits, eligible = store.bits, store.msb
        offset = self._fault_address(kv, first_position, words.shape[-1], region)
        if self.tp_size == 1:
            flipped, n = ops.inject(position_major, bits, self.fault, offset=offset, step=step, eligible=eligible)
        else:
            # This rank's heads in place among all heads (zeros elsewhere), so each byte takes the
            # flips it takes in the unsplit cache, whatever the world size.
            positions, batch, heads, width = position_major.shape
            mine = slice(self.tp_rank * heads, (self.tp_rank + 1) * heads)
            every_head = position_major.new_zeros(positions, batch, heads * self.tp_size, width)
            every_head[:, :, mine] = position_major
            flipped = ops.inject(every_head, bits, self.fault, offset=offset, step=step, eligible=eligible)[0][:, :, mine]
            n = _flipped_bits(position_major, flipped)
        if region == "window":
            self.window_counters[_WINDOW_INJECTED] += n
        else:
            self.counters[C.META_INJECTED if region == "metadata" else C.INJECTED] += n
        return flipped.permute(1, 2, 0, 3)

    def _read_words(self, store, kv: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The stored words and metadata as this read sees them (read-site faults are transient)."""
        words, meta = store.words, store.meta
        if self.fault is None or not self.fault.at_read:
            return words, meta
        self._reads += 1

        def struck(t: torch.Tensor, metadata: bool) -> torch.Tensor:
            t = t.clone()
            written = t[:, :, : self._written]
            written.copy_(self._inject(written, store, kv, 0, event=self._reads, region="metadata" if metadata else "values"))
            return t

        return struck(words, False), struck(meta, True) if self.faults_metadata else meta

class DenseLayer(_StoredLayer):
    """A layer's K/V as words of a float format: modes ``fp16`` (the oracle, never faulted),
    ``fp16-unprotected`` and ``fp8``. ``keys``/``values`` are the dense buffers."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fused_attention = False  # nothing to decode: the model's own attention reads them

    def _new_store(self, head_dim: int, kv: int) -> _DenseStore:
        return _DenseStore(self.mode, (self.batch_size, self.num_heads, self.max_cache_len, head_dim), self.dtype, self.device,
                           self.track_silent)

    def _public_view(self, store: _DenseStore, words=None, meta=None) -> torch.Tensor:
        return store.dense

    def _write(self, store: _DenseStore, kv: int, states: torch.Tensor, position: torch.Tensor, first: int) -> None:
        new = store.encode(states, first).view(self.mode.word_int_dtype)  # integer views: CPU copies no float8
        if store.shadow is not None:
            store.shadow.view(new.dtype).index_copy_(2, position, new)
        if self.fault is not None and self.fault.at_write:
            new = self._inject(new, store, kv, first, event=0)
        store.words.index_copy_(2, position, new)

    def _read(self, store: _DenseStore, kv: int) -> torch.Tensor:
        words, _ = self._read_words(store, kv)
        batch, heads, _, head_dim = store.dense.shape
        self.counters[C.READ] += self.cumulative_length * (batch * heads * head_dim)
        if store.shadow is not None:
            shadow = store.shadow.view(words.dtype)[:, :, : self._written]
            self.counters[C.SILENT] += (words[:, :, : self._written] != shadow).sum()
        return store.decode(words, self.dtype)


class ECCLayer(_StoredLayer):
    """A layer's K/V as codewords of the mode's codec, their scales protected by the same code.

    ``keys``/``values`` are :class:`ECCInt4Tensor` views of the stored codewords and their
    protected scales."""

    @property
    def faults_metadata(self) -> bool:
        return self.fault is not None and self.fault.strikes_metadata

    def _new_store(self, head_dim: int, kv: int) -> _CodedStore:
        return _CodedStore(self.mode, (self.batch_size, self.num_heads, self.max_cache_len, head_dim), self.device,
                           self.group_size, self.symmetric, self.track_silent, self.scheme, kv, self.dtype)

    def _public_view(self, store: _CodedStore, words: torch.Tensor | None = None, meta: torch.Tensor | None = None) -> torch.Tensor:
        """The stored (or given, e.g. read-faulted) words as an ECCInt4Tensor that knows how
        many rows are written, whether to interpolate and where to count its decodes."""
        meta_layout = store.meta_layout
        return ECCInt4Tensor(
            store.stored if words is None else words, store.meta if meta is None else meta, *store.tables, self.mode.codec,
            (*store.stored.shape[:-1], store.layout.head_dim), self.dtype,
            meta_layout.groups, meta_layout.symmetric, counters=self.counters, seq_len=self.cumulative_length,
            interpolate=self.mode.interpolate,
        )

    def _write(self, store: _CodedStore, kv: int, states: torch.Tensor, position: torch.Tensor, first: int) -> None:
        if not self.scheme.is_plain(kv):
            if is_torchdynamo_compiling():
                return self._write_step(store, kv, states, position)
            return self._write_windowed(store, kv, states, first)
        stored, meta = torch.ops.ecc.quantize_encode(states, *store.tables, self.mode.codec, self.group_size, self.symmetric)
        if store.shadow is not None:
            store.shadow.index_copy_(2, position, stored)
            store.meta_shadow.index_copy_(2, position, meta)
        if self.fault is not None and self.fault.at_write:
            stored = self._inject(stored, store, kv, first, event=0)
            if self.faults_metadata:
                meta = self._inject(meta, store, kv, first, event=0, region="metadata")
        store.stored.index_copy_(2, position, stored)
        store.meta.index_copy_(2, position, meta)

    def _read(self, store: _CodedStore, kv: int) -> torch.Tensor:
        if not self.scheme.is_plain(kv):
            if is_torchdynamo_compiling() or self._mirror_stale:
                return self._read_step(store, kv)
            return self._read_windowed(store, kv)
        words, meta = self._read_words(store, kv)
        if self.fused_attention:
            # Attention decodes (and counts) the codewords itself: hand it the words.
            if store.shadow is not None:
                self._count_silent(words, meta, store)
            if words is store.words and meta is store.meta:
                return self.keys if kv == 0 else self.values  # built once: nothing to construct per step
            return self._public_view(store, words, meta)
        t, meta_layout = store.tables, store.meta_layout
        if is_torchdynamo_compiling() or self._mirror_stale:
            out = torch.ops.ecc.decode_dequantize(
                words, meta, *t, self.mode.codec, store.layout.head_dim, meta_layout.groups,
                meta_layout.symmetric, self.mode.interpolate, self.counters, self.dtype, self.cumulative_length,
            )
        else:
            # Eager: decode the written rows only, so that a step costs what was written, not the
            # buffer; the rows past them read as the zeros their empty storage decodes to.
            written = slice(0, self._written)
            out = words.new_zeros(*words.shape[:-1], store.layout.head_dim, dtype=self.dtype)
            out[:, :, written] = torch.ops.ecc.decode_dequantize(
                words[:, :, written], meta[:, :, written], *t, self.mode.codec,
                store.layout.head_dim, meta_layout.groups, meta_layout.symmetric, self.mode.interpolate, self.counters, self.dtype,
            )
        if store.shadow is not None:
            self._count_silent(words, meta, store)
        return out

    def _count_silent(self, words: torch.Tensor, meta: torch.Tensor, store: _CodedStore, rows: int | None = None) -> None:
        """Values that decode differently from what was written, in codewords not flagged and
        with scales not flagged; metadata words likewise. Over the first ``rows`` rows (default:
        every written row)."""
        t, head_dim, meta_layout = store.tables, store.layout.head_dim, store.meta_layout
        rows = self._written if rows is None else rows
        written, meta_written = slice(0, rows), slice(0, store.meta_rows(rows))
        got, status = torch.ops.ecc.decode(words[:, :, written], *t[:2], self.mode.codec, head_dim)
        want, _ = torch.ops.ecc.decode(store.shadow[:, :, written], *t[:2], self.mode.codec, head_dim)
        _, _, meta_erased = meta_layout.load(meta[:, :, meta_written], store.meta_tables)
        flags = meta_layout.group_flags(meta_erased)
        if store.channel_block:  # [.., blocks, head_dim]: a channel of every token of the block
            meta_values = flags.repeat_interleave(store.channel_block, dim=-2)
        else:
            meta_values = value_groups(flags, head_dim)
        erased = store.layout.erased_values(status) | meta_values
        self.counters[C.SILENT] += ((got != want) & ~erased).sum()
        self.counters[C.META_SILENT] += meta_layout.silent(meta[:, :, meta_written], store.meta_shadow[:, :, meta_written],
                                                           store.meta_tables)

    # -- a scheme with a full-precision window or per-channel keys (eager) ------------------
    def _write_windowed(self, store: _CodedStore, kv: int, states: torch.Tensor, first: int) -> None:
        """Write tokens ``[first, first + k)``: those that stay recent into the window, and every
        row that leaves it (held there, or never held: a long prompt's first tokens) into
        codewords, per token or a whole key block per channel (:mod:`ecc_tensor.quant_scheme`).
        What leaves the window is what the window held, write-site faults included."""
        last = first + states.shape[-2]
        q_first, q_last = self.scheme.quantized_rows(kv, first), self.scheme.quantized_rows(kv, last)
        if q_last > q_first:
            never_held = states[:, :, : max(q_last - first, 0)]

            def leaving(window):
                held = self._held(store, window, q_first, first).to(states.dtype)
                return torch.cat([held, never_held], dim=2)[:, :, : q_last - q_first]

            clean = leaving(store.window_shadow) if store.shadow is not None else None
            self._write_codewords(store, kv, leaving(store.window), clean, q_first)
        enter = max(q_last, first)
        if store.window is not None and enter < last:
            new = states[:, :, enter - first :].to(store.window.dtype)
            slots = store.window_slots(enter, last)
            if store.window_shadow is not None:
                store.window_shadow.index_copy_(2, slots, new)
            if self.fault is not None and self.fault.at_write and self.fault.strikes_metadata:
                new = self._inject(new.view(torch.int16), store, kv, enter, event=0, region="window").view(new.dtype)
            store.window.index_copy_(2, slots, new)

    def _write_step(self, store: _CodedStore, kv: int, states: torch.Tensor, position: torch.Tensor) -> None:
        """:meth:`_write_windowed` for one token under ``torch.compile``: the same bytes, with
        fixed shapes and no host sync (every step computes the row, or key block, that may
        leave the window and stores it only where it does)."""
        if states.shape[-2] != 1:
            raise NotImplementedError("ECCCache: under torch.compile a residual window or per-channel keys take one token per "
                                      "step; run the prefill in eager mode")
        window, scheme, t = store.window, self.scheme, store.tables
        rows = window.shape[-2]
        new = states.to(window.dtype)
        if store.channel_block is None:  # per token: the token R back leaves the window, from this token's slot
            slot = position % rows
            leaving = window.index_select(2, slot)
            window.index_copy_(2, slot, new)
            stored, meta = torch.ops.ecc.quantize_encode(leaving.to(self.dtype), *t, self.mode.codec, self.group_size, self.symmetric)
            place = torch.clamp(position - scheme.residual_length, min=0)
            meta_place, leaves = place, position >= scheme.residual_length
        else:  # per channel: a key block leaves when its last token does
            block = store.channel_block
            window.index_copy_(2, position % rows, new)
            left = position + 1 - scheme.residual_length  # tokens out of the window after this write
            leaves = (left >= block) & (left % block == 0)
            meta_place = torch.clamp(left // block - 1, min=0)
            place = meta_place * block + torch.arange(block, device=window.device)
            x = window.index_select(2, place % rows).to(states.dtype)
            if not scheme.residual_length:  # the block ends with this token, which leaves as written (never held)
                x = torch.cat([x[:, :, :-1], states], dim=2)
            q, scale, zero = quantize_int4_channels(x.float(), self.symmetric)
            stored = torch.ops.ecc.encode(q, t[0], t[1], self.mode.codec)
            meta = store.meta_layout.store(scale.unsqueeze(-2), None if zero is None else zero.unsqueeze(-2), store.meta_tables)
        store.stored.index_copy_(2, place, torch.where(leaves, stored, store.stored.index_select(2, place)))
        store.meta.index_copy_(2, meta_place, torch.where(leaves, meta, store.meta.index_select(2, meta_place)))

    def _read_step(self, store: _CodedStore, kv: int) -> torch.Tensor:
        """:meth:`_read_windowed` with the written length a tensor (``torch.compile``, or after
        compiled steps): every row decoded, the unwritten ones neither counted nor used as
        neighbours, the window's rows taken where they are newer than the codewords."""
        written = self.cumulative_length
        rows = self.scheme.quantized_rows(kv, written)
        t, codec, head_dim = store.tables, self.mode.codec, store.layout.head_dim
        if store.channel_block:
            values, status = torch.ops.ecc.decode(store.stored, t[0], t[1], codec, head_dim)
            decoded = dequantize_channel_cache(values, status, store.meta, store.meta_tables, codec, self.symmetric,
                                               self.mode.interpolate, self.counters, self.dtype, rows=rows)
        else:
            layout = store.meta_layout
            decoded = torch.ops.ecc.decode_dequantize(store.stored, store.meta, *t, codec, head_dim, layout.groups, layout.symmetric,
                                                      self.mode.interpolate, self.counters, self.dtype, rows)
        window = store.window
        positions = torch.arange(store.stored.shape[-2], device=window.device)
        held = window.index_select(2, positions % window.shape[-2]).to(self.dtype)
        newer = (positions >= rows).view(-1, 1)
        out = torch.where(newer, torch.where((positions < written).view(-1, 1), held, 0), decoded)
        batch, heads = window.shape[:2]
        self.window_counters[_WINDOW_READ] += (written - rows) * (batch * heads * head_dim)
        return out

    @staticmethod
    def _held(store: _CodedStore, window: torch.Tensor | None, first: int, last: int) -> torch.Tensor:
        """The window's tokens ``[first, last)`` in order (empty without a window)."""
        if window is None or last <= first:
            batch, heads, _, head_dim = store.stored.shape[:3] + (store.layout.head_dim,)
            dtype = window.dtype if window is not None else torch.float32
            return torch.zeros(batch, heads, 0, head_dim, dtype=dtype, device=store.stored.device)
        return window.index_select(2, store.window_slots(first, last))

    def _write_codewords(self, store: _CodedStore, kv: int, x: torch.Tensor, clean: torch.Tensor | None, first: int) -> None:
        """Quantize and encode rows ``[first, first + len)`` of ``x`` (``clean``: the same rows
        as written, for the shadow copies) and store them, write-site faults included."""
        t = store.tables
        rows = slice(first, first + x.shape[-2])
        meta_rows = slice(store.meta_rows(first), store.meta_rows(rows.stop))

        def encode(rows_x):
            if not store.channel_block:
                return torch.ops.ecc.quantize_encode(rows_x.to(self.dtype), *t, self.mode.codec, self.group_size, self.symmetric)
            blocks = rows_x.float().unflatten(-2, (-1, store.channel_block))
            q, scale, zero = quantize_int4_channels(blocks, self.symmetric)
            stored = torch.ops.ecc.encode(q.flatten(-3, -2), t[0], t[1], self.mode.codec)
            return stored, store.meta_layout.store(scale, zero, store.meta_tables)

        stored, meta = encode(x)
        if store.shadow is not None:
            shadow, meta_shadow = encode(clean)
            store.shadow[:, :, rows] = shadow
            store.meta_shadow[:, :, meta_rows] = meta_shadow
        if self.fault is not None and self.fault.at_write:
            stored = self._inject(stored, store, kv, first, event=0)
            if self.faults_metadata:
                meta = self._inject(meta, store, kv, meta_rows.start, event=0, region="metadata")
        store.stored[:, :, rows] = stored
        store.meta[:, :, meta_rows] = meta

    def _read_windowed(self, store: _CodedStore, kv: int) -> torch.Tensor:
        """The written tokens: codewords decoded, corrected, dequantized (and interpolated,
        among the codeword rows), then the window's tokens as held; read-site faults strike
        both."""
        written = self._written
        rows = self.scheme.quantized_rows(kv, written)
        words, meta = store.stored[:, :, :rows], store.meta[:, :, : store.meta_rows(rows)]
        held = self._held(store, store.window, rows, written)
        if self.fault is not None and self.fault.at_read:
            self._reads += 1
            if rows:
                words = self._inject(words, store, kv, 0, event=self._reads)
            if self.faults_metadata and rows:
                meta = self._inject(meta, store, kv, 0, event=self._reads, region="metadata")
            if self.faults_metadata and held.shape[-2]:
                held = self._inject(held.view(torch.int16), store, kv, rows, event=self._reads, region="window").view(held.dtype)
        batch, heads, length, _ = store.stored.shape
        out = torch.zeros(batch, heads, length, store.layout.head_dim, dtype=self.dtype, device=self.device)
        t, codec = store.tables, self.mode.codec
        if rows:
            if store.channel_block:
                values, status = torch.ops.ecc.decode(words, t[0], t[1], codec, store.layout.head_dim)
                out[:, :, :rows] = dequantize_channel_cache(values, status, meta, store.meta_tables, codec, self.symmetric,
                                                            self.mode.interpolate, self.counters, self.dtype)
            else:
                layout = store.meta_layout
                out[:, :, :rows] = torch.ops.ecc.decode_dequantize(words, meta, *t, codec, store.layout.head_dim, layout.groups,
                                                                  layout.symmetric, self.mode.interpolate, self.counters, self.dtype)
            if store.shadow is not None:
                self._count_silent(words, meta, store, rows)
        if held.shape[-2]:
            out[:, :, rows:written] = held.to(self.dtype)
            self.window_counters[_WINDOW_READ] += held.numel()
            if store.window_shadow is not None:
                clean = self._held(store, store.window_shadow, rows, written)
                self.window_counters[_WINDOW_SILENT] += (held.view(torch.int16) != clean.view(torch.int16)).sum()
        return out


class ECCCache(Cache):
    """A static, preallocated KV cache storing every layer's K/V in an ECC mode.

    Args:
        config: the model's config (any decoder-only HF causal LM: GPT-2, Llama, Mistral, Qwen2, ...).
        max_batch_size: batch size; with ``device`` and ``dtype`` the storage is allocated
            now (needed to compile a graph that includes the first write), else on first use.
        max_cache_len: most tokens the cache holds (prompt + generated).
        mode: one of ``fp16`` (the oracle: 16-bit words, never faulted), ``fp16-unprotected``,
            ``int4``, ``int4-hamming``, ``int4-hamming84``, ``int4-hamming84-interp``,
            ``int12-golay``, ``fp8`` (E4M3, unprotected), ``int4-secded72``,
            ``int4-secded72-interp`` (SECDED(72,64), not yet in the fused attention; :mod:`ecc_tensor.modes`).
        fault: a :class:`FaultModel` (site write/read/both; ``targets="all"`` strikes the
            stored scales too), or None.
        group_size: quantization group along head_dim (None: one scale per token and head).
        symmetric: symmetric (the paper's) or asymmetric INT4.
        track_silent: keep a clean shadow copy to count silent corruptions (simulation).
            Default: whenever faults are injected. With faults and ``track_silent=False``,
            :meth:`stats` reports the silent counts as None (not measured), never 0.
        attention: ``"fused"`` returns ECCInt4Tensor K/V for the ``"ecc"`` attention function
            (decode fused into attention); ``"dense"`` returns decoded K/V for any attention
            implementation; ``"auto"`` (default) is ``"fused"`` when the model's config uses
            ``"ecc"`` attention, else ``"dense"``.
        tp_size, tp_rank: under transformers' tensor parallelism (``from_pretrained(...,
            tp_plan="auto")`` under torchrun) pass ``tp_size=model.tp_size``: each rank then
            stores only its KV heads (``tp_rank``, default: the torch.distributed rank), faults
            fall where they fall in the unsplit cache, and ``stats(all_ranks=True)`` sums the
            ranks' counters.
        key_quant, value_quant, residual_length, channel_block: the INT4 modes' quantization
            scheme (:mod:`ecc_tensor.quant_scheme`): keys per ``"token"`` (the paper's) or per
            ``"channel"`` over blocks of ``channel_block`` tokens (KIVI's), values per token;
            the last ``residual_length`` tokens kept as 16-bit words (faulted as such with
            ``targets="all"`` and counted in ``stats()["window"]``). The fused attention does
            not read such a cache yet: with ``attention="fused"`` it warns and returns
            decoded K/V. The 16-bit and fp8 modes ignore these.
        rows_as_sequences: each batch row is a sequence of its own for fault draws: row ``b``
            takes exactly the faults a one-row cache takes as sequence ``first_sequence + b``
            (see :meth:`reset`), so several independent texts score in one forward with the
            draws of one at a time (the sweep's windows). Default False: a batch is one
            sequence of ``max_batch_size`` rows, each row at its own addresses.
    """

    def __init__(
        self,
        config,
        max_batch_size: int | None = None,
        max_cache_len: int | None = None,
        mode: str = "int4-hamming84-interp",
        fault: FaultModel | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        group_size: int | None = None,
        symmetric: bool = True,
        track_silent: bool | None = None,
        attention: str = "auto",
        tp_size: int = 1,
        tp_rank: int | None = None,
        rows_as_sequences: bool = False,
        key_quant: str = "token",
        value_quant: str = "token",
        residual_length: int = 0,
        channel_block: int = DEFAULT_CHANNEL_BLOCK,
        **kwargs,
    ):
        self.mode = get_mode(mode)
        # The INT4 modes' quantization axes and full-precision window; the 16-bit and fp8 modes
        # store every token as it is and ignore them.
        self.scheme = QuantScheme(key_quant, value_quant, residual_length, channel_block)
        if attention not in ("auto", "fused", "dense"):
            raise ValueError(f"attention must be 'auto', 'fused' or 'dense', got {attention!r}")
        if fault is not None and not isinstance(fault, FaultModel):
            raise ValueError(f"fault must be an ecc_tensor.faults.FaultModel or None, got {type(fault).__name__}")
        if not _is_positive_int(max_cache_len):
            raise ValueError(f"max_cache_len must be a positive int, got {max_cache_len!r}")
        if max_batch_size is not None and not _is_positive_int(max_batch_size):
            raise ValueError(f"max_batch_size must be a positive int (or None: the first batch's size), got {max_batch_size!r}")
        if group_size is not None and not _is_positive_int(group_size):
            raise ValueError(f"group_size must be a positive divisor of head_dim (or None: one scale per row), got {group_size!r}")
        text = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config
        layer_types = _attention_layer_types(text)
        window = getattr(text, "sliding_window", None)
        if "sliding_attention" in layer_types and window is not None and max_cache_len > window:
            raise NotImplementedError(
                f"{type(text).__name__} has sliding-window layers (window {window}); ECCCache keeps every token, "
                f"so max_cache_len ({max_cache_len}) must not exceed the window"
            )
        positions = getattr(text, "max_position_embeddings", None) or getattr(text, "n_positions", None)
        if positions is not None and max_cache_len > positions:
            raise ValueError(f"max_cache_len={max_cache_len} exceeds the model's {positions} positions")
        self.config = text
        self.tp_rank, self.tp_size = _tensor_parallel_place(text, tp_size, tp_rank)
        implementation = getattr(config, "_attn_implementation", None)
        if attention == "auto":
            attention = "fused" if implementation == ATTENTION_NAME else "dense"
        elif attention == "fused" and implementation not in (None, ATTENTION_NAME):
            raise ValueError(
                f"attention='fused' hands ECCInt4Tensor K/V to the model's attention, which is {implementation!r}: "
                f"call model.set_attn_implementation({ATTENTION_NAME!r}) before creating the cache"
            )
        if attention == "fused" and self.mode.quantized and not self.scheme.plain:
            warnings.warn(
                "ecc::decode_attention does not read per-channel key scales or a residual window yet: this cache decodes "
                "K/V and the model attends with SDPA", stacklevel=2,
            )
            attention = "dense"
        self.attention = attention
        injects = fault is not None and fault.ber > 0 and self.mode.faulted
        track_silent = injects if track_silent is None else bool(track_silent)
        # A silent count is a measurement only where a clean copy was kept or nothing was injected.
        self.silent_tracked = track_silent or not injects
        self._max_cache_len = max_cache_len
        self._max_batch_size = max_batch_size
        layer_class = ECCLayer if self.mode.quantized else DenseLayer
        layers = [
            layer_class(
                max_cache_len, self.mode, i, fault, group_size, symmetric, track_silent, layer_type == "sliding_attention",
                fused_attention=attention == "fused", max_batch_size=max_batch_size, tp_rank=self.tp_rank, tp_size=self.tp_size,
                model_kv_heads=getattr(text, "num_key_value_heads", None) or text.num_attention_heads,
                rows_as_sequences=rows_as_sequences, scheme=self.scheme,
            )
            for i, layer_type in enumerate(layer_types)
        ]
        super().__init__(layers=layers)
        if max_batch_size is not None and device is not None and dtype is not None:
            heads = (getattr(text, "num_key_value_heads", None) or text.num_attention_heads) // self.tp_size
            head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
            self.early_initialization(max_batch_size, heads, head_dim, dtype, torch.device(device))

    # Properties, not attributes: some transformers releases (5.17) define read-only
    # properties of these names on Cache, which an assignment in __init__ would hit.
    @property
    def max_cache_len(self) -> int:
        return self._max_cache_len

    @property
    def max_batch_size(self) -> int | None:
        return self._max_batch_size

    def stats(self, all_ranks: bool = False) -> dict:
        """Counters summed over layers (:mod:`ecc_tensor.counters`: the values' ``read``,
        ``corrected``, ``parity_only``, ``detected``, ``injected``, ``silent``), ``metadata``:
        the same six for the stored scales and zero points, and ``layers``: all twelve per layer.
        ``window``: the full-precision window's 16-bit words read, bits injected and words
        silently corrupted (zero without a ``residual_length`` or per-channel keys).
        ``silent`` and the metadata's and window's ``silent`` are None where they were not measured
        (faults injected with ``track_silent=False``). Under tensor parallelism a rank counts its own
        heads; ``all_ranks=True`` sums every rank's counts (a collective: call it on every rank)."""
        counters = [layer.counters for layer in self.layers]
        if all_ranks and self.tp_size > 1:
            import torch.distributed as dist

            stacked = torch.stack([c.to(torch.int64) for c in counters])
            dist.all_reduce(stacked)
            counters = list(stacked)
        per_layer = [C.counters_to_dict(c, self.silent_tracked) for c in counters]
        total = {name: None if per_layer and per_layer[0][name] is None else sum(d[name] for d in per_layer)
                 for name in C.COUNTER_NAMES}
        values = {name: total[name] for name in C.VALUE_COUNTERS}
        window = torch.stack([layer.window_counters for layer in self.layers]).sum(0)
        if all_ranks and self.tp_size > 1:
            dist.all_reduce(window)
        window = dict(zip(WINDOW_COUNTERS, window.tolist()))
        if not self.silent_tracked:
            window["silent"] = None
        return {**values, "metadata": C.metadata_view(total), "window": window, "layers": per_layer}

    def reset(self, first_sequence: int | None = None) -> None:
        """Forget the stored sequence(s) and draw fresh faults for the next: as sequence
        ``first_sequence`` (its rows ``first_sequence + b`` with ``rows_as_sequences``) if
        given, else the next number past the last. Counters keep accumulating (see reset_stats)."""
        if first_sequence is not None and (not isinstance(first_sequence, int) or isinstance(first_sequence, bool) or first_sequence < 0):
            raise ValueError(f"first_sequence must be a non-negative int, got {first_sequence!r}")
        for layer in self.layers:
            layer.reset(first_sequence)

    def reset_stats(self) -> None:
        for layer in self.layers:
            layer.counters.zero_()


def _flipped_bits(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """Bits that differ between two tensors of one dtype and shape (int64 scalar)."""
    diff = before.contiguous().view(torch.uint8) ^ after.contiguous().view(torch.uint8)
    return int_to_bits(diff, 8).sum()


def _is_positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _tensor_parallel_place(config, tp_size, tp_rank) -> tuple[int, int]:
    """``(rank, size)`` of this process in the model's tensor-parallel group (KV heads split
    evenly, as transformers' ``tp_plan="auto"`` splits them)."""
    if not _is_positive_int(tp_size):
        raise ValueError(f"tp_size must be a positive int (model.tp_size under tp_plan='auto'), got {tp_size!r}")
    if tp_size == 1:
        return 0, 1
    if tp_rank is None:
        import torch.distributed as dist

        if not dist.is_initialized():
            raise ValueError("tp_size > 1 needs tp_rank, or an initialized torch.distributed process group to read it from")
        tp_rank = dist.get_rank()
    if isinstance(tp_rank, bool) or not isinstance(tp_rank, int) or not 0 <= tp_rank < tp_size:
        raise ValueError(f"tp_rank must be an int in [0, {tp_size}), got {tp_rank!r}")
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    if heads % tp_size:
        raise ValueError(f"the model's {heads} KV heads do not split evenly over tp_size={tp_size}")
    return tp_rank, tp_size


def _attention_layer_types(config) -> list[str]:
    n_layers = getattr(config, "num_hidden_layers", None)
    if not n_layers or not getattr(config, "num_attention_heads", None):
        raise ValueError(
            f"{type(config).__name__} does not describe a decoder with self-attention layers "
            f"(no num_hidden_layers / num_attention_heads): there is no KV cache to protect"
        )
    if getattr(config, "is_encoder_decoder", False):
        raise ValueError(f"{type(config).__name__} is an encoder-decoder model; ECCCache supports decoder-only causal LMs")
    layer_types = getattr(config, "layer_types", None)
    if layer_types is None:
        layer_types = ["sliding_attention" if getattr(config, "sliding_window", None) else "full_attention"] * n_layers
    unsupported = sorted(set(layer_types) - {"full_attention", "sliding_attention"})
    if unsupported:
        raise ValueError(f"ECCCache supports full and sliding-window attention layers, not {unsupported}")
    return list(layer_types)


def ecc_attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """The ``"ecc"`` attention implementation. Over an :class:`ECCCache` in fused mode, a
    decoding step (at most ``MAX_FUSED_QUERIES`` query tokens) runs ``ecc::decode_attention``
    on the codewords; a prefill decodes this layer's K/V and runs SDPA. Dense K/V (any other
    cache) go to transformers' SDPA attention unchanged."""
    if not isinstance(key, ECCInt4Tensor):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    if query.shape[2] > MAX_FUSED_QUERIES or dropout > 0.0:
        return sdpa_attention_forward(
            module, query, key.dequantize(), value.dequantize(), attention_mask, dropout=dropout, scaling=scaling,
            is_causal=is_causal, **kwargs,
        )
    if attention_mask is not None and attention_mask.shape[-1] != key.shape[-2]:
        attention_mask = attention_mask[..., : key.shape[-2]]
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    # Without a mask, the queries are the last positions written (decoding, speculative verification).
    causal = bool(causal) and attention_mask is None and query.shape[2] > 1
    out = ecc_decode_attention(query, key, value, attn_mask=attention_mask, scale=scaling, is_causal=causal)
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(ATTENTION_NAME, ecc_attention_forward)
AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)
