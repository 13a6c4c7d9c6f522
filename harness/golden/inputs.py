"""The injected inputs of a recording (torch-free): token ids, masks, seconds, all noise.

Goldens are defined on token ids (no tokenizer in the loop) and on noise drawn here with numpy
and stored in the golden, so every producer (PyTorch, LiteRT, a port under test) consumes the
very same bytes; nothing compares two random number generators.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PAD_ID, EOS_ID = 0, 1

# Real-token counts (EOS included) of the default prompts: short, medium, and one that fills
# all 64 positions (no padding at all).
DEFAULT_LENGTHS = (5, 17, 64)
# 300 s exceeds max_val 256 and checks the clamp.
DEFAULT_SECONDS = (2.5, 1.0, 300.0)


@dataclass
class Inputs:
    input_ids: np.ndarray       # (B, L) int64, right-padded with PAD_ID, EOS_ID last real token
    attention_mask: np.ndarray  # (B, L) int64, 1 for real tokens
    seconds_total: np.ndarray   # (B,) float32
    noise: np.ndarray           # (B, C, T) float32, the initial latent x
    step_noise: np.ndarray      # (S, B, C, T) float32, pingpong noise of each step (the last
                                # step draws one too, multiplied by t=0)

    def tensors(self) -> dict[str, np.ndarray]:
        return {f"input.{k}": v for k, v in vars(self).items()}

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray]) -> "Inputs":
        return cls(**{k: tensors[f"input.{k}"] for k in cls.__dataclass_fields__})

    @property
    def batch(self) -> int:
        return self.input_ids.shape[0]


def token_ids(lengths, max_length: int, vocab_size: int, rng: np.random.Generator):
    ids = np.full((len(lengths), max_length), PAD_ID, dtype=np.int64)
    mask = np.zeros((len(lengths), max_length), dtype=np.int64)
    for b, n in enumerate(lengths):
        if not 1 <= n <= max_length:
            raise ValueError(f"prompt length {n} outside 1..{max_length}")
        ids[b, : n - 1] = rng.integers(2, vocab_size, size=n - 1)
        ids[b, n - 1] = EOS_ID
        mask[b, :n] = 1
    return ids, mask


def make_inputs(*, seed: int, io_channels: int, frames: int, steps: int, max_length: int,
                vocab_size: int, lengths=DEFAULT_LENGTHS, seconds=DEFAULT_SECONDS) -> Inputs:
    if len(lengths) != len(seconds):
        raise ValueError("one seconds_total value per prompt")
    rng = np.random.default_rng(seed)
    lengths = tuple(min(n, max_length) for n in lengths)
    ids, mask = token_ids(lengths, max_length, vocab_size, rng)
    b = len(lengths)
    noise = rng.standard_normal((b, io_channels, frames), dtype=np.float32)
    step_noise = rng.standard_normal((steps, b, io_channels, frames), dtype=np.float32)
    return Inputs(ids, mask, np.asarray(seconds, dtype=np.float32), noise, step_noise)
