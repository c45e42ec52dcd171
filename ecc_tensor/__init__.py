"""ecc_tensor: error-correcting codes for INT4-quantized transformer KV caches."""

from .codecs import CODEC_NAMES, get_codec

__version__ = "0.1.0"


def __getattr__(name):
    # Lazy: importing the tensor subclass registers the Triton ops, which reads
    # TRITON_INTERPRET; `import ecc_tensor` alone stays light.
    if name == "ECCInt4Tensor":
        from .tensor import ECCInt4Tensor

        return ECCInt4Tensor
    raise AttributeError(f"module 'ecc_tensor' has no attribute {name!r}")


__all__ = ["CODEC_NAMES", "ECCInt4Tensor", "get_codec", "__version__"]
