"""What the user gets is compared with the reference, not only what the decoder computed.

The goldens hold `output.audio`: what the official pipeline returns after the decode. The
public `generate` path returns exactly the audio of `run` on the same noise, `run`'s audio
is a golden row (suites/golden/test_golden_parity), and the WAV as written by `sao-harness
generate`'s writer and read back matches the golden's returned audio too. A layout slip after
the decoder fails the golden at `output.audio` and the written WAV alike.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.compare.metrics import measure
from harness.golden.tolerances import policy_for
from harness.model.pipeline import OUTPUT_AUDIO, make_noise
from harness.mutants import get



def _run(model, g) -> np.ndarray:
    _, audio = model.run(g["input.input_ids"], g["input.attention_mask"],
                         g["input.seconds_total"], g["input.noise"], list(g["input.step_noise"]))
    return np.array(audio)


def _written(tmp_path, audio: np.ndarray, sr: int) -> np.ndarray:
    from harness.audio.io import load, write_wav

    out = []
    for i, a in enumerate(audio):
        path = tmp_path / f"clip{i}.wav"
        write_wav(path, a, sr, a.shape[1] / sr)
        back, _ = load(path, allow_nonfinite=True)
        out.append(back)
    return np.stack(out)


def _accepts(golden, got: np.ndarray) -> bool:
    tol = policy_for(golden.producer, "fp32", golden.preset).tolerance(OUTPUT_AUDIO)
    ref = golden[OUTPUT_AUDIO]
    return got.shape == ref.shape and tol.accepts(measure(got, ref))


def test_generate_returns_what_run_returns(loaded):
    model, _ = loaded
    cfg = model.config
    ids = np.zeros((1, cfg.max_length), np.int32)
    ids[0, :4] = [5, 9, 11, 1]
    mask = (ids != 0).astype(np.int32)
    frames, seed, steps = 16, 7, 8
    gen = model.generate(ids, mask, 1.0, seed=seed, frames=frames, steps=steps)
    init, step_noise = make_noise(seed, (1, cfg.dit.io_channels, frames), steps)
    _, audio = model.run(ids, mask, 1.0, init, step_noise, steps=steps)
    np.testing.assert_array_equal(gen.audio, np.array(audio)[0])


def test_written_wav_matches_the_reference_audio(golden, loaded, tmp_path):
    model, _ = loaded
    audio = _run(model, golden)
    assert _accepts(golden, audio)
    assert _accepts(golden, _written(tmp_path, audio, model.config.sample_rate))


@pytest.mark.parametrize("name", ["run-returns-channels-swapped", "decode-returns-interleaved"])
def test_layout_after_the_decoder_fails_returned_and_written_audio(name, golden, loaded, tmp_path):
    model, ckpt = loaded
    with get(name).apply(model, ckpt):
        audio = _run(model, golden)
    assert not _accepts(golden, audio)
    assert not _accepts(golden, _written(tmp_path, audio, model.config.sample_rate))
