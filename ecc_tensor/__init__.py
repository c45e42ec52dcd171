"""ecc_tensor: error-correcting codes for INT4-quantized transformer KV caches."""

__version__ = "0.1.0"

# Public names are imported lazily: `import ecc_tensor` stays free of torch, because the
# lm-eval plugin hook (ecc_tensor/_lm_eval_plugin.py) runs at every interpreter start, and
# importing the tensor subclass registers the Triton ops, which reads TRITON_INTERPRET.
_LAZY = {
    "CODEC_NAMES": ("codecs", "CODEC_NAMES"),
    "get_codec": ("codecs", "get_codec"),
    "ECCInt4Tensor": ("tensor", "ECCInt4Tensor"),
    "FP8KVTensor": ("fp8_tensor", "FP8KVTensor"),
    "ecc_decode_attention": ("tensor", "ecc_decode_attention"),
    "ecc_dequantize": ("tensor", "ecc_dequantize"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f".{module}", __name__), attr)
    raise AttributeError(f"module 'ecc_tensor' has no attribute {name!r}")


__all__ = ["CODEC_NAMES", "ECCInt4Tensor", "FP8KVTensor", "ecc_decode_attention", "ecc_dequantize", "get_codec", "__version__"]
