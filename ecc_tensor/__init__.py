"""ecc_tensor: error-correcting codes for INT4-quantized transformer KV caches."""

from .codecs import CODEC_NAMES, get_codec

__version__ = "0.1.0"

__all__ = ["CODEC_NAMES", "get_codec", "__version__"]
