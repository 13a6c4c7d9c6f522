"""Oobleck VAE (stable-audio-tools `OobleckEncoder` / `OobleckDecoder`), snake activations.

Weight norm is fused at load (see harness.weights.convert), so convs here hold plain
`weight`/`bias`. MLX convs are channels-last: activations are (B, T, C) inside and the
public `encode`/`decode` use the PyTorch layout (B, C, T).

Tiled decode (exact, overlap-save). Untiled, the 256-frame decode holds 128-channel
activations of 524288 samples (268 MB each) and their im2col copies, ~7.6 GB at peak. `decode`
instead runs the decoder segment by segment (the first conv with the first block, each
further block, the last block with the output snake and conv): a segment's output is made in
tiles of about `TILE_ELEMENTS` (channels x samples, 2^19 = 2 MB fp32: a core's L2) and kept
as a list of tiles, which the next segment reads from. Each tile's input is the segment input
over the tile's receptive field (its halo), computed from the modules' kernel sizes, dilations,
paddings and strides (`input_span`), clipped to the signal; the tile is run through the
modules' own `__call__` and the outputs that the tile edges' zero padding reached are cropped.
Every kept output therefore saw exactly the inputs (and, at the signal's ends, the zero
padding) of the untiled decode: the result equals it to float rounding (GEMM blocking differs
with the tile's length), checked at many tile sizes against the untiled decode in
suites/properties/test_vae_tiling_props.py.

Tile thresholds (tile = TILE_ELEMENTS // widest channel count at the segment's output rate,
that count taken as at most TILE_CHANNELS_MAX): full size, segments of 1024/512/256/128/128
channels: tiles of 1024/1024/2048/4096/4096 samples = 128/16/8/4/2 latent frames, so a latent
longer than 2 frames is cut in the last segment and one longer than 128 frames in every
segment. tiny (16/8/8 channels): 32768/65536/65536 samples = 4096/2048/1024 frames: the tiny
decode is one tile per segment below 1025 frames. `decode(z, tile_elements=0)` and any active
`capture.recording` (the golden comparisons) run the untiled graph.
"""

from __future__ import annotations

import math
import time

import mlx.core as mx
import mlx.nn as nn

from harness import blas
from harness.host import usable_cores
from harness.model import capture, fastmath
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

    @property
    def dtype(self):
        """The compute dtype: the weights' (`load_model` casts every weight to it)."""
        return self.decoder.layers[0].weight.dtype

    def decode(self, latents, tile_elements: int | None = None):
        """latents (B, latent_dim, T) -> planar audio (B, channels, T * ratio), evaluated.

        The latents are cast to the weights' dtype first (the official pretransform casts
        them to its own: in a float16 run the whole decoder is float16).
        Recorded: the decoder's input after the layout step, and the whole decode's output
        (the official `decode_audio`, where any chunking and stitching belongs). Tiled (see
        the module docstring) unless tile_elements is 0 or a recorder is active (a golden
        comparison wants every intermediate whole)."""
        tile = TILE_ELEMENTS if tile_elements is None else tile_elements
        x = tap(self.decoder, latents.astype(self.dtype).swapaxes(1, 2), "input",
                channels_last=True)
        if tile <= 0 or capture.recording_active():
            return tap(self, self.decoder(x).swapaxes(1, 2))
        return tap(self, decode_tiled(self.decoder, x, tile).swapaxes(1, 2))

    def encode(self, audio, noise=None):
        """audio (B, channels, N) -> latents (B, latent_dim, N / ratio).

        VAE bottleneck: mean + std * noise with std = softplus(scale) + 1e-4; without
        noise the mean is returned (deterministic).
        """
        h = self.encoder(audio.astype(self.dtype).swapaxes(1, 2)).swapaxes(1, 2)
        mean, scale = mx.split(h, 2, axis=1)
        if noise is None:
            return mean
        std = nn.softplus(scale) + 1e-4
        return mean + std * noise


# -- exact tiled decode ---------------------------------------------------------------------------

TILE_ELEMENTS = 1 << 19  # channels x samples of one tile's output (2 MB fp32, an L2 cache)
# Wider segments take a 512-channel segment's tile length: at 1024 channels a 512-sample tile
# recomputes 21% of its convs' work in halos, and its GEMMs stream 29 MB weights for few rows.
# First segment at 256 frames, tiles of 1024 against 512 samples, interleaved 8 times: min 0.57
# against 0.68 s, median 0.65 against 0.94 s, same output.
TILE_CHANNELS_MAX = 512


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def out_length(module, n: int) -> int:
    """Output length of `module` for n input samples."""
    if isinstance(module, ConvTranspose1d):
        k = module.weight.shape[1]
        return (n - 1) * module.stride - 2 * module.padding + k
    if isinstance(module, Conv1d):
        k = module.weight.shape[1]
        return (n + 2 * module.padding - module.dilation * (k - 1) - 1) // module.stride + 1
    if isinstance(module, (list, DecoderBlock, ResidualUnit)):
        for m in _children(module):
            n = out_length(m, n)
        return n
    return n  # pointwise (snake)


def upsampling(module) -> int:
    """Output samples per input sample (product of the conv-transpose strides)."""
    if isinstance(module, ConvTranspose1d):
        return module.stride
    if isinstance(module, (list, DecoderBlock, ResidualUnit)):
        return math.prod(upsampling(m) for m in _children(module))
    return 1


