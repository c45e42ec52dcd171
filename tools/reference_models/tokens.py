"""A text file's token ids under a tokenizer, tokenized once and cached beside the file
(uint16, keyed by the tokenizer's definition), in parallel chunks of about 1 MB."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch


def cached_tokens(tokenizer, text_file: Path) -> torch.Tensor:
    if len(tokenizer) > np.iinfo(np.uint16).max:
        raise ValueError("a vocabulary over 65,535 does not fit the uint16 token cache")
    digest = hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest()[:12]
    cache = text_file.with_name(f"{text_file.name}.{digest}.u16")
    if not cache.exists():
        text = text_file.read_text(encoding="utf-8")
        # Split at paragraph breaks near every 1 MB: chunks tokenize in parallel, and a break
        # between paragraphs tokenizes as it would inside one text.
        cuts, start = [], 0
        while start < len(text):
            end = text.find("\n\n", start + (1 << 20))
            end = len(text) if end < 0 else end + 2
            cuts.append(text[start:end])
            start = end
        ids = [t for chunk in tokenizer(cuts, add_special_tokens=False).input_ids for t in chunk]
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")  # two processes may tokenize at once
        np.asarray(ids, dtype=np.uint16).tofile(tmp)
        os.replace(tmp, cache)
    return torch.from_numpy(np.fromfile(cache, dtype=np.uint16).astype(np.int64))
