"""Train the reference models' byte-level BPE tokenizer on the corpus's training split.

    python tools/reference_models/train_tokenizer.py --corpus build/corpus --out build/tokenizer
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

EOS = "<|endoftext|>"


def train_tokenizer(train_file: Path, vocab_size: int) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train([str(train_file)], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, unk_token=EOS, model_max_length=1024)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--corpus", type=Path, default=Path("build/corpus"))
    p.add_argument("--out", type=Path, default=Path("build/tokenizer"))
    p.add_argument("--vocab-size", type=int, default=8192)
    args = p.parse_args(argv)
    tokenizer = train_tokenizer(args.corpus / "train.txt", args.vocab_size)
    tokenizer.save_pretrained(args.out)
    print(f"vocab {len(tokenizer)} -> {args.out}")


if __name__ == "__main__":
    main()
