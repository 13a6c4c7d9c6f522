"""Oobleck VAE (stable-audio-tools `OobleckEncoder` / `OobleckDecoder`), snake activations.

Weight norm is fused at load (see harness.weights.convert), so convs here hold plain
`weight`/`bias`. MLX convs are channels-last: activations are (B, T, C) inside and the
public `encode`/`decode` use the PyTorch layout (B, C, T).
"""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn

from harness.model.capture import tap
from harness.model.config import VAEConfig
from harness.model.layers import Conv1d, ConvTranspose1d, SnakeBeta


def _run(layers, x):
    for layer in layers:
        x = layer(x)
    return x


class ResidualUnit(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, dilation: int):
        super().__init__()
        pad = dilation * (7 - 1) // 2
        self.layers = [
            SnakeBeta(out_channels),
            Conv1d(in_channels, out_channels, 7, dilation=dilation, padding=pad),
            SnakeBeta(out_channels),
            Conv1d(out_channels, out_channels, 1),
        ]

    def __call__(self, x):
        return tap(self, x + _run(self.layers, x), channels_last=True)


class EncoderBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.layers = [
            ResidualUnit(in_channels, in_channels, 1),
            ResidualUnit(in_channels, in_channels, 3),
            ResidualUnit(in_channels, in_channels, 9),
            SnakeBeta(in_channels),
            Conv1d(in_channels, out_channels, 2 * stride, stride=stride,
                   padding=math.ceil(stride / 2)),
        ]

    def __call__(self, x):
        return tap(self, _run(self.layers, x), channels_last=True)


class DecoderBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.layers = [
            SnakeBeta(in_channels),
            ConvTranspose1d(in_channels, out_channels, 2 * stride, stride=stride,
                            padding=math.ceil(stride / 2)),
            ResidualUnit(out_channels, out_channels, 1),
            ResidualUnit(out_channels, out_channels, 3),
            ResidualUnit(out_channels, out_channels, 9),
        ]

    def __call__(self, x):
        return tap(self, _run(self.layers, x), channels_last=True)


class OobleckEncoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        ch, m = cfg.channels, (1,) + tuple(cfg.c_mults)
        self.layers = [Conv1d(cfg.audio_channels, m[0] * ch, 7, padding=3)]
        for i in range(len(m) - 1):
            self.layers.append(EncoderBlock(m[i] * ch, m[i + 1] * ch, cfg.strides[i]))
        self.layers += [SnakeBeta(m[-1] * ch), Conv1d(m[-1] * ch, 2 * cfg.latent_dim, 3, padding=1)]

    def __call__(self, x):
        return tap(self, _run(self.layers, x), channels_last=True)


class OobleckDecoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        ch, m = cfg.channels, (1,) + tuple(cfg.c_mults)
        self.layers = [Conv1d(cfg.latent_dim, m[-1] * ch, 7, padding=3)]
        for i in range(len(m) - 1, 0, -1):
            self.layers.append(DecoderBlock(m[i] * ch, m[i - 1] * ch, cfg.strides[i - 1]))
        self.layers += [SnakeBeta(m[0] * ch),
                        Conv1d(m[0] * ch, cfg.audio_channels, 7, padding=3, bias=False)]

    def __call__(self, x):
        return tap(self, _run(self.layers, x), channels_last=True)


class AudioAutoencoder(nn.Module):
    """`pretransform.model`: encoder, VAE bottleneck (no parameters), decoder."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.encoder = OobleckEncoder(cfg)
        self.decoder = OobleckDecoder(cfg)
        self.latent_dim = cfg.latent_dim

    def decode(self, latents):
        """latents (B, latent_dim, T) -> planar audio (B, channels, T * ratio).

        Recorded: the decoder's input after the layout step, and the whole decode's output
        (the official `decode_audio`, where any chunking and stitching belongs)."""
        x = tap(self.decoder, latents.swapaxes(1, 2), "input", channels_last=True)
        return tap(self, self.decoder(x).swapaxes(1, 2))

    def encode(self, audio, noise=None):
        """audio (B, channels, N) -> latents (B, latent_dim, N / ratio).

        VAE bottleneck: mean + std * noise with std = softplus(scale) + 1e-4; without
        noise the mean is returned (deterministic).
        """
        h = self.encoder(audio.swapaxes(1, 2)).swapaxes(1, 2)
        mean, scale = mx.split(h, 2, axis=1)
        if noise is None:
            return mean
        std = nn.softplus(scale) + 1e-4
        return mean + std * noise
