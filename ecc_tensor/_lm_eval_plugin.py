"""Registers the ``hf-ecc`` model with lm-eval without importing either package at startup.

lm-eval 0.4.x (through 0.4.13) discovers models only from its own registry; the entry-point
plugin mechanism came later (upstream PR #4013). So that the plain command
``lm_eval --model hf-ecc ...`` works after ``pip install ecc-tensor[eval]``, the wheel ships
``ecc_tensor_lm_eval.pth``, whose one line calls :func:`install` at interpreter start. That
adds a tiny meta-path finder which waits for ``lm_eval.models`` to be imported and then
registers ``hf-ecc`` as a lazy ``"module:Class"`` placeholder, exactly as lm-eval registers
its own models. Nothing heavy is imported until lm-eval asks for the model. Where lm-eval
has entry points, the ``[project.entry-points."lm_eval.models"]`` entry does the same.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

MODEL_NAME = "hf-ecc"
MODEL_TARGET = "ecc_tensor.integrations.lm_eval:ECCHFLM"


def register() -> None:
    from lm_eval.api.registry import model_registry

    if MODEL_NAME not in model_registry:
        model_registry.register(MODEL_NAME, target=MODEL_TARGET)


class _AfterLmEvalModels(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "lm_eval.models":
            return None
        sys.meta_path.remove(self)  # find the real module once, then step aside
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            register()

        spec.loader.exec_module = exec_module
        return spec


def install() -> None:
    if "lm_eval.models" in sys.modules:
        register()
    elif not any(isinstance(f, _AfterLmEvalModels) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterLmEvalModels())
