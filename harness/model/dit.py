"""The Stable Audio Open Small DiT (stable-audio-tools `DiffusionTransformer`, rf_denoiser).

Attribute names follow the official module tree, so `model.model.transformer.layers.3.ff.ff.0.proj`
is the same string as a weight, a golden intermediate and a first-divergence row.
Inputs and outputs use the PyTorch layout (B, C, T); tokens are (B, T, D) inside.
"""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn

from harness.model import fastmath
from harness.model.capture import tap
from harness.model.config import DiTConfig
from harness.model.layers import Conv1d, Identity, LayerNorm, Linear, SiLU


class FourierFeatures(nn.Module):
    """f = 2π·t·Wᵀ, out = [cos f, sin f]."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = mx.zeros((out_features // 2, in_features))

    def __call__(self, t):
        f = 2 * math.pi * (t @ self.weight.T)
        return tap(self, mx.concatenate([mx.cos(f), mx.sin(f)], axis=-1))


class RotaryEmbedding(nn.Module):
    """Partial RoPE: rotates the first `dim` head dims, half-split (not interleaved) layout."""

    def __init__(self, dim: int, base: float = 10000.0):
        super().__init__()
        self.inv_freq = 1.0 / (base ** (mx.arange(0, dim, 2).astype(mx.float32) / dim))

    def freqs(self, seq_len: int):
        """cos, sin tables (seq_len, dim), float32 whatever the weights' dtype (a float16
        inv_freq, rounded like the official buffer under `model.to(float16)`, promotes)."""
        t = mx.arange(seq_len).astype(mx.float32)
        f = t[:, None] * self.inv_freq[None, :]
        f = mx.concatenate([f, f], axis=-1)
        return mx.cos(f), mx.sin(f)


def rotate_half(x):
    x1, x2 = mx.split(x, 2, axis=-1)
    return mx.concatenate([-x2, x1], axis=-1)


def apply_rotary(x, cos, sin):
    """x (B, H, T, Dh); cos/sin (T, rot) float32. Dims past `rot` pass through untouched.
    The rotation runs in float32 and is rounded back to x's dtype, as the official Attention
    does for half-precision q and k."""
    rot = cos.shape[-1]
    x_rot, x_pass = x[..., :rot], x[..., rot:]
    x_rot = x_rot * cos + rotate_half(x_rot) * sin
    return mx.concatenate([x_rot.astype(x.dtype), x_pass], axis=-1)


class Attention(nn.Module):
    def __init__(self, dim: int, dim_heads: int, dim_context: int | None = None):
        super().__init__()
        self.num_heads = dim // dim_heads
        self.dim_heads = dim_heads
        self.scale = dim_heads ** -0.5
        self.cross = dim_context is not None
        if self.cross:
            self.to_q = Linear(dim, dim, bias=False)
            self.to_kv = Linear(dim_context, 2 * dim, bias=False)
        else:
            self.to_qkv = Linear(dim, 3 * dim, bias=False)
        self.to_out = Linear(dim, dim, bias=False)
        self.q_norm = nn.LayerNorm(dim_heads, eps=1e-6)
        self.k_norm = nn.LayerNorm(dim_heads, eps=1e-6)

    def _heads(self, x):
        b, n, _ = x.shape
        return x.reshape(b, n, self.num_heads, self.dim_heads).transpose(0, 2, 1, 3)

    def _qk(self, q, k, rotary):
        """Per-head q, k -> normed and rotated. qk LayerNorm comes before RoPE in the
        official Attention.forward."""
        q = tap(self.q_norm, self.q_norm(q))
        k = tap(self.k_norm, self.k_norm(k))
        if rotary is not None:
            q = tap(self, apply_rotary(q, *rotary), "q_rotary")
            k = tap(self, apply_rotary(k, *rotary), "k_rotary")
        return q, k

    def __call__(self, x, context=None, rotary=None):
        if self.cross:
            q = self.to_q(x)
            k, v = mx.split(self.to_kv(context), 2, axis=-1)
        else:
            q, k, v = mx.split(self.to_qkv(x), 3, axis=-1)
        q, k = self._qk(self._heads(q), self._heads(k), rotary)
        out = fastmath.attention(q, k, self._heads(v), scale=self.scale)
        b, h, n, d = out.shape
        out = out.transpose(0, 2, 1, 3).reshape(b, n, h * d)
        return tap(self, self.to_out(out))


class GLU(nn.Module):
    """proj -> [value | gate]; value * SiLU(gate)."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = Linear(dim_in, 2 * dim_out)

    def __call__(self, x):
        value, gate = self.proj.chunks(x, 2)
        return fastmath.gated_silu(value, gate)


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int):
        super().__init__()
        inner = dim * mult
        self.ff = [GLU(dim, inner), Identity(), Linear(inner, dim)]

    def __call__(self, x):
        for layer in self.ff:
            x = layer(x)
        return tap(self, x)


