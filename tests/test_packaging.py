"""The design card's layout: ops/ and integrations/ ship inside ecc_tensor."""

import importlib

import pytest


@pytest.mark.parametrize("module", ["ecc_tensor.ops", "ecc_tensor.integrations", "ecc_tensor.codecs"])
def test_subpackages_import(module):
    importlib.import_module(module)


def test_no_generic_top_level_ops():
    import ecc_tensor.ops

    assert ecc_tensor.ops.__name__ == "ecc_tensor.ops"
    assert importlib.util.find_spec("ops") is None or "ecc_tensor" not in str(importlib.util.find_spec("ops").origin)
