"""ops/ and integrations/ at the top of the repository ship inside ecc_tensor."""

import importlib

import pytest


@pytest.mark.parametrize("module", ["ecc_tensor.ops", "ecc_tensor.integrations", "ecc_tensor.codecs"])
def test_subpackages_import(module):
    importlib.import_module(module)


def test_no_generic_top_level_ops():
    import ecc_tensor.ops

    assert ecc_tensor.ops.__name__ == "ecc_tensor.ops"
    assert importlib.util.find_spec("ops") is None or "ecc_tensor" not in str(importlib.util.find_spec("ops").origin)


def test_every_subpackage_is_shipped():
    """A subpackage missing from pyproject's explicit list would be absent from a wheel."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        "ecc_tensor." + ".".join(p.parent.relative_to(root / "ecc_tensor").parts) if p.parent != root / "ecc_tensor" else "ecc_tensor"
        for p in (root / "ecc_tensor").rglob("__init__.py")
        if "lm_eval_tasks" not in p.parent.relative_to(root / "ecc_tensor").parts[1:]
    }
    assert found <= listed, found - listed
