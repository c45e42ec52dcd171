"""Dataset and metrics of the ``ecc_heldout`` task, read from a local text file."""

from __future__ import annotations

import re
from pathlib import Path

DEFAULT_TEXT = Path(__file__).resolve().parents[2] / "reference" / "heldout.txt"
PAGE_CHARS = 4000  # documents of about this many characters, cut at paragraph breaks


def pages(text: str, page_chars: int = PAGE_CHARS) -> list[str]:
    out, current = [], []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        current.append(paragraph)
        if sum(len(p) for p in current) >= page_chars:
            out.append("\n\n".join(current))
            current = []
    if current:
        out.append("\n\n".join(current))
    return out


def load(text_file: str | None = None, max_pages: int | None = None, **_):
    import datasets

    path = Path(text_file) if text_file else DEFAULT_TEXT
    if not path.is_file():
        raise FileNotFoundError(
            f"ecc_heldout: no text at {path}; pass --metadata '{{\"text_file\": \"PATH\"}}' with a text file"
        )
    docs = pages(path.read_text())[:max_pages]
    return datasets.DatasetDict({"test": datasets.Dataset.from_dict({"page": docs})})


def process_results(doc, results):
    (loglikelihood,) = results
    words = len(re.split(r"\s+", doc["page"]))
    n_bytes = len(doc["page"].encode("utf-8"))
    return {
        "word_perplexity": (loglikelihood, words),
        "byte_perplexity": (loglikelihood, n_bytes),
        "bits_per_byte": (loglikelihood, n_bytes),
    }
