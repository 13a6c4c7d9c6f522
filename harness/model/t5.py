"""T5 encoder (Hugging Face `T5EncoderModel`) in MLX.

Attribute names equal the HF checkpoint keys (`shared.weight`,
`encoder.block.{i}.layer.0.SelfAttention.q.weight`, ...), so `load_weights` takes the
safetensors file as is once the tied `encoder.embed_tokens.weight` is dropped
(`harness.weights.validate.untie_t5`). HF semantics kept on purpose:

- T5LayerNorm is an RMS norm: no mean subtraction, no bias, mean of squares in fp32.
- Attention has NO 1/sqrt(d_kv) scaling (it is folded into the trained q weights).
- One relative position bias (bidirectional buckets), owned by block 0 and added in every
  layer, with the padding mask folded into it as a large negative additive bias on keys.
- ReLU feed-forward, no biases anywhere, pre-norm residual blocks, final RMS norm.

Outputs at padded positions are NOT zeroed here (HF doesn't either); the conditioner
multiplies them by the attention mask.
"""

from __future__ import annotations

import math
from functools import lru_cache

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from harness.model.capture import tap
from harness.model.config import T5Config


def relative_position_bucket(relative_position: np.ndarray, num_buckets: int = 32,
                             max_distance: int = 128) -> np.ndarray:
    """HF `T5Attention._relative_position_bucket` with bidirectional=True.

    relative_position = key_pos - query_pos. Half the buckets are for keys after the query;
    in each half, distances < num_buckets/4 get their own bucket, larger ones share
    log-spaced buckets up to max_distance, and everything beyond lands in the last one.
    float32 like torch's `.float()`, so the log boundaries round the same way.
    """
    rp = np.asarray(relative_position, dtype=np.int64)
    half = num_buckets // 2
    offset = np.where(rp > 0, half, 0)
    n = np.abs(rp)
    max_exact = half // 2
    # log(0) is masked out by the where below; maximum() only avoids the warning.
    ratio = np.maximum(n, 1).astype(np.float32) / np.float32(max_exact)
    large = max_exact + (np.log(ratio) / np.float32(math.log(max_distance / max_exact))
                         * np.float32(half - max_exact)).astype(np.int64)
    large = np.minimum(large, half - 1)
    return offset + np.where(n < max_exact, n, large)


@lru_cache(maxsize=16)
def _bucket_grid(length: int, num_buckets: int, max_distance: int) -> mx.array:
    pos = np.arange(length)
    return mx.array(relative_position_bucket(pos[None, :] - pos[:, None], num_buckets,
                                             max_distance).astype(np.int32))


class T5Attention(nn.Module):
    def __init__(self, cfg: T5Config, has_relative_attention_bias: bool = False):
        super().__init__()
        inner = cfg.num_heads * cfg.d_kv
        self.n_heads = cfg.num_heads
        self.num_buckets = cfg.relative_attention_num_buckets
        self.max_distance = cfg.relative_attention_max_distance
        self.q = nn.Linear(cfg.d_model, inner, bias=False)
        self.k = nn.Linear(cfg.d_model, inner, bias=False)
        self.v = nn.Linear(cfg.d_model, inner, bias=False)
        self.o = nn.Linear(inner, cfg.d_model, bias=False)
        if has_relative_attention_bias:
            self.relative_attention_bias = nn.Embedding(self.num_buckets, self.n_heads)

    def compute_bias(self, length: int) -> mx.array:
        """Position bias (1, heads, length, length): bias[h, q, k] = table[bucket(k - q), h]."""
        buckets = _bucket_grid(length, self.num_buckets, self.max_distance)
        table = tap(self.relative_attention_bias, self.relative_attention_bias(buckets))
        return table.transpose(2, 0, 1)[None]

    def __call__(self, x: mx.array, bias: mx.array) -> mx.array:
        B, L, _ = x.shape

        def heads(t):
            return t.reshape(B, L, self.n_heads, -1).transpose(0, 2, 1, 3)

        q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
        # scale=1.0: T5 does not scale scores; softmax runs in fp32 as in HF.
        out = mx.fast.scaled_dot_product_attention(q, k, v, scale=1.0, mask=bias)
        return self.o(out.transpose(0, 2, 1, 3).reshape(B, L, -1))


