"""The `tiny-trained` preset: the real decoder strides at toy width, so its clips run at the
real latent rate. Checked on its seeded (untrained) checkpoint in the official layout."""

from __future__ import annotations

import numpy as np

from harness.audio.metrics import LATENT_RATE
from harness.bench.plan import fixed_inputs
from harness.model.config import FULL, PRESETS
from harness.weights.load import load_model
from harness.weights.synth import write_checkpoint


def test_real_strides_and_latent_rate():
    cfg = PRESETS["tiny-trained"]
    assert cfg.vae.strides == FULL.vae.strides and cfg.vae.downsampling_ratio == 2048
    assert abs(cfg.frame_rate - LATENT_RATE) < 1e-9
    assert cfg.dit.io_channels == cfg.vae.latent_dim


def test_seeded_checkpoint_loads_strictly_and_generates(tmp_path):
    model, ckpt = load_model(write_checkpoint("tiny-trained", 0, tmp_path / "ckpt"))
    assert model.config.preset == "tiny-trained"
    g = fixed_inputs(model.config, 4, seed=0)
    latents, audio = model.run(g.input_ids, g.attention_mask, g.seconds_total, g.noise,
                               g.step_noise)
    audio = np.array(audio)
    assert latents.shape == (1, 16, 4) and audio.shape == (1, 2, 4 * 2048)
    assert np.isfinite(audio).all() and audio.std() > 0
