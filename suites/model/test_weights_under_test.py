"""Reference-free checks of the checkpoint under test (--weights; default the seeded tiny one).

What holds for any weights, so a checkpoint without goldens (whose golden tests skip, naming
why) is still checked: it loads strictly, the pipeline returns finite, non-silent audio of
the length its latents imply, the same inputs give the same samples, and a batch of prompts
gives each prompt what it gives alone. Short clips (FRAMES latent frames) keep a full-size
checkpoint quick too.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.golden.inputs import make_inputs

FRAMES = 16
STEPS = 4


def batch_snr_floor(model) -> float:
    """How closely a batch row must match its prompt alone: the same math in another GEMM
    shape, so the float32 rounding the goldens allow between MLX and torch, as the audio floor
    of the checkpoint's preset (tiny 75 dB, full-size 35 dB). Measured on the seeded tiny
    checkpoints 0 and 1: bit-identical with OpenBLAS's SkylakeX kernels, 98.5 dB with the
    Haswell ones (the AMD host's preset); a row computed from another row's inputs reads near
    0 dB."""
    from harness.golden.tolerances import policy_for

    return policy_for("torch", "fp32", model.config.preset).groups["vae"].snr_db


@pytest.fixture(scope="module")
def under_test(weights_path):
    """(model, checkpoint): load_model is strict, any fault a BadInput naming file and tensor."""
    from harness.weights.load import load_model

    return load_model(weights_path)


@pytest.fixture(scope="module")
def inputs(under_test):
    model, _ = under_test
    return make_inputs(seed=7, io_channels=model.config.dit.io_channels, frames=FRAMES,
                       steps=STEPS, max_length=64, vocab_size=model.config.t5.vocab_size,
                       lengths=(5, 40), seconds=(3.0, 11.0))


def _run(model, i, rows=slice(None)):
    _, audio = model.run(i.input_ids[rows], i.attention_mask[rows], i.seconds_total[rows],
                         i.noise[rows], [n[rows] for n in i.step_noise], steps=STEPS)
    return np.array(audio)


@pytest.fixture(scope="module")
def batch_audio(under_test, inputs):
    return _run(under_test[0], inputs)


def test_audio_is_finite_not_silent_and_of_the_latent_length(under_test, batch_audio):
    model, _ = under_test
    hop = model.config.vae.downsampling_ratio
    assert batch_audio.shape == (2, model.config.vae.audio_channels, FRAMES * hop), batch_audio.shape
    assert np.isfinite(batch_audio).all(), "non-finite samples"
    rms = np.sqrt((batch_audio.astype(np.float64) ** 2).mean(axis=(1, 2)))
    assert (rms > 1e-6).all(), f"silent output: rms {rms}"


def test_same_inputs_same_samples(under_test, inputs, batch_audio):
    assert np.array_equal(_run(under_test[0], inputs), batch_audio)


def test_each_batch_row_is_its_prompt_alone(under_test, inputs, batch_audio):
    model, _ = under_test
    floor = batch_snr_floor(model)
    for row in range(batch_audio.shape[0]):
        alone = _run(model, inputs, slice(row, row + 1))[0].astype(np.float64)
        err = np.sum((batch_audio[row] - alone) ** 2)
        snr = 10 * np.log10(np.sum(alone ** 2) / err) if err else np.inf
        assert snr >= floor, f"batch row {row} vs alone: SNR {snr:.1f} dB < {floor} dB"
