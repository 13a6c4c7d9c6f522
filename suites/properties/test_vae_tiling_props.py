"""The exact tiled VAE decode (`harness.model.vae.decode_tiled`) equals the untiled decode.

Overlap-save is exact only when every tile's halo covers the decoder's receptive field and
the tile edges' padding is cropped: at any tile size (a tile of one sample, tiles shorter than
the halo, tiles that do not divide the length) and any latent length (one frame included) the
tiled audio must be the untiled audio to float rounding. The goldens compare the untiled graph
(they record every intermediate); this closes the chain to what `generate` runs.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from harness.model import vae
from suites.properties.checks import EPS32, assert_close, assert_detects

# Rounding only: OpenBLAS blocks a GEMM by its length, so a tile's sums round differently.
# Measured over 285 (length, tile) pairs on the tiny decoder: worst 57 eps x max|audio| with
# OpenBLAS (0 with MLX's bundled BLAS); a halo one sample short: 1.9e6 eps.
TOL_EPS = 256


def latents(frames: int, channels: int, seed: int) -> mx.array:
    rng = np.random.default_rng(seed)
    return mx.array(rng.standard_normal((1, channels, frames)).astype(np.float32) * 2)


def check_tiled_equals_untiled(decode_tiled, autoencoder, frames: int, tile_elements: int,
                               seed: int = 0) -> None:
    z = latents(frames, autoencoder.latent_dim, seed)
    ref = np.array(autoencoder.decode(z, tile_elements=0))
    got = np.array(decode_tiled(autoencoder.decoder, z.swapaxes(1, 2), tile_elements)
                   .swapaxes(1, 2))
    tol = TOL_EPS * EPS32 * float(np.abs(ref).max())
    assert_close(f"tiled decode, {frames} frames, tile {tile_elements} elements", got, ref, tol)


# Tiles of 2-75 samples per segment (the halo is ~40) up to whole segments; each tile is one
# MLX evaluation, so lengths stay short to keep this within seconds.
@settings(max_examples=25)
@given(frames=st.integers(1, 12), tile_elements=st.integers(64, 600), seed=st.integers(0, 3))
@example(frames=1, tile_elements=1, seed=0)        # one frame, one-sample tiles
@example(frames=7, tile_elements=8, seed=1)        # tiles far shorter than the halo
@example(frames=13, tile_elements=333, seed=2)     # tiles that do not divide the length
@example(frames=16, tile_elements=1 << 19, seed=3)  # one tile per segment (the default size)
def test_tiled_decode_equals_untiled(tiny_model, frames, tile_elements, seed):
    check_tiled_equals_untiled(vae.decode_tiled, tiny_model.vae, frames, tile_elements, seed)


def test_decode_is_tiled_by_default_and_not_while_recording(tiny_model, monkeypatch):
    """`decode` takes the tiled path unless a recorder wants every intermediate whole."""
    from harness.model.capture import recording

    calls = []
    real = vae.decode_tiled
    monkeypatch.setattr(vae, "decode_tiled", lambda *a: calls.append(a) or real(*a))
    z = latents(3, tiny_model.vae.latent_dim, 0)
    tiny_model.vae.decode(z)
    assert len(calls) == 1
    with recording() as rec:
        tiny_model.vae.decode(z)
    assert len(calls) == 1 and "pretransform.model.decoder" in rec.tensors


def test_halo_from_the_modules_receptive_field(tiny_model):
    """The span of a conv (k 7, dilation 9, padding 27) and a conv-transpose (stride 8, k 16,
    padding 4), from the modules' own attributes."""
    dec = tiny_model.vae.decoder
    unit = dec.layers[1].layers[4]                      # ResidualUnit, dilation 9
    assert vae.input_span(unit.layers[1], 100, 110) == (73, 137)
    convt = dec.layers[1].layers[1]                     # stride 8: k 16, padding 4
    assert (convt.stride, convt.weight.shape[1], convt.padding) == (8, 16, 4)
    lo, hi = vae.input_span(convt, 80, 96)
    assert (lo, hi) == (9, 13)
    assert vae.upsampling(dec.layers) == 64 and vae.out_length(dec.layers, 5) == 320


def _tiled_halo_short_by_one(decoder, x, tile_elements):
    """BUG: every conv's input span one sample short on each side."""
    real = vae.input_span

    def short(module, a, b):
        lo, hi = real(module, a, b)
        if isinstance(module, vae.Conv1d) and module.weight.shape[1] > 1:
            return lo + 1, hi - 1
        return lo, hi

    vae.input_span = short
    try:
        return vae.decode_tiled(decoder, x, tile_elements)
    finally:
        vae.input_span = real


def test_property_detects_a_short_halo(tiny_model):
    assert_detects(lambda impl, f, t: check_tiled_equals_untiled(impl, tiny_model.vae, f, t),
                   _tiled_halo_short_by_one, [(6, 64), (9, 100), (4, 300)])


@pytest.mark.full
def test_full_size_tiled_decode_equals_untiled(full_checkpoint):
    """Real dimensions (2048 to 128 channels, strides 8, 8, 4, 4, 2) against the untiled
    decode: 40 frames in a quarter of the default tiles (32/4/2/1/0.5 frames per segment), so
    every segment is cut, the first one too (its default tile is 128 frames)."""
    from harness.weights.load import load_model

    model, _ = load_model(full_checkpoint)
    check_tiled_equals_untiled(vae.decode_tiled, model.vae, 40, vae.TILE_ELEMENTS // 4)


def test_tiles_evaluated_together_share_the_blas_threads(tiny_model, monkeypatch):
    """Two tiles per evaluation on two cores: one BLAS thread each while they run, the
    process's count back after, and the audio still the untiled decode's."""
    from contextlib import contextmanager

    from harness import blas
    from harness.model import fastmath

    monkeypatch.setattr(fastmath, "_cpu_cores", lambda: 2)  # two CPU streams on any host
    monkeypatch.setattr(vae, "usable_cores", lambda: 2)
    seen, real = [], blas.threads

    @contextmanager
    def spy(n):
        with real(n):
            seen.append((n, blas.thread_count()))
            yield

    monkeypatch.setattr(blas, "threads", spy)
    before = blas.thread_count()
    check_tiled_equals_untiled(vae.decode_tiled, tiny_model.vae, 9, 256)
    assert blas.thread_count() == before
    assert (1, None if before is None else 1) in seen  # a group of two tiles: one each
    assert {n for n, _ in seen} <= {1, 2}  # a lone last tile keeps both


def test_on_group_sees_every_group(tiny_model, monkeypatch):
    """`run_segment(..., on_group)` (tools/vae_profile --groups) is called once per group of
    tiles, one tile per CPU stream, with that group's evaluation time."""
    from harness.model import fastmath

    monkeypatch.setattr(fastmath, "_cpu_cores", lambda: 2)
    monkeypatch.setattr(vae, "usable_cores", lambda: 2)
    segment = vae.decoder_segments(tiny_model.vae.decoder)[0]
    src = vae._Tiles(latents(5, tiny_model.vae.latent_dim, 0).swapaxes(1, 2))
    times: list[float] = []
    out = vae.run_segment(segment, src, 64, times.append)
    tiles = -(-out.length // vae.tile_length(segment, 64))
    assert len(out.parts) == tiles and len(times) == -(-tiles // 2) and min(times) > 0
