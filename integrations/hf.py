"""An ECC-protected static KV cache for any transformers causal LM.

    from ecc_tensor.integrations.hf import ECCCache
    cache = ECCCache(model.config, max_batch_size=1, max_cache_len=512, mode="int4-hamming84-interp",
                     fault=FaultModel("bsc", 1e-3, seed=0))
    out = model.generate(**inputs, past_key_values=cache, max_new_tokens=50)
    cache.stats()   # {'read': ..., 'corrected': ..., 'detected': ..., 'injected': ..., 'silent': ..., 'layers': [...]}

The cache is a transformers ``Cache`` whose layers (:class:`ECCLayer`) follow ``StaticLayer``:
preallocated ``[batch, kv_heads, max_cache_len, ...]`` storage, ``update`` writes the new
tokens in place (quantize + encode only those) and returns what attention needs: the whole
cache decoded, corrected, dequantized (and interpolated) from the stored codewords, so every
attention read, prefill included, goes through the codes and any corruption reaches the model.

Faults (a :class:`~ecc_tensor.faults.FaultModel`) strike the stored bytes. Each stored byte has
the address ``(layer, K/V, position, batch, head, byte)`` laid out position-major, so the
flips a token receives do not depend on how the sequence was chunked into writes. Write-site
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
from ecc_tensor.codecs import get_codec
from ecc_tensor.faults import FaultModel
from ecc_tensor.modes import CacheMode, get_mode
from ecc_tensor.storage import StorageLayout
from ecc_tensor.tensor import MAX_FUSED_QUERIES, ECCInt4Tensor, ecc_decode_attention

__all__ = ["ATTENTION_NAME", "ECCCache", "ECCLayer", "ecc_attention_forward"]

ATTENTION_NAME = "ecc"  # model.set_attn_implementation("ecc"), or from_pretrained(..., attn_implementation="ecc")

_ADDRESS_BITS_PER_STORE = 40  # each (layer, K/V) store gets 2^40 byte addresses
_READ_EVENTS_PER_SEQUENCE = 1 << 20
_INT_OF_WIDTH = {8: torch.int8, 16: torch.int16, 32: torch.int32, 64: torch.int64}


class _Store:
    """The buffers of one of a layer's K or V tensors."""

    def __init__(self, mode: CacheMode, shape, dtype, device, group_size, symmetric, track_silent):
        batch, heads, length, head_dim = shape
        self.mode = mode
        if not mode.quantized:
            self.dense = torch.zeros(shape, dtype=dtype, device=device)
            self.bits = dtype.itemsize * 8
            self.buffers = [self.dense]
        else:
            self.layout = StorageLayout(mode.codec, head_dim)
            groups = 1 if group_size is None else head_dim // group_size
            self.tables = get_codec(mode.codec).tables(device)
            self.stored = torch.zeros(batch, heads, length, self.layout.row_bytes, dtype=torch.uint8, device=device)
            self.scale = torch.zeros(batch, heads, length, groups, dtype=torch.float32, device=device)
            self.zero = None if symmetric else torch.zeros_like(self.scale)
            self.bits = self.layout.exposed_bits_per_byte
            self.buffers = [t for t in (self.stored, self.scale, self.zero) if t is not None]
        # A clean copy of what was written, for counting silent corruptions in simulation.
        self.shadow = torch.zeros_like(self.buffers[0]) if track_silent else None

    @property
    def words(self) -> torch.Tensor:
        """The stored words faults strike: codeword bytes, or the dense values as integers."""
        return self.stored if self.mode.quantized else self.dense.view(_INT_OF_WIDTH[self.bits])


