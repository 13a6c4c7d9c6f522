"""Independent numpy/scipy oracles, written from the PyTorch / stable-audio-tools semantics.

Nothing here imports harness code: every function is a float64 transcription of the
documented behaviour (torch.nn.functional.conv1d / conv_transpose1d, weight_norm(dim=0),
the official RoPE, Attention, GLU, LayerNorm, SnakeBeta, NumberConditioner, logSNR
schedule). Layouts are named with einsum subscripts so a permutation cannot hide in a tuple.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import expit

F64 = np.float64


# -- convolutions (torch layout: x (B, C, L)) --------------------------------------------
def conv_out_len(L: int, k: int, stride: int, padding: int, dilation: int) -> int:
    return (L + 2 * padding - dilation * (k - 1) - 1) // stride + 1


def conv_transpose_out_len(L: int, k: int, stride: int, padding: int, dilation: int) -> int:
    return (L - 1) * stride - 2 * padding + dilation * (k - 1) + 1


def conv1d(x, w, b, stride: int, padding: int, dilation: int) -> np.ndarray:
    """torch conv1d: y[b,o,t] = bias[o] + sum_{i,j} w[o,i,j] x_pad[b,i,t*s + j*d]; w (out,in,k)."""
    x, w = np.asarray(x, F64), np.asarray(w, F64)
    B, _, L = x.shape
    cout, _, k = w.shape
    n = conv_out_len(L, k, stride, padding, dilation)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding)))
    y = np.zeros((B, cout, n))
    for j in range(k):
        taps = xp[:, :, j * dilation: j * dilation + stride * (n - 1) + 1: stride]
        y += np.einsum("oi,bit->bot", w[:, :, j], taps)
    return y if b is None else y + np.asarray(b, F64)[None, :, None]


def conv_transpose1d(x, w, b, stride: int, padding: int, dilation: int) -> np.ndarray:
    """torch conv_transpose1d: every input sample scatters w[i,o,:] at t*s + j*d, then `padding`
    samples are cropped from each end; w (in, out, k)."""
    x, w = np.asarray(x, F64), np.asarray(w, F64)
    B, _, L = x.shape
    _, cout, k = w.shape
    full = (L - 1) * stride + dilation * (k - 1) + 1
    y = np.zeros((B, cout, full))
    for j in range(k):
        s0 = j * dilation
        y[:, :, s0: s0 + stride * (L - 1) + 1: stride] += np.einsum("io,bil->bol", w[:, :, j], x)
    n = conv_transpose_out_len(L, k, stride, padding, dilation)
    y = y[:, :, padding: padding + n]
    return y if b is None else y + np.asarray(b, F64)[None, :, None]


# MLX stores both conv kinds as (out, k, in). Axis names: o = output channel, i = input
# channel, k = tap. torch Conv1d is (o, i, k); torch ConvTranspose1d is (i, o, k).
TORCH_AXES = {"conv": "oik", "convT": "iok"}
MLX_AXES = "oki"


def to_mlx_layout(w, kind: str) -> np.ndarray:
    return np.einsum(f"{TORCH_AXES[kind]}->{MLX_AXES}", w)


def to_torch_layout(w, kind: str) -> np.ndarray:
    return np.einsum(f"{MLX_AXES}->{TORCH_AXES[kind]}", w)


def mlx_shape(torch_shape, kind: str) -> tuple[int, ...]:
    dims = dict(zip(TORCH_AXES[kind], torch_shape))
    return tuple(dims[a] for a in MLX_AXES)


# -- weight norm (torch.nn.utils.weight_norm, dim=0, stored layout) ------------------------
def weight_norm(g, v) -> np.ndarray:
    """w = g * v / ||v||, the norm over every dim but 0 of the *stored* tensor, no epsilon."""
    v = np.asarray(v, F64)
    norm = np.sqrt((v * v).reshape(v.shape[0], -1).sum(1)).reshape((-1,) + (1,) * (v.ndim - 1))
    return np.asarray(g, F64) * v / norm


# -- schedule ------------------------------------------------------------------------
def logsnr_schedule(steps: int) -> np.ndarray:
    t = expit(-np.linspace(-6.0, 2.0, steps + 1))
    t[0], t[-1] = 1.0, 0.0
    return t


# -- transformer pieces ---------------------------------------------------------------
def rope_tables(T: int, rot: int, base: float = 10000.0) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin (T, rot). Angles in float32 as torch computes them (t.float() * inv_freq)."""
    inv_freq = (1.0 / base ** (np.arange(0, rot, 2, dtype=np.float32) / np.float32(rot))
                ).astype(np.float32)
    ang = np.arange(T, dtype=np.float32)[:, None] * inv_freq[None, :]
    ang = np.concatenate([ang, ang], axis=-1).astype(F64)  # freqs = cat(f, f): half-split
    return np.cos(ang), np.sin(ang)