def input_span(module, a: int, b: int) -> tuple[int, int]:
    """The input samples [lo, hi) that outputs [a, b) of `module` depend on (unclipped)."""
    if isinstance(module, ConvTranspose1d):
        # output n = t * s + j - p for input t and kernel tap j in [0, k)
        s, p, k = module.stride, module.padding, module.weight.shape[1]
        lo = min(_ceil_div(a + p - k + 1, s), a // s)       # a // s: output a is in the local grid
        hi = max((b - 1 + p) // s + 1, _ceil_div(b + 2 * p - k, s) + 1)  # local output reaches b
        return lo, hi
    if isinstance(module, Conv1d):
        if module.stride != 1:
            raise ValueError("tiled decode supports stride-1 convolutions only")
        k, d, p = module.weight.shape[1], module.dilation, module.padding
        return a - p, b - p + d * (k - 1)
    if isinstance(module, ResidualUnit):  # x + f(x): f's span, which holds [a, b)
        lo, hi = a, b
        for m in reversed(module.layers):
            lo, hi = input_span(m, lo, hi)
        return min(lo, a), max(hi, b)
    if isinstance(module, (list, DecoderBlock)):
        for m in reversed(_children(module)):
            a, b = input_span(m, a, b)
        return a, b
    return a, b  # pointwise (snake)


def _children(module) -> list:
    return module if isinstance(module, list) else module.layers


def decoder_segments(decoder: OobleckDecoder) -> list[list]:
    """The decoder's top-level layers grouped into segments whose outputs are kept whole: the
    input conv with the first block, each further block, the output snake and conv with the
    last block."""
    layers = decoder.layers
    blocks = [i for i, m in enumerate(layers) if isinstance(m, DecoderBlock)]
    if not blocks:
        return [list(layers)]
    cuts = [0] + blocks[1:] + [len(layers)]
    return [list(layers[a:b]) for a, b in zip(cuts, cuts[1:])]


class _Tiles:
    """A (B, T, C) signal kept as consecutive evaluated tiles; `read` slices across them."""

    def __init__(self, x=None):
        self.parts: list[tuple[int, mx.array]] = [] if x is None else [(0, x)]
        self.length = 0 if x is None else x.shape[1]

    def append(self, x) -> None:
        self.parts.append((self.length, x))
        self.length += x.shape[1]

    def read(self, lo: int, hi: int):
        pieces = [x[:, max(lo - start, 0): hi - start] for start, x in self.parts
                  if start < hi and start + x.shape[1] > lo]
        return pieces[0] if len(pieces) == 1 else mx.concatenate(pieces, axis=1)


def run_segment(segment: list, src: _Tiles, tile_elements: int, on_group=None) -> _Tiles:
    """Overlap-save over one segment: each output tile from its receptive field of `src`.
    Consecutive tiles go to the CPU streams in turn and are evaluated together, so MLX's
    single-threaded elementwise kernels (snakes, im2col copies, adds) run on every core, and
    with the cores shared out among the tiles' GEMMs (`blas.threads`: one BLAS thread per
    stream on 2 cores) so that they too run side by side instead of queueing on OpenBLAS's
    lock; measured on 2 cores, 32 frames: 2.90 s -> 1.98 s, bit-identical.

    One tile per stream per `mx.eval`, and a wait for each group: MLX's evaluator dispatches
    a graph's ops from the calling thread with at most 10 in flight, in an order that
    interleaves the group's tiles; two tiles per stream in one eval, or one `async_eval` per
    tile, let one stream's ops fill those 10 slots while the other stream idles (measured at
    128 frames: 1.2-1.4 cores busy instead of 1.8-1.9, 40-90% slower). `on_group(seconds)`,
    if given, receives each group's evaluation time (tools/vae_profile's --groups view)."""
    n_in = src.length
    n_out = out_length(segment, n_in)
    up = upsampling(segment)
    tile = tile_length(segment, tile_elements)
    streams = fastmath.cpu_streams_for(n_out // tile)
    out = _Tiles()
    starts = list(range(0, n_out, tile))
    for i in range(0, len(starts), len(streams)):
        group = []
        with fastmath.keep_snake_inputs():
            for stream, a in zip(streams, starts[i:i + len(streams)]):
                b = min(a + tile, n_out)
                lo, hi = input_span(segment, a, b)
                lo, hi = max(lo, 0), min(hi, n_in)
                with mx.stream(stream):
                    y = _run(segment, src.read(lo, hi))
                    # local output 0 is global lo * up (same-padded convs; conv-transposes
                    # put input t at t * s)
                    group.append(y[:, a - lo * up: b - lo * up])
            t0 = time.perf_counter()
            with blas.threads(usable_cores() // len(group)):
                mx.eval(*group)
            if on_group is not None:
                on_group(time.perf_counter() - t0)
        for y in group:
            out.append(y)
    return out


def tile_length(segment: list, tile_elements: int) -> int:
    """Output samples per tile of `segment` (see TILE_CHANNELS_MAX)."""
    return max(1, tile_elements // min(_out_channels(segment), TILE_CHANNELS_MAX))


def _out_channels(segment: list) -> int:
    """Widest channel count at the segment's output rate (after its last conv-transpose)."""
    convs = [m for layer in segment for _, m in layer.named_modules()
             if isinstance(m, (Conv1d, ConvTranspose1d))]
    last_up = max((i for i, m in enumerate(convs) if isinstance(m, ConvTranspose1d)), default=0)
    return max(m.weight.shape[0] for m in convs[last_up:])


def decode_tiled(decoder: OobleckDecoder, x, tile_elements: int = TILE_ELEMENTS):
    """Channels-last latents (B, T, C) -> (B, T * ratio, audio channels), exact tiles."""
    src = _Tiles(x)
    for segment in decoder_segments(decoder):
        src = run_segment(segment, src, tile_elements)
    return src.read(0, src.length)