class TransformerBlock(nn.Module):
    def __init__(self, cfg: DiTConfig, dim_context: int):
        super().__init__()
        dim = cfg.embed_dim
        self.pre_norm = LayerNorm(dim)
        self.self_attn = Attention(dim, cfg.dim_heads)
        self.cross_attend_norm = LayerNorm(dim)
        self.cross_attn = Attention(dim, cfg.dim_heads, dim_context=dim_context)
        self.ff_norm = LayerNorm(dim)
        self.ff = FeedForward(dim, cfg.ff_mult)

    def __call__(self, x, context, rotary):
        # the residual stream is recorded as the input of the norm that reads it next
        x = x + self.self_attn(self.pre_norm(x), rotary=rotary)
        x = tap(self.cross_attend_norm, x, "input")
        x = x + self.cross_attn(self.cross_attend_norm(x), context=context)
        x = tap(self.ff_norm, x, "input")
        x = x + self.ff(self.ff_norm(x))
        return tap(self, x)


class ContinuousTransformer(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        dim_context = cfg.embed_dim if cfg.project_cond_tokens else cfg.cond_token_dim
        self.project_in = Linear(cfg.io_channels, cfg.embed_dim, bias=False)
        self.project_out = Linear(cfg.embed_dim, cfg.io_channels, bias=False)
        self.rotary_pos_emb = RotaryEmbedding(cfg.rotary_dim)
        self.layers = [TransformerBlock(cfg, dim_context) for _ in range(cfg.depth)]

    def __call__(self, x, prepend, context):
        x = tap(self.layers[0], mx.concatenate([prepend, self.project_in(x)], axis=1), "input")
        rotary = self.rotary_pos_emb.freqs(x.shape[1])  # positions count the prepended token
        for layer in self.layers:
            x = layer(x, context, rotary)
        return self.project_out(x)


class DiffusionTransformer(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.config = cfg
        d = cfg.embed_dim
        self.timestep_features = FourierFeatures(1, cfg.timestep_features_dim)
        self.to_timestep_embed = [Linear(cfg.timestep_features_dim, d), SiLU(), Linear(d, d)]
        cond_out = d if cfg.project_cond_tokens else cfg.cond_token_dim
        self.to_cond_embed = [Linear(cfg.cond_token_dim, cond_out, bias=False), SiLU(),
                              Linear(cond_out, cond_out, bias=False)]
        self.to_global_embed = [Linear(cfg.global_cond_dim, d, bias=False), SiLU(),
                                Linear(d, d, bias=False)]
        self.preprocess_conv = Conv1d(cfg.io_channels, cfg.io_channels, 1, bias=False)
        self.postprocess_conv = Conv1d(cfg.io_channels, cfg.io_channels, 1, bias=False)
        self.transformer = ContinuousTransformer(cfg)

    @staticmethod
    def _seq(layers, x, module_name: str, owner):
        for layer in layers:
            x = layer(x)
        return tap(f"{owner._path}.{module_name}", x)

    @property
    def dtype(self):
        """The compute dtype: the weights' (`load_model` casts every weight to it)."""
        return self.transformer.project_in.weight.dtype

    def preprocess(self, x):
        """The residual 1x1 conv on the latent sequence (B, T, C), before the transformer."""
        return self.preprocess_conv(x) + x

    def __call__(self, x, t, cross_attn_cond, global_cond):
        """x (B, C, T), t (B,), cross (B, S, cond_token_dim), global (B, global_cond_dim) -> v (B, C, T).

        Every input is cast to the weights' dtype first, as the official DiT.forward does: in
        a float16 run t too, so the Fourier features are float16 (RoPE keeps float32 tables)."""
        x, t, cross_attn_cond, global_cond = (a.astype(self.dtype) for a in
                                              (x, t, cross_attn_cond, global_cond))
        cond = self._seq(self.to_cond_embed, cross_attn_cond, "to_cond_embed", self)
        global_embed = self._seq(self.to_global_embed, global_cond, "to_global_embed", self)
        t_embed = self._seq(self.to_timestep_embed, self.timestep_features(t[:, None]),
                            "to_timestep_embed", self)
        prepend = (global_embed + t_embed)[:, None, :]

        x = x.swapaxes(1, 2)  # (B, T, C)
        x = tap(self.transformer, self.preprocess(x), "input")
        out = self.transformer(x, prepend, cond)
        out = out[:, 1:, :]  # drop the global token
        out = self.postprocess_conv(out) + out
        return tap(self, out.swapaxes(1, 2))
