"""Input lengths at which the MLX code takes another path: what a long golden must cross.

A golden only tests the paths its length runs. The MLX model switches path with the input
length in three places, all in the decoder:

- `fastmath.on_cpu_streams`: an elementwise op (the snakes) on a tensor of at least
  `PARALLEL_MIN_ELEMENTS` elements is cut along time over the CPU cores (with >= 2 cores).
  The decoder's largest elementwise input is its final snake, (B, T·ratio, channels).
- `conv.conv1d_im2col`: a stride-1 conv wider than `TAPS_MAX_OUT_CHANNELS` whose im2col
  buffer would pass `IM2COL_ELEMENTS` runs in time chunks of IM2COL_ELEMENTS // (B·k·C_in)
  output samples.
- `conv.conv_transpose1d`: below B·T = C_in input samples (a short input or tile) a
  conv-transpose takes one GEMM and shifted adds instead of per-tap GEMMs. This is the short
  side, so it is not in `crossing_frames`: the tiny decoder takes it in its first block (32
  input channels) below 32 frames at batch 1;
  the property examples in suites/properties/test_layout_props.py hold both paths, and the
  full-size goldens run it in the 2048- and 1024-channel blocks.

And positions: RoPE and the attention see T + 1 positions (the prepended global token is
position 0), so a bug past position p shows only for T >= p. T5 always sees `max_length`
tokens: no length threshold.
"""

from __future__ import annotations

from harness.model.config import ModelConfig
from harness.model.fastmath import PARALLEL_MIN_ELEMENTS
from harness.model.conv import IM2COL_ELEMENTS, TAPS_MAX_OUT_CHANNELS


def _decoder_im2col_convs(cfg: ModelConfig) -> list[tuple[int, int, int]]:
    """(kernel, input channels, output samples per latent frame) of each decoder conv that
    takes the im2col path (stride 1, k > 1, wider than conv.TAPS_MAX_OUT_CHANNELS)."""
    v = cfg.vae
    ch, m = v.channels, (1,) + tuple(v.c_mults)
    convs = [(7, v.latent_dim, m[-1] * ch, 1)]  # (k, C_in, C_out, samples per frame)
    upsampled = 1
    for i in range(len(m) - 1, 0, -1):
        upsampled *= v.strides[i - 1]
        convs += [(7, m[i - 1] * ch, m[i - 1] * ch, upsampled)] * 3  # residual units' k=7
    convs.append((7, m[0] * ch, v.audio_channels, upsampled))
    return [(k, ci, per) for k, ci, co, per in convs if co > TAPS_MAX_OUT_CHANNELS]


def crossing_frames(cfg: ModelConfig, batch: int) -> dict[str, int | None]:
    """Smallest latent frame count T at which each length-dependent path is taken for a batch
    of `batch` (None: not at any length up to the model's sample_size)."""
    ratio, longest = cfg.vae.downsampling_ratio, cfg.latent_frames
    snake = -(-PARALLEL_MIN_ELEMENTS // (batch * ratio * cfg.vae.channels))
    chunked = [IM2COL_ELEMENTS // (batch * k * ci) // per + 1
               for k, ci, per in _decoder_im2col_convs(cfg)] or [longest + 1]
    return {
        "decoder snakes on CPU streams (fastmath.PARALLEL_MIN_ELEMENTS)":
            snake if snake <= longest else None,
        "decoder conv in im2col chunks (conv.IM2COL_ELEMENTS)":
            min(chunked) if min(chunked) <= longest else None,
    }
