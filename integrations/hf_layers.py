"""The layers of :class:`~ecc_tensor.integrations.hf.ECCCache`: one decoder layer's K and V
as stored words, each in a store of its own.

:class:`ECCLayer` keeps codewords of the mode's codec and their protected scales (and, under a
:class:`~ecc_tensor.quant_scheme.QuantScheme` with one, a full-precision window and per-channel
key scales); :class:`DenseLayer` keeps 16-bit or E4M3 words (the ``fp16`` and ``fp8`` modes).
Both follow transformers' ``StaticLayer``: preallocated storage, ``update`` writes the new
tokens in place and returns what attention reads. Fault addresses, injection and the
counters are here too (``docs/architecture.md``, "Fault addressing").
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from transformers.cache_utils import StaticLayer

try:
    from transformers.utils import is_torchdynamo_compiling
except ImportError:  # pragma: no cover
    from torch.compiler import is_compiling as is_torchdynamo_compiling

import ecc_tensor.ops as ops
from ecc_tensor.ops.dispatch import call_op
from ecc_tensor import counters as C
from ecc_tensor.attention import dequantize_channel_cache, quantize_encode_channels
from ecc_tensor.codecs import STATUS_CORRECTED, STATUS_DETECTED, CodecTables, int_to_bits
from ecc_tensor.faults import FLOAT16_MSB, METADATA_ADDRESS, WINDOW_ADDRESS, FaultModel
from ecc_tensor.fp8 import head_scale
from ecc_tensor.fp8_tensor import FP8KVTensor
from ecc_tensor.interp import interpolate_erasures
from ecc_tensor.metadata import MetadataLayout, codec_tables, value_groups
from ecc_tensor.modes import CacheMode
from ecc_tensor.quant_scheme import QuantScheme
from ecc_tensor.storage import StorageLayout
from ecc_tensor.tensor import ECCInt4Tensor
from ecc_tensor.window_layout import window_layout

__all__ = ["DenseLayer", "ECCLayer", "WINDOW_COUNTERS"]

_ADDRESS_BITS_PER_STORE = 40  # each (layer, K/V) store gets 2^40 byte addresses
_REGION_ADDRESS = {"values": 0, "metadata": METADATA_ADDRESS, "window": WINDOW_ADDRESS}
# A layer's counters of its recent window's 16-bit words, apart from the codewords': words read,
# bits injected, Golay codewords corrected and detected (where the mode has a code), words silently wrong.
WINDOW_COUNTERS = ("read", "injected", "corrected", "detected", "silent")
_WINDOW_READ, _WINDOW_INJECTED, _WINDOW_CORRECTED, _WINDOW_DETECTED, _WINDOW_SILENT = range(len(WINDOW_COUNTERS))
_READ_EVENTS_PER_SEQUENCE = 1 << 20

class _DenseStore:
    """The buffer of one of a layer's K or V tensors as 16-bit words (the ``fp16`` modes) or
    E4M3 words with a per-head scale (``fp8``, :mod:`ecc_tensor.fp8`; the scale is set by the
    sequence's first write)."""

    meta = meta_shadow = None

    def __init__(self, mode: CacheMode, shape, dtype, device, track_silent: bool):
        self.mode = mode
        # The stored words as the integers faults strike, and the buffer itself an integer one
        # (the floats are its views): written through a view of another dtype, a compiled step
        # copied the whole buffer twice per write, twice the FP8 attention's time.
        self.words = torch.zeros(shape, dtype=mode.word_int_dtype, device=device)
        self.word_dtype = mode.word_dtype(dtype)
        self.bits = mode.word_bits
        self.msb = torch.tensor(mode.word_msb, device=device)
        batch, heads = shape[:2]
        self.scale = torch.ones(batch, heads, 1, 1, device=device) if mode.fp8 else None
        self.buffers = [self.words] + ([self.scale] if mode.fp8 else [])
        # A clean copy of what was written, for counting silent corruptions in simulation.
        self.shadow = torch.zeros_like(self.words) if track_silent else None

    def floats(self, words: torch.Tensor | None = None) -> torch.Tensor:
        """The stored (or given) words as the float format they hold."""
        return (self.words if words is None else words).view(self.word_dtype)

    def encode(self, states: torch.Tensor, first: int) -> torch.Tensor:
        """``states`` as stored words; an ``fp8`` sequence's first write sets its scales."""
        if self.mode.fp8 and first == 0:
            self.scale.copy_(head_scale(states))
        return self.mode.to_words(states, self.scale)

    def decode(self, words: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return self.mode.from_words(self.floats(words), self.scale, dtype)


class _DecodedWindow(NamedTuple):
    """A coded window's rows decoded (``nibbles`` and ``status`` of ``ecc::decode``, ``[batch,
    heads, n, ...]``), and for each window slot the row holding it (``rows`` ``[slots]``): one
    decode of a compiled step, shared by its write and its read."""

    nibbles: torch.Tensor
    status: torch.Tensor
    rows: torch.Tensor

    def at(self, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(nibbles, status)`` of the window slots ``slots``, in that order."""
        index = self.rows.index_select(0, slots)
        return self.nibbles.index_select(2, index), self.status.index_select(2, index)

    def with_row(self, slot: torch.Tensor, row: int) -> _DecodedWindow:
        """The same decode with window slot ``slot`` (a one-element tensor) read from row ``row``."""
        return self._replace(rows=self.rows.index_fill(0, slot, row))


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
        # The values' code's tables, then the metadata code's, as the ecc ops take them. An
        # -interp mode decodes its scales at a smaller radius (metadata.codec_tables), but not
        # keys' channel scales: erasing one erases a channel of a whole block, which cost more
        # windows than the silent scales it saves (benchmarks/RESULTS.md, 2026-12-07 night).
        self.tables = codec_tables(mode.codec, device, interpolate=mode.interpolate and not self.channel_block)
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
        self.window = self.window_shadow = self.window_code = self.window_layout = None
        if rows:
            # As the 16-bit modes store words: the model's dtype if 16 bits wide, else float16.
            # With a code, the memory is ``window_code`` and ``window`` the words as last read
            # (decoded at every read), which the views and the fused attention read.
            self.window = torch.zeros(batch, heads, rows, head_dim, dtype=dtype if dtype.itemsize == 2 else torch.float16,
                                      device=device)
            self.window_layout = window_layout(mode.codec, head_dim)
            self.window_tables = codec_tables(mode.codec, device, interpolate=mode.interpolate)[2:]  # the ops' two tables
            if self.window_layout is None:
                self.window_bits, self.window_msb = 16, torch.tensor(FLOAT16_MSB, device=device)
            else:
                self.window_code = torch.zeros(batch, heads, rows, self.window_layout.row_bytes, dtype=torch.uint8, device=device)
                self.window_bits = self.window_layout.exposed_bits_per_byte
                self.window_msb = self.window_layout.msb_bits(device)
                self.buffers.append(self.window_code)
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
            # Static addresses: CUDA graphs (torch.compile's reduce-overhead) read these in place
            # rather than copy each into a placeholder of their own at every replay. The codec
            # tables are marked where they are made (codecs.linear.static_tables).
            for t in (*self._k.buffers, *self._v.buffers, self.cumulative_length, self.counters, self.window_counters):
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
        # A compiled step's write decodes a coded window once; its read takes that decode.
        k_window = self._write(self._k, 0, key_states, position, first)
        v_window = self._write(self._v, 1, value_states, position, first)
        if not compiling:
            self._written += new_tokens
        return self._read(self._k, 0, k_window), self._read(self._v, 1, v_window)

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
            bits, eligible = store.window_bits, store.window_msb
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
    ``fp16-unprotected`` and ``fp8``. ``keys``/``values`` are the dense buffers, or for
    ``fp8`` with the fused attention :class:`FP8KVTensor` views of the words and scales."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # 16-bit words: nothing to decode, the model's own attention reads them. E4M3 words:
        # the "ecc" attention reads them fused (ecc::fp8_decode_attention).
        self.fused_attention = self.fused_attention and self.mode.fp8

    def _new_store(self, head_dim: int, kv: int) -> _DenseStore:
        return _DenseStore(self.mode, (self.batch_size, self.num_heads, self.max_cache_len, head_dim), self.dtype, self.device,
                           self.track_silent)

    def _public_view(self, store: _DenseStore, words=None, meta=None) -> torch.Tensor:
        floats = store.floats(words)
        if not self.fused_attention:
            return floats
        return FP8KVTensor(floats, store.scale, floats.shape, self.dtype, seq_len=self.cumulative_length)

    def _write(self, store: _DenseStore, kv: int, states: torch.Tensor, position: torch.Tensor, first: int) -> None:
        new = store.encode(states, first).view(self.mode.word_int_dtype)  # integer words: CPU copies no float8
        if store.shadow is not None:
            store.shadow.index_copy_(2, position, new)
        if self.fault is not None and self.fault.at_write:
            new = self._inject(new, store, kv, first, event=0)
        store.words.index_copy_(2, position, new)

    def _read(self, store: _DenseStore, kv: int, window_decode: None = None) -> torch.Tensor:
        """The layer's K or V as attention reads it (``window_decode``: none, a dense cache has
        no coded window; ``ECCLayer._read``'s)."""
        words, _ = self._read_words(store, kv)
        batch, heads, _, head_dim = store.words.shape
        self.counters[C.READ] += self.cumulative_length * (batch * heads * head_dim)
        if store.shadow is not None:
            self.counters[C.SILENT] += (words[:, :, : self._written] != store.shadow[:, :, : self._written]).sum()
        if self.fused_attention:  # the attention reads the words
            if is_torchdynamo_compiling() or (self.fault is not None and self.fault.at_read):
                # Compiled, a view made here: ``self.keys``, a view of the buffer written above,
                # would be a second graph input aliasing it.
                return self._public_view(store, words)
            return self.keys if kv == 0 else self.values  # built once: nothing to construct per eager step
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

    def _public_view(self, store: _CodedStore, words: torch.Tensor | None = None, meta: torch.Tensor | None = None,
                     window: torch.Tensor | None = None) -> torch.Tensor:
        """The stored (or given, e.g. read-faulted) words as an ECCInt4Tensor that knows how
        many rows are written, whether to interpolate and where to count its decodes; under a
        scheme with one, with the window (:mod:`ecc_tensor.quant_scheme`)."""
        meta_layout, scheme = store.meta_layout, self.scheme
        windowed = {}
        if store.window is not None:
            windowed = dict(window=store.window if window is None else window, residual_length=scheme.residual_length,
                            window_block=scheme.channel_block if scheme.key_quant == "channel" else 1)
        return ECCInt4Tensor(
            store.stored if words is None else words, store.meta if meta is None else meta, *store.tables, self.mode.codec,
            (*store.stored.shape[:-1], store.layout.head_dim), self.dtype,
            meta_layout.groups, meta_layout.symmetric, counters=self.counters, seq_len=self.cumulative_length,
            interpolate=self.mode.interpolate, channel_block=store.channel_block, **windowed,
        )

    def _write(self, store: _CodedStore, kv: int, states: torch.Tensor, position: torch.Tensor,
               first: int) -> _DecodedWindow | None:
        """Store ``states``; under ``torch.compile`` with a coded window, return the window as
        decoded after the write (for the step's read)."""
        if not self.scheme.is_plain(kv):
            if is_torchdynamo_compiling():
                return self._write_step(store, kv, states, position)
            return self._write_windowed(store, kv, states, first)
        stored, meta = call_op(torch.ops.ecc.quantize_encode, states, *store.tables, self.mode.codec, self.group_size, self.symmetric)
        if store.shadow is not None:
            store.shadow.index_copy_(2, position, stored)
            store.meta_shadow.index_copy_(2, position, meta)
        if self.fault is not None and self.fault.at_write:
            stored = self._inject(stored, store, kv, first, event=0)
            if self.faults_metadata:
                meta = self._inject(meta, store, kv, first, event=0, region="metadata")
        store.stored.index_copy_(2, position, stored)
        store.meta.index_copy_(2, position, meta)

    def _read(self, store: _CodedStore, kv: int, window_decode: _DecodedWindow | None = None) -> torch.Tensor:
        """The layer's K or V as attention reads it; ``window_decode``: the coded window as this
        compiled step's write left it decoded (decoded here otherwise)."""
        if not self.scheme.is_plain(kv):
            if self.fused_attention:
                return self._fused_windowed_view(store, kv, window_decode)
            if is_torchdynamo_compiling() or self._mirror_stale:
                return self._read_step(store, kv, window_decode)
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
            out = call_op(torch.ops.ecc.decode_dequantize,
                words, meta, *t, self.mode.codec, store.layout.head_dim, meta_layout.groups,
                meta_layout.symmetric, self.mode.interpolate, self.counters, self.dtype, self.cumulative_length,
            )
        else:
            # Eager: decode the written rows only, so that a step costs what was written, not the
            # buffer; the rows past them read as the zeros their empty storage decodes to.
            written = slice(0, self._written)
            out = words.new_zeros(*words.shape[:-1], store.layout.head_dim, dtype=self.dtype)
            out[:, :, written] = call_op(torch.ops.ecc.decode_dequantize,
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
        got, status = call_op(torch.ops.ecc.decode, words[:, :, written], *t[:2], self.mode.codec, head_dim)
        want, _ = call_op(torch.ops.ecc.decode, store.shadow[:, :, written], *t[:2], self.mode.codec, head_dim)
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

            def leaving(held):
                return torch.cat([held.to(states.dtype), never_held], dim=2)[:, :, : q_last - q_first]

            clean = leaving(self._held(store, store.window_shadow, q_first, first)) if store.shadow is not None else None
            if store.window_code is not None and first > q_first:  # the window's words as read, uncounted
                held = self._window_words(store, store.window_code.index_select(2, store.window_slots(q_first, first)))[0]
            else:
                held = self._held(store, store.window, q_first, first)
            self._write_codewords(store, kv, leaving(held), clean, q_first)
        enter = max(q_last, first)
        if store.window is not None and enter < last:
            new = states[:, :, enter - first :].to(store.window.dtype)
            slots = store.window_slots(enter, last)
            if store.window_shadow is not None:
                store.window_shadow.index_copy_(2, slots, new)
            struck = self.fault is not None and self.fault.at_write and self.fault.strikes_metadata
            if store.window_code is not None:
                code = self._window_code(store, new)
                if struck:
                    code = self._inject(code, store, kv, enter, event=0, region="window")
                store.window_code.index_copy_(2, slots, code)
            else:
                if struck:
                    new = self._inject(new.view(torch.int16), store, kv, enter, event=0, region="window").view(new.dtype)
                store.window.index_copy_(2, slots, new)

    def _write_step(self, store: _CodedStore, kv: int, states: torch.Tensor, position: torch.Tensor) -> _DecodedWindow | None:
        """:meth:`_write_windowed` for one token under ``torch.compile``: the same bytes, with
        fixed shapes and no host sync (every step computes the row, or key block, that may
        leave the window and stores it only where it does). A coded window is decoded once,
        whole: what leaves is taken from that decode, and it is returned as the window reads
        after this write (the new token's row decoded with it), for the step's read."""
        if states.shape[-2] != 1:
            raise NotImplementedError("ECCCache: under torch.compile a residual window or per-channel keys take one token per "
                                      "step; run the prefill in eager mode")
        window, scheme, t = store.window, self.scheme, store.tables
        rows = window.shape[-2]
        new = states.to(window.dtype)
        coded, window_decode = store.window_code is not None, None
        if scheme.key_quant == "token":  # per token: the token R back leaves the window, from this token's slot
            slot = position % rows
            if coded:  # the window before the write and the new token's row, decoded at once
                code = self._window_code(store, new)
                window_decode = self._window_decoded(store, torch.cat([store.window_code, code], dim=2))
                leaving = self._window_ring(store, window_decode, position - scheme.residual_length, position)[0][:, :, :1]
                store.window_code.index_copy_(2, slot, code)
                window_decode = window_decode.with_row(slot, rows)  # the slot now reads the new token's row
            else:
                leaving = window.index_select(2, slot)
                self._window_put(store, slot, new)
            stored, meta = call_op(torch.ops.ecc.quantize_encode, leaving.to(self.dtype), *t, self.mode.codec, self.group_size,
                                   self.symmetric)
            place = torch.clamp(position - scheme.residual_length, min=0)
            meta_place, leaves = place, position >= scheme.residual_length
        else:  # keys per channel: a block leaves when its last token does, its values (per token) with it
            block = scheme.channel_block
            self._window_put(store, position % rows, new)
            left = position + 1 - scheme.residual_length  # tokens out of the window after this write
            leaves = (left >= block) & (left % block == 0)
            meta_place = torch.clamp(left // block - 1, min=0)
            place = meta_place * block + torch.arange(block, device=window.device)
            if coded:  # the window after the write, decoded once for what leaves and for the step's read
                window_decode = self._window_decoded(store, store.window_code)
                x = self._window_ring(store, window_decode, meta_place * block, position)[0][:, :, :block].to(states.dtype)
            else:
                x = window.index_select(2, place % rows).to(states.dtype)
            if not scheme.residual_length:  # the block ends with this token, which leaves as written (never held)
                x = torch.cat([x[:, :, :-1], states], dim=2)
            if store.channel_block:
                stored, meta = quantize_encode_channels(x, block, CodecTables(*t[:2]), store.meta_tables, self.mode.codec, self.symmetric)
            else:
                stored, meta = call_op(torch.ops.ecc.quantize_encode, x.to(self.dtype), *t, self.mode.codec, self.group_size,
                                       self.symmetric)
                meta_place = place
        store.stored.index_copy_(2, place, torch.where(leaves, stored, store.stored.index_select(2, place)))
        store.meta.index_copy_(2, meta_place, torch.where(leaves, meta, store.meta.index_select(2, meta_place)))
        return window_decode

    def _read_step(self, store: _CodedStore, kv: int, window_decode: _DecodedWindow | None = None) -> torch.Tensor:
        """:meth:`_read_windowed` with the written length a tensor (``torch.compile``, or after
        compiled steps): every row decoded, the unwritten ones neither counted nor used as
        neighbours, the window's rows taken where they are newer than the codewords."""
        written = self.cumulative_length
        rows = self.scheme.quantized_rows(kv, written)
        t, codec, head_dim = store.tables, self.mode.codec, store.layout.head_dim
        if store.channel_block:
            values, status = call_op(torch.ops.ecc.decode, store.stored, t[0], t[1], codec, head_dim)
            decoded = dequantize_channel_cache(values, status, store.meta, store.meta_tables, codec, self.symmetric,
                                               self.mode.interpolate, self.counters, self.dtype, rows=rows,
                                               block=store.channel_block)
        else:
            layout = store.meta_layout
            decoded = call_op(torch.ops.ecc.decode_dequantize, store.stored, store.meta, *t, codec, head_dim, layout.groups,
                              layout.symmetric, self.mode.interpolate, self.counters, self.dtype, rows)
        self._read_window_step(store, rows, window_decode)
        window = store.window
        positions = torch.arange(store.stored.shape[-2], device=window.device)
        held = window.index_select(2, positions % window.shape[-2]).to(self.dtype)
        newer = (positions >= rows).view(-1, 1)
        return torch.where(newer, torch.where((positions < written).view(-1, 1), held, 0), decoded)

    def _read_window_step(self, store: _CodedStore, rows: torch.Tensor, window_decode: _DecodedWindow | None = None) -> None:
        """A read of the window's tokens past the ``rows`` codeword rows, with the written length
        a tensor: their words counted and, for a coded window, decoded (or taken from
        ``window_decode``, this step's write's decode) into ``store.window``, which the views and the
        fused attention read (a bare window is its own memory)."""
        batch, heads = store.window.shape[:2]
        self.window_counters[_WINDOW_READ] += (self.cumulative_length - rows) * (batch * heads * store.layout.head_dim)
        if store.window_code is not None:
            if window_decode is None:
                window_decode = self._window_decoded(store, store.window_code)
            words, slots = self._window_ring(store, window_decode, rows, self.cumulative_length, counted=True)
            store.window.index_copy_(2, slots, words)

    # -- the window's words in Golay (ecc_tensor.window_layout), in modes with a code ---------
    @staticmethod
    def _window_decoded(store: _CodedStore, code: torch.Tensor) -> _DecodedWindow:
        """Window rows ``code`` (``[batch, heads, n, row_bytes]``) decoded with the window's tables."""
        layout = store.window_layout
        nibbles, status = call_op(torch.ops.ecc.decode, code, *store.window_tables, layout.code_name, layout.storage.head_dim)
        return _DecodedWindow(nibbles, status, torch.arange(code.shape[-2], device=code.device))

    def _window_words(self, store: _CodedStore, code: torch.Tensor, counted: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Window rows ``code`` ``[batch, heads, n, row_bytes]``, tokens in order, decoded
        (:meth:`_decoded_window_words`)."""
        nibbles, status, _ = self._window_decoded(store, code)
        return self._decoded_window_words(store, nibbles, status, counted=counted)

    def _decoded_window_words(self, store: _CodedStore, nibbles: torch.Tensor, status: torch.Tensor,
                              valid: torch.Tensor | None = None, counted: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoded window rows (``nibbles`` and ``status`` of ``ecc::decode``, ``[batch, heads,
        n, ...]``, tokens in order) as ``(words [batch, heads, n, head_dim] in the window's
        dtype, erased bool of the same shape)``: decoded with the window's tables (in
        ``-interp`` modes up to ``metadata.INTERPOLATED_CORRECTION_RADIUS`` flips corrected,
        erased beyond), the erased words interpolated from the neighbouring tokens among these
        in ``-interp`` modes (used as read otherwise). ``valid`` (bool ``[n]``): the rows holding
        written tokens; the others are neither neighbours nor counted. ``counted``: add the
        corrected and detected codewords to the window's counters (a read; a token leaving
        the window into codewords is not one)."""
        layout = store.window_layout
        words, erased = layout.words(nibbles).view(store.window.dtype), layout.erased_words(status)
        if self.mode.interpolate:
            ignored = erased if valid is None else erased | ~valid.view(-1, 1)
            words = interpolate_erasures(words, ignored, dim=-2)
        if counted:
            if valid is not None:
                status = torch.where(valid.view(-1, 1), status, 0)
            self.window_counters[_WINDOW_CORRECTED] += (status == STATUS_CORRECTED).sum()
            self.window_counters[_WINDOW_DETECTED] += (status == STATUS_DETECTED).sum()
        return words, erased

    def _window_ring(self, store: _CodedStore, window_decode: _DecodedWindow, first: torch.Tensor, last: torch.Tensor,
                     counted: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`_decoded_window_words` of every row of the window, taken from its decode
        ``window_decode``, as the tokens ``[first, first + rows)`` in order (``first``,
        ``last``: int64 tensors; fixed shapes for ``torch.compile``), those from ``last`` on
        unwritten: ``(words, their rows)``."""
        index = torch.arange(store.window.shape[-2], device=store.window.device)
        slots = (first + index) % store.window.shape[-2]
        words, _ = self._decoded_window_words(store, *window_decode.at(slots), index < last - first, counted)
        return words, slots

    @staticmethod
    def _window_code(store: _CodedStore, words: torch.Tensor) -> torch.Tensor:
        """Window tokens ``words`` ``[batch, heads, n, head_dim]`` as their coded rows."""
        layout = store.window_layout
        return call_op(torch.ops.ecc.encode, layout.nibbles(words), *store.window_tables, layout.code_name)

    def _window_put(self, store: _CodedStore, slots: torch.Tensor, new: torch.Tensor) -> None:
        """Store the tokens ``new`` at window rows ``slots`` (unfaulted: a compiled step)."""
        if store.window_code is None:
            store.window.index_copy_(2, slots, new)
        else:
            store.window_code.index_copy_(2, slots, self._window_code(store, new))

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
                return call_op(torch.ops.ecc.quantize_encode, rows_x.to(self.dtype), *t, self.mode.codec, self.group_size, self.symmetric)
            return quantize_encode_channels(rows_x, store.channel_block, CodecTables(*t[:2]), store.meta_tables, self.mode.codec,
                                            self.symmetric)

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

    def _struck_windowed(self, store: _CodedStore, kv: int) -> tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(codeword rows, their words, their metadata, the window's tokens in order) as this
        read sees them: read-site faults strike all three; the window's reads and silent
        corruptions are counted."""
        written = self._written
        rows = self.scheme.quantized_rows(kv, written)
        words, meta = store.stored[:, :, :rows], store.meta[:, :, : store.meta_rows(rows)]
        coded = store.window_code is not None and written > rows
        held = self._held(store, store.window_code if coded else store.window, rows, written)  # coded: its bytes
        if self.fault is not None and self.fault.at_read:
            self._reads += 1
            if rows:
                words = self._inject(words, store, kv, 0, event=self._reads)
            if self.faults_metadata and rows:
                meta = self._inject(meta, store, kv, 0, event=self._reads, region="metadata")
            if self.faults_metadata and held.shape[-2]:
                struck = self._inject(held if coded else held.view(torch.int16), store, kv, rows, event=self._reads,
                                      region="window")
                held = struck if coded else struck.view(held.dtype)
        erased = None
        if coded:
            held, erased = self._window_words(store, held, counted=True)
            store.window.index_copy_(2, store.window_slots(rows, written), held)  # the words as read, for the views
        if held.shape[-2]:
            self.window_counters[_WINDOW_READ] += held.numel()
            if store.window_shadow is not None:
                clean = self._held(store, store.window_shadow, rows, written)
                wrong = held.view(torch.int16) != clean.view(torch.int16)
                self.window_counters[_WINDOW_SILENT] += (wrong if erased is None else wrong & ~erased).sum()
        return rows, words, meta, held

    def _fused_windowed_view(self, store: _CodedStore, kv: int, window_decode: _DecodedWindow | None = None) -> torch.Tensor:
        """What the fused attention reads under a scheme: the codewords and the window as one
        ECCInt4Tensor (read-faulted copies in eager mode, where faults are injected);
        ``window_decode``: as :meth:`_read_window_step`'s."""
        if is_torchdynamo_compiling():
            self._read_window_step(store, self.scheme.quantized_rows(kv, self.cumulative_length), window_decode)
            return self.keys if kv == 0 else self.values
        if self._mirror_stale:
            return self._read_step(store, kv, window_decode)
        rows, words, meta, held = self._struck_windowed(store, kv)
        if store.shadow is not None and rows:
            self._count_silent(words, meta, store, rows)
        if self.fault is None or not self.fault.at_read:
            return self.keys if kv == 0 else self.values
        all_words, all_meta, window = store.stored.clone(), store.meta.clone(), store.window.clone()
        all_words[:, :, :rows] = words
        all_meta[:, :, : meta.shape[-2]] = meta
        window.index_copy_(2, store.window_slots(rows, self._written), held.to(window.dtype))
        return self._public_view(store, all_words, all_meta, window)

    def _read_windowed(self, store: _CodedStore, kv: int) -> torch.Tensor:
        """The written tokens: codewords decoded, corrected, dequantized (and interpolated,
        among the codeword rows), then the window's tokens as held; read-site faults strike
        both."""
        written = self._written
        rows, words, meta, held = self._struck_windowed(store, kv)
        batch, heads, length, _ = store.stored.shape
        out = torch.zeros(batch, heads, length, store.layout.head_dim, dtype=self.dtype, device=self.device)
        t, codec = store.tables, self.mode.codec
        if rows:
            if store.channel_block:
                values, status = call_op(torch.ops.ecc.decode, words, t[0], t[1], codec, store.layout.head_dim)
                out[:, :, :rows] = dequantize_channel_cache(values, status, meta, store.meta_tables, codec, self.symmetric,
                                                            self.mode.interpolate, self.counters, self.dtype)
            else:
                layout = store.meta_layout
                out[:, :, :rows] = call_op(torch.ops.ecc.decode_dequantize, words, meta, *t, codec, store.layout.head_dim, layout.groups,
                                                                  layout.symmetric, self.mode.interpolate, self.counters, self.dtype)
            if store.shadow is not None:
                self._count_silent(words, meta, store, rows)
        if held.shape[-2]:
            out[:, :, rows:written] = held.to(self.dtype)
        return out


def _flipped_bits(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """Bits that differ between two tensors of one dtype and shape (int64 scalar)."""
    diff = before.contiguous().view(torch.uint8) ^ after.contiguous().view(torch.uint8)
    return int_to_bits(diff, 8).sum()