class ECCLayer(StaticLayer):
    """One decoder layer's K/V storage in a cache mode (DESIGN.md section 6).

    ``keys``/``values`` are :class:`ECCInt4Tensor` views of the stored codewords (model-dtype
    tensors in mode ``fp16``); ``counters`` is this layer's int64 ``[5]`` counter tensor.
    """

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
    ):
        super().__init__(max_cache_len=max_cache_len)
        self.fused_attention = fused_attention and mode.quantized
        self.mode = mode
        self.layer_idx = layer_idx
        self.fault = fault if fault is not None and fault.ber > 0 else None
        self.group_size = group_size
        self.symmetric = symmetric
        self.track_silent = track_silent
        self.is_sliding = is_sliding
        self.counters = C.new_counters()
        self.sequence = 0  # advances on reset(): fresh fault draws per sequence
        self._reads = 0
        self._written = 0  # Python mirror of cumulative_length, for eager-mode checks and fault addresses
        self._mirror_stale = False

    # -- allocation -----------------------------------------------------------------------
    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.dtype, self.device = key_states.dtype, key_states.device
        self.batch_size, self.num_heads = key_states.shape[:2]
        self.k_head_dim, self.v_head_dim = key_states.shape[-1], value_states.shape[-1]
        if self.group_size is not None and (self.k_head_dim % self.group_size or self.v_head_dim % self.group_size):
            raise ValueError(f"group_size {self.group_size} does not divide head_dim {self.k_head_dim}")
        store = lambda head_dim: _Store(  # noqa: E731
            self.mode, (self.batch_size, self.num_heads, self.max_cache_len, head_dim), self.dtype, self.device,
            self.group_size, self.symmetric, self.track_silent,
        )
        self._k, self._v = store(self.k_head_dim), store(self.v_head_dim)
        self.cumulative_length = self.cumulative_length.to(self.device)
        self.counters = self.counters.to(self.device)
        self.keys, self.values = self._public_view(self._k), self._public_view(self._v)
        if not is_torchdynamo_compiling():
            for t in (*self._k.buffers, *self._v.buffers, self.cumulative_length, self.counters):
                torch._dynamo.mark_static_address(t)
        self.is_initialized = True

    def _public_view(self, store: _Store, words: torch.Tensor | None = None) -> torch.Tensor:
        """The stored (or given, e.g. read-faulted) words as an ECCInt4Tensor that knows how
        many rows are written, whether to interpolate and where to count its decodes."""
        if not self.mode.quantized:
            return store.dense
        return ECCInt4Tensor(
            store.stored if words is None else words, store.scale, store.tables.encode_table,
            store.tables.syndrome_table, self.mode.codec, (*store.stored.shape[:-1], store.layout.head_dim), self.dtype,
            zero=store.zero, counters=self.counters, seq_len=self.cumulative_length, interpolate=self.mode.interpolate,
        )

    # -- the cache protocol ---------------------------------------------------------------
    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        new_tokens = key_states.shape[-2]
        compiling = is_torchdynamo_compiling()
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

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.max_cache_len, 0

    def reset(self) -> None:
        """Forget the sequence: zero every stored byte (nothing leaks into the next sequence)
        and draw fresh faults for the next one. Counters keep accumulating (see reset_stats)."""
        if self.is_initialized:
            for store in (self._k, self._v):
                for t in store.buffers:
                    t.zero_()
                if store.shadow is not None:
                    store.shadow.zero_()
        self.cumulative_length.zero_()
        self._written, self._mirror_stale, self._reads = 0, False, 0
        self.sequence += 1

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        raise NotImplementedError("ECCCache does not support beam search")

    # -- writes and reads -----------------------------------------------------------------
    def _fault_address(self, kv: int, first_position: int, store: _Store) -> int:
        batch, heads = self.batch_size, self.num_heads
        per_position = batch * heads * store.words.shape[-1]
        return ((self.layer_idx * 2 + kv) << _ADDRESS_BITS_PER_STORE) + first_position * per_position

    def _inject(self, words: torch.Tensor, store: _Store, kv: int, first_position: int, event: int) -> torch.Tensor:
        """Faults on ``words`` ``[batch, heads, positions, width]`` at their position-major addresses."""
        position_major = words.permute(2, 0, 1, 3).contiguous()
        step = (self.sequence * _READ_EVENTS_PER_SEQUENCE + event) & 0xFFFFFFFF
        flipped, n = ops.inject(position_major, store.bits, self.fault, offset=self._fault_address(kv, first_position, store), step=step)
        self.counters[C.INJECTED] += n
        return flipped.permute(1, 2, 0, 3)

    def _write(self, store: _Store, kv: int, states: torch.Tensor, position: torch.Tensor, first: int) -> None:
        if not self.mode.quantized:
            new = states.to(self.dtype)
            if store.shadow is not None:
                store.shadow.index_copy_(2, position, new)
            if self.fault is not None and self.fault.at_write:
                words = self._inject(new.view(_INT_OF_WIDTH[store.bits]), store, kv, first, event=0)
                new = words.view(self.dtype)
            store.dense.index_copy_(2, position, new)
            return
        t = store.tables
        stored, scale, zero = torch.ops.ecc.quantize_encode(
            states, t.encode_table, t.syndrome_table, self.mode.codec, self.group_size, self.symmetric
        )
        if store.shadow is not None:
            store.shadow.index_copy_(2, position, stored)
        if self.fault is not None and self.fault.at_write:
            stored = self._inject(stored, store, kv, first, event=0)
        store.stored.index_copy_(2, position, stored)
        store.scale.index_copy_(2, position, scale)
        if store.zero is not None:
            store.zero.index_copy_(2, position, zero)

    def _read_words(self, store: _Store, kv: int) -> torch.Tensor:
        """The stored words as this read sees them (read-site faults are transient)."""
        words = store.words
        if self.fault is None or not self.fault.at_read:
            return words
        self._reads += 1
        words = words.clone()
        written = words[:, :, : self._written]
        written.copy_(self._inject(written, store, kv, 0, event=self._reads))
        return words

    def _read(self, store: _Store, kv: int) -> torch.Tensor:
        words = self._read_words(store, kv)
        if self.fused_attention:
            # Attention decodes (and counts) the codewords itself: hand it the words.
            if store.shadow is not None:
                self.counters[C.SILENT] += self._silent(words, store)
            if words is store.words:
                return self.keys if kv == 0 else self.values  # built once: nothing to construct per step
            return self._public_view(store, words)
        if not self.mode.quantized:
            batch, heads, _, head_dim = store.dense.shape
            self.counters[C.READ] += self.cumulative_length * (batch * heads * head_dim)
            if store.shadow is not None:
                shadow = store.shadow.view(words.dtype)[:, :, : self._written]
                self.counters[C.SILENT] += (words[:, :, : self._written] != shadow).sum()
            return words.view(self.dtype)
        t = store.tables
        out = torch.ops.ecc.decode_dequantize(
            words, store.scale, store.zero, t.encode_table, t.syndrome_table, self.mode.codec,
            store.layout.head_dim, self.mode.interpolate, self.counters, self.dtype, self.cumulative_length,
        )
        if store.shadow is not None:
            self.counters[C.SILENT] += self._silent(words, store)
        return out

    def _silent(self, words: torch.Tensor, store: _Store) -> torch.Tensor:
        """Values that decode differently from what was written, in codewords not flagged."""
        t, head_dim = store.tables, store.layout.head_dim
        written = slice(0, self._written)
        got, status = torch.ops.ecc.decode(words[:, :, written], t.encode_table, t.syndrome_table, self.mode.codec, head_dim)
        want, _ = torch.ops.ecc.decode(store.shadow[:, :, written], t.encode_table, t.syndrome_table, self.mode.codec, head_dim)
        return ((got != want) & ~store.layout.erased_values(status)).sum()


