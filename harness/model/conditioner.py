"""Conditioners: T5 prompt (padding zeroed) and the `seconds_total` NumberEmbedder.

`MultiConditioner.__call__` assembles what the DiT takes: cross-attention tokens
cat(prompt (B, 64, d), seconds (B, 1, d)) -> (B, 65, d) and the global vector (B, d).
"""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn

from harness.model.capture import tap
from harness.model.config import ModelConfig
from harness.model.layers import Linear
from harness.model.t5 import T5Encoder


class LearnedPositionalEmbedding(nn.Module):
    """f = s·w·2π; features = [s, sin f, cos f] (dim + 1)."""

    def __init__(self, dim: int):
        super().__init__()
        self.weights = mx.zeros((dim // 2,))

    def __call__(self, s):
        s = s[:, None]
        f = s * self.weights[None, :] * 2 * math.pi
        return mx.concatenate([s, mx.sin(f), mx.cos(f)], axis=-1)


class NumberEmbedder(nn.Module):
    def __init__(self, features: int, dim: int = 256):
        super().__init__()
        self.embedding = [LearnedPositionalEmbedding(dim), Linear(dim + 1, features)]

    def __call__(self, s):
        for layer in self.embedding:
            s = layer(s)
        return s


class NumberConditioner(nn.Module):
    def __init__(self, output_dim: int, min_val: float, max_val: float):
        super().__init__()
        self.embedder = NumberEmbedder(output_dim)
        self.min_val, self.max_val = min_val, max_val

    def __call__(self, seconds):
        s = mx.clip(seconds.astype(mx.float32), self.min_val, self.max_val)
        s = (s - self.min_val) / (self.max_val - self.min_val)
        # normalized in float32, embedded in the weights' dtype (the official casts to it)
        s = s.astype(self.embedder.embedding[1].weight.dtype)
        return tap(self, self.embedder(s)[:, None, :])


class T5Conditioner(nn.Module):
    """T5 encoder; outputs at padded positions are set to zero and the result is float32
    (as the official conditioner's `* attention_mask.float()`)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.t5.d_model != cfg.cond_dim:
            raise ValueError(f"T5 d_model {cfg.t5.d_model} != cond_dim {cfg.cond_dim}: "
                             "the official conditioner would add a proj_out layer")
        self.model = T5Encoder(cfg.t5)

    def __call__(self, input_ids, attention_mask):
        h = self.model(input_ids, attention_mask)
        return tap(self, h * attention_mask[..., None].astype(mx.float32))


class MultiConditioner(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.conditioners = {
            "prompt": T5Conditioner(cfg),
            "seconds_total": NumberConditioner(cfg.cond_dim, cfg.seconds_min, cfg.seconds_max),
        }

    def __call__(self, input_ids, attention_mask, seconds_total):
        """-> (cross_attn_cond (B, L+1, d), global_cond (B, d))."""
        prompt = self.conditioners["prompt"](input_ids, attention_mask)
        seconds = self.conditioners["seconds_total"](seconds_total)
        cross = mx.concatenate([prompt, seconds], axis=1)
        return tap("conditioner.cross_attn_cond", cross), tap("conditioner.global_cond", seconds[:, 0, :])