def rotate_half(x) -> np.ndarray:
    """Half-split: (x1, x2) -> (-x2, x1), halves of the last axis (NOT interleaved pairs)."""
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


def apply_rope(x, rot: int, cos=None, sin=None) -> np.ndarray:
    """x (..., T, Dh): rotate the first `rot` dims at positions 0..T-1, pass the rest."""
    x = np.asarray(x, F64)
    if cos is None:
        cos, sin = rope_tables(x.shape[-2], rot)
    xr = x[..., :rot]
    return np.concatenate([xr * cos + rotate_half(xr) * sin, x[..., rot:]], axis=-1)


def layer_norm(x, weight, bias, eps: float) -> np.ndarray:
    x = np.asarray(x, F64)
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)  # biased, as torch
    y = (x - mu) / np.sqrt(var + eps) * np.asarray(weight, F64)
    return y if bias is None else y + np.asarray(bias, F64)


def silu(x) -> np.ndarray:
    x = np.asarray(x, F64)
    return x * expit(x)


def linear(x, w, b=None) -> np.ndarray:
    y = np.asarray(x, F64) @ np.asarray(w, F64).T
    return y if b is None else y + np.asarray(b, F64)


def glu(x, w, b) -> np.ndarray:
    """stable-audio-tools GLU: proj -> chunk(2): first half value, second half gate."""
    h = linear(x, w, b)
    d = h.shape[-1] // 2
    return h[..., :d] * silu(h[..., d:])


def softmax(s, axis=-1) -> np.ndarray:
    s = s - s.max(axis, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis, keepdims=True)


def attention(p: dict, x, heads: int, context=None, rope=None) -> np.ndarray:
    """Official Attention (qk_norm "ln", no mask): 'b n (h d) -> b h n d', LN before RoPE,
    scale 1/sqrt(dim_heads). p holds torch-named weights; rope = (cos, sin) or None."""
    x = np.asarray(x, F64)
    B, N, D = x.shape
    dh = D // heads
    if context is None:
        q, k, v = np.split(linear(x, p["to_qkv.weight"]), 3, axis=-1)
    else:
        q = linear(x, p["to_q.weight"])
        k, v = np.split(linear(context, p["to_kv.weight"]), 2, axis=-1)

    def split(t):
        return t.reshape(B, t.shape[1], heads, dh).transpose(0, 2, 1, 3)

    q, k, v = split(q), split(k), split(v)
    q = layer_norm(q, p["q_norm.weight"], p["q_norm.bias"], 1e-6)
    k = layer_norm(k, p["k_norm.weight"], p["k_norm.bias"], 1e-6)
    if rope is not None:
        cos, sin = rope
        q = apply_rope(q, cos.shape[-1], cos, sin)
        k = apply_rope(k, cos.shape[-1], cos, sin)
    a = softmax(q @ k.transpose(0, 1, 3, 2) / math.sqrt(dh))
    o = (a @ v).transpose(0, 2, 1, 3).reshape(B, N, D)
    return linear(o, p["to_out.weight"])


# -- VAE / conditioner pieces ---------------------------------------------------------
def snake_beta(x, alpha, beta) -> np.ndarray:
    """x (B, C, T); log-scale alpha, beta per channel: x + 1/(e^beta + 1e-9) sin(e^alpha x)^2."""
    x = np.asarray(x, F64)
    a = np.exp(np.asarray(alpha, F64))[None, :, None]
    inv_b = 1.0 / (np.exp(np.asarray(beta, F64))[None, :, None] + 1e-9)
    return x + inv_b * np.sin(a * x) ** 2


def number_features(seconds, min_val: float, max_val: float, freqs) -> np.ndarray:
    """NumberConditioner up to the Linear: clamp, normalize, [s, sin 2πsw, cos 2πsw]."""
    s = np.clip(np.asarray(seconds, F64), min_val, max_val)
    s = ((s - min_val) / (max_val - min_val))[:, None]
    f = s * np.asarray(freqs, F64)[None, :] * 2 * math.pi
    return np.concatenate([s, np.sin(f), np.cos(f)], axis=-1)


def number_conditioner(seconds, min_val, max_val, freqs, w, b) -> np.ndarray:
    """-> (B, 1, features)."""
    return linear(number_features(seconds, min_val, max_val, freqs), w, b)[:, None, :]
