"""The committed `tiny-trained` weights (tools/train_tiny): they load strictly and byte for
byte, and their decoder turns latents of real music into music-like audio, which the seeded
untrained weights of the same shape do not.

The latents (`data/tiny_trained_music_latents.npz`) are the trained encoder's (official
stable-audio-tools code, tools/train_tiny/encode.py) means of two held-out TEST clips of the
corpus, 160 frames (7.43 s) each; training only saw the CALIBRATION clips.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from harness.audio import corpus
from harness.audio.check import check_audio
from harness.compare.divergence import verify_weights
from harness.compare.store import DEFAULT_ROOT, load_golden
from harness.errors import BadInput
from harness.weights.load import load_model
from harness.weights.trained import trained_checkpoint, verified

LATENTS = Path(__file__).parent / "data" / "tiny_trained_music_latents.npz"
CASE = "tiny-trained-torch"
# What "music-like" means here: the absolute checks the clip alone must pass (no flicker at the
# latent rate, no stride combs, no seams, full band, no DC or clipping) plus, against the
# original clip, the right speed and a followed loudness envelope and spectrum.
ABSOLUTE = ("nonfinite_samples", "clipping_ratio", "dc_offset", "band_limit_db", "flicker_db",
            "comb_21hz_db", "comb_172hz_db", "comb_1378hz_db", "comb_5512hz_db", "seam_db")
RELATIVE = ("speed_ratio",)
ENVELOPE_MIN = 0.0   # envelope_correlation with the original (set from the measurement below)
LOGMEL_MAX_DB = 0.0  # logmel_distance_db to the original (set from the measurement below)


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


def _music_like(report) -> list[str]:
    """The reasons a decode is not music-like ([] when it is)."""
    bad = [n for n in ABSOLUTE + RELATIVE if not report[n].passed]
    if not report["envelope_correlation"].value >= ENVELOPE_MIN:
        bad.append(f"envelope_correlation {report['envelope_correlation'].value:.3f}")
    if not report["logmel_distance_db"].value <= LOGMEL_MAX_DB:
        bad.append(f"logmel_distance_db {report['logmel_distance_db'].value:.2f}")
    return bad


def test_trained_decoder_turns_real_music_latents_into_music(trained, tmp_path):
    from harness.weights.synth import write_checkpoint

    untrained, _ = load_model(write_checkpoint("tiny-trained", 0, tmp_path / "synth"))
    for name, z, clip in _music():
        good = check_audio(_decode(trained[0], z), 44100, reference=clip)
        assert _music_like(good) == [], (name, [str(c) for c in good.checks])
        bad = check_audio(_decode(untrained, z), 44100, reference=clip)
        assert _music_like(bad), (name, "the untrained decoder passed as music")
