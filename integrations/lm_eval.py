"""``hf-ecc``: lm-evaluation-harness's HFLM with every forward reading an ECC KV cache.

    lm_eval --model hf-ecc \\
        --model_args pretrained=PATH,cache_mode=int4-hamming84-interp,ber=1e-3,seed=0,fault_model=bsc,fault_targets=all \\
        --tasks TASK --device cpu

``key_quant=channel``, ``residual_length=128`` and ``channel_block=128`` choose the
quantization scheme (:mod:`ecc_tensor.quant_scheme`); the defaults are the paper's.

Every ``_model_call`` (loglikelihood, rolling perplexity) and ``_model_generate`` runs the
model with a fresh :class:`~ecc_tensor.integrations.hf.ECCCache` sized for that batch, so
prefill attention reads keys and values back through the stored codewords and faults reach
the model. Each call draws its own faults (seed ``seed * 1000003 + call``). The counters add
up in :attr:`ECCHFLM.ecc_stats` and are logged (every 50 calls and at exit).
"""

from __future__ import annotations

import atexit
import dataclasses
import logging

import torch
from lm_eval.models.huggingface import HFLM

from ecc_tensor.counters import COUNTER_NAMES, VALUE_COUNTERS
from ecc_tensor.faults import FaultModel
from ecc_tensor.integrations.hf import WINDOW_COUNTERS, ECCCache, cache_argument
from ecc_tensor.modes import get_mode
from ecc_tensor.quant_scheme import DEFAULT_CHANNEL_BLOCK, QuantScheme

# a child of lm-eval's logger, so that its CLI shows these lines
logger = logging.getLogger("lm_eval.models.hf_ecc")
_LOG_EVERY = 50


class ECCHFLM(HFLM):
    def __init__(
        self,
        pretrained,
        cache_mode: str = "int4-hamming84-interp",
        ber: float = 0.0,
        seed: int = 0,
        fault_model: str = "bsc",
        fault_site: str = "write",
        fault_targets: str = "all",
        group_size: int | None = None,
        key_quant: str = "token",
        residual_length: int = 0,
        channel_block: int = DEFAULT_CHANNEL_BLOCK,
        **kwargs,
    ) -> None:
        # model_args arrive as strings; QuantScheme checks them before the model loads.
        self.scheme = QuantScheme(str(key_quant), "token", int(residual_length), int(channel_block))
        self.cache_mode = get_mode(str(cache_mode)).name
        FaultModel(fault_model, float(ber), int(seed), site=fault_site, targets=fault_targets)  # validate before loading the model
        if isinstance(pretrained, str):  # the shipped names (ref-gpt2, ref-llama) as every ecc-tensor command takes them
            from ecc_tensor.evaluation.models import resolve_model_path

            pretrained = resolve_model_path(pretrained)
        super().__init__(pretrained=pretrained, **kwargs)
        if self.backend != "causal":
            raise ValueError("hf-ecc supports decoder-only causal LMs (ECCCache protects their self-attention KV cache)")
        self.ber, self.seed, self.fault_model, self.fault_site = float(ber), int(seed), fault_model, fault_site
        self.fault_targets = fault_targets
        self.group_size = None if group_size in (None, "", "None") else int(group_size)
        self.ecc_stats = dict.fromkeys(COUNTER_NAMES + tuple(f"window_{k}" for k in WINDOW_COUNTERS), 0)
        self._calls = 0
        atexit.register(self._log_stats)

    def _cache(self, batch: int, length: int) -> ECCCache:
        fault = None
        if self.ber > 0:
            seed = (self.seed * 1_000_003 + self._calls) % (1 << 63)
            fault = FaultModel(self.fault_model, self.ber, seed, site=self.fault_site, targets=self.fault_targets)
        self._calls += 1
        return ECCCache(self.model.config, batch, length, mode=self.cache_mode, fault=fault, group_size=self.group_size,
                        **dataclasses.asdict(self.scheme))

    def _record(self, cache: ECCCache) -> None:
        stats = cache.stats()
        flat = {**{k: stats[k] for k in VALUE_COUNTERS}, **{f"meta_{k}": v for k, v in stats["metadata"].items()},
                **{f"window_{k}": v for k, v in stats["window"].items()}}
        for name in self.ecc_stats:
            self.ecc_stats[name] += flat[name]
        if self._calls % _LOG_EVERY == 0:
            self._log_stats()

    def _log_stats(self) -> None:
        logger.info("hf-ecc %s at BER %g (%s, %s site, %s targets): %s", self.cache_mode, self.ber, self.fault_model, self.fault_site,
                    self.fault_targets, self.ecc_stats)

    def _model_call(self, inps: torch.Tensor, attn_mask=None, labels=None) -> torch.Tensor:
        cache = self._cache(inps.shape[0], inps.shape[1])
        with (
            torch.no_grad(),
            torch.autocast(device_type=self.device.type, dtype=self.mixed_precision_dtype, enabled=self.mixed_precision_dtype is not None),
        ):
            logits = self.model(inps, **cache_argument(self.model, cache), use_cache=True).logits
        self._record(cache)
        return logits

    def _model_generate(self, context, max_length: int, stop, **generation_kwargs):
        cache = self._cache(context.shape[0], max_length)
        out = super()._model_generate(context, max_length, stop, **cache_argument(self.model, cache), **generation_kwargs)
        self._record(cache)
        return out
