"""Resolve ``--model``: a shipped reference by short name, a local HF directory, or a hub name."""

from __future__ import annotations

import difflib
from pathlib import Path

import torch

from ..quiet_imports import quiet_torchao_imports

# Short names of the reference models that ship with the package (see the reference-models
# issue); each is a directory under ecc_tensor/evaluation/reference/ once built.
REFERENCE_DIR = Path(__file__).with_name("reference")
REFERENCE_MODELS = ("ref-gpt2", "ref-llama")


class ModelNotFound(ValueError):
    pass


def resolve_model_path(name: str) -> str:
    """The path or hub id to hand to ``from_pretrained``; raises :class:`ModelNotFound` with what to do."""
    if name in REFERENCE_MODELS:
        path = REFERENCE_DIR / name
        if not (path / "config.json").exists():
            raise ModelNotFound(
                f"reference model {name!r} is not built in this installation ({path} is missing); "
                f"pass --model PATH to a local Hugging Face checkpoint directory instead"
            )
        return str(path)
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ModelNotFound(f"{path} exists but is not a Hugging Face model directory (no config.json)")
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ModelNotFound(f"model path {name!r} does not exist")
    close = difflib.get_close_matches(name, REFERENCE_MODELS, n=1, cutoff=0.7)
    if close:  # a typo of a shipped name, not a hub id: no minute of hub retries
        raise ModelNotFound(f"unknown model {name!r}; did you mean {close[0]!r}? (shipped: {', '.join(REFERENCE_MODELS)})")
    return name  # a hub id: from_pretrained tries the hub (or its local cache)


def load_config(name: str):
    """The model's config alone (no weights), for checks before the model loads."""
    with quiet_torchao_imports():
        from transformers import AutoConfig

    source = resolve_model_path(name)
    try:
        return AutoConfig.from_pretrained(source)
    except OSError as err:
        raise ModelNotFound(
            f"could not load {name!r}: it is not a local directory and the hub did not provide it "
            f"(offline? check the name, or download it and pass --model PATH; shipped: {', '.join(REFERENCE_MODELS)}). {err}"
        ) from err


def load_model_and_tokenizer(name: str, device: str | torch.device = "cpu", dtype: torch.dtype | None = None):
    """``(model in eval mode on device, tokenizer)`` for ``name`` (see :func:`resolve_model_path`)."""
    with quiet_torchao_imports():
        # transformers resolves its names lazily: modeling_utils, which imports the torchao
        # quantizer, is imported here rather than inside from_pretrained.
        import transformers.modeling_utils  # noqa: F401
        from transformers import AutoModelForCausalLM, AutoTokenizer

    source = resolve_model_path(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype or "auto")
    except OSError as err:
        raise ModelNotFound(
            f"could not load {name!r}: it is not a local directory and the hub did not provide it "
            f"(offline? set HF_HUB_OFFLINE=0 and check the name, or download it and pass --model PATH). {err}"
        ) from err
    return model.to(device).eval(), tokenizer
