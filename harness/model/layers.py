"""Small building blocks shared by the DiT and the VAE, named as in stable-audio-tools."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from harness.model import fastmath
from harness.model.capture import tap


class LayerNorm(nn.Module):
    """stable-audio-tools `transformer.LayerNorm`: learned `gamma`, `beta` a (stored) buffer."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.gamma = mx.ones((dim,))
        self.beta = mx.zeros((dim,))
        self.eps = eps

    def __call__(self, x):
        return tap(self, mx.fast.layer_norm(x, self.gamma, self.beta, self.eps))


class SnakeBeta(nn.Module):
    """y = x + 1/(exp(beta) + 1e-9) * sin(exp(alpha) * x)^2, per channel (last axis here)."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = mx.zeros((channels,))
        self.beta = mx.zeros((channels,))

    def __call__(self, x):
        alpha = mx.exp(self.alpha)
        inv_beta = 1.0 / (mx.exp(self.beta) + 1e-9)
        return tap(self, fastmath.snake(x, alpha, inv_beta), channels_last=True)


# MLX's CPU backend runs dilated and transposed convolutions through a naive loop
# (measured ~50x slower than a GEMM at the decoder's sizes), so those two go through
# explicit GEMMs here. Same math, checked against mx.conv1d / mx.conv_transpose1d and a
# numpy oracle of the PyTorch semantics in suites/properties.
IM2COL_ELEMENTS = 1 << 26  # cap on one im2col buffer (256 MB fp32): chunk long inputs


def conv1d_im2col(x, w, padding: int, dilation: int):
    """Stride-1 conv: x (B, T, Ci), w (Co, K, Ci) -> (B, T_out, Co) as one GEMM per chunk."""
    co, k, ci = w.shape
    x = mx.pad(x, [(0, 0), (padding, padding), (0, 0)])
    t_out = x.shape[1] - dilation * (k - 1)
    w2 = w.reshape(co, k * ci).T
    step = max(1, IM2COL_ELEMENTS // (x.shape[0] * k * ci))
    outs = []
    for a in range(0, t_out, step):
        n = min(step, t_out - a)
        cols = mx.concatenate([x[:, a + j * dilation: a + j * dilation + n, :] for j in range(k)],
                              axis=-1)
        outs.append(cols @ w2)
    return outs[0] if len(outs) == 1 else mx.concatenate(outs, axis=1)


def conv1d_shifted(x, w, padding: int, dilation: int):
    """Stride-1 conv as a sum of one small GEMM per kernel tap (no im2col copy)."""
    k = w.shape[1]
    x = mx.pad(x, [(0, 0), (padding, padding), (0, 0)])
    t_out = x.shape[1] - dilation * (k - 1)
    y = x[:, :t_out, :] @ w[:, 0, :].T
    for j in range(1, k):
        y = y + x[:, j * dilation: j * dilation + t_out, :] @ w[:, j, :].T
    return y


def conv_transpose1d_gemm(x, w, stride: int, padding: int):
    """PyTorch ConvTranspose1d semantics as a GEMM plus overlap-add.

    Input frame t and kernel tap j land on output t·s + j - p. With the kernel zero-padded to
    m·s taps, tap j = i·s + r goes to block t + i, slot r: sum m block-shifted GEMM slices.
    """
    co, k, ci = w.shape
    b, t, _ = x.shape
    s = stride
    m = -(-k // s)
    if m * s != k:
        w = mx.pad(w, [(0, 0), (0, m * s - k), (0, 0)])
    z = (x @ w.transpose(1, 0, 2).reshape(m * s * co, ci).T).reshape(b, t, m, s, co)
    full = None
    for i in range(m):
        part = mx.pad(z[:, :, i], [(0, 0), (i, m - 1 - i), (0, 0), (0, 0)])
        full = part if full is None else full + part
    length = (t - 1) * s - 2 * padding + k
    return full.reshape(b, (t + m - 1) * s, co)[:, padding: padding + length, :]


class Conv1d(nn.Conv1d):
    """MLX conv (weight (out, k, in), input (B, T, C)) that records its output."""

    def __call__(self, x):
        w = self.weight
        if self.stride != 1 or self.groups != 1:
            y = super().__call__(x)
        else:
            if w.shape[1] == 1 and self.padding == 0:
                y = x @ w[:, 0, :].T
            elif w.shape[0] * 4 < w.shape[2]:  # few outputs: skip the large im2col buffer
                y = conv1d_shifted(x, w, self.padding, self.dilation)
            else:
                y = conv1d_im2col(x, w, self.padding, self.dilation)
            if "bias" in self:
                y = y + self.bias
        return tap(self, y, channels_last=True)


class ConvTranspose1d(nn.ConvTranspose1d):
    """MLX conv-transpose (weight (out, k, in): *out* is the output channel)."""

    def __call__(self, x):
        if self.dilation != 1 or self.output_padding != 0:
            y = super().__call__(x)
        else:
            y = conv_transpose1d_gemm(x, self.weight, self.stride, self.padding)
            if "bias" in self:
                y = y + self.bias
        return tap(self, y, channels_last=True)


class Linear(nn.Linear):
    def __call__(self, x):
        return tap(self, super().__call__(x))


class SiLU(nn.Module):
    def __call__(self, x):
        return fastmath.silu(x)


class Identity(nn.Module):
    def __call__(self, x):
        return x
