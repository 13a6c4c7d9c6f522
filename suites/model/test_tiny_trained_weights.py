"""The committed `tiny-trained` weights (tools/train_tiny): they load strictly and byte for
byte, and their decoder turns latents of real music into audio that follows the music, which
the seeded untrained weights of the same shape do not.

The latents (`data/tiny_trained_music_latents.npz`) are the trained encoder's (official
stable-audio-tools code, tools/train_tiny/encode.py) means of two held-out TEST clips of the
corpus, 160 frames (7.43 s) each; training only saw the CALIBRATION clips.

Measured (trained / untrained, stg1 and busy_schedule): MR-STFT distance 2.05, 2.01 / 4.67,
6.24; logmel distance 8.8, 9.9 / 18.8, 21.8 dB; channel correlation 0.96, 0.97 / 0.16, 0.17
(the music is nearly mono); 5512 Hz stride comb -41.8, -41.1 / -20.2, -7.8 dB (max -36.5).
Not yet music-like by every check: the decoder still buzzes at the latent rate (flicker
13-26 dB, 21.5 Hz comb 15-26 dB; phase-unbalanced upsamplers and latents that alternate in
sign, tools/train_tiny/README.md) and plays 6-8 dB low.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from harness.audio import corpus
from harness.audio.check import check_audio
from harness.compare.divergence import verify_weights
from harness.golden.store import DEFAULT_ROOT, load_golden
from harness.errors import BadInput
from harness.weights.load import load_model
from harness.weights.trained import trained_checkpoint, verified

LATENTS = Path(__file__).parent / "data" / "tiny_trained_music_latents.npz"
CASE = "tiny-trained-torch"
# What the trained decode must hold against the original clip: the absolute checks it passes
# (finite, unclipped, no DC, a sane loudness, full band, no seams, no comb at the 8-sample
# stride), a spectrum near the music's and its near-mono image. Bounds sit between
# the measurements above (~1.3-1.5x from each side).
ABSOLUTE = ("nonfinite_samples", "clipping_ratio", "dc_offset", "loudness_lufs", "band_limit_db",
            "seam_db", "frame_seam_db", "comb_5512hz_db")
MRSTFT_MAX = 3.2
LOGMEL_MAX_DB = 15.0
CHANNEL_CORRELATION_MIN = 0.5


@pytest.fixture(scope="module")
def trained():
    return load_model(trained_checkpoint())


def test_committed_weights_load_strictly_and_match_their_hash(trained):
    model, ckpt = trained
    assert model.config.preset == "tiny-trained" and model.config.vae.downsampling_ratio == 2048
    assert verify_weights(load_golden(CASE, DEFAULT_ROOT), ckpt)  # the golden's own weights


def test_a_changed_byte_is_refused(tmp_path):
    copy = tmp_path / "tiny-trained"
    shutil.copytree(trained_checkpoint(), copy)
    data = bytearray((copy / "model.safetensors").read_bytes())
    data[-1] ^= 1
    (copy / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(BadInput, match="sha256"):
        verified(copy)


def _music():
    """(name, latents (1, 16, 160), original planar clip) of each held-out clip."""
    lat = np.load(LATENTS)
    for key in sorted(lat.files):
        source, stem = key.split("__")
        z = lat[key][None]
        clip = corpus.load_clip(source, stem, z.shape[-1] * 2048 / 44100).audio
        yield key, z, clip[:, : z.shape[-1] * 2048].astype(np.float32)


def _decode(model, z) -> np.ndarray:
    import mlx.core as mx

    return np.array(model.vae.decode(mx.array(z)).astype(mx.float32))[0]


def _follows_music(report) -> list[str]:
    """The reasons a decode does not follow the music ([] when it does)."""
    bad = [n for n in ABSOLUTE if not report[n].passed]
    if not report["logmel_distance_db"].value <= LOGMEL_MAX_DB:
        bad.append(f"logmel_distance_db {report['logmel_distance_db'].value:.2f}")
    if not report["mrstft_distance"].value <= MRSTFT_MAX:
        bad.append(f"mrstft_distance {report['mrstft_distance'].value:.2f}")
    if not report["channel_correlation"].value >= CHANNEL_CORRELATION_MIN:
        bad.append(f"channel_correlation {report['channel_correlation'].value:.2f}")
    return bad


def test_trained_decoder_follows_real_music_from_its_latents(trained, tmp_path):
    from harness.weights.synth import write_checkpoint

    untrained, _ = load_model(write_checkpoint("tiny-trained", 0, tmp_path / "synth"))
    for name, z, clip in _music():
        good = check_audio(_decode(trained[0], z), 44100, reference=clip)
        assert _follows_music(good) == [], (name, [str(c) for c in good.checks])
        bad = check_audio(_decode(untrained, z), 44100, reference=clip)
        assert _follows_music(bad), (name, "the untrained decoder passed")