class T5LayerSelfAttention(nn.Module):
    def __init__(self, cfg: T5Config, has_relative_attention_bias: bool):
        super().__init__()
        self.SelfAttention = T5Attention(cfg, has_relative_attention_bias)
        self.layer_norm = nn.RMSNorm(cfg.d_model, eps=cfg.layer_norm_epsilon)

    def __call__(self, x: mx.array, bias: mx.array) -> mx.array:
        h = tap(self.layer_norm, self.layer_norm(x))
        return tap(self, x + tap(self.SelfAttention, self.SelfAttention(h, bias)))


class T5DenseActDense(nn.Module):
    def __init__(self, cfg: T5Config):
        super().__init__()
        self.wi = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.wo = nn.Linear(cfg.d_ff, cfg.d_model, bias=False)

    def __call__(self, x: mx.array) -> mx.array:
        return self.wo(nn.relu(self.wi(x)))


class T5LayerFF(nn.Module):
    def __init__(self, cfg: T5Config):
        super().__init__()
        self.DenseReluDense = T5DenseActDense(cfg)
        self.layer_norm = nn.RMSNorm(cfg.d_model, eps=cfg.layer_norm_epsilon)

    def __call__(self, x: mx.array) -> mx.array:
        h = tap(self.layer_norm, self.layer_norm(x))
        return x + tap(self.DenseReluDense, self.DenseReluDense(h))


class T5Block(nn.Module):
    def __init__(self, cfg: T5Config, has_relative_attention_bias: bool):
        super().__init__()
        self.layer = [T5LayerSelfAttention(cfg, has_relative_attention_bias), T5LayerFF(cfg)]

    def __call__(self, x: mx.array, bias: mx.array) -> mx.array:
        return tap(self, self.layer[1](self.layer[0](x, bias)))


class T5Stack(nn.Module):
    def __init__(self, cfg: T5Config):
        super().__init__()
        self.block = [T5Block(cfg, has_relative_attention_bias=(i == 0))
                      for i in range(cfg.num_layers)]
        self.final_layer_norm = nn.RMSNorm(cfg.d_model, eps=cfg.layer_norm_epsilon)

    def __call__(self, x: mx.array, attention_mask: mx.array) -> mx.array:
        L = x.shape[1]
        # HF: (1 - mask) * finfo(dtype).min, added to block 0's position bias, reused by all.
        neg = (1 - attention_mask.astype(x.dtype)) * mx.finfo(x.dtype).min
        bias = self.block[0].layer[0].SelfAttention.compute_bias(L).astype(x.dtype)
        bias = bias + neg[:, None, None, :]
        for blk in self.block:
            x = blk(x, bias)
        return tap(self.final_layer_norm, self.final_layer_norm(x))


class T5Encoder(nn.Module):
    """`T5EncoderModel`: input_ids (B, L) int, attention_mask (B, L) -> (B, L, d_model).

    Runs in and returns the weights' dtype, as HF (the loader decides; float32 recommended,
    since HF's fp16 overflow clamping is not reproduced). Padded positions are NOT zeroed
    (see module docstring); the conditioner zeroes them and returns float32.
    """

    def __init__(self, cfg: T5Config):
        super().__init__()
        if cfg.feed_forward_proj != "relu":
            raise ValueError(f"T5 feed_forward_proj {cfg.feed_forward_proj!r} is not "
                             "implemented (only 'relu', as in t5-base)")
        self.shared = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.encoder = T5Stack(cfg)

    def __call__(self, input_ids: mx.array, attention_mask: mx.array) -> mx.array:
        # HF names the encoder's (tied) lookup encoder.embed_tokens
        embedded = tap(self, self.shared(input_ids), "encoder.embed_tokens")
        # last_hidden_state, before the conditioner zeroes padding
        return tap(self, self.encoder(embedded, attention_mask))