class ECCCache(Cache):
    """A static, preallocated KV cache storing every layer's K/V in an ECC mode.

    Args:
        config: the model's config (any decoder-only HF causal LM: GPT-2, Llama, Mistral, Qwen2, ...).
        max_batch_size: batch size; with ``device`` and ``dtype`` the storage is allocated
            now (needed to compile a graph that includes the first write), else on first use.
        max_cache_len: most tokens the cache holds (prompt + generated).
        mode: one of ``fp16``, ``int4``, ``int4-hamming``, ``int4-hamming84``,
            ``int4-hamming84-interp``, ``int12-golay``.
        fault: a :class:`FaultModel` (site write/read/both), or None.
        group_size: quantization group along head_dim (None: one scale per token and head).
        symmetric: symmetric (the paper's) or asymmetric INT4.
        track_silent: keep a clean shadow copy to count silent corruptions (simulation).
        attention: ``"fused"`` returns ECCInt4Tensor K/V for the ``"ecc"`` attention function
            (decode fused into attention); ``"dense"`` returns decoded K/V for any attention
            implementation; ``"auto"`` (default) is ``"fused"`` when the model's config uses
            ``"ecc"`` attention, else ``"dense"``.
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
        track_silent: bool = False,
        attention: str = "auto",
        **kwargs,
    ):
        self.mode = get_mode(mode)
        if attention not in ("auto", "fused", "dense"):
            raise ValueError(f"attention must be 'auto', 'fused' or 'dense', got {attention!r}")
        if fault is not None and not isinstance(fault, FaultModel):
            raise ValueError(f"fault must be an ecc_tensor.faults.FaultModel or None, got {type(fault).__name__}")
        if not isinstance(max_cache_len, int) or max_cache_len < 1:
            raise ValueError(f"max_cache_len must be a positive int, got {max_cache_len!r}")
        text = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config
        layer_types = _attention_layer_types(text)
        window = getattr(text, "sliding_window", None)
        if "sliding_attention" in layer_types and window is not None and max_cache_len > window:
            raise NotImplementedError(
                f"{type(text).__name__} has sliding-window layers (window {window}); ECCCache keeps every token, "
                f"so max_cache_len ({max_cache_len}) must not exceed the window"
            )
        self.config = text
        implementation = getattr(config, "_attn_implementation", None)
        if attention == "auto":
            attention = "fused" if implementation == ATTENTION_NAME else "dense"
        elif attention == "fused" and implementation not in (None, ATTENTION_NAME):
            raise ValueError(
                f"attention='fused' hands ECCInt4Tensor K/V to the model's attention, which is {implementation!r}: "
                f"call model.set_attn_implementation({ATTENTION_NAME!r}) before creating the cache"
            )
        self.attention = attention
        self._max_cache_len = max_cache_len
        self._max_batch_size = max_batch_size
        layers = [
            ECCLayer(
                max_cache_len, self.mode, i, fault, group_size, symmetric, track_silent, layer_type == "sliding_attention",
                fused_attention=attention == "fused",
            )
            for i, layer_type in enumerate(layer_types)
        ]
        super().__init__(layers=layers)
        if max_batch_size is not None and device is not None and dtype is not None:
            heads = getattr(text, "num_key_value_heads", None) or text.num_attention_heads
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

    def stats(self) -> dict:
        """Counters summed over layers, plus ``layers``: the same per layer."""
        per_layer = [C.counters_to_dict(layer.counters) for layer in self.layers]
        total = {name: sum(d[name] for d in per_layer) for name in C.COUNTER_NAMES}
        return {**total, "layers": per_layer}

    def reset_stats(self) -> None:
        for layer in self.layers:
            layer.counters.zero_()


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
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal, **kwargs)
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
