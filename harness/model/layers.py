"""Small building blocks shared by the DiT and the VAE, named as in stable-audio-tools."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from harness.model import conv, fastmath
from harness.model.capture import recording_active, tap


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


class Conv1d(nn.Conv1d):
    """MLX conv (weight (out, k, in), input (B, T, C)) that records its output."""

    def __call__(self, x):
        w = self.weight
        if self.stride != 1 or self.groups != 1:
            y = super().__call__(x)
        else:
            y = conv.conv1d(x, w, self.padding, self.dilation, self.get("bias"))
        return tap(self, y, channels_last=True)


class ConvTranspose1d(nn.ConvTranspose1d):
    """MLX conv-transpose (weight (out, k, in): *out* is the output channel)."""

    def __call__(self, x):
        if self.dilation != 1 or self.output_padding != 0:
            y = super().__call__(x)
        else:
            y = conv.conv_transpose1d(x, self.weight, self.stride, self.padding,
                                      self.get("bias"))
        return tap(self, y, channels_last=True)


class Linear(nn.Linear):
    def __call__(self, x):
        return tap(self, super().__call__(x))

    def chunks(self, x, n: int) -> list:
        """The output cut in n equal parts along its last axis, each from a GEMM of its own
        on a row block of the weight (a view, no copy): the parts are contiguous arrays,
        where a split of one output is a strided view that a compiled elementwise kernel
        reads on its scalar, strided loop. Same values as splitting __call__'s output."""
        w, b = self.weight, self.get("bias")
        m = w.shape[0] // n
        blocks = [slice(i * m, (i + 1) * m) for i in range(n)]
        parts = [x @ w[s].T if b is None else mx.addmm(b[s], x, w[s].T) for s in blocks]
        if recording_active():
            tap(self, mx.concatenate(parts, axis=-1))
        return parts


class SiLU(nn.Module):
    def __call__(self, x):
        return fastmath.silu(x)


class Identity(nn.Module):
    def __call__(self, x):
        return x
