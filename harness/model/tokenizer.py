"""T5 tokenizer: SentencePiece pieces + EOS, as HF's T5 tokenizer with
`truncation=True, padding="max_length"` produces them.

HF truncates the pieces to max_length - 1 and then appends EOS, so a truncated prompt
still ends in EOS; padding (id 0) follows on the right and the mask is 1 on pieces + EOS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import sentencepiece as spm

from harness.errors import BadInput
from harness.files import read_small

PAD_ID = 0
EOS_ID = 1


class Tokenizer:
    def __init__(self, sp: spm.SentencePieceProcessor):
        self.sp = sp

    @classmethod
    def from_file(cls, path: str | Path) -> "Tokenizer":
        path = Path(path)
        data = read_small(path, "SentencePiece model")  # never blocks on a FIFO
        sp = spm.SentencePieceProcessor()
        try:
            sp.LoadFromSerializedProto(data)
        except (RuntimeError, OSError) as e:
            raise BadInput(path, "not a SentencePiece model") from e
        if sp.pad_id() != PAD_ID or sp.eos_id() != EOS_ID:
            raise BadInput(path, f"SentencePiece model has pad_id {sp.pad_id()} and eos_id "
                                 f"{sp.eos_id()}; T5 needs pad_id {PAD_ID}, eos_id {EOS_ID}")
        return cls(sp)

    @property
    def vocab_size(self) -> int:
        return self.sp.vocab_size()

    def encode(self, texts: Sequence[str], max_length: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """-> input_ids, attention_mask, both np.int32 of shape (len(texts), max_length)."""
        if isinstance(texts, str):
            raise TypeError("encode takes a list of strings, not a single string")
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        ids = np.full((len(texts), max_length), PAD_ID, dtype=np.int32)
        mask = np.zeros((len(texts), max_length), dtype=np.int32)
        for row, pieces in enumerate(self.sp.encode(list(texts))):
            seq = pieces[: max_length - 1] + [EOS_ID]
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        return ids, mask
