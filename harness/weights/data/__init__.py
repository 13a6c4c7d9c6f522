"""Small data files shipped with the harness.

`spiece.model` is a real (tiny, 1000-piece) SentencePiece unigram model with T5's special ids,
trained offline by `train_spiece.py`; synthetic checkpoints copy it to `t5/spiece.model`.
"""

from pathlib import Path

SPIECE_MODEL = Path(__file__).with_name("spiece.model")
