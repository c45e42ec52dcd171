"""An ECC-protected static KV cache for any transformers causal LM.

    from ecc_tensor.integrations.hf import ECCCache
    cache = ECCCache(model.config, max_batch_size=1, max_cache_len=512, mode="int4-hamming84-interp",
                     fault=FaultModel("bsc", 1e-3, seed=0))
    out = model.generate(**inputs, cache=cache, max_new_tokens=50)   # past_key_values= before transformers 5.23
    cache.stats()   # {'read': ..., 'corrected': ..., 'parity_only': ..., 'detected': ..., 'injected': ..., 'silent': ...,
                    #  'metadata': {the same for the scales}, 'layers': [...]}

The cache is a transformers ``Cache`` whose layers (:class:`ECCLayer`, in
:mod:`ecc_tensor.integrations.hf_layers`) follow ``StaticLayer``:
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
dequantizes and interpolates K/V in registers inside the attention kernel; the ``fp8`` mode
returns :class:`FP8KVTensor` views of its E4M3 words, which ``ecc::fp8_decode_attention``
reads. Prefill (more than ``MAX_FUSED_QUERIES`` query tokens) decodes one layer's K/V and runs
SDPA.

    model.set_attn_implementation("ecc")
    cache = ECCCache(model.config, max_batch_size=8, max_cache_len=32768, device="cuda", dtype=torch.bfloat16)
"""

from __future__ import annotations

import functools
import inspect

import torch

from ecc_tensor.quiet_imports import quiet_torchao_imports

with quiet_torchao_imports():  # transformers.modeling_utils imports its torchao quantizer
    from transformers.cache_utils import Cache
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
    from transformers.modeling_utils import AttentionInterface

from ecc_tensor import counters as C
from ecc_tensor.faults import FaultModel
from ecc_tensor.modes import get_mode
from ecc_tensor.quant_scheme import DEFAULT_CHANNEL_BLOCK, QuantScheme
from ecc_tensor.fp8_tensor import FP8KVTensor, fp8_decode_attention, fp8_dequantize
from ecc_tensor.tensor import MAX_FUSED_QUERIES, ECCInt4Tensor, ecc_decode_attention, ecc_dequantize

from .hf_layers import WINDOW_COUNTERS, DenseLayer, ECCLayer

__all__ = ["ATTENTION_NAME", "WINDOW_COUNTERS", "DenseLayer", "ECCCache", "ECCLayer", "cache_argument", "ecc_attention_forward"]

ATTENTION_NAME = "ecc"  # model.set_attn_implementation("ecc"), or from_pretrained(..., attn_implementation="ecc")



@functools.cache
def _forward_takes_cache(model_class: type) -> bool:
    return "cache" in inspect.signature(model_class.forward).parameters


def cache_argument(model, cache) -> dict:
    """The keyword a model's ``forward`` and ``generate`` take a cache by: ``{"cache": cache}``
    from transformers 5.23 on (where ``past_key_values=`` is deprecated), else
    ``{"past_key_values": cache}`` (5.17-5.22)."""
    return {"cache" if _forward_takes_cache(type(model)) else "past_key_values": cache}


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
            ``int4-secded72-interp`` (SECDED(72,64); :mod:`ecc_tensor.modes`).
        fault: a :class:`FaultModel` (site write/read/both; ``targets="all"`` strikes the
            stored scales too), or None.
        group_size: quantization group along head_dim (None: one scale per token and head).
        symmetric: symmetric (the paper's) or asymmetric INT4.
        track_silent: keep a clean shadow copy to count silent corruptions (simulation).
            Default: whenever faults are injected. With faults and ``track_silent=False``,
            :meth:`stats` reports the silent counts as None (not measured), never 0.
        attention: ``"fused"`` returns ECCInt4Tensor K/V (``fp8``: FP8KVTensor; the 16-bit
            modes: their dense words) for the ``"ecc"`` attention function (decode fused into
            attention); ``"dense"`` returns decoded K/V for any attention
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
            the last ``residual_length`` tokens kept as 16-bit words, in Golay(24,12) in every
            mode with a code, bare in ``int4`` (:mod:`ecc_tensor.window_layout`; faulted with
            ``targets="all"`` and counted in ``stats()["window"]``). The fused attention reads
            the per-channel scales and the window itself. The 16-bit and fp8 modes ignore
            these.
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
        ``window``: the recent window's 16-bit words read, bits injected, its Golay codewords
        corrected and detected (in modes with a code), and words silently corrupted (zero
        without a ``residual_length`` or per-channel keys).
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
    on the codewords (``ecc::fp8_decode_attention`` on an ``fp8`` cache's words); a prefill
    decodes this layer's K/V and runs SDPA. Dense K/V (any other
    cache) go to transformers' SDPA attention unchanged."""
    if not isinstance(key, (ECCInt4Tensor, FP8KVTensor)):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    fp8 = isinstance(key, FP8KVTensor)
    if query.shape[2] > MAX_FUSED_QUERIES or dropout > 0.0:
        dequantize = fp8_dequantize if fp8 else ecc_dequantize
        dense = (dequantize(key), dequantize(value))
        return sdpa_attention_forward(module, query, *dense, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal,
                                      **kwargs)
    if attention_mask is not None and attention_mask.shape[-1] != key.shape[-2]:
        attention_mask = attention_mask[..., : key.shape[-2]]
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    # Without a mask, the queries are the last positions written (decoding, speculative verification).
    causal = bool(causal) and attention_mask is None and query.shape[2] > 1
    attend = fp8_decode_attention if fp8 else ecc_decode_attention
    out = attend(query, key, value, attn_mask=attention_mask, scale=scaling, is_causal=causal)
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(ATTENTION_NAME, ecc_attention_forward)
AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)
