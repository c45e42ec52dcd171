"""torchao imported without its import-time messages. Its optional C++ kernels (unused here)
fail to load against other torch builds ("Failed to load ..._C_mxfp8..."), and it registers
enums as pytree constants in a way torch now calls deprecated; neither concerns a user of this
package, and both reached them at the start of every run: torchao comes in through this
package's tensor subclasses and through transformers' torchao quantizer, which
``transformers.modeling_utils`` imports."""

from __future__ import annotations

import contextlib
import logging

_LOGGERS = ("torchao", "torch.utils._pytree")


@contextlib.contextmanager
def quiet_torchao_imports():
    """Within: the loggers of torchao's import-time messages at ERROR (restored after)."""
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)
